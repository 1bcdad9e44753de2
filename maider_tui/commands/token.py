"""`maider-tui token status|set|delete`: the Linode and Hugging Face tokens in the OS keyring."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from .home import app_paths, prepare

SECRET_NAMES = {"linode": "linode_token", "hf": "hf_token"}


def add_token_parser(subparsers: Any) -> None:
    """Add `token` (with its actions) to the `maider-tui` command line."""
    token = subparsers.add_parser("token", help="store, check or remove the Linode and Hugging Face tokens")
    token_sub = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    token_sub.add_parser("status", help="say where each token comes from (never prints a token)")
    for verb, text in (("set", "read a token from the terminal and store it in the OS keyring"),
                       ("delete", "remove a token from the OS keyring")):
        p = token_sub.add_parser(verb, help=text)
        p.add_argument("which", choices=sorted(SECRET_NAMES), help="which token")


def run_token(args: argparse.Namespace) -> int:
    from ..context import build_context
    from ..secrets import SecretError, token_shape_problem

    if args.demo:
        print("The demo keeps no tokens (its simulated cloud makes its own); drop --demo and --sim-url "
              "to manage your real ones.", file=sys.stderr)
        return 2
    paths = app_paths(False)
    if not prepare(paths):
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
