"""`maider-tui types`: the GPU plans with GPUs, VRAM, $/h and regions, from the API or the cache."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .home import app_paths


def add_types_parser(subparsers: Any) -> None:
    """Add `types` to the `maider-tui` command line."""
    types = subparsers.add_parser("types", help="list the GPU plans with GPUs, VRAM, $/h and regions")
    types.add_argument("--region", metavar="R", help="only plans offered in this region")
    types.add_argument("--refresh", action="store_true", help="ask the Linode API even if the cache is fresh")


def run_types(args: argparse.Namespace, context: Any = None, *, provider: Any = None) -> int:
    """Print the GPU plans, from the API or the cache, saying which. `provider` is for tests."""
    import asyncio

    from rich.console import Console

    from ..secrets import SecretError

    if context is None:  # tests: the real home, and the provider they give
        from ..context import build_context

        context = build_context(app_paths(False), config_path=args.config)
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


def _types_source_line(result: Any, now: float) -> str:
    if result.source == "offline":
        return f"offline: built-in prices ({result.message})"
    if result.source == "cache":
        minutes = int((result.age_s(now) or 0) // 60)
        return f"from the cache ({minutes} min old; --refresh asks the Linode API)"
    return "from the Linode API"


def _types_table(types: list[Any]) -> Any:
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for name in ("Type", "GPUs", "GPU", "VRAM/GPU", "VRAM", "$/h", "Regions"):
        # Ids and numbers never wrap; the region list takes what width is left.
        table.add_column(name, justify="right" if name in ("GPUs", "VRAM/GPU", "VRAM", "$/h") else "left",
                         no_wrap=name != "Regions", overflow="fold")
    for t in types:
        per_gpu = f"{t.vram_per_gpu_gb:.0f} GB" if t.vram_per_gpu_gb else "?"
        total = f"{t.total_vram_gb:.0f} GB" if t.total_vram_gb else "?"
        gpu = t.family.short_name if t.family else t.label
        regions = " ".join(t.regions) or "none now"
        table.add_row(t.id, str(t.gpus), gpu, per_gpu, total, f"{t.hourly_usd:.2f}", regions)
    return table
