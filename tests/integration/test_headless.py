"""`maider-tui ls`, `down` and `watch` against the simulated cloud, with an injected context."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time

import pytest

from maider_tui import catalog
from maider_tui.clock import FastClock, SystemClock
from maider_tui.cloud import CreateSpec
from maider_tui.commands import add_parsers as add_headless_parsers
from maider_tui.commands.sessions import run_down, run_ls
from maider_tui.commands.watch import watch_sessions
from maider_tui.ops.events import EventRecorder
from maider_tui.ops.owner import owner_of, try_acquire
from maider_tui.ops.provision import LaunchPlan, provision
from maider_tui.remote.ssh import generate_keypair
from maider_tui.settings import NotificationSettings, Settings, WatchdogSettings
from maider_tui.store import SessionRecord
from tests.integration.simfix import sim_limits

MODEL = "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ"
GPU = "g2-gpu-rtx4000a1-s"
CLIENT = generate_keypair("client")
LIMITS = sim_limits(1000)


def add_vm_session(context, name: str) -> int:
    """A session whose VM exists in the sim (booting is enough to destroy it); returns the VM id."""
    gpu = catalog.gpu_type(GPU)

    async def create():
        return await context.provider.create(CreateSpec(label=name, region=gpu.regions[0], type=GPU,
                                                        image="linode/ubuntu24.04",
                                                        authorized_keys=[CLIENT.public_line]))

    vm = asyncio.run(create())
    context.store.add_session(SessionRecord(name=name, state="booting", instance_id=vm.id, gpu_type=GPU,
                                            model=MODEL, hourly_usd=vm.hourly_usd or 0.52,
                                            created_at=context.clock.now() - 3600))
    return vm.id


def vm_exists(context, vm_id: int) -> bool:
    return asyncio.run(context.provider.get(vm_id)) is not None


def test_ls_lists_sessions_with_cost(sim_context, capsys):
    context = sim_context()
    now = context.clock.now()
    context.store.add_session(SessionRecord(name="live-one", state="ready", gpu_type=GPU, model=MODEL,
                                            hourly_usd=0.52, created_at=now - 2 * 3600))
    context.store.add_session(SessionRecord(name="old-one", state="destroyed", gpu_type=GPU, model=MODEL,
                                            hourly_usd=0.52, created_at=now - 9000, ended_at=now - 5400,
                                            cost_usd=0.52))
    assert run_ls(argparse.Namespace(all=False), context) == 0
    out = capsys.readouterr().out
    assert "live-one" in out and "old-one" not in out and "$1.04" in out
    assert "1 live session: $0.52/h in total." in out
    assert run_ls(argparse.Namespace(all=True), context) == 0
    out = capsys.readouterr().out
    assert "old-one" in out and "destroyed" in out and "1 live session: $0.52/h" in out


def test_down_destroys_and_prints_the_receipt(sim_context, capsys):
    context = sim_context()
    vm_id = add_vm_session(context, "down-me")
    assert run_down(argparse.Namespace(session="down-me"), context) == 0
    assert "Destroyed down-me: 1 h at $" in capsys.readouterr().out
    assert not vm_exists(context, vm_id)
    assert context.store.get_session("down-me").state == "destroyed"
    assert run_down(argparse.Namespace(session="down-me"), context) == 0
    assert "already destroyed" in capsys.readouterr().out
    assert run_down(argparse.Namespace(session="nobody"), context) == 1


def test_down_with_the_api_failing_keeps_the_session(sim_context, sim_cloud, capsys):
    context = sim_context()
    vm_id = add_vm_session(context, "keep-me")
    sim_cloud.faults.api_error_status, sim_cloud.faults.api_error_burst = 401, 1
    try:
        assert run_down(argparse.Namespace(session="keep-me"), context) == 1
    finally:
        sim_cloud.faults.api_error_status, sim_cloud.faults.api_error_burst = 503, 0
    assert "was not destroyed" in capsys.readouterr().err
    record = context.store.get_session("keep-me")
    assert record.state == "booting" and not record.ended and vm_exists(context, vm_id)
    assert run_down(argparse.Namespace(session="keep-me"), context) == 0  # and it can be retried


def test_down_without_a_token_says_so(make_context, capsys):
    context = make_context()
    context.store.add_session(SessionRecord(name="s1", state="ready"))
    assert run_down(argparse.Namespace(session="s1"), context) == 1
    assert "No Linode token" in capsys.readouterr().err
    assert not context.store.get_session("s1").ended


def test_watch_help_documents_it(capsys):
    parser = argparse.ArgumentParser(prog="maider-tui")
    add_headless_parsers(parser.add_subparsers(dest="command"))
    with pytest.raises(SystemExit):
        parser.parse_args(["watch", "--help"])
    text = capsys.readouterr().out
    assert "SIGTERM" in text and "idle" in text and "SESSION" in text
    assert parser.parse_args(["down", "s1"]).session == "s1"
    assert parser.parse_args(["ls", "--all"]).all


async def ready_session(context):
    """Provision a session on the sim, then close its connection as the app does when it quits."""
    gpu = catalog.gpu_type(GPU)
    handle = await provision(LaunchPlan(region=gpu.regions[0], gpu_type=gpu,
                                        config=catalog.fit(MODEL, gpu).to_vllm_config()),
                             provider=context.provider, store=context.store, paths=context.paths,
                             settings=Settings(), clock=SystemClock(), emit=EventRecorder(), hf_token=None,
                             limits=LIMITS)
    await handle.close()  # the watcher reconnects by itself
    return handle


async def test_watch_destroys_an_idle_session_and_exits(sim_context, sim_cloud):
    context = sim_context()
    handle = await ready_session(context)
    # Two idle minutes at 120x: about a second of real time; polls every (sim) second.
    context.clock = FastClock(120)
    context.settings.settings = Settings(
        watchdog=WatchdogSettings(timeout_minutes=2, warning_minutes=1, poll_seconds=1),
        notifications=NotificationSettings(desktop=False))
    lines: list[str] = []
    started = time.monotonic()
    code = await asyncio.wait_for(watch_sessions(context, [], out=lines.append), 20)
    assert code == 0 and time.monotonic() - started < 15
    text = "\n".join(lines)
    assert "Watching 1 session" in text and "destroying soon" in text and "destroyed after 2 min idle" in text
    assert await context.provider.get(handle.vm.id) is None
    record = context.store.get_session(handle.name)
    assert record.state == "destroyed" and record.owner is None
    assert owner_of(context.paths, handle.name) is None


async def test_watch_skips_a_session_another_process_watches(sim_context):
    context = sim_context()
    context.store.add_session(SessionRecord(name="taken", state="ready"))
    lines: list[str] = []
    with try_acquire(context.paths, "taken"):
        assert await watch_sessions(context, ["taken", "ghost"], out=lines.append) == 0
    text = "\n".join(lines)
    assert "taken is already watched by" in text and "no session named 'ghost'" in text
    assert "Nothing left to watch." in text


async def test_watch_stops_on_sigterm_and_releases_the_lock(sim_context):
    context = sim_context()
    handle = await ready_session(context)
    context.clock = SystemClock()
    lines: list[str] = []
    watcher = asyncio.create_task(watch_sessions(context, [handle.name], out=lines.append,
                                                 handle_signals=True))
    for _ in range(500):
        if owner_of(context.paths, handle.name) and any(line.startswith("Watching") for line in lines):
            break
        await asyncio.sleep(0.01)
    assert owner_of(context.paths, handle.name) == context.store.get_session(handle.name).owner
    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(watcher, 10) == 0
    assert "Stopped watching; the VMs keep running." in lines
    assert owner_of(context.paths, handle.name) is None
    assert context.store.get_session(handle.name).owner is None
    assert await context.provider.get(handle.vm.id) is not None, "stopping the watcher never destroys"
    await context.provider.destroy(handle.vm.id)


async def test_watch_destroys_a_kept_vm_and_an_orphan_at_their_deadlines(sim_context):
    """A launch that failed with its VM kept and an orphan VM bill with no vLLM to read: `watch`
    still watches them (it said "No live session to watch." and left both running)."""
    context = sim_context()
    gpu = catalog.gpu_type(GPU)
    kept_id = await asyncio.to_thread(add_vm_session, context, "kept-failed")
    context.store.update_session("kept-failed", state="failed")
    stray = await context.provider.create(CreateSpec(label="stray", region=gpu.regions[0], type=GPU,
                                                     image="linode/ubuntu24.04",
                                                     authorized_keys=[CLIENT.public_line]))
    context.clock = FastClock(120)
    context.settings.settings = Settings(
        watchdog=WatchdogSettings(timeout_minutes=2, warning_minutes=1, poll_seconds=1),
        notifications=NotificationSettings(desktop=False))
    lines: list[str] = []
    code = await asyncio.wait_for(watch_sessions(context, [], out=lines.append), 30)
    text = "\n".join(lines)
    assert code == 0 and "No live session" not in text
    assert "Watching 1 session and 1 orphan VM" in text
    assert "kept VM, destroying soon" in text and "Orphan VM" in text and "destroying soon" in text
    assert "destroyed after 2 min kept" in text
    assert await context.provider.get(kept_id) is None
    assert await context.provider.get(stray.id) is None
    assert context.store.get_session("kept-failed").state == "destroyed"


def test_ls_shows_each_sessions_countdown_with_its_own_minutes(sim_context, capsys):
    context = sim_context()
    now = context.clock.now()
    context.settings.settings = Settings(watchdog=WatchdogSettings(timeout_minutes=1))
    context.store.add_session(SessionRecord(name="own-five", state="ready", gpu_type=GPU, model=MODEL,
                                            hourly_usd=0.52, created_at=now - 600, instance_id=1,
                                            options={"watchdog_minutes": 5}, extra={"idle_since": now - 60}))
    context.store.add_session(SessionRecord(name="kept-one", state="failed", gpu_type=GPU, model=MODEL,
                                            hourly_usd=0.52, created_at=now - 600, instance_id=2,
                                            extra={"kept_since": now - 30}))
    assert run_ls(argparse.Namespace(all=False), context) == 0
    out = capsys.readouterr().out
    assert "04:00" in out and "00:30 kept" in out
