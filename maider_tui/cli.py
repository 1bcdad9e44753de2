"""The `maider-tui` command: opens the app, or runs one of the small non-interactive helpers."""

from __future__ import annotations

import argparse
import getpass
import sys
from contextlib import ExitStack, contextmanager
from typing import Iterator, Sequence

from . import __version__, argtypes

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
    parser.add_argument("--config", metavar="PATH", type=argtypes.config_file,
                        help="settings file (TOML); default: config.toml in the user config dir")
    parser.add_argument("--demo", action="store_true",
                        help="run against the built-in simulated cloud and the demo's own sessions: "
                             "no account, no GPU, no cost (every command takes it, before or after its name)")
    parser.add_argument("--sim-speed", type=argtypes.speed, default=20.0, metavar="X",
                        help="with --demo: how much faster than real time the simulated VMs boot "
                             f"({argtypes.MIN_SPEED:g} to {argtypes.MAX_SPEED:g}, default 20)")
    parser.add_argument("--sim-url", metavar="URL", type=argtypes.sim_url,
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
    if args.sim_url:
        args.demo = True  # another process's sim is still the demo: its own home, no keyring
    if args.command == "token":
        return run_token(args)
    if args.command in {"types", "watch", "ls", "down", "bench", "recommend"}:
        return run_headless(args)
    if args.command == "plan":
        return run_plan_command(args)
    return run_app(args)


def _parse(argv: list[str]) -> argparse.Namespace:
    """Parse the line; opening the app (no command, the common case) skips building the commands'
    parsers, which import what the home screen does not need. The app's own options may follow the
    command (`ls --demo`)."""
    argv = argtypes.hoist_global_flags(argv)
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


def _home_problem(paths) -> bool:
    """True after saying why the app's folders cannot be made here; only looks, writes nothing."""
    problem = paths.unwritable()
    if problem:
        print(f"Cannot keep the app's files in {problem}; set MAIDER_HOME to a folder you can write to.",
              file=sys.stderr)
    return problem is not None


def _prepare(paths) -> bool:
    """Make the data and log folders and start the log; False after saying why they cannot be made
    (a refused start writes nothing)."""
    from .log import setup_logging

    if _home_problem(paths):
        return False
    try:
        setup_logging(paths.log_file)
        return True
    except OSError as exc:
        print(f"Cannot keep the app's files in {exc.filename or paths.log_file}: {exc.strerror or exc}; "
              "set MAIDER_HOME to a folder you can write to.", file=sys.stderr)
        return False


class Refused(Exception):
    """The command cannot go on; the message is the one sentence the user reads (exit 2)."""


@contextmanager
def _demo_cloud(args: argparse.Namespace) -> Iterator[tuple[object, float]]:
    """(sim, speed): the sim of another process (`--sim-url`), else a SimCloud in this one.

    sim: a SimCloud or a RemoteSim (both give `token` and `provider`)."""
    if not args.sim_url:
        from .sim import SimCloud

        with SimCloud(speed=args.sim_speed) as sim:
            yield sim, args.sim_speed
        return
    import os

    from .sim.remote import RemoteSim, RemoteSimError

    token = os.environ.get("MAIDER_SIM_TOKEN", "")
    if not token:
        raise Refused("--sim-url needs the simulated cloud's token in MAIDER_SIM_TOKEN "
                      "(`maider-tui sim` prints it).")
    try:
        sim = RemoteSim(args.sim_url, token)
    except RemoteSimError as exc:
        raise Refused(f"No simulated cloud at {args.sim_url}: {exc}") from None
    try:
        try:
            speed = float(sim.stats()["speed"])
        except (RemoteSimError, LookupError, ValueError, TypeError) as exc:
            raise Refused(f"No simulated cloud at {args.sim_url}: {exc}; "
                          "start one with `maider-tui sim`.") from None
        yield sim, speed
    finally:
        sim.close()


def _hf_env() -> dict[str, str]:
    """A Hugging Face token from the environment: it reaches the sim's Hub too (any hf_... opens its
    gated repos), as it would reach huggingface.co."""
    import os

    return {k: v for k, v in os.environ.items() if k in ("MAIDER_HF_TOKEN", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}


def _demo_context(args: argparse.Namespace, paths, sim=None, speed: float = 1.0):
    """The demo's context: its own home, no keyring, and the simulated cloud (and its Hugging Face
    Hub) when `sim` is given: the same code as the real app with other base URLs."""
    from .context import build_context

    environ = {**_hf_env(), "MAIDER_LINODE_TOKEN": sim.token} if sim else {}
    context = build_context(paths, config_path=args.config, demo=True, environ=environ, use_keyring=False)
    context.sim_url = args.sim_url
    if sim is not None:
        context.provider = sim.provider(store=context.store)
        context.hf_base_url = sim.hf_base_url
        context.cloud_speed = speed
    return context


def run_plan_command(args: argparse.Namespace) -> int:
    """`plan`: the launch the wizard would make, dry. Under --demo (or --sim-url) a custom model is
    read from the simulated Hub; the model profiles are the home's (the demo's under --demo)."""
    import os

    from .deploy.plan import run_plan
    from .profiles import load_profiles
    from .settings import load_settings

    loaded = load_settings(args.config)
    profiles, problems = load_profiles(_paths(args.demo).profiles_dir)
    for problem in [*loaded.problems, *problems]:
        print(f"warning: {problem}", file=sys.stderr)
    hf_token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN") or None
    if not args.demo:
        return run_plan(args, settings=loaded.settings, profiles=profiles, hf_token=hf_token)
    try:
        with _demo_cloud(args) as (sim, _speed):
            return run_plan(args, settings=loaded.settings, profiles=profiles, hf_token=hf_token,
                            hf_base_url=sim.hf_base_url)
    except Refused as exc:
        print(exc, file=sys.stderr)
        return 2


def run_app(args: argparse.Namespace) -> int:
    from .app import MaiderApp
    from .context import build_context

    paths = _paths(args.demo)
    if _home_problem(paths):
        return 2  # before the simulated cloud starts
    if not args.demo:
        if not _prepare(paths):
            return 2
        MaiderApp(build_context(paths, config_path=args.config)).run()
        return 0
    try:
        with _demo_cloud(args) as (sim, speed):
            if not _prepare(paths):
                return 2
            # The demo is the real app with another base URL: the same provider, SSH and vLLM code.
            MaiderApp(_demo_context(args, paths, sim, speed)).run()
    except Refused as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


def _needs_cloud(args: argparse.Namespace) -> bool:
    return args.command in {"types", "down", "watch"} or (
        args.command == "bench" and args.bench_command == "run" and not args.endpoint)


def run_headless(args: argparse.Namespace) -> int:
    """`types`, `watch`, `ls`, `down`, `bench` and `recommend`: the app's ops code without the full
    screen. With --demo, on the demo's own sessions, and on the simulated cloud when they need one."""
    from . import headless
    from .bench.cli import run_bench, run_recommend
    from .context import build_context

    run = {"types": run_types, "watch": headless.run_watch, "ls": headless.run_ls, "down": headless.run_down,
           "bench": run_bench, "recommend": run_recommend}[args.command]
    paths = _paths(args.demo)
    if _home_problem(paths):
        return 2  # before the simulated cloud starts
    cloud = args.demo and _needs_cloud(args)
    if cloud and not args.sim_url and args.command != "types":
        # A SimCloud started here would be empty: the demo's VMs live and die inside the demo app.
        command = "bench run" if args.command == "bench" else args.command
        print(f"`{command} --demo` needs the simulated cloud the demo's VMs run in, and it lives inside "
              "the demo app: do this in the app, or run the cloud apart with `maider-tui sim` and pass "
              "--sim-url.", file=sys.stderr)
        return 2
    try:
        with ExitStack() as stack:
            sim, speed = stack.enter_context(_demo_cloud(args)) if cloud else (None, 1.0)
            if not _prepare(paths):
                return 2
            if args.demo:
                context = _demo_context(args, paths, sim, speed)
            else:
                context = build_context(paths, config_path=args.config)
            return run(args, context)
    except Refused as exc:
        print(exc, file=sys.stderr)
        return 2


def run_token(args: argparse.Namespace) -> int:
    from .context import build_context
    from .secrets import SecretError, token_shape_problem

    if args.demo:
        print("The demo keeps no tokens (its simulated cloud makes its own); drop --demo and --sim-url "
              "to manage your real ones.", file=sys.stderr)
        return 2
    paths = _paths(False)
    if not _prepare(paths):
        return 2
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


def run_types(args: argparse.Namespace, context=None, *, provider=None) -> int:
    """Print the GPU plans, from the API or the cache, saying which. `provider` is for tests."""
    import asyncio

    from rich.console import Console

    from .secrets import SecretError

    if context is None:  # tests: the real home, and the provider they give
        from .context import build_context

        context = build_context(_paths(False), config_path=args.config)
    if provider is None:
        try:
            provider = context.get_provider()  # the demo's simulated cloud, else Linode with the user's token
        except SecretError as exc:
            print(str(exc), file=sys.stderr)
            return 1
        if provider is None:
            print("No Linode token: add one with `maider-tui token set linode` or set LINODE_TOKEN.",
                  file=sys.stderr)
            return 1
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
