"""`maider-tui plan`: a dry run that prints what a launch would deploy, and creates nothing.

No token and no file written: GPU types and prices come from the built-in catalog, the host key and
the Hugging Face token are shown as placeholders. Only a custom model is read, from the Hub (the
demo's simulated Hub under --demo) or from `--config-json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .. import catalog
from ..catalog import UnknownCatalogIdError
from ..catalog.custom import custom_model
from ..cloud.hf import HF_BASE_URL, HfError, check_model_id
from ..cloud.hf import model_spec as hub_model_spec
from ..deploy import cloud_init, compose
from ..deploy.launch import Launch, resolve
from ..deploy.plan import HOST_KEY_PLACEHOLDER_PRIVATE, HOST_KEY_PLACEHOLDER_PUBLIC, env_file_note, summary
from ..models import GpuType, ModelSpec, Region
from ..profiles import Profile, builtin_profile
from . import argtypes

if TYPE_CHECKING:
    from maider_tui.settings import Settings

EXIT_OK, EXIT_DOES_NOT_FIT, EXIT_BAD_INPUT = 0, 1, 2


def add_plan_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `plan` to a `parser.add_subparsers()` object and return its parser."""
    parser = subparsers.add_parser(
        "plan",
        help="dry run: show the fit, the cloud-init user-data or the compose file a launch would use",
        description="Print what a launch would deploy, with secrets as placeholders. Creates nothing and "
                    "needs no token: GPU types and prices are the built-in ones.",
    )
    parser.add_argument("--type", required=True, metavar="TYPE",
                        help="Linode GPU plan, e.g. g2-gpu-rtx4000a2-s")
    parser.add_argument("--model", required=True, metavar="MODEL",
                        help="a built-in model's Hugging Face id or short name (e.g. 32B-AWQ), or any Hugging "
                             "Face id, whose config.json is read from the Hub (or from --config-json)")
    parser.add_argument("--config-json", metavar="FILE",
                        help="a custom model's config.json, for planning it without reaching the Hub")
    parser.add_argument("--params-b", type=float, metavar="B",
                        help="a custom model's parameter count in billions (needed for MoE and MLA models)")
    parser.add_argument("--region", metavar="R", help="check that the plan is offered in this region")
    parser.add_argument("--context", type=argtypes.context_tokens, metavar="N",
                        help="context length in tokens (32768 or 32k); default: the longest that fits")
    parser.add_argument("--nodes", type=argtypes.node_count, default=1, metavar="N",
                        help="VMs of TYPE the session spans (default 1): vLLM on a Ray cluster over a private "
                             "network, TP within each VM, PP across them; shows every node's files")
    show = parser.add_mutually_exclusive_group()
    show.add_argument("--summary", dest="show", action="store_const", const="summary",
                      help="the fit plan: GPUs, VRAM, price, layout, context, dtype (the default)")
    show.add_argument("--cloud-init", dest="show", action="store_const", const="cloud-init",
                      help="the #cloud-config user-data")
    show.add_argument("--compose", dest="show", action="store_const", const="compose",
                      help="/opt/llm/docker-compose.yml (and the .env beside it, token as a placeholder)")
    parser.set_defaults(show="summary", func=run_plan)
    return parser


def run_plan(args: argparse.Namespace, *, settings: Settings | None = None, out: TextIO | None = None,
             err: TextIO | None = None, profiles: dict[str, Profile] | None = None,
             hf_base_url: str = HF_BASE_URL, hf_token: str | None = None) -> int:
    """Print the plan: 0 when it fits, 1 when the model does not fit, 2 for an unknown type/model/region.

    settings: the user's `Settings` (image, utilisation, KV-cache dtype, default context, compose
    switches); None uses the defaults, so the dry run itself reads no file. profiles: the model
    profiles by id (`profiles.load_profiles`); None: the built-in ones. The plan is the launch's own,
    from `deploy.launch.resolve`: the same context, flags and environment the VM would get.
    """
    out, err = out or sys.stdout, err or sys.stderr
    if settings is None:
        from ..settings import Settings

        settings = Settings.defaults()  # defaults only: a dry run reads no file
    try:
        gpu_type = catalog.gpu_type(args.type)
    except UnknownCatalogIdError as exc:
        valid = ", ".join(t.id for t in catalog.gpu_types())
        print(f"maider-tui plan: {exc.message}. GPU types: {valid}.", file=err)
        return EXIT_BAD_INPUT
    try:
        region = catalog.region(args.region) if args.region else None
    except UnknownCatalogIdError as exc:
        print(f"maider-tui plan: {exc.message}. GPU regions: {', '.join(r.id for r in catalog.regions())}.",
              file=err)
        return EXIT_BAD_INPUT
    spec, problem = model_spec(args, hf_base_url=hf_base_url, hf_token=hf_token)
    if spec is None:
        print(f"maider-tui plan: {problem}", file=err)
        return EXIT_BAD_INPUT
    if region is not None and region.id not in gpu_type.regions:
        offered = ", ".join(gpu_type.regions) or "no region right now"
        print(f"maider-tui plan: {gpu_type.id} is not offered in {region.id}; it is offered in {offered}.",
              file=err)
        return EXIT_BAD_INPUT
    vllm = settings.vllm
    profile = (profiles or {}).get(spec.id) or builtin_profile(spec.id)
    nodes = getattr(args, "nodes", 1)
    launch = resolve(spec, gpu_type, settings, profile=profile, context=args.context, nodes=nodes)
    report, config = launch.report, launch.config
    if not report.fits:
        on = gpu_type.id if nodes == 1 else f"{nodes} VMs of {gpu_type.id}"
        print(f"{spec.id} does not fit {on}: {report.reason}.", file=err)
        types = catalog.gpu_types(region_id=region.id if region else None)
        fitting = [t.id for t in types
                   if catalog.fit(spec, t, max_model_len=args.context or vllm.max_model_len,
                                  kv_cache_dtype=vllm.kv_cache_dtype,
                                  gpu_memory_utilization=vllm.gpu_memory_utilization).fits]
        where = f" in {region.id}" if region else ""
        if fitting:
            print(f"Plans it fits{where}: {', '.join(fitting)}", file=err)
        else:
            print(cluster_advice(spec, types, args.context or vllm.max_model_len, where), file=err)
        return EXIT_DOES_NOT_FIT
    if nodes > 1:
        out.write(cluster_plan(args.show, launch, nodes, region))
        out.flush()
        return EXIT_OK
    if args.show == "cloud-init":
        out.write(cloud_init.render(host_key_private=HOST_KEY_PLACEHOLDER_PRIVATE,
                                    host_key_public=HOST_KEY_PLACEHOLDER_PUBLIC))
    elif args.show == "compose":
        out.write(compose.render(config, launch.compose))
        out.write(env_file_note())
    else:
        out.write(summary(report, config, f"{region.id} ({region.label})" if region else None))
    out.flush()
    return EXIT_OK


def cluster_advice(spec: ModelSpec, types: Sequence[GpuType], context: int | None, where: str) -> str:
    """When no single plan holds the model: why, and the fewest VMs that do (`--nodes`)."""
    from ..catalog.cluster import cluster_options, why_not_one_vm

    options = cluster_options(spec, types, max_model_len=context)
    if not options:
        return f"No built-in plan{where} holds it, on one VM or on several. {why_not_one_vm(spec, types)}."
    best = options[0]
    return (f"No single VM{where} holds it: {why_not_one_vm(spec, types)}. Several VMs do; the fewest: "
            f"{best.describe()}. Try: --type {best.gpu_type.id} --nodes {best.nodes}")


def cluster_plan(show: str, launch: Launch, nodes: int, region: Region | None) -> str:
    """A session over `nodes` VMs: the summary with the cluster's rows, or every node's file."""
    from ..catalog.cluster import fit_nodes
    from ..cloud.vpcs import SUBNET_CIDR, node_address
    from ..deploy.cluster import ClusterLayout, Node, cluster_config, render_node

    gpu_type = launch.report.gpu_type
    layout = ClusterLayout(tuple(Node(i, node_address(SUBNET_CIDR, i), gpu_type.gpus) for i in range(nodes)),
                           SUBNET_CIDR)
    config = cluster_config(launch.config, layout)
    if show == "cloud-init":
        return "".join(
            f"# --- node {n.index} ({n.role}, {n.address}) ---\n"
            + cloud_init.render(host_key_private=HOST_KEY_PLACEHOLDER_PRIVATE,
                                host_key_public=HOST_KEY_PLACEHOLDER_PUBLIC, private_network=layout.private_network)
            for n in layout.nodes)
    if show == "compose":
        # One YAML document per node, as each VM gets its own /opt/llm/docker-compose.yml.
        return "---\n".join(render_node(config, n, layout, launch.compose) for n in layout.nodes) + env_file_note()
    cluster = fit_nodes(launch.report.model, gpu_type, nodes, max_model_len=launch.report.max_model_len,
                        gpu_memory_utilization=launch.report.gpu_memory_utilization,
                        kv_cache_dtype=launch.report.kv_cache_dtype)
    return summary(launch.report, config, f"{region.id} ({region.label})" if region else None,
                   cluster=cluster, nodes=layout)


def model_spec(args: argparse.Namespace, *, hf_base_url: str = HF_BASE_URL,
               hf_token: str | None = None) -> tuple[ModelSpec | None, str]:
    """(the model to plan, "") or (None, why not): a built-in model, else a Hugging Face id read from
    `--config-json` or from the Hub, as the wizard's custom model is."""
    try:
        return catalog.model(args.model), ""
    except UnknownCatalogIdError as exc:
        unknown = exc
    if check_model_id(args.model) is not None:
        built_in = ", ".join(m.short_name for m in catalog.models())
        return None, (f"{unknown.message}. Built-in models: {built_in}; or give any Hugging Face id "
                      "(owner/name).")
    try:
        if not args.config_json:
            return asyncio.run(hub_model_spec(args.model, token=hf_token, base_url=hf_base_url,
                                              params_b=args.params_b)), ""
        config = json.loads(Path(args.config_json).read_text(encoding="utf-8"))
        if not isinstance(config, dict):
            raise ValueError("it is not a JSON object")
    except HfError as exc:
        return None, f"{exc.message} (or plan it offline with --config-json FILE)"
    except ValueError as exc:
        return None, f"{exc} (--params-b N gives it)" if "parameter count" in str(exc) else str(exc)
    except OSError as exc:
        return None, f"cannot read {args.config_json}: {exc}"
    try:
        return custom_model(config, model_id=args.model.strip(), params_b=args.params_b), ""
    except ValueError as exc:
        return None, f"{exc} (--params-b N gives it)"


def run_plan_command(args: argparse.Namespace) -> int:
    """`plan` from the command line: the user's settings and model profiles (the demo's under --demo,
    where a custom model is read from the simulated Hub)."""
    import os

    from ..profiles import load_profiles
    from ..settings import load_settings
    from .home import Refused, app_paths, demo_cloud

    loaded = load_settings(args.config)
    profiles, problems = load_profiles(app_paths(args.demo).profiles_dir)
    for problem in [*loaded.problems, *problems]:
        print(f"warning: {problem}", file=sys.stderr)
    hf_token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN") or None
    if not args.demo:
        return run_plan(args, settings=loaded.settings, profiles=profiles, hf_token=hf_token)
    try:
        with demo_cloud(args) as (sim, _speed):
            return run_plan(args, settings=loaded.settings, profiles=profiles, hf_token=hf_token,
                            hf_base_url=sim.hf_base_url)
    except Refused as exc:
        print(exc, file=sys.stderr)
        return 2
