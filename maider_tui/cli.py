"""The `maider-tui` command: opens the app, or runs one of the commands (`maider_tui.commands`)."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from . import __version__
from .commands import argtypes


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
    from .commands import add_parsers

    add_parsers(parser.add_subparsers(dest="command", metavar="COMMAND"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sim"]:
        # The simulator owns its options; hand it the rest of the line as it is.
        from .commands.sim import main as sim_main

        return sim_main(argv[1:])
    args = _parse(argv)
    if args.sim_url:
        args.demo = True  # another process's sim is still the demo: its own home, no keyring
    if args.command is None:
        return run_app(args)
    from .commands import run

    return run(args)


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


def run_app(args: argparse.Namespace) -> int:
    """Open the full-screen app: on the user's account, or under --demo on the simulated cloud."""
    from .app import MaiderApp
    from .commands.home import Refused, app_paths, demo_cloud, demo_context, home_problem, prepare
    from .context import build_context

    paths = app_paths(args.demo)
    if home_problem(paths):
        return 2  # before the simulated cloud starts
    if not args.demo:
        if not prepare(paths):
            return 2
        MaiderApp(build_context(paths, config_path=args.config)).run()
        return 0
    try:
        with demo_cloud(args) as (sim, speed):
            if not prepare(paths):
                return 2
            # The demo is the real app with another base URL: the same provider, SSH and vLLM code.
            MaiderApp(demo_context(args, paths, sim, speed)).run()
    except Refused as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0
