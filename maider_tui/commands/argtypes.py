"""Checks of what is typed on the command line, as argparse `type=` functions: a bad value stops the
command before it does anything, with one sentence and exit code 2 (argparse's own way).

`hoist_global_flags` lets the app's own options (`--demo`, `--sim-url` ...) follow the command too.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from urllib.parse import urlsplit

MIN_SPEED, MAX_SPEED = 0.01, 10_000.0
"""The simulated cloud's speed: slower than a hundredth of real time nothing moves, and faster than
10000 times every wait is shorter than a poll."""


def speed(text: str) -> float:
    """A simulated cloud's speed: a finite number from MIN_SPEED to MAX_SPEED."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not MIN_SPEED <= value <= MAX_SPEED:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text!r} is not a speed: give a number from {MIN_SPEED:g} to "
                                         f"{MAX_SPEED:g} times real time, like 20")
    return value


def one_of(names: tuple[str, ...], what: str) -> Callable[[str], str]:
    """A check for one of `names` (spelt with hyphens), which also takes underscores and capitals:
    `context_heavy` and `Context-Heavy` both give `context-heavy`."""

    def check(text: str) -> str:
        value = text.strip().lower().replace("_", "-")
        if value not in names:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {what}: use one of {', '.join(names)}")
        return value

    check.__name__ = what  # argparse names the type in some of its messages
    return check


def port(text: str) -> int:
    """A TCP port to listen on: 1 to 65535, or 0 for any free one."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: give a number from 1 to 65535 "
                                         "(0 picks a free one)")
    return value


def count(text: str) -> int:
    """A whole number of at least 1 (GPUs)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 1024:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count: give a whole number from 1 to 1024")
    return value


def sim_url(text: str) -> str:
    """The API address of a simulated cloud, as `maider-tui sim` prints it: http(s)://HOST:PORT/v4."""
    example = "give the address `maider-tui sim` prints, like http://127.0.0.1:8080/v4"
    text = text.strip()
    try:
        parts = urlsplit(text)
    except ValueError:  # an unclosed [ of an IPv6 host
        parts = None
    if (parts is None or parts.scheme not in ("http", "https") or not parts.hostname
            or parts.username is not None or any(c.isspace() for c in text)):
        raise argparse.ArgumentTypeError(f"{text!r} is not an http:// or https:// address with a host; "
                                         f"{example}")
    try:
        number = parts.port
    except ValueError:  # not a number, or past 65535
        number = 0
    if number == 0 and parts.netloc.rpartition("]")[2].count(":"):
        raise argparse.ArgumentTypeError(f"{text!r} has no valid port (1 to 65535); {example}")
    if not parts.path.rstrip("/").endswith("/v4") or parts.query or parts.fragment:
        raise argparse.ArgumentTypeError(f"{text!r} is not a simulated Linode API address (it ends in /v4); "
                                         f"{example}")
    return text


def config_file(text: str) -> str:
    """A settings file that can be read: it exists, is a regular file under 1 MiB, and is valid TOML."""
    from pathlib import Path

    from ..userfiles import toml_file_problem

    problem = toml_file_problem(Path(text).expanduser())
    if problem:
        raise argparse.ArgumentTypeError(f"{text} {problem}; give the path of a TOML settings file")
    return text


def context_tokens(text: str) -> int:
    """A context length: 32768, 32k or 32K (K = 1024 tokens, as the app shows contexts)."""
    value = text.strip()
    try:
        tokens = int(value[:-1]) * 1024 if value[-1:] in ("k", "K") else int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a context length like 32768 or 32k") from None
    if tokens < 256:
        raise argparse.ArgumentTypeError(f"{tokens} tokens is too short a context; vLLM needs at least 256")
    return tokens


def node_count(text: str) -> int:
    """How many VMs a session spans: 1 to catalog.cluster.MAX_NODES."""
    from maider_tui.catalog.cluster import MAX_NODES

    try:
        nodes = int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of VMs") from None
    if not 1 <= nodes <= MAX_NODES:
        raise argparse.ArgumentTypeError(f"a session spans 1 to {MAX_NODES} VMs, not {nodes}")
    return nodes


# The app's own options and how many values each takes; they may also follow the command.
GLOBAL_FLAGS = {"--demo": 0, "--sim-url": 1, "--sim-speed": 1, "--config": 1}


def hoist_global_flags(argv: list[str]) -> list[str]:
    """`argv` with the app's own options moved before the command (`ls --demo` reads as `--demo ls`);
    nothing after `--` moves."""
    front: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            rest.extend(argv[index:])
            break
        name, equals, _ = arg.partition("=")
        if name in GLOBAL_FLAGS:
            taken = 1 + (0 if equals else GLOBAL_FLAGS[name])
            front.extend(argv[index:index + taken])
            index += taken
            continue
        rest.append(arg)
        index += 1
    return front + rest
