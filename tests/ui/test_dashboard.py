"""The dashboard on a real simulated session: real SSH telemetry, real /metrics, real destroy.

Each test launches one session through `app.live.launch` on the shared SimCloud (speed 1000,
SystemClock, readiness limits scaled by 1000): about a second of real time.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from maider_tui import catalog
from maider_tui.app import MaiderApp
from maider_tui.clock import SystemClock
from maider_tui.ops.provision import LaunchPlan
from maider_tui.ops.watchdog import Watchdog, metrics_from_tunnel
from maider_tui.settings import WatchdogSettings
from maider_tui.ui.dialogs.confirm import ConfirmDialog
from maider_tui.ui.dialogs.model_picker import ModelPickerDialog
from maider_tui.ui.screens.dashboard import DashboardScreen
from maider_tui.ui.widgets.gpu_bars import GpuBars
from maider_tui.ui.widgets.log_pane import LogPane

from .toasts import toasts

TYPE_ID = "g2-gpu-rtx4000a2-s"
MODEL = "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ"



@pytest.fixture(autouse=True)
def fast_scrape(monkeypatch):
    """The vLLM panel scrapes every 5 s; the sim's servers answer at once, so tests need not wait."""
    monkeypatch.setattr("maider_tui.ui.screens.dashboard.METRICS_S", 0.3)


@pytest.fixture
def clock():
    # The sim runs in real time (sped up 1000x): the app needs a clock that moves.
    return SystemClock()


@pytest.fixture
def app(sim_context):
    context = sim_context()
    context.cloud_speed = 1000.0  # readiness limits scaled as the demo scales them
    return MaiderApp(context)


async def until(predicate, timeout: float = 10.0, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(step)


async def launch(app: MaiderApp, pilot) -> tuple[str, DashboardScreen]:
    gpu = catalog.gpu_type(TYPE_ID)
    plan = LaunchPlan(region=gpu.regions[0], gpu_type=gpu, config=catalog.fit(MODEL, gpu).to_vllm_config())
    live = await app.live.launch(plan)
    handle = live.handle
    if live.watchdog is None:  # the app watches launched sessions itself once its live sessions can notify
        live.watchdog = Watchdog(handle.name, metrics=metrics_from_tunnel(handle.local_port),
                                 destroy=lambda: app.live.destroy(handle.name), store=app.context.store,
                                 clock=app.context.clock, settings=WatchdogSettings(), notify=lambda *a: None,
                                 emit=app.live.emit)
    await app.open_dashboard(handle.name)
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, DashboardScreen)
    await until(lambda: screen.state.gpu is not None and screen.state.vllm is not None)
    return handle.name, screen


def log_text(screen: DashboardScreen) -> str:
    lines = screen.query_one("#events-log").lines
    return "\n".join("".join(segment.text for segment in strip) for strip in lines)


async def cleanup(app: MaiderApp, name: str, sim_cloud) -> None:
    record = app.context.store.get_session(name)
    if record is not None and not record.ended:
        await app.live.destroy(name)


async def test_live_panels_and_keys(app, sim_cloud):
    async with app.run_test(size=(120, 40)) as pilot:
        name, screen = await launch(app, pilot)
        try:
            assert list(screen.query_one(GpuBars).rows) == [0, 1]  # the plan's GPU count
            assert all("RTX 4000 Ada" in s.name for s in screen.state.gpu.gpus)  # names from the sim's nvidia-smi
            assert "running" in str(screen.query_one("#vllm").render())
            assert MODEL in str(screen.query_one("#vllm").render())
            assert screen.state.tunnel == "ok"

            watchdog = app.live.get(name).watchdog
            watchdog.idle_since -= 600
            await pilot.press("e")
            await until(lambda: watchdog.idle_s < 60)

            await pilot.press("c")
            assert app.clipboard.startswith("source ") and "aider-env" in app.clipboard

            pane = screen.query_one(LogPane)
            await pilot.press("l")
            assert pane.showing_vllm
            await until(lambda: len(screen.query_one("#vllm-log").lines) > 0)
            await pilot.press("l")
            assert not pane.showing_vllm

            await pilot.press("m")
            await pilot.pause()
            picker = app.screen
            assert isinstance(picker, ModelPickerDialog)
            ids = [r.model.id for r in picker.reports]
            assert ids == [r.model.id for r in catalog.models_that_fit(TYPE_ID)] and MODEL in ids
            await pilot.press("escape")
            await pilot.pause()

            await pilot.press("h")  # a healthy vLLM: nothing to heal, and no dialog
            await until(lambda: "nothing to heal" in log_text(screen))
            assert app.screen is screen

            old_handle = app.live.get(name).handle
            await pilot.press("r")
            await until(lambda: app.live.get(name).handle not in (None, old_handle))
            # A new connection, the same endpoint: what aider and the copied command use stays valid.
            assert app.live.get(name).handle.endpoint == old_handle.endpoint
            before = screen.state.gpu
            await until(lambda: screen.state.gpu is not before and screen.state.tunnel == "ok")

            await pilot.press("d")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmDialog)
            assert "Runtime" in str(app.screen.query_one("#message").render())
            assert app.screen.focused.id == "no"
            await pilot.press("n")
            await pilot.pause()
            assert app.screen is screen
            assert not app.context.store.get_session(name).ended

            assert (app.context.paths.data_dir / "ssh_config").read_text().startswith(f"Host maider-{name}\n")
        finally:
            await cleanup(app, name, sim_cloud)


async def test_the_log_reads_the_launch_in_the_order_it_happened(app, sim_cloud):
    """Stored stages and live lines (the Linode account, compose's output) merged by time, token check first."""
    async with app.run_test(size=(120, 40)) as pilot:
        name, screen = await launch(app, pilot)
        try:
            lines = [line[9:] for line in log_text(screen).splitlines()]  # after the "HH:MM:SS " stamp
            wanted = ("Checking the Linode token", "Linode account: ", "Recording the session", "Renting 2x",
                      "Starting vLLM (docker compose up)", "[+] Running", "Waiting for vLLM to load", "ready at ")
            at = [next((i for i, line in enumerate(lines) if line.startswith(w)), -1) for w in wanted]
            assert -1 not in at and at == sorted(at), lines
        finally:
            await cleanup(app, name, sim_cloud)


async def test_destroy_with_y(app, sim_cloud):
    async with app.run_test(size=(120, 40)) as pilot:
        name, screen = await launch(app, pilot)
        instance_id = app.context.store.get_session(name).instance_id
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await until(lambda: app.context.store.get_session(name).ended)
        await until(lambda: not isinstance(app.screen, DashboardScreen))
        assert app.context.store.get_session(name).state == "destroyed"
        with pytest.raises(LookupError):
            sim_cloud.vm(instance_id)
        assert app.live.get(name) is None


async def test_telemetry_survives_an_ssh_drop(app, sim_cloud):
    from maider_tui.ui.messages import TelemetryStatus

    seen: list[str] = []

    def hook(message) -> None:
        if isinstance(message, TelemetryStatus):
            seen.append(message.status)

    async with app.run_test(size=(120, 40), message_hook=hook) as pilot:
        name, screen = await launch(app, pilot)
        try:
            handle = app.live.get(name).handle
            handle.ssh._conn.abort()  # the connection drops under the stream, as a flaky network does
            await until(lambda: "reconnecting" in seen)
            before = screen.state.gpu
            await until(lambda: screen.state.tunnel == "ok" and screen.state.gpu is not before, timeout=15)
            assert "ok" in seen[seen.index("reconnecting"):]
        finally:
            await cleanup(app, name, sim_cloud)


async def test_switch_model_from_the_picker(app, sim_cloud):
    from textual.widgets import OptionList

    async with app.run_test(size=(120, 40)) as pilot:
        name, screen = await launch(app, pilot)
        try:
            await pilot.press("m")
            await pilot.pause()
            picker = app.screen
            ids = [r.model.id for r in picker.reports]
            target = next(i for i in ids if i != MODEL and "AWQ" in i)
            options = picker.query_one(OptionList)
            options.focus()
            options.highlighted = ids.index(target)
            await pilot.press("enter")
            await until(lambda: f"now serving {target}" in log_text(screen), timeout=20)
            assert app.context.store.get_session(name).model == target
            assert target in str(screen.query_one("#vllm").render())
        finally:
            await cleanup(app, name, sim_cloud)


async def test_keys_greyed_without_a_connection(make_context):
    from maider_tui.store import SessionRecord

    context = make_context()
    context.store.add_session(SessionRecord(name="gone", state="destroyed", gpu_type=TYPE_ID, ended_at=1.0))
    app = MaiderApp(context)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.open_dashboard("gone")
        await pilot.pause()
        screen = app.screen
        for action in ("extend", "switch_model", "destroy", "heal", "aider", "shell", "copy_command",
                       "benchmark", "validate", "reconnect"):
            assert screen.check_action(action, ()) is None, action
        assert screen.check_action("toggle_log", ()) is True


async def test_the_panels_are_drawn_when_the_dashboard_opens_before_any_data(make_context):
    """No sample, reading or tick yet: the panels already say what they wait for (they stayed empty
    until the first tick, and the vLLM panel until the first scrape)."""
    from maider_tui.store import SessionRecord
    from maider_tui.ui.widgets.cost_panel import CostPanel
    from maider_tui.ui.widgets.vllm_panel import VllmPanel

    context = make_context()
    context.store.add_session(SessionRecord(name="quiet", state="destroyed", gpu_type=TYPE_ID, ended_at=1.0,
                                            model="Qwen/Qwen2.5-Coder-7B-Instruct", hourly_usd=0.52,
                                            created_at=0.5))
    app = MaiderApp(context)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.open_dashboard("quiet")
        await pilot.pause()
        screen = app.screen
        assert screen.state.gpu is None and screen.state.vllm is None
        assert "waiting for /metrics" in " ".join(screen.query_one(VllmPanel).lines)
        assert screen.query_one(CostPanel).lines[0].startswith("$0.52/h")


async def test_after_a_destroy_the_watchdog_panel_says_the_session_ended(app, sim_cloud):
    """It said "watchdog off · this VM runs until you destroy it" about a VM already deleted."""
    from maider_tui.ui.widgets.watchdog_panel import WatchdogPanel

    async with app.run_test(size=(120, 40)) as pilot:
        name, screen = await launch(app, pilot)
        await app.live.destroy(name)  # as the watchdog or `maider-tui down` would, the dashboard open
        assert app.context.store.get_session(name).ended
        await until(lambda: "session ended" in " ".join(screen.query_one(WatchdogPanel).lines))
        lines = " ".join(screen.query_one(WatchdogPanel).lines)
        assert "runs until you destroy it" not in lines and "watchdog off" not in lines


async def test_the_record_is_read_again_only_when_the_database_changed(make_context, paths):
    """The panels read the session every second; a copy serves until a commit, ours or another program's."""
    import sqlite3

    from maider_tui.store import SessionRecord

    context = make_context()
    context.store.add_session(SessionRecord(name="kept", state="destroyed", gpu_type=TYPE_ID, ended_at=1.0,
                                            hourly_usd=0.52, created_at=0.5))
    reads: list[str] = []
    get_session = context.store.get_session
    context.store.get_session = lambda name: reads.append(name) or get_session(name)
    app = MaiderApp(context)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.open_dashboard("kept")
        await pilot.pause()
        screen = app.screen
        screen.feed.read_record()  # the first read after the dashboard opened
        await app.workers.wait_for_complete()
        reads.clear()
        for _ in range(3):
            screen.feed.read_record()  # as each tick does
            await app.workers.wait_for_complete()
            assert screen.record.hourly_usd == 0.52
        assert reads == []
        context.store.update_session("kept", hourly_usd=0.96)  # ours
        screen.feed.read_record()
        await app.workers.wait_for_complete()
        assert screen.record.hourly_usd == 0.96 and reads == ["kept"]
        other = sqlite3.connect(paths.database)
        with other:
            other.execute("UPDATE sessions SET region = 'jp-osa' WHERE name = 'kept'")
        other.close()
        screen.feed.read_record()
        await app.workers.wait_for_complete()
        assert screen.record.region == "jp-osa" and reads == ["kept", "kept"]


async def test_aider_missing_says_how_to_install(app, monkeypatch):
    import maider_tui.ui.screens.dashboard_tools as keys

    monkeypatch.setattr(keys.shutil, "which", lambda name: None)
    async with app.run_test(notifications=True, size=(120, 40)) as pilot:
        name, screen = await launch(app, pilot)
        try:
            await pilot.press("a")
            await pilot.pause()
            assert any("pipx install aider-chat" in text for text in toasts(app))
        finally:
            await cleanup(app, name, None)


async def test_heal_now_offers_the_remedy_and_applies_it(make_context, clock):
    """`h` on a vLLM that ran out of KV cache: the diagnosis and the change in a dialog, `y` deploys it."""
    from pathlib import Path

    from maider_tui.remote.ssh import RunResult

    from .test_dashboard_snapshots import build

    log = (Path(__file__).parents[1] / "fixtures" / "vllm_logs" / "kv_cache_v1_estimated_length.txt").read_text()
    context = make_context()
    screen = build(context, clock, 2)
    handle = screen.live.get(screen.session).handle
    handle.config = handle.config.replace(**{"max_model_len": 32768})
    calls: list[str] = []

    async def run(cmd, timeout=None):
        calls.append(cmd)
        return RunResult(0, log if "logs" in cmd else "", "")

    async def put(path, data, mode=0o600):
        calls.append(f"put {path}")

    handle.ssh.run, handle.ssh.put = run, put
    screen.live.limits = None
    app = MaiderApp(context)
    async with app.run_test(size=(120, 40)) as pilot:
        app.push_screen(screen)
        await pilot.pause()
        await pilot.press("h")
        await until(lambda: isinstance(app.screen, ConfirmDialog))
        message = str(app.screen.query_one("#message").render())
        assert "Diagnosis: KV cache" in message and "max_model_len 32768 ->" in message
        await pilot.press("y")
        await until(lambda: "applied max_model_len" in log_text(screen))
        assert any(c.startswith("put ") for c in calls) and any(c.endswith("up -d") for c in calls)
        assert context.store.get_session(screen.session).vllm_config["max_model_len"] < 32768
