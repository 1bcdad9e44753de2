"""`maider-tui plan`: a dry run that prints what a launch would deploy, and creates nothing.

No network, no token, no file written: GPU types and prices come from the built-in catalog, the host
key and the Hugging Face token are shown as placeholders. The lead wires `add_plan_parser` and
`run_plan` into cli.py; `run_plan` takes the user's `Settings` when given, else the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import sys
from pathlib import Path
from typing import Any, TextIO

from maider_tui import catalog
from maider_tui.catalog import UnknownCatalogIdError, context_label
from maider_tui.catalog.custom import custom_model
from maider_tui.cloud.hf import HF_BASE_URL, HfError, check_model_id
from maider_tui.cloud.hf import model_spec as hub_model_spec
from maider_tui.deploy import cloud_init, compose
from maider_tui.deploy.launch import attention_backend, resolve
from maider_tui.models import FitReport, ModelSpec, VllmConfig
from maider_tui.profiles import Profile, builtin_profile

HF_TOKEN_PLACEHOLDER = "<your Hugging Face token>"
# Clearly not a key: at launch the app makes a fresh ed25519 host key for each VM and never reuses it.
HOST_KEY_PLACEHOLDER_PRIVATE = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "<placeholder: a fresh ed25519 host key is made for each VM at launch>\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)
HOST_KEY_PLACEHOLDER_PUBLIC = "ssh-ed25519 AAAAPLACEHOLDERnotARealKeyMadeFreshPerVM placeholder"
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
    parser.add_argument("--context", type=_context, metavar="N",
                        help="context length in tokens (32768 or 32k); default: the longest that fits")
    show = parser.add_mutually_exclusive_group()
    show.add_argument("--summary", dest="show", action="store_const", const="summary",
                      help="the fit plan: GPUs, VRAM, price, layout, context, dtype (the default)")
    show.add_argument("--cloud-init", dest="show", action="store_const", const="cloud-init",
                      help="the #cloud-config user-data")
    show.add_argument("--compose", dest="show", action="store_const", const="compose",
                      help="/opt/llm/docker-compose.yml (and the .env beside it, token as a placeholder)")
    parser.set_defaults(show="summary", func=run_plan)
    return parser


def run_plan(args: argparse.Namespace, *, settings: Any = None, out: TextIO | None = None,
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
        from maider_tui.settings import Settings

        settings = Settings.defaults()  # a dry run reads no file
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
    launch = resolve(spec, gpu_type, settings, profile=profile, context=args.context)
    report, config = launch.report, launch.config
    fit_options = {"max_model_len": args.context or vllm.max_model_len, "kv_cache_dtype": vllm.kv_cache_dtype,
                   "gpu_memory_utilization": vllm.gpu_memory_utilization}
    if not report.fits:
        print(f"{spec.id} does not fit {gpu_type.id}: {report.reason}.", file=err)
        types = catalog.gpu_types(region_id=region.id if region else None)
        fitting = [t.id for t in types if catalog.fit(spec, t, **fit_options).fits]
        where = f" in {region.id}" if region else ""
        found = f"Plans it fits{where}: {', '.join(fitting)}" if fitting else f"No built-in plan{where} fits it."
        print(found, file=err)
        return EXIT_DOES_NOT_FIT
    if args.show == "cloud-init":
        out.write(cloud_init.render(host_key_private=HOST_KEY_PLACEHOLDER_PRIVATE,
                                    host_key_public=HOST_KEY_PLACEHOLDER_PUBLIC))
    elif args.show == "compose":
        out.write(compose.render(config, launch.compose))
        out.write(_env_file_note())
    else:
        out.write(summary(report, config, f"{region.id} ({region.label})" if region else None))
    out.flush()
    return EXIT_OK


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


def summary(report: FitReport, config: VllmConfig, region: str | None = None) -> str:
    """The fit plan as aligned lines of text; `region` is the chosen one, as the user should read it."""
    t, m = report.gpu_type, report.model
    family = t.family
    per_gpu = f"{t.vram_per_gpu_gb:.0f} GB" if t.vram_per_gpu_gb else "? GB"
    total = f"{t.total_vram_gb:.0f} GB" if t.total_vram_gb else "? GB"
    gpu_name = family.short_name if family else t.label
    where = region or ("any of " + ", ".join(t.regions) if t.regions else "no region right now")
    layout = f"TP {report.tensor_parallel_size}, PP {report.pipeline_parallel_size}"
    if report.gpus_used < t.gpus:
        layout += f" ({report.gpus_used} of {t.gpus} GPUs used)"
    context = (f"{context_label(report.max_model_len)} ({report.max_model_len} tokens; "
               f"the most that fits: {context_label(report.max_context)})")
    memory = (f"weights {report.weights_per_gpu_gb:.1f} GB + overhead {report.reserve_gb:.1f} GB + "
              f"KV cache {report.kv_cache_gb:.1f} GB, of {report.usable_gb:.1f} GB usable "
              f"({report.gpu_memory_utilization:.2f} x {per_gpu})")
    rows = [
        ("GPU type", f"{t.id}: {t.gpus}x {gpu_name}, {per_gpu} each ({total})"),
        ("Region", where),
        ("Price", f"${t.hourly_usd:.2f}/h, ${t.hourly_usd * 24:.2f}/day (built-in prices)"),
        ("Model", f"{m.id} ({m.short_name})"),
        ("Layout", layout),
        ("Context", context),
        ("dtype", f"{config.dtype}, KV cache {config.kv_cache_dtype}"),
        ("Attention", attention_backend(t, m)),
        ("Memory/GPU", memory),
        ("Fit", report.reason),
        ("vLLM", "vllm serve " + shlex.join(compose.vllm_command(config))),
    ]
    rows += [("Note", note) for note in report.notes]
    width = max(len(label) for label, _ in rows)
    lines = ["Plan (dry run: nothing is created)"] + [f"  {label:<{width}}  {value}" for label, value in rows]
    return "\n".join(lines) + "\n"


def _env_file_note() -> str:
    return (
        "# /opt/llm/.env beside this file: mode 0600, uploaded over SFTP, never in this file.\n"
        f"#   HF_TOKEN={HF_TOKEN_PLACEHOLDER}\n"
        f"#   HUGGING_FACE_HUB_TOKEN={HF_TOKEN_PLACEHOLDER}\n"
    )


def _context(text: str) -> int:
    """argparse type: 32768, 32k or 32K (K = 1024 tokens, as the app shows contexts)."""
    value = text.strip()
    try:
        tokens = int(value[:-1]) * 1024 if value[-1:] in ("k", "K") else int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a context length like 32768 or 32k") from None
    if tokens < 256:
        raise argparse.ArgumentTypeError(f"{tokens} tokens is too short a context; vLLM needs at least 256")
    return tokens
