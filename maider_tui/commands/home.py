"""Where a command (and the app) runs: the app's folders, the demo's own under --demo, and for the
demo the simulated cloud, in this process or another one (`--sim-url`)."""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    from ..context import AppContext
    from ..paths import AppPaths


class Refused(Exception):
    """The command cannot go on; the message is the one sentence the user reads (exit 2)."""


def app_paths(demo: bool) -> AppPaths:
    from ..paths import AppPaths

    paths = AppPaths.default()
    # The demo keeps its own sessions and database, so it never touches a real account's.
    return AppPaths.under(paths.data_dir / "demo") if demo else paths


def home_problem(paths: AppPaths) -> bool:
    """True after saying why the app's folders cannot be made here; only looks, writes nothing."""
    problem = paths.unwritable()
    if problem:
        print(f"Cannot keep the app's files in {problem}; set MAIDER_HOME to a folder you can write to.",
              file=sys.stderr)
    return problem is not None


def prepare(paths: AppPaths) -> bool:
    """Make the data and log folders and start the log; False after saying why they cannot be made
    (a refused start writes nothing)."""
    from ..log import setup_logging

    if home_problem(paths):
        return False
    try:
        setup_logging(paths.log_file)
        return True
    except OSError as exc:
        print(f"Cannot keep the app's files in {exc.filename or paths.log_file}: {exc.strerror or exc}; "
              "set MAIDER_HOME to a folder you can write to.", file=sys.stderr)
        return False


@contextmanager
def demo_cloud(args: argparse.Namespace) -> Iterator[tuple[Any, float]]:
    """(sim, speed): the sim of another process (`--sim-url`), else a SimCloud in this one.

    sim: a SimCloud or a RemoteSim (both give `token` and `provider`)."""
    if not args.sim_url:
        from ..sim import SimCloud

        with SimCloud(speed=args.sim_speed) as sim:
            yield sim, args.sim_speed
        return
    import os

    from ..sim.remote import RemoteSim, RemoteSimError

    token = os.environ.get("MAIDER_SIM_TOKEN", "")
    if not token:
        raise Refused("--sim-url needs the simulated cloud's token in MAIDER_SIM_TOKEN "
                      "(`maider-tui sim` prints it).")
    try:
        remote = RemoteSim(args.sim_url, token)
    except RemoteSimError as exc:
        raise Refused(f"No simulated cloud at {args.sim_url}: {exc}") from None
    try:
        try:
            speed = float(remote.stats()["speed"])
        except (RemoteSimError, LookupError, ValueError, TypeError) as exc:
            raise Refused(f"No simulated cloud at {args.sim_url}: {exc}; "
                          "start one with `maider-tui sim`.") from None
        yield remote, speed
    finally:
        remote.close()


def hf_env() -> dict[str, str]:
    """A Hugging Face token from the environment: it reaches the sim's Hub too (any hf_... opens its
    gated repos), as it would reach huggingface.co."""
    import os

    return {k: v for k, v in os.environ.items() if k in ("MAIDER_HF_TOKEN", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}


def demo_context(args: argparse.Namespace, paths: AppPaths, sim: Any = None, speed: float = 1.0) -> AppContext:
    """The demo's context: its own home, no keyring, and the simulated cloud (and its Hugging Face
    Hub) when `sim` is given: the same code as the real app with other base URLs."""
    from ..context import build_context

    environ = {**hf_env(), "MAIDER_LINODE_TOKEN": sim.token} if sim else {}
    context = build_context(paths, config_path=args.config, demo=True, environ=environ, use_keyring=False)
    context.sim_url = args.sim_url
    if sim is not None:
        context.provider = sim.provider(store=context.store)
        context.hf_base_url = sim.hf_base_url
        context.cloud_speed = speed
    return context
