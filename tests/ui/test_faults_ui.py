"""What the user sees when the cloud, SSH or vLLM fail under a live session (docs/reliability.md).

Each test launches one session on the simulated cloud through the app (see test_dashboard.py), then
injects the fault with the sim's SimFaults or by changing the VM behind the app's back.
"""

from __future__ import annotations

import asyncio

import pytest
from textual.widgets import DataTable

from maider_tui.app import MaiderApp
from maider_tui.cloud import LinodeProvider
from maider_tui.ops.events import StageEvent
from maider_tui.ui.dialogs.confirm import ConfirmDialog
from maider_tui.ui.screens.dashboard import DashboardScreen
from maider_tui.ui.screens.home import HomeScreen
from maider_tui.ui.widgets.top_bar import TopBar

from ..integration.test_faults import rekey
from .test_dashboard import cleanup, fast_scrape, launch, log_text, until  # noqa: F401 - fast_scrape is autouse
from .toasts import toasts


@pytest.fixture
def clock():
    from maider_tui.clock import SystemClock

    return SystemClock()  # the sim runs in (sped-up) real time: the app needs a clock that moves


@pytest.fixture
def app(sim_context, sim_cloud):
    context = sim_context()
    context.cloud_speed = 1000.0
    # The app's own provider, with retries short enough for a test (the real ones back off 15 s).
    context.provider = LinodeProvider(sim_cloud.token, base_url=sim_cloud.linode_base_url, store=context.store,
                                      ssh_resolver=sim_cloud.ssh_address, retry_delays=(0.01, 0.02))
    return MaiderApp(context)


def notes(app: MaiderApp) -> str:
    return "\n".join(toasts(app))


def vllm_text(screen: DashboardScreen) -> str:
    return str(screen.query_one("#vllm").render())


async def test_a_destroy_the_api_keeps_refusing_says_so_and_keeps_the_session(app, sim_cloud):
    async with app.run_test(notifications=True, size=(120, 40)) as pilot:
        name, screen = await launch(app, pilot)
        instance_id = app.context.store.get_session(name).instance_id
        try:
            sim_cloud.faults.api_error_burst = 1000
            await pilot.press("d")
            await pilot.pause()
            await pilot.press("y")
            # One destroy flow, whichever screen asks: the same words from the dashboard and from home.
            await until(lambda: f"{name} was not destroyed" in notes(app))
            assert "Linode API kept answering 503" in notes(app) and "VM may still be running" in notes(app)
            assert "destroy failed" in log_text(screen)
            assert app.screen is screen and screen.connected  # the dashboard stays, still live
            record = app.context.store.get_session(name)
            assert not record.ended and record.state == "ready"
            assert instance_id in [i.id for i in sim_cloud.world.list()]

            await pilot.press("escape")  # and from the sessions list: the same refusal, the row kept
            await pilot.pause()
            home = app.screen
            assert isinstance(home, HomeScreen)
            table = home.query_one(DataTable)
            table.move_cursor(row=table.get_row_index(name))
            await pilot.press("d")
            await pilot.pause()
            await pilot.press("y")
            await until(lambda: notes(app).count(f"{name} was not destroyed") == 2)
            assert str(table.get_cell(name, "state")) == "ready"
            assert not app.context.store.get_session(name).ended
        finally:
            sim_cloud.faults.api_error_burst = 0
            await cleanup(app, name, sim_cloud)


async def test_vllm_dying_after_ready_shows_down_and_h_offers_a_restart(app, sim_cloud):
    def crash_once_ready(event) -> None:
        if isinstance(event, StageEvent) and event.stage == "compose_up":
            sim_cloud.faults.vllm_crash_after_s = 600.0  # sim seconds after ready: 0.6 s here

    app.live.subscribe(crash_once_ready)
    async with app.run_test(size=(120, 40)) as pilot:
        name, screen = await launch(app, pilot)
        try:
            await until(lambda: "vLLM down" in vllm_text(screen))
            assert "h diagnoses and heals or restarts it" in vllm_text(screen)
            assert screen.query_one("#vllm").has_class("-down")
            assert " · ready · vLLM down · " in screen.query_one(TopBar).title
            sim_cloud.faults.vllm_crash_after_s = None  # the restart will hold
            await pilot.press("h")
            await until(lambda: isinstance(app.screen, ConfirmDialog))
            dialog = str(app.screen.query_one("#message").render())
            assert "vLLM is down" in dialog and "Restart its container" in dialog
            await pilot.press("y")
            await until(lambda: "restarting with the same flags" in log_text(screen))
            await until(lambda: "running 0" in vllm_text(screen), timeout=15)
            assert app.context.store.events(name)[-1].kind == "restart"
        finally:
            await cleanup(app, name, sim_cloud)


async def test_a_vm_deleted_outside_the_app_shows_gone(app, sim_cloud):
    async with app.run_test(size=(120, 40)) as pilot:
        name, screen = await launch(app, pilot)
        instance_id = app.context.store.get_session(name).instance_id
        sim_cloud.faults.vm_vanish_after_s = 0
        await until(lambda: instance_id not in [i.id for i in sim_cloud.world.list()])
        await pilot.press("r")
        await until(lambda: app.context.store.get_session(name).ended)
        record = app.context.store.get_session(name)
        assert record.extra.get("gone") and record.ended_at is not None
        await until(lambda: " · gone · " in screen.query_one(TopBar).title)
        assert "no longer exists" in log_text(screen)
        assert screen.check_action("destroy", ()) is None  # nothing left to destroy
        await pilot.press("escape")
        await pilot.pause()
        assert str(app.screen.query_one(DataTable).get_cell(name, "state")) == "gone"


async def test_a_changed_host_key_on_reconnect_is_refused_naming_the_risk(app, sim_cloud):
    async with app.run_test(notifications=True, size=(120, 40)) as pilot:
        name, screen = await launch(app, pilot)
        instance_id = app.context.store.get_session(name).instance_id
        app.live.get(name).handle.ssh.backoff = (0.05,)
        try:
            await asyncio.to_thread(sim_cloud.call, rekey(sim_cloud, instance_id))  # drops, comes back rekeyed
            await until(lambda: screen.problem is not None)
            for said in (screen.problem, screen.query_one(TopBar).status, notes(app)):
                assert "impersonating the VM" in said and "man-in-the-middle" in said
            assert "Press r to try again" not in screen.problem
            screen.problem = None
            await pilot.press("r")  # a fresh connection: refused the same way
            await until(lambda: screen.problem is not None)
            assert "impersonating the VM" in screen.problem and "Do not reconnect" in screen.problem
            assert not screen.connected or app.live.get(name).handle.ssh.state == "refused"
        finally:
            await cleanup(app, name, sim_cloud)
