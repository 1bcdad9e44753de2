"""Two runs of `maider-tui --demo` on one data folder: the first run's session ended with its simulated
cloud, and the second run says so, instead of calling the VM gone as if someone deleted it."""

from __future__ import annotations

import time
from pathlib import Path

from maider_tui.paths import AppPaths
from maider_tui.store import open_store
from tests.proc import AppProcess, app_env, launch_defaults


def live_names(db: Path) -> list[str]:
    if not db.exists():
        return []
    with open_store(db) as store:
        return [r.name for r in store.list_sessions() if r.instance_id is not None and r.state == "ready"]


def test_the_next_demo_run_says_the_last_runs_cloud_ended_with_it(tmp_path: Path):
    home = tmp_path / "home"
    db = AppPaths.under(home / "data" / "demo").database
    env = app_env(home)
    with AppProcess(["--demo", "--sim-speed", "1000"], env) as first:
        first.wait_for("Sessions")
        launch_defaults(first)
        names = first.wait_for(lambda: live_names(db), timeout=60, what="a ready session")
        first.press("escape")
        first.wait_for("Sessions")
        first.press("q")
        first.wait_for("Keep watched")
        first.press("k")
        assert first.wait_exit() == 0
    (name,) = names
    with AppProcess(["--demo"], env) as second:
        second.wait_for(lambda: "demo ended" in second.screen(), what="the session listed as demo ended")
        said = second.wait_for(lambda: "ended with it" in second.toasts() and second.toasts(),
                               what="the toast")
        assert "lived inside the app" in str(said) and "VM gone" not in str(said)
        assert " gone " not in second.screen()
        time.sleep(0.1)
        second.press("q")
        assert second.wait_exit() == 0
    with open_store(db) as store:
        record = store.get_session(name)
        assert record is not None and record.ended and record.extra.get("demo_ended")
