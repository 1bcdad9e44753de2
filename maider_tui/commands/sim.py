"""`maider-tui sim` (and `python -m maider_tui.sim`): run the simulated cloud alone, for curl,
linode-cli or a second app (`maider-tui --sim-url`). It owns its options: `cli.py` hands it the rest
of the line as it is."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Sequence

from ..sim.cloud import SimCloud
from . import argtypes


def main(argv: Sequence[str] | None = None, *, stop: threading.Event | None = None) -> int:
    """Start a SimCloud, print how to reach it, and wait for Ctrl-C (or `stop`, for tests)."""
    parser = argparse.ArgumentParser(prog="maider-tui sim", description="Run the simulated Linode cloud.")
    parser.add_argument("--speed", type=argtypes.speed, default=1.0,
                        help="sim seconds per real second (1: realistic boot times; 60: a minute a second; "
                             f"{argtypes.MIN_SPEED:g} to {argtypes.MAX_SPEED:g})")
    parser.add_argument("--port", type=argtypes.port, default=0,
                        help="port of the fake Linode API (default: a free one)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the simulated hardware's behaviour")
    parser.add_argument("--big-plan", type=argtypes.count, default=None, metavar="GPUS",
                        help="also offer a sim-only plan with this many RTX 4000 Ada GPUs "
                             "(Linode sells at most 4), e.g. 8 for the dashboard benchmark")
    args = parser.parse_args(argv)
    sim = SimCloud(speed=args.speed, seed=args.seed, api_port=args.port, big_plan_gpus=args.big_plan)
    if os.environ.get("MAIDER_SIM_TOKEN"):
        # A token chosen by whoever starts the app against this cloud (`maider-tui --demo --sim-url`).
        sim.world.token = os.environ["MAIDER_SIM_TOKEN"]
    try:
        sim.start()
    except OSError as exc:  # the port is taken or not ours to listen on
        print(f"Cannot listen on port {args.port}: {exc.strerror or exc}; choose another --port "
              "or leave it out for a free one.", file=sys.stderr)
        return 2
    with sim:
        print(f"Simulated Linode API: {sim.linode_base_url}")
        print(f"Simulated Hugging Face Hub (no token; hf_... opens its gated repos): {sim.hf_base_url}")
        print(f"Token: {sim.token}")
        print(f"Try: curl -H 'Authorization: Bearer {sim.token}' {sim.linode_base_url}/linode/types")
        print("VMs answer SSH on 127.0.0.1 at the port the sim assigns each. Ctrl-C stops.", flush=True)
        try:
            (stop or threading.Event()).wait()
        except KeyboardInterrupt:
            print("\nStopping the simulated cloud.")
    return 0

