"""Quitting the demo against `maider-tui sim` in another process (--sim-url) with "Keep watched": that
cloud outlives the app, so a background `maider-tui --sim-url URL watch` takes the VMs over (the app
said "the simulated cloud ends with the app" and left them unwatched).

The real app under a pty, the cloud in this process (the app reaches it over HTTP as it would reach
another process's).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from maider_tui import catalog
from maider_tui.cloud import CreateSpec
from maider_tui.ops.owner import owner_of, stop_owner
from maider_tui.paths import AppPaths
from maider_tui.remote.ssh import generate_keypair
from maider_tui.store import SessionRecord, open_store
from tests.proc import sim_app

GPU = "g2-gpu-rtx4000a1-s"


def wait_until(check, timeout: float = 30.0, what: str = "a condition"):
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return found


def test_keep_watched_against_a_remote_sim_starts_the_background_watcher(sim_cloud, tmp_path: Path):
    home = tmp_path / "home"
    paths = AppPaths.under(home / "data" / "demo")
    paths.data_dir.mkdir(parents=True, exist_ok=True)
    gpu = catalog.gpu_type(GPU)
    vm = asyncio.run(sim_cloud.provider().create(CreateSpec(
        label="kept-1", region=gpu.regions[0], type=GPU, image="linode/ubuntu24.04",
        authorized_keys=[generate_keypair("client").public_line])))
    with open_store(paths.database) as store:  # a launch that failed with its VM kept for inspection
        store.add_session(SessionRecord(name="kept-1", state="failed", stage="vllm", instance_id=vm.id,
                                        region=gpu.regions[0], gpu_type=GPU, hourly_usd=0.52,
                                        created_at=time.time() - 600))
    with sim_app(sim_cloud, home) as app:
        app.wait_for("kept-1")
        wait_until(lambda: (owner_of(paths, "kept-1") or "").endswith(f":{app.pid}"),
                   what="the app watching the kept VM")
        app.press("q")
        app.wait_for("Keep watched")
        assert "background `maider-tui watch`" in app.screen()
        app.press("k")
        assert app.wait_exit(30) == 0
    try:
        owner = wait_until(lambda: (o := owner_of(paths, "kept-1")) and not o.endswith(f":{app.pid}") and o,
                           what="the background watcher's lock")
        assert owner.split(":")[-1].isdigit()
    finally:
        stopped = stop_owner(paths, "kept-1")  # SIGTERM to the watcher, only if it is a background one
    assert stopped, "the holder is the background `watch`"
    wait_until(lambda: owner_of(paths, "kept-1") is None, what="the watcher to let go")
    assert asyncio.run(sim_cloud.provider().get(vm.id)) is not None, "stopping the watcher never destroys"
