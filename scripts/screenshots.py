"""Regenerate the pictures in screenshots/ (shown by the README) from the app itself.

Run: .venv/bin/python scripts/screenshots.py
Each picture is taken in a throw-away home on a frozen clock, with the same sample data as the tests.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "screenshots"


async def shoot(name: str, *, sessions: bool, demo: bool = False, size=(120, 40)) -> Path:
    import keyring

    from maider_tui.app import MaiderApp
    from maider_tui.clock import ManualClock
    from maider_tui.context import build_context
    from maider_tui.paths import AppPaths
    from maider_tui.secrets import MemoryKeyring

    sys.path.insert(0, str(ROOT))
    from tests.conftest import FROZEN_NOW
    from tests.ui.sessions import add_sample_sessions

    keyring.set_keyring(MemoryKeyring())
    from maider_tui.sim import SimCloud

    with tempfile.TemporaryDirectory() as home, SimCloud(speed=1000) as sim:
        clock = ManualClock(start=FROZEN_NOW)
        context = build_context(AppPaths.under(Path(home)), clock=clock, demo=demo, environ={})
        if sessions:
            context.provider = sim.provider(store=context.store)
            add_sample_sessions(context.store, clock.now(), sim)
        app = MaiderApp(context)
        async with app.run_test(size=size) as pilot:
            await app.workers.wait_for_complete()
            await pilot.pause()
            path = app.save_screenshot(filename=f"{name}.svg", path=str(OUT))
        context.store.close()
    return Path(path)


async def main() -> None:
    os.environ["TZ"] = "UTC"
    OUT.mkdir(exist_ok=True)
    for name, kwargs in {
        "home": {"sessions": True},
        "home-first-run": {"sessions": False},
    }.items():
        print(await shoot(name, **kwargs))


if __name__ == "__main__":
    asyncio.run(main())
