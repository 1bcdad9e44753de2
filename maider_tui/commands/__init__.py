"""Every command of `maider-tui` but the app itself: its options (argparse) and its handler.

`cli.py` builds the app's own options and imports this package only when a command is given, so
opening the app never loads what the commands need. Each module holds one command (or one family:
`bench` and `recommend`; `ls` and `down`); `home` is where they run, `argtypes` checks their values.
The domain packages (`bench/`, `deploy/`, `catalog/`) know nothing of the command line.
"""

from __future__ import annotations

import argparse
from contextlib import ExitStack
from typing import Any

HEADLESS = {"types", "watch", "ls", "down", "bench", "recommend"}
"""The commands that run the app's ops code on a context (the demo's under --demo)."""


def add_parsers(subparsers: Any) -> None:
    """Add every command to the `maider-tui` command line."""
    from .bench import add_bench_parsers
    from .gpu_types import add_types_parser
    from .plan import add_plan_parser
    from .sessions import add_session_parsers
    from .token import add_token_parser
    from .watch import add_watch_parser

    add_token_parser(subparsers)
    subparsers.add_parser("sim", add_help=False,
                          help="run the simulated Linode cloud alone and print its API address and token "
                               "(maider-tui sim --help for its options)")
    add_plan_parser(subparsers)
    add_watch_parser(subparsers)
    add_session_parsers(subparsers)
    add_bench_parsers(subparsers)
    add_types_parser(subparsers)


def run(args: argparse.Namespace) -> int:
    """Run the command `args` names; its exit code."""
    if args.command == "token":
        from .token import run_token

        return run_token(args)
    if args.command == "plan":
        from .plan import run_plan_command

        return run_plan_command(args)
    if args.command in HEADLESS:
        return run_headless(args)
    if args.command == "sim":  # after the app's options (`--demo sim`); `sim ...` never gets here
        from .sim import main as sim_main

        return sim_main([])
    raise ValueError(f"not a command: {args.command!r}")


def _needs_cloud(args: argparse.Namespace) -> bool:
    return args.command in {"types", "down", "watch"} or (
        args.command == "bench" and args.bench_command == "run" and not args.endpoint)


def run_headless(args: argparse.Namespace) -> int:
    """`types`, `watch`, `ls`, `down`, `bench` and `recommend`: the app's ops code without the full
    screen. With --demo, on the demo's own sessions, and on the simulated cloud when they need one."""
    import sys

    from ..context import build_context
    from .bench import run_bench, run_recommend
    from .gpu_types import run_types
    from .home import Refused, app_paths, demo_cloud, demo_context, home_problem, prepare
    from .sessions import run_down, run_ls
    from .watch import run_watch

    run = {"types": run_types, "watch": run_watch, "ls": run_ls, "down": run_down,
           "bench": run_bench, "recommend": run_recommend}[args.command]
    paths = app_paths(args.demo)
    if home_problem(paths):
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
            sim, speed = stack.enter_context(demo_cloud(args)) if cloud else (None, 1.0)
            if not prepare(paths):
                return 2
            if args.demo:
                context = demo_context(args, paths, sim, speed)
            else:
                context = build_context(paths, config_path=args.config)
            return run(args, context)
    except Refused as exc:
        print(exc, file=sys.stderr)
        return 2
