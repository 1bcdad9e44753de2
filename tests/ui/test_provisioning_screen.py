"""The provisioning screen: stages and log from events, a heal on the sim, a failure's choices."""

from __future__ import annotations

import asyncio
import shlex
import subprocess

from textual.widgets import ProgressBar, Static

from maider_tui import catalog
from maider_tui.app import MaiderApp
from maider_tui.clock import SystemClock
from maider_tui.ops.events import LogEvent, StageEvent
from maider_tui.ops.provision import LaunchPlan
from maider_tui.store import SessionRecord
from maider_tui.ui.dialogs.confirm import ConfirmDialog
from maider_tui.ui.screens.home import HomeScreen
from maider_tui.ui.screens.provisioning import ProvisioningScreen

from .toasts import toasts

CODER_7B_AWQ = "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ"


def plan_for(model: str, type_id: str, name: str, **changes) -> LaunchPlan:
    gpu = catalog.gpu_type(type_id)
    config = catalog.fit(model, gpu).to_vllm_config().replace(**changes)
    return LaunchPlan(region=gpu.regions[0], gpu_type=gpu, config=config, name=name)


def live_context(sim_context, sim_cloud):
    context = sim_context()
    context.clock = SystemClock()  # the launch really runs: real time, waits shrunk to the sim's speed
    context.cloud_speed = sim_cloud.speed
    return context


async def wait_until(pilot, done, seconds: float = 15.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if done():
            break
        await asyncio.sleep(0.05)
    await pilot.pause()


def text_of(screen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def test_mid_way_the_stages_log_progress_and_cost_show(make_context, clock):
    app = MaiderApp(make_context())
    plan = plan_for(CODER_7B_AWQ, "g2-gpu-rtx4000a1-s", "qwen7b-test")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = ProvisioningScreen(app.context, None, plan, autostart=False)
        await app.push_screen(screen)
        for event in (StageEvent("qwen7b-test", "token", 0.0, 1007, "Checking the Linode token"),
                      LogEvent("qwen7b-test", "Linode account: sim-user"),
                      StageEvent("qwen7b-test", "create", 0.003, 1004, "Renting RTX 4000 Ada in us-ord"),
                      StageEvent("qwen7b-test", "running", 0.013, 994, "Waiting for the VM to boot"),
                      LogEvent("other-session", "not ours")):
            screen.on_ops_event(event)
        clock.advance(90)
        screen.tick()
        await pilot.pause()
        stages = text_of(screen, "#stages")
        assert "✓ Renting the VM" in stages and "● Waiting for the VM to boot" in stages
        assert "○ Waiting for SSH" in stages
        assert "Linode account: sim-user" in screen.lines and "not ours" not in screen.lines
        assert screen.query_one(ProgressBar).progress == 1.3
        assert text_of(screen, "#eta") == "about 17 min left"
        assert text_of(screen, "#cost").startswith("$0.01 so far (1m 30s at $0.52/h)")
        assert not screen.check_action("retry", ())


async def test_a_heal_on_the_sim_is_shown_then_ready(sim_context, sim_cloud):
    context = live_context(sim_context, sim_cloud)
    app = MaiderApp(context)
    plan = plan_for(CODER_7B_AWQ, "g2-gpu-rtx4000a1-s", "qwen7b-heal", gpu_memory_utilization=0.99)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        screen = ProvisioningScreen(context, app.live, plan)
        await app.push_screen(screen)
        await wait_until(pilot, lambda: screen.ready or screen.failed is not None)
        assert screen.ready and screen.failed is None
        heals = [line for line in screen.lines if line.startswith("HEAL 1 (oom)")]
        assert heals and "0.99" in heals[0], screen.lines
        assert any(line.startswith("    evidence:") for line in screen.lines)
        assert context.store.get_session("qwen7b-heal").state == "ready"
        await app.live.destroy("qwen7b-heal")


async def test_a_failure_offers_retry_destroy_and_keep(sim_context, sim_cloud):
    context = live_context(sim_context, sim_cloud)
    app = MaiderApp(context)
    plan = plan_for(CODER_7B_AWQ, "g2-gpu-rtx4000a1-s", "qwen7b-fails")
    sim_cloud.faults.unsupported_models = {CODER_7B_AWQ}
    try:
        async with app.run_test(notifications=True, size=(120, 40)) as pilot:
            await app.workers.wait_for_complete()
            screen = ProvisioningScreen(context, app.live, plan)
            await app.push_screen(screen)
            await wait_until(pilot, lambda: screen.failed is not None)
            assert screen.failed is not None and screen.failed.stage == "vllm"
            panel = screen.query_one("#failure", Static)
            assert panel.display
            said = str(panel.render())
            assert "r retry" in said and "d destroy" in said and "k keep" in said
            assert "still running" in said
            assert all(screen.check_action(a, ()) for a in ("retry", "destroy", "keep"))
            await pilot.press("d")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmDialog)
            await pilot.press("n")
            await pilot.pause()
            assert app.screen is screen
            await pilot.press("k")
            await pilot.pause()
            assert isinstance(app.screen, HomeScreen)
            record = context.store.get_session("qwen7b-fails")
            hint = [line for text in toasts(app) for line in text.splitlines() if line.startswith("ssh ")]
            assert hint and "maider-qwen7b-fails" in hint[0]  # the session's own ssh_config entry
            # The command as shown reaches the kept VM with no prompt: its key and host key are pinned.
            command = shlex.split(hint[0].splitlines()[0])
            ran = await asyncio.to_thread(subprocess.run, [command[0], "-o", "BatchMode=yes", *command[1:],
                                                           "echo kept"], capture_output=True, text=True, timeout=20)
            assert ran.returncode == 0 and ran.stdout.strip() == "kept", ran.stderr
            assert f"HostName {record.ip}" in (context.paths.data_dir / "ssh_config").read_text()
            await app.live.destroy("qwen7b-fails")
    finally:
        sim_cloud.faults.unsupported_models = set()


async def test_escape_keeps_the_launch_going_in_the_background(sim_context, sim_cloud):
    context = live_context(sim_context, sim_cloud)
    app = MaiderApp(context)
    plan = plan_for(CODER_7B_AWQ, "g2-gpu-rtx4000a1-s", "qwen7b-kept")
    sim_cloud.faults.api_delay_s = 0.2  # slow enough to leave the screen before the launch is done
    try:
        await _keep_and_finish(app, plan, context)
    finally:
        sim_cloud.faults.api_delay_s = 0.0


async def _keep_and_finish(app, plan, context) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        app.start_launch(plan)
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")  # keep
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen)
        await wait_until(pilot, lambda: (context.store.get_session("qwen7b-kept") or None) is not None
                         and context.store.get_session("qwen7b-kept").state in ("ready", "failed"))
        assert context.store.get_session("qwen7b-kept").state == "ready"
        await app.live.destroy("qwen7b-kept")



async def test_ctrl_c_asks_keep_or_destroy(make_context):
    app = MaiderApp(make_context())
    async with app.run_test(size=(80, 24)) as pilot:
        plan = plan_for(CODER_7B_AWQ, "g2-gpu-rtx4000a1-s", "x-ctrl-c")
        screen = ProvisioningScreen(app.context, None, plan, autostart=False)
        await app.push_screen(screen)
        screen.on_ops_event(StageEvent("x-ctrl-c", "create", 0.003, 1004, "Renting"))
        await pilot.press("ctrl+c")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog)
        assert "Keep the VM or destroy it?" in str(dialog.query_one("#title", Static).render())
        await pilot.press("n")  # keep: home, the launch (none here) carries on
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen)


async def test_destroy_while_the_create_is_in_flight_deletes_the_vm_it_made(sim_context, sim_cloud):
    """Escape then y at "Renting", the create held by the API: the destroy waits for the create to
    land, then deletes that VM; nothing bills behind a "$0.00" receipt."""
    context = live_context(sim_context, sim_cloud)
    app = MaiderApp(context)
    gpu = catalog.gpu_type("g2-gpu-rtx4000a1-s")
    plan = LaunchPlan(region=gpu.regions[0], gpu_type=gpu, config=catalog.fit(CODER_7B_AWQ, gpu).to_vllm_config())
    sim_cloud.faults.create_hold_s = 1.0
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        app.start_launch(plan)
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ProvisioningScreen)
        await wait_until(pilot, lambda: screen.current == "create")
        # The POST has reached the API, which holds it: the destroy meets a create in flight.
        await wait_until(pilot, lambda: sim_cloud.world.requests["POST /linode/instances"] >= 1)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        name = screen.session
        await wait_until(pilot, lambda: context.store.get_session(name).ended, seconds=10)
        record = context.store.get_session(name)
        assert record.state == "destroyed" and record.instance_id is not None
        assert sim_cloud.world.list() == []
        said = [e.message for e in context.store.events(name) if e.kind == "destroyed"]
        assert said and f"VM {record.instance_id} deleted" in said[-1]


async def test_a_launch_that_lost_its_name_to_another_window_offers_no_destroy(sim_context, sim_cloud):
    """Another window reserved the name first: this screen never owned that session, so neither d
    nor k nor escape may act on it."""
    context = live_context(sim_context, sim_cloud)
    app = MaiderApp(context)
    context.store.add_session(SessionRecord("other-window", state="creating", stage="create", region="us-ord"))
    plan = plan_for(CODER_7B_AWQ, "g2-gpu-rtx4000a1-s", "other-window")
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        screen = ProvisioningScreen(context, app.live, plan)
        await app.push_screen(screen)
        await wait_until(pilot, lambda: screen.failed is not None)
        assert "already exists" in screen.failed.message
        assert not screen.check_action("destroy", ()) and not screen.check_action("keep", ())
        assert "d destroy" not in str(screen.query_one("#failure", Static).render())
        await pilot.press("d")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmDialog)
        assert context.store.get_session("other-window").state == "creating", "the other window's session"


class _IdleLive:
    """LiveSessions as far as the screen needs it, with a resume that never ends."""

    def subscribe(self, listener):
        return lambda: None

    def resume(self, record, *, claim=None):
        return asyncio.sleep(3600)

    def launch(self, plan, *, claim=None):
        return asyncio.sleep(3600)

    def run_in_background(self, name, work):
        self.task = asyncio.ensure_future(work)
        return self.task

    def get(self, name):
        return None


async def test_resuming_a_launch_counts_the_cost_since_its_vm_was_created(make_context, clock):
    app = MaiderApp(make_context())
    record = SessionRecord("resumed-cost", state="failed", stage="vllm", instance_id=99, region="us-ord",
                           gpu_type="g2-gpu-rtx4000a1-s", hourly_usd=0.52, created_at=clock.now() - 3600,
                           model=CODER_7B_AWQ, vllm_config={"model": CODER_7B_AWQ})
    live = _IdleLive()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = ProvisioningScreen(app.context, live, LaunchPlan.from_record(record), autostart=False)
        await app.push_screen(screen)
        screen.run_launch(record)
        screen.tick()
        await pilot.pause()
        assert text_of(screen, "#cost").startswith("$0.52 so far (60m 00s at $0.52/h)")
        live.task.cancel()
