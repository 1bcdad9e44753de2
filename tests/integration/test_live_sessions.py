"""The app-level live sessions: a launched session is watched from this process, and only here."""

from __future__ import annotations

import asyncio
import subprocess

from maider_tui import catalog
from maider_tui.clock import SystemClock
from maider_tui.deploy.compose import ComposeOptions
from maider_tui.ops.live import LiveSessions
from maider_tui.ops.owner import owner_of, try_acquire
from maider_tui.ops.provision import LaunchPlan
from maider_tui.settings import Settings
from maider_tui.store import open_store
from tests.integration.simfix import sim_limits

LIMITS = sim_limits(1000)


def _plan() -> LaunchPlan:
    gpu = catalog.gpu_type("g2-gpu-rtx4000a1-s")
    config = catalog.fit("Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", gpu).to_vllm_config()
    return LaunchPlan(region=gpu.regions[0], gpu_type=gpu, config=config, compose=ComposeOptions())


async def test_a_launched_session_is_watched_here_and_released_on_destroy(sim_cloud, paths):
    store = open_store(paths.database)
    notes: list[tuple[str, str]] = []
    live = LiveSessions(store=store, paths=paths, settings=Settings(), clock=SystemClock(),
                        provider=lambda: sim_cloud.provider(store=store), hf_token=lambda: None,
                        limits=LIMITS, notify=lambda title, message: notes.append((title, message)))
    try:
        session = await live.launch(_plan())
        assert session.watchdog is not None and session.watchdog.state == "watching"
        assert session.watchdog_task is not None and not session.watchdog_task.done()
        # Another process (here: another lock attempt) cannot watch the same session.
        assert try_acquire(paths, session.name) is None
        assert owner_of(paths, session.name) is not None
        receipt = await live.destroy(session.name)
        assert receipt.cost_usd >= 0
        assert live.get(session.name) is None
        lock = try_acquire(paths, session.name)
        assert lock is not None
        lock.release()
    finally:
        await live.close_all()
        store.close()


async def test_without_a_notifier_nothing_is_watched_automatically(sim_cloud, paths):
    store = open_store(paths.database)
    live = LiveSessions(store=store, paths=paths, settings=Settings(), clock=SystemClock(),
                        provider=lambda: sim_cloud.provider(store=store), hf_token=lambda: None, limits=LIMITS)
    try:
        session = await live.launch(_plan())
        assert session.watchdog is None
        assert try_acquire(paths, session.name) is not None
    finally:
        await live.close_all()
        store.close()


async def test_a_session_another_window_watches_is_taken_over_once_it_lets_go(sim_cloud, paths, monkeypatch):
    import maider_tui.ops.watching as watching_module

    monkeypatch.setattr(watching_module, "TAKE_OVER_POLL_S", 0.02)
    store = open_store(paths.database)
    live = LiveSessions(store=store, paths=paths, settings=Settings(), clock=SystemClock(),
                        provider=lambda: sim_cloud.provider(store=store), hf_token=lambda: None, limits=LIMITS)
    try:
        session = await live.launch(_plan())
        other_window = try_acquire(paths, session.name, store=store)
        assert live.start_watchdog(session.name, lambda title, message: None) is None
        assert session.watchdog is None and store.get_session(session.name).owner == other_window.owner
        other_window.release()  # the other window quits
        for _ in range(200):
            if session.watchdog is not None:
                break
            await asyncio.sleep(0.01)
        assert session.watchdog is not None and session.lock is not None and session.lock.held
        assert owner_of(paths, session.name) == session.lock.owner == store.get_session(session.name).owner
    finally:
        await live.close_all()
        store.close()


async def test_two_destroys_of_one_session_at_once_delete_its_vm_once(sim_cloud, paths):
    """As two processes would (flock locks of two open files conflict within one process too)."""
    store = open_store(paths.database)
    make = lambda: LiveSessions(store=store, paths=paths, settings=Settings(), clock=SystemClock(),  # noqa: E731
                                provider=lambda: sim_cloud.provider(store=store), hf_token=lambda: None,
                                limits=LIMITS)
    first, second = make(), make()
    waited = []
    try:
        session = await first.launch(_plan())
        instance_id = store.get_session(session.name).instance_id
        receipts = await asyncio.gather(first.destroy(session.name, on_wait=lambda: waited.append("first")),
                                        second.destroy(session.name, on_wait=lambda: waited.append("second")))
        assert len(waited) == 1  # whichever came second waited for the other
        assert receipts[0].cost_usd == receipts[1].cost_usd
        assert sim_cloud.world.requests[f"DELETE /linode/instances/{instance_id}"] == 1
        assert [e.kind for e in store.events(session.name)].count("destroyed") == 1
    finally:
        await first.close_all()
        await second.close_all()
        store.close()


# --- the endpoint across restarts, and the ssh files -------------------------------------------------

def _live(sim_cloud, store, paths, events=None) -> LiveSessions:
    live = LiveSessions(store=store, paths=paths, settings=Settings(), clock=SystemClock(),
                        provider=lambda: sim_cloud.provider(store=store), hf_token=lambda: None, limits=LIMITS)
    if events is not None:
        live.subscribe(events.append)
    return live


def _aider_base(paths, name: str) -> str:
    from maider_tui.ops.session_files import session_dir

    text = (session_dir(paths, name) / "aider-env").read_text()
    return next(line for line in text.splitlines() if "OPENAI_API_BASE=" in line).split("=", 1)[1]


async def test_attach_after_a_restart_keeps_the_local_port(sim_cloud, paths):
    store = open_store(paths.database)
    first = _live(sim_cloud, store, paths)
    try:
        session = await first.launch(_plan())
        port = session.handle.local_port
        await first.close_all()  # the app quits (or is killed): its listener is gone, the VM stays
        second = _live(sim_cloud, store, paths)
        again = await second.attach(session.name)
        assert again.handle.local_port == port
        assert again.handle.endpoint == f"http://127.0.0.1:{port}/v1" == _aider_base(paths, session.name)
        assert store.get_session(session.name).extra["local_port"] == port
        await second.destroy(session.name)
    finally:
        await first.close_all()
        store.close()


async def test_a_taken_port_moves_the_endpoint_and_rewrites_the_aider_files(sim_cloud, paths):
    import socket

    from maider_tui.ops.events import WarningEvent

    store = open_store(paths.database)
    first = _live(sim_cloud, store, paths)
    events: list = []
    second = _live(sim_cloud, store, paths, events)
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is no bar
    try:
        session = await first.launch(_plan())
        old = session.handle.local_port
        await first.close_all()
        squatter.bind(("127.0.0.1", old))  # another program took the port while the app was down
        squatter.listen()
        again = await second.attach(session.name)
        new = again.handle.local_port
        assert new != old
        assert _aider_base(paths, session.name) == f"http://127.0.0.1:{new}/v1" == again.handle.endpoint
        assert store.get_session(session.name).extra["local_port"] == new
        said = [e.message for e in events if isinstance(e, WarningEvent)]
        assert any(str(old) in m and f"127.0.0.1:{new}" in m and "aider" in m for m in said), said
        await second.destroy(session.name)
    finally:
        squatter.close()
        await first.close_all()
        await second.close_all()
        store.close()


def _ssh_batch(paths, name: str, command: str) -> "subprocess.CompletedProcess[str]":
    """The system's ssh, non-interactive: no prompt for a host key or a password can save it."""

    from maider_tui.ops.session_files import ssh_argv

    argv = ssh_argv(paths, name)
    assert argv is not None, "no ssh_config entry for the session"
    return subprocess.run([argv[0], "-o", "BatchMode=yes", *argv[1:], command], capture_output=True, text=True,
                          timeout=20)


async def test_a_live_session_has_an_ssh_entry_with_its_pinned_key_until_it_ends(sim_cloud, paths):
    import shutil

    import pytest

    from maider_tui.ops.session_files import ssh_config_path

    if shutil.which("ssh") is None:
        pytest.skip("no ssh program")
    store = open_store(paths.database)
    live = _live(sim_cloud, store, paths)
    try:
        kept = await live.launch(_plan())
        ended = await live.launch(_plan())
        config = ssh_config_path(paths).read_text()
        record = store.get_session(kept.name)
        for name in (kept.name, ended.name):
            assert f"Host maider-{name}\n" in config
        block = config.split(f"Host maider-{kept.name}\n", 1)[1].split("Host ", 1)[0]
        assert f"HostName {record.ip}" in block and f"Port {record.ssh_port}" in block and "User root" in block
        assert "StrictHostKeyChecking yes" in block and "UserKnownHostsFile" in block
        ran = await asyncio.to_thread(_ssh_batch, paths, kept.name, "echo pinned")
        assert ran.returncode == 0 and ran.stdout.strip() == "pinned", ran.stderr

        await live.destroy(ended.name)
        config = ssh_config_path(paths).read_text()
        assert f"Host maider-{ended.name}\n" not in config and f"Host maider-{kept.name}\n" in config

        sim_cloud.world.vanish(record.instance_id)  # deleted outside the app
        assert await live.vm_gone(kept.name)
        assert f"Host maider-{kept.name}\n" not in ssh_config_path(paths).read_text()
    finally:
        await live.close_all()


async def test_a_launch_running_here_is_not_counted_down_elsewhere_as_interrupted(sim_cloud, paths):
    """Its VM exists and it is not ready yet, as an interrupted launch looks: another window's
    start-up check must not give it a deadline (it would destroy a long model download), and it
    is watched from here once it ends."""
    store = open_store(paths.database)
    make = lambda: LiveSessions(store=store, paths=paths, settings=Settings(), clock=SystemClock(),  # noqa: E731
                                provider=lambda: sim_cloud.provider(store=store), hf_token=lambda: None,
                                limits=LIMITS, notify=lambda title, message: None)
    here, other_window = make(), make()
    sim_cloud.faults.slow_boot_factor = 400.0  # holds the launch at "running" for a while
    launch = asyncio.create_task(here.launch(_plan()))
    try:
        for _ in range(500):
            records = [r for r in store.list_sessions(include_ended=False) if r.instance_id is not None]
            if records:
                break
            await asyncio.sleep(0.01)
        [record] = records
        assert record.state != "ready" and not launch.done()
        assert other_window.watch_all() == []
        assert other_window.get(record.name) is None or other_window.get(record.name).watchdog is None
        assert owner_of(paths, record.name) == here.get(record.name).lock.owner
        # Nor here: its own start-up check (`c`) must not count its launch down either.
        assert here.watch_all() == [] and here.get(record.name).watchdog is None
    finally:
        sim_cloud.faults.slow_boot_factor = 1.0
        launch.cancel()
        await asyncio.gather(launch, return_exceptions=True)
        await other_window.close_all()
        await here.close_all()
        for vm in sim_cloud.world.list():
            await sim_cloud.provider(store=store).destroy(vm.id)
        store.close()
