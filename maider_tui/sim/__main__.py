"""`python -m maider_tui.sim`: run the simulated cloud alone, for curl, linode-cli or a second app."""

from __future__ import annotations

import argparse
import os
import threading
from collections.abc import Sequence

from maider_tui.sim.cloud import SimCloud


def main(argv: Sequence[str] | None = None, *, stop: threading.Event | None = None) -> int:
    """Start a SimCloud, print how to reach it, and wait for Ctrl-C (or `stop`, for tests)."""
    parser = argparse.ArgumentParser(prog="maider-tui sim", description="Run the simulated Linode cloud.")
    parser.add_argument("--speed", type=float, default=1.0,
                        help="sim seconds per real second (1: realistic boot times; 60: a minute a second)")
    parser.add_argument("--port", type=int, default=0,
                        help="port of the fake Linode API (default: a free one)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the simulated hardware's behaviour")
    parser.add_argument("--big-plan", type=int, default=None, metavar="GPUS",
                        help="also offer a sim-only plan with this many RTX 4000 Ada GPUs "
                             "(Linode sells at most 4), e.g. 8 for the dashboard benchmark")
    args = parser.parse_args(argv)
    if args.speed <= 0:
        parser.error("--speed must be positive")
    if args.big_plan is not None and args.big_plan < 1:
        parser.error("--big-plan must be at least 1")
    sim = SimCloud(speed=args.speed, seed=args.seed, api_port=args.port, big_plan_gpus=args.big_plan)
    if os.environ.get("MAIDER_SIM_TOKEN"):
        # A token chosen by whoever starts the app against this cloud (`maider-tui --demo --sim-url`).
        sim.world.token = os.environ["MAIDER_SIM_TOKEN"]
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


if __name__ == "__main__":
    raise SystemExit(main())
