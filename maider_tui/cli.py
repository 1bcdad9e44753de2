"""The `maider-tui` command: opens the app, or runs one of the small non-interactive helpers."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Sequence

from . import __version__

SECRET_NAMES = {"linode": "linode_token", "hf": "hf_token"}


def build_parser(*, commands: bool = True) -> argparse.ArgumentParser:
    """The whole command line; with `commands=False` only the options of the app itself (no command:
    the modules behind the commands, the catalog and YAML among them, are not imported)."""
    parser = argparse.ArgumentParser(
        prog="maider-tui",
        description=(
            "Rent a cloud GPU, run an open model on it with vLLM, code against it with aider, "
            "and never pay for an idle GPU. With no command, opens the full-screen app."
        ),
    )
    parser.add_argument("--version", action="version", version=f"maider-tui {__version__}")
    parser.add_argument("--config", metavar="PATH", help="settings file (TOML); default: config.toml in the user config dir")
    parser.add_argument("--demo", action="store_true",
                        help="run against the built-in simulated cloud: no account, no GPU, no cost")
    parser.add_argument("--sim-speed", type=float, default=20.0, metavar="X",
                        help="with --demo: how much faster than real time the simulated VMs boot (default 20)")
    parser.add_argument("--sim-url", metavar="URL",
                        help="run the demo against a simulated cloud already running in another process "
                             "(`maider-tui sim`) at this API address, with its token in MAIDER_SIM_TOKEN")
    if not commands:
        parser.set_defaults(command=None)
        return parser
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    token = sub.add_parser("token", help="store, check or remove the Linode and Hugging Face tokens")
    token_sub = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    token_sub.add_parser("status", help="say where each token comes from (never prints a token)")
    for verb, text in (("set", "read a token from the terminal and store it in the OS keyring"),
                       ("delete", "remove a token from the OS keyring")):
        p = token_sub.add_parser(verb, help=text)
        p.add_argument("which", choices=sorted(SECRET_NAMES), help="which token")

    sub.add_parser("sim", add_help=False,
                   help="run the simulated Linode cloud alone and print its API address and token "
                        "(maider-tui sim --help for its options)")
    from .deploy.plan import add_plan_parser
    from .bench.cli import add_bench_parsers
    from .headless import add_headless_parsers

    add_plan_parser(sub)
    add_headless_parsers(sub)
    add_bench_parsers(sub)
    types = sub.add_parser("types", help="list the GPU plans with GPUs, VRAM, $/h and regions")
    types.add_argument("--region", metavar="R", help="only plans offered in this region")
    types.add_argument("--refresh", action="store_true", help="ask the Linode API even if the cache is fresh")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sim"]:
        # The simulator owns its options; hand it the rest of the line as it is.
        from .sim.__main__ import main as sim_main

        return sim_main(argv[1:])
    args = _parse(argv)
    if args.command == "token":
        return run_token(args)
    if args.command == "types":
        return run_types(args)
    if args.command in {"watch", "ls", "down", "bench", "recommend"}:
        return run_headless(args)
    if args.command == "plan":
        from .deploy.plan import run_plan
        from .settings import load_settings

        from .paths import AppPaths
        from .profiles import load_profiles

        loaded = load_settings(args.config)
        profiles, problems = load_profiles(AppPaths.default().profiles_dir)
        for problem in [*loaded.problems, *problems]:
            print(f"warning: {problem}", file=sys.stderr)
        return run_plan(args, settings=loaded.settings, profiles=profiles,
                        hf_token=os.environ.get("HF_TOKEN") or None)
    return run_app(args)


def _parse(argv: list[str]) -> argparse.Namespace:
    """Parse the line; opening the app (no command, the common case) skips building the commands'
    parsers, which import what the home screen does not need."""
    if not {"-h", "--help"} & set(argv):
        args, rest = build_parser(commands=False).parse_known_args(argv)
        if not rest:
            return args
    return build_parser().parse_args(argv)


def _paths(demo: bool):
    from .paths import AppPaths

    paths = AppPaths.default()
    # The demo keeps its own sessions and database, so it never touches a real account's.
    return AppPaths.under(paths.data_dir / "demo") if demo else paths


def run_app(args: argparse.Namespace) -> int:
    from .app import MaiderApp
    from .context import build_context
    from .log import setup_logging

    if args.sim_url:
        args.demo = True  # another process's sim is still the demo: its own home, no keyring
    paths = _paths(args.demo)
    setup_logging(paths.log_file)
    if not args.demo:
        MaiderApp(build_context(paths, config_path=args.config)).run()
        return 0
    if not 0 < args.sim_speed < float("inf"):  # also refuses nan
        print("--sim-speed must be a positive number, like 20.", file=sys.stderr)
        return 2
    if args.sim_url:
        return _run_against_remote_sim(args, paths)
    from .sim import SimCloud

    with SimCloud(speed=args.sim_speed) as sim:
        _run_demo(args, paths, sim, args.sim_speed)
    return 0


def _run_demo(args: argparse.Namespace, paths, sim, speed: float) -> None:
    """The demo is the real app with another base URL: the same provider, SSH and vLLM code.

    sim: a SimCloud in this process or a RemoteSim of one in another (both give `token` and `provider`).
    """
    import os

    from .app import MaiderApp
    from .context import build_context

    # A Hugging Face token from the environment reaches the sim's Hub too (any hf_... opens its gated repos).
    hf_env = {k: v for k, v in os.environ.items()
              if k in ("MAIDER_HF_TOKEN", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    context = build_context(paths, config_path=args.config, demo=True,
                            environ={**hf_env, "MAIDER_LINODE_TOKEN": sim.token}, use_keyring=False)
    context.provider = sim.provider(store=context.store)
    context.hf_base_url = sim.hf_base_url
    context.cloud_speed = speed
    context.sim_url = getattr(args, "sim_url", None)
    MaiderApp(context).run()


def _run_against_remote_sim(args: argparse.Namespace, paths) -> int:
    """The demo against `maider-tui sim` in another process: the cloud outlives this app."""
    import os

    from .sim.remote import RemoteSim, RemoteSimError

    token = os.environ.get("MAIDER_SIM_TOKEN", "")
    if not token:
        print("--sim-url needs the simulated cloud's token in MAIDER_SIM_TOKEN "
              "(`maider-tui sim` prints it).", file=sys.stderr)
        return 2
    try:
        sim = RemoteSim(args.sim_url, token)
        speed = float(sim.stats()["speed"])
    except (RemoteSimError, LookupError) as exc:
        print(f"No simulated cloud at {args.sim_url}: {exc}", file=sys.stderr)
        return 2
    try:
        _run_demo(args, paths, sim, speed)
    finally:
        sim.close()
    return 0


def run_headless(args: argparse.Namespace) -> int:
    """`watch`, `ls` and `down`: the app's ops code without the full screen."""
    from .context import build_context
    from .log import setup_logging

    if getattr(args, "sim_url", None):
        return _run_headless_against_remote_sim(args)
    paths = _paths(False)
    setup_logging(paths.log_file)
    context = build_context(paths, config_path=args.config)
    return _run_headless(args, context)


def _run_headless(args: argparse.Namespace, context) -> int:
    from . import headless
    from .bench.cli import run_bench, run_recommend

    run = {"watch": headless.run_watch, "ls": headless.run_ls, "down": headless.run_down,
           "bench": run_bench, "recommend": run_recommend}[args.command]
    return run(args, context)


def _run_headless_against_remote_sim(args: argparse.Namespace) -> int:
    """A command against `maider-tui sim` in another process: the demo's home, the sim's token and
    speed (the app's "Keep watched" starts `maider-tui --sim-url URL watch`)."""
    import os

    from .context import build_context
    from .log import setup_logging
    from .sim.remote import RemoteSim, RemoteSimError

    paths = _paths(True)
    setup_logging(paths.log_file)
    token = os.environ.get("MAIDER_SIM_TOKEN", "")
    if not token:
        print("--sim-url needs the simulated cloud's token in MAIDER_SIM_TOKEN "
              "(`maider-tui sim` prints it).", file=sys.stderr)
        return 2
    try:
        sim = RemoteSim(args.sim_url, token)
        speed = float(sim.stats()["speed"])
    except (RemoteSimError, LookupError) as exc:
        print(f"No simulated cloud at {args.sim_url}: {exc}", file=sys.stderr)
        return 2
    try:
        context = build_context(paths, config_path=args.config, demo=True,
                                environ={"MAIDER_LINODE_TOKEN": sim.token}, use_keyring=False)
        context.provider = sim.provider(store=context.store)
        context.cloud_speed = speed
        context.sim_url = args.sim_url
        return _run_headless(args, context)
    finally:
        sim.close()


def run_token(args: argparse.Namespace) -> int:
    from .context import build_context
    from .log import setup_logging
    from .secrets import SecretError, token_shape_problem

    paths = _paths(False)
    setup_logging(paths.log_file)
    context = build_context(paths, config_path=args.config)
    secrets = context.secrets
    if args.token_command == "status":
        status = secrets.keyring_status()
        print(f"keyring: {status.message}")
        for label, name in SECRET_NAMES.items():
            try:
                found = secrets.get(name)
            except SecretError as exc:
                print(f"{label}: error: {exc}")
                continue
            print(f"{label}: {'from ' + found.source if found else 'not set'}")
        return 0
    name = SECRET_NAMES[args.which]
    try:
        if args.token_command == "delete":
            secrets.delete(name)
            print(f"Removed the {args.which} token from the keyring.")
            return 0
        value = getpass.getpass(f"{args.which} token (input hidden): ").strip()
        problem = token_shape_problem(value)
        if problem:
            print(f"{problem}; nothing stored.", file=sys.stderr)
            return 1
        secrets.set(name, value)
        print(f"Stored the {args.which} token in the keyring.")
        return 0
    except SecretError as exc:
        print(str(exc), file=sys.stderr)
        return 1


def run_types(args: argparse.Namespace, provider=None) -> int:
    """Print the GPU plans, from the API or the cache, saying which. `provider` is for tests."""
    import asyncio

    from rich.console import Console

    from .context import build_context
    from .log import setup_logging
    from .secrets import LINODE_TOKEN, SecretError

    paths = _paths(False)
    setup_logging(paths.log_file)
    context = build_context(paths, config_path=args.config)
    if provider is None:
        from .cloud.linode import LinodeProvider

        try:
            token = context.secrets.get(LINODE_TOKEN)
        except SecretError as exc:
            print(str(exc), file=sys.stderr)
            return 1
        if token is None:
            print("No Linode token: add one with `maider-tui token set linode` or set LINODE_TOKEN.",
                  file=sys.stderr)
            return 1
        provider = LinodeProvider(token.value.get_secret_value(), store=context.store, clock=context.clock)
    result = asyncio.run(provider.gpu_types(refresh=args.refresh))
    types = result.items
    if args.region:
        types = [t for t in types if args.region.lower() in (r.lower() for r in t.regions)]
    console = Console(highlight=False)
    console.print(_types_source_line(result, context.clock.now()))
    if not types:
        known = sorted({r for t in result.items for r in t.regions})
        console.print(f"No GPU plan is offered in {args.region}; GPU regions: {', '.join(known)}")
        return 1
    console.print(_types_table(types))
    return 0


def _types_source_line(result, now: float) -> str:
    if result.source == "offline":
        return f"offline: built-in prices ({result.message})"
    if result.source == "cache":
        minutes = int((result.age_s(now) or 0) // 60)
        return f"from the cache ({minutes} min old; --refresh asks the Linode API)"
    return "from the Linode API"


def _types_table(types):
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for name, justify in (("Type", "left"), ("GPUs", "right"), ("GPU", "left"), ("VRAM/GPU", "right"),
                          ("VRAM", "right"), ("$/h", "right"), ("Regions", "left")):
        # Ids and numbers never wrap; the region list takes what width is left.
        table.add_column(name, justify=justify, no_wrap=name != "Regions", overflow="fold")
    for t in types:
        per_gpu = f"{t.vram_per_gpu_gb:.0f} GB" if t.vram_per_gpu_gb else "?"
        total = f"{t.total_vram_gb:.0f} GB" if t.total_vram_gb else "?"
        gpu = t.family.short_name if t.family else t.label
        regions = " ".join(t.regions) or "none now"
        table.add_row(t.id, str(t.gpus), gpu, per_gpu, total, f"{t.hourly_usd:.2f}", regions)
    return table
