"""Regenerate the pictures in screenshots/ (shown by the README) from the app itself.

Run: .venv/bin/python scripts/screenshots.py
The home screens are taken here, in a throw-away home on a frozen clock with a simulated cloud; the
other screens are the snapshot tests' pictures (the same app on fixed data), copied under plain names
after the snapshot tests have run.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "screenshots"
SNAPSHOTS = ROOT / "tests" / "ui" / "__snapshots__"
FROM_SNAPSHOTS = {
    "dashboard.svg": "test_dashboard_snapshots/test_dashboard_gpus[2-120x40].svg",
    "dashboard-4-gpus.svg": "test_dashboard_snapshots/test_dashboard_gpus[4-120x40].svg",
    "destroy-dialog.svg": "test_dashboard_snapshots/test_destroy_dialog[120x40].svg",
    "dashboard-vllm-down.svg": "test_dashboard_snapshots/test_dashboard_vllm_down[120x40].svg",
    "quit-dialog.svg": "test_snapshots/test_quit_dialog_with_live_sessions[80x24].svg",
    "wizard-gpu-type.svg": "test_wizard_snapshots/test_wizard_gpu_type[120x40].svg",
    "wizard-review.svg": "test_wizard_snapshots/test_wizard_review[120x40].svg",
    "provisioning-heal.svg": "test_wizard_snapshots/test_provisioning_after_a_heal[120x40].svg",
    "token-dialog.svg": "test_wizard_snapshots/test_token_dialog[80x24].svg",
    "wizard-capability.svg": "test_wizard_snapshots/test_wizard_capability[80x24].svg",
    "wizard-region.svg": "test_wizard_snapshots/test_wizard_region[80x24].svg",
    "wizard-model.svg": "test_wizard_snapshots/test_wizard_model[80x24].svg",
    "wizard-custom-model.svg": "test_wizard_snapshots/test_wizard_custom_model[80x24].svg",
    "provisioning.svg": "test_wizard_snapshots/test_provisioning_mid_way[120x40].svg",
    "provisioning-failed.svg": "test_wizard_snapshots/test_provisioning_failed[80x24].svg",
    "benchmarks.svg": "test_bench_snapshots/test_comparison[120x40].svg",
    "benchmarks-empty.svg": "test_bench_snapshots/test_comparison_empty[120x40].svg",
    "recommend.svg": "test_bench_snapshots/test_recommend_form[120x40].svg",
    "validation.svg": "test_validation_screen/test_validation_snapshot[size0].svg",
    "broken-database.svg": "test_snapshots/test_confirm_dialog_for_a_broken_database[80x24].svg",
}


async def shoot(name: str, *, sessions: bool, demo: bool = False, size=(120, 40)) -> Path:
    import keyring

    from maider_tui.app import MaiderApp
    from maider_tui.clock import ManualClock
    from maider_tui.context import build_context
    from maider_tui.paths import AppPaths

    sys.path.insert(0, str(ROOT))
    from tests.conftest import FROZEN_NOW
    from tests.keyrings import MemoryKeyring
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
    for name, source in FROM_SNAPSHOTS.items():
        if (SNAPSHOTS / source).exists():
            shutil.copyfile(SNAPSHOTS / source, OUT / name)
            print(OUT / name)


if __name__ == "__main__":
    asyncio.run(main())
