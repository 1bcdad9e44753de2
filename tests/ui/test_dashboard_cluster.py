"""The dashboard of a session over two VMs whose worker VM is lost: `h` reads the dead engine, offers a
VM in its place, and once replaced the model serves and every GPU of both VMs shows again."""

from __future__ import annotations

import pytest

from maider_tui import catalog
from maider_tui.app import MaiderApp
from maider_tui.clock import SystemClock
from maider_tui.deploy.launch import resolve
from maider_tui.ops.launch_plan import LaunchPlan
from maider_tui.ops.readiness import container_state
from maider_tui.ops.telemetry import session_gpu_snapshots
from maider_tui.settings import Settings
from maider_tui.ui.dialogs.confirm import ConfirmDialog
from maider_tui.ui.screens.dashboard import DashboardScreen

from .test_dashboard import log_text, until

LLAMA_70B = "meta-llama/Llama-3.1-70B-Instruct"


@pytest.fixture(autouse=True)
def fast_scrape(monkeypatch):
    monkeypatch.setattr("maider_tui.ui.screens.dashboard.METRICS_S", 0.3)


def two_vm_plan() -> LaunchPlan:
    gpu = catalog.gpu_type("g1-gpu-rtx6000-4")
    launch = resolve(catalog.model(LLAMA_70B), gpu, Settings(), context=32768, nodes=2)
    return LaunchPlan(region="us-east", gpu_type=gpu, config=launch.config, compose=launch.compose, nodes=2)


def cluster_app(sim_context, sim_cloud) -> MaiderApp:
    context = sim_context()
    context.clock, context.cloud_speed = SystemClock(), sim_cloud.speed
    return MaiderApp(context)


async def open_cluster_dashboard(app: MaiderApp, pilot):
    """Launch the two-VM plan and open its dashboard: (session name, handle, dashboard)."""
    live = await app.live.launch(two_vm_plan())
    await app.open_dashboard(live.handle.name)
    await pilot.pause()
    assert isinstance(app.screen, DashboardScreen)
    return live.handle.name, live.handle, app.screen


async def head_stopped(app: MaiderApp, pilot, handle) -> None:
    """Wait for the head's vLLM to die with its pipeline stage (its container exits)."""
    for _ in range(200):
        if await container_state(handle.ssh, app.live.limits) == "exited":
            return
        await pilot.pause(0.05)
    raise AssertionError("the head's vLLM did not stop")


@pytest.mark.parametrize("answer", ["n", "y"])
async def test_h_on_a_lost_worker_offers_a_new_vm_and_serves_again_once_replaced(sim_context, sim_cloud, answer,
                                                                                    monkeypatch):
    from maider_tui.ui.screens import dashboard_feed

    streams: list[list[tuple[str, int]]] = []  # the workers each GPU stream the dashboard started reads

    def recorded(handle, **kwargs):
        streams.append([(ssh.host, ssh.port) for ssh in handle.workers])
        return session_gpu_snapshots(handle, **kwargs)

    monkeypatch.setattr(dashboard_feed, "session_gpu_snapshots", recorded)
    app = cluster_app(sim_context, sim_cloud)
    context = app.context
    async with app.run_test(size=(120, 40)) as pilot:
        name, handle, screen = await open_cluster_dashboard(app, pilot)
        await until(lambda: screen.state.gpu is not None and len(screen.state.gpu.gpus) == 8, timeout=20)
        worker = context.store.nodes(name)[1]
        sim_cloud.world.vanish(worker.instance_id)
        await head_stopped(app, pilot, handle)
        await pilot.press("h")
        await until(lambda: isinstance(app.screen, ConfirmDialog), timeout=20)
        message = str(app.screen.query_one("#message").render())
        assert "a VM of the session is gone" in message and "$6.00/h" in message, message
        assert f"VM {worker.instance_id} (node 1, 10.42.0.3) no longer exists" in message, message
        await pilot.press(answer)
        if answer == "n":
            await until(lambda: "Not replaced" in log_text(screen))
            assert context.store.nodes(name)[1].instance_id == worker.instance_id  # nothing rented
            assert len(sim_cloud.world.list()) == 1
        else:
            await until(lambda: "node 1 replaced" in log_text(screen), timeout=30)
            # The idle watchdog held its countdown while vLLM was down for the replacement, then counts afresh.
            watchdog = app.live.get(name).watchdog
            assert "Paused while the replacement runs" in log_text(screen) and not watchdog.holds
            assert watchdog.idle_s < 60
            new = context.store.nodes(name)[1]
            assert new.instance_id != worker.instance_id and sim_cloud.world.get(new.instance_id) is not None
            await until(lambda: screen.state.vllm is not None and screen.state.vllm.error is None
                    and screen.state.vllm.metrics is not None, timeout=20)
            # the GPU stream started again, over the new VM's connection: its GPUs hold the model's layers again
            await until(lambda: streams[-1] == [(new.ip, new.ssh_port)])
            await until(lambda: len(screen.state.gpu.gpus) == 8
                        and all((g.memory_used_mib or 0) > 1000 for g in screen.state.gpu.gpus), timeout=20)
        await app.live.destroy(name)
        assert not sim_cloud.world.list()


async def test_h_with_every_vm_there_offers_to_form_the_cluster_again(sim_context, sim_cloud):
    from maider_tui.ops.readiness import COMPOSE_CMD

    app = cluster_app(sim_context, sim_cloud)
    async with app.run_test(size=(120, 40)) as pilot:
        name, handle, screen = await open_cluster_dashboard(app, pilot)
        await handle.workers[0].run(f"{COMPOSE_CMD} stop", timeout=30)  # the worker leaves Ray; its VM stays
        await head_stopped(app, pilot, handle)
        await pilot.press("h")
        await until(lambda: isinstance(app.screen, ConfirmDialog), timeout=20)
        message = str(app.screen.query_one("#message").render())
        assert "every VM of the session is there" in message and "nothing is rented" in message, message
        await pilot.press("y")
        await until(lambda: "Ray cluster formed again: vLLM serves" in log_text(screen), timeout=30)
        assert len(sim_cloud.world.list()) == 2
        await app.live.destroy(name)


async def test_an_interrupted_launch_over_two_vms_resumes_from_home_to_ready(sim_context, sim_cloud):
    import asyncio

    from textual.widgets import DataTable

    from maider_tui.ops.events import StageEvent
    from maider_tui.ops.provision import provision
    from maider_tui.ui.screens.provisioning import ProvisioningScreen
    from tests.integration.simfix import sim_limits

    app = cluster_app(sim_context, sim_cloud)  # made now, started once the launch has died
    context = app.context
    plan = two_vm_plan()
    plan = LaunchPlan(region=plan.region, gpu_type=plan.gpu_type, config=plan.config, compose=plan.compose,
                      nodes=2, name="llama70b-cut")
    task: asyncio.Task | None = None

    def crash_at(event):  # the app dies as the VMs boot
        if isinstance(event, StageEvent) and event.stage == "cloud_init" and task is not None:
            task.cancel()

    task = asyncio.create_task(provision(plan, provider=context.provider, store=context.store, paths=context.paths,
                                         settings=Settings(), clock=context.clock, emit=crash_at, hf_token=None,
                                         limits=sim_limits(sim_cloud.speed)))
    with pytest.raises(asyncio.CancelledError):
        await task
    made = {n.instance_id for n in context.store.nodes("llama70b-cut")}
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        table = app.screen.query_one(DataTable)
        table.move_cursor(row=table.get_row_index("llama70b-cut"))
        await pilot.press("enter")
        await until(lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await until(lambda: isinstance(app.screen, ProvisioningScreen))
        screen = app.screen
        await until(lambda: context.store.get_session("llama70b-cut").state == "ready", timeout=30)
        nodes = str(screen.query_one("#nodes").render())
        assert "VM 0 head" in nodes and "VM 1 worker" in nodes, nodes
        assert {n.instance_id for n in context.store.nodes("llama70b-cut")} == made  # carried on with, not rented again
        assert len(sim_cloud.world.list()) == 2
        await app.live.destroy("llama70b-cut")
        assert not sim_cloud.world.list()


async def test_h_offers_the_replacement_even_when_the_log_no_longer_shows_the_loss(sim_context, sim_cloud,
                                                                                 monkeypatch):
    """The engine's death may not be in the log yet, or may have scrolled past its last 200 lines (a
    restarted container): a gone worker VM is looked for first, so `h` still offers its replacement."""
    from maider_tui.ops import vllm_care

    async def log_shows_nothing(live, name):
        return vllm_care.HealProposal(None)

    monkeypatch.setattr(vllm_care, "propose_heal", log_shows_nothing)
    app = cluster_app(sim_context, sim_cloud)
    async with app.run_test(size=(120, 40)) as pilot:
        name, handle, screen = await open_cluster_dashboard(app, pilot)
        worker = app.context.store.nodes(name)[1]
        sim_cloud.world.vanish(worker.instance_id)
        await pilot.press("h")
        await until(lambda: isinstance(app.screen, ConfirmDialog), timeout=20)
        assert "Replace the lost VM?" in str(app.screen.query_one("#title").render())
        assert f"VM {worker.instance_id} (node 1, 10.42.0.3)" in str(app.screen.query_one("#message").render())
        await pilot.press("n")
        await until(lambda: "Not replaced" in log_text(screen))
        await app.live.destroy(name)
