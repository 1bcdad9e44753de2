"""The watchdog on a real simulated session: real SSH tunnel, real vLLM metrics, real destroy.

The session is provisioned at sim speed 1000 on the real clock; the watchdog alone runs on a manual
clock started at the real time, and each poll is one `check()`, so nothing waits for idle minutes.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from maider_tui import catalog
from maider_tui.clock import ManualClock, SystemClock
from maider_tui.ops.destroy import destroy_session
from maider_tui.ops.events import EventRecorder
from maider_tui.ops.provision import LaunchPlan, provision
from maider_tui.ops.watchdog import Watchdog, metrics_from_tunnel
from maider_tui.remote.ssh import generate_keypair
from maider_tui.remote.vllm import VllmClient
from maider_tui.settings import Settings, WatchdogSettings
from maider_tui.store import open_store
from tests.integration.simfix import sim_limits

MODEL = "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ"
GPU = "g2-gpu-rtx4000a1-s"
LIMITS = sim_limits(1000)
SETTINGS = WatchdogSettings(timeout_minutes=30, warning_minutes=5, poll_seconds=60)
KEY = generate_keypair("client")


def plan() -> LaunchPlan:
    gpu = catalog.gpu_type(GPU)
    return LaunchPlan(region=gpu.regions[0], gpu_type=gpu, config=catalog.fit(MODEL, gpu).to_vllm_config())


@pytest.fixture
async def session(sim_cloud, paths):
    """A ready session on the sim, its watchdog on a manual clock, and what the test needs around it."""
    store = open_store(paths.database)
    provider = sim_cloud.provider(store)
    handle = await provision(plan(), provider=provider, store=store, paths=paths, settings=Settings(),
                             clock=SystemClock(), emit=EventRecorder(), hf_token=None, limits=LIMITS)
    clock = ManualClock(start=time.time())
    notes: list[tuple[str, str]] = []

    async def destroy():
        return await destroy_session(handle.name, provider=provider, store=store, clock=SystemClock(),
                                     emit=EventRecorder(), ssh=handle.ssh, paths=paths)

    dog = Watchdog(handle.name, metrics=metrics_from_tunnel(handle.local_port), destroy=destroy, store=store,
                   clock=clock, settings=SETTINGS, notify=lambda t, m: notes.append((t, m)))
    yield type("Session", (), {"handle": handle, "store": store, "provider": provider, "clock": clock,
                               "dog": dog, "notes": notes})
    await handle.close()
    if await provider.get(handle.vm.id) is not None:
        await provider.destroy(handle.vm.id)
    store.close()


async def test_idle_session_is_destroyed(sim_cloud, session):
    dog, clock = session.dog, session.clock
    await dog.check()
    assert dog.state == "watching" and not dog.unreachable
    clock.advance(25 * 60)
    await dog.check()
    assert dog.state == "warning" and len(session.notes) == 1
    clock.advance(5 * 60)
    await dog.check()
    assert dog.state == "destroyed"
    assert await session.provider.get(session.handle.vm.id) is None
    with pytest.raises(LookupError):
        sim_cloud.vm(session.handle.vm.id)
    record = session.store.get_session(session.handle.name)
    assert record.state == "destroyed" and record.ended_at is not None
    assert any("destroyed after 30 min idle" in e.message for e in session.store.events(record.name))


async def test_streaming_request_holds_the_session(session):
    dog, clock = session.dog, session.clock
    await dog.check()
    clock.advance(29 * 60)

    async def stream() -> int:
        async with VllmClient(session.handle.endpoint) as vllm:
            async for event in vllm.stream_chat(MODEL, [{"role": "user", "content": "write a poem"}],
                                                max_tokens=120):
                last = event
        return last.output_tokens

    with dog.own_requests():  # even the app's own stream: not activity, but never cut mid-stream
        streaming = asyncio.create_task(stream())
        for _ in range(200):
            await dog.check()
            if dog.last_metrics and dog.last_metrics.requests_running > 0:
                break
            await asyncio.sleep(0.02)
        assert dog.last_metrics.requests_running > 0
        clock.advance(10 * 60)  # far past the deadline
        await dog.check()
        assert dog.state == "warning" and "streaming" in dog.message and dog.remaining_s == 0
        assert await streaming > 0
    await dog.check()
    assert dog.state == "destroyed"
    assert await session.provider.get(session.handle.vm.id) is None


async def test_user_traffic_resets_the_countdown(session):
    dog, clock = session.dog, session.clock
    await dog.check()
    clock.advance(20 * 60)
    async with VllmClient(session.handle.endpoint) as vllm:
        answer = await vllm.complete_chat(MODEL, [{"role": "user", "content": "hi"}], max_tokens=4)
    assert answer.completion_tokens
    await dog.check()
    assert dog.state == "watching" and dog.remaining_s == 30 * 60
    assert session.store.get_session(session.handle.name).last_activity == clock.now()


async def test_the_sessions_own_watchdog_minutes_win(sim_cloud, paths):
    """Set 5 in the review with the global setting at 1: the countdown says 5 minutes, and the VM
    lives 5 idle minutes, not 1."""
    store = open_store(paths.database)
    provider = sim_cloud.provider(store)
    own = plan()
    own = LaunchPlan(region=own.region, gpu_type=own.gpu_type, config=own.config,
                     options={"watchdog_minutes": 5})
    handle = await provision(own, provider=provider, store=store, paths=paths, settings=Settings(),
                             clock=SystemClock(), emit=EventRecorder(), hf_token=None, limits=LIMITS)
    clock = ManualClock(start=time.time())

    async def destroy():
        return await destroy_session(handle.name, provider=provider, store=store, clock=SystemClock(),
                                     emit=EventRecorder(), ssh=handle.ssh, paths=paths)

    try:
        store.update_session(handle.name, extra={**store.get_session(handle.name).extra,
                                                 "idle_since": clock.now()})
        dog = Watchdog(handle.name, metrics=metrics_from_tunnel(handle.local_port), destroy=destroy,
                       store=store, clock=clock, notify=lambda t, m: None,
                       settings=WatchdogSettings(timeout_minutes=1, warning_minutes=1, poll_seconds=60))
        await dog.check()
        assert dog.state == "watching" and dog.remaining_s == 5 * 60 and "5 min idle" in dog.message
        clock.advance(2 * 60)
        await dog.check()
        assert dog.state == "watching" and await provider.get(handle.vm.id) is not None
        clock.advance(2 * 60)
        await dog.check()
        assert dog.state == "warning"
        clock.advance(60)
        await dog.check()
        assert dog.state == "destroyed" and await provider.get(handle.vm.id) is None
    finally:
        await handle.close()
        if await provider.get(handle.vm.id) is not None:
            await provider.destroy(handle.vm.id)
        store.close()


async def kept_vm(sim_cloud, store, name: str, state: str) -> int:
    """A session whose launch stopped with its VM kept (it bills, nothing serves); its VM id."""
    from maider_tui.cloud import CreateSpec
    from maider_tui.store import SessionRecord

    provider = sim_cloud.provider(store)
    vm = await provider.create(CreateSpec(label=name, region=catalog.gpu_type(GPU).regions[0], type=GPU,
                                          image="linode/ubuntu24.04", authorized_keys=[KEY.public_line]))
    store.add_session(SessionRecord(name=name, state=state, stage="vllm", instance_id=vm.id, gpu_type=GPU,
                                    model=MODEL, hourly_usd=0.52, created_at=time.time() - 3600))
    return vm.id


@pytest.mark.parametrize("state", ["failed", "booting", "unreachable"])
async def test_a_kept_vm_is_warned_about_and_destroyed_at_its_deadline(sim_cloud, paths, state):
    """Failed and kept, interrupted mid-launch, adopted and unreachable: no vLLM to read, yet the VM
    goes at kept + max(timeout, inspect_minutes), warned first, through the app's destroy."""
    from maider_tui.ops.live import LiveSessions

    store = open_store(paths.database)
    clock = ManualClock(start=time.time())
    notes: list[tuple[str, str]] = []
    settings = Settings(watchdog=WatchdogSettings(timeout_minutes=30, warning_minutes=5, inspect_minutes=60))
    live = LiveSessions(store=store, paths=paths, settings=settings, clock=clock,
                        provider=lambda: sim_cloud.provider(store), hf_token=lambda: None,
                        notify=lambda t, m: notes.append((t, m)))
    vm_id = await kept_vm(sim_cloud, store, "kept-1", state)
    try:
        assert live.watch_all() == ["kept-1"]
        dog = live.get("kept-1").watchdog
        assert dog.kept and dog.remaining_s == 60 * 60
        live.get("kept-1").watchdog_task.cancel()  # each poll is one check() below
        await dog.check()
        assert dog.state == "watching" and store.get_session("kept-1").extra["kept_since"] == clock.now()
        clock.advance(50 * 60)
        await dog.check()
        assert dog.state == "watching" and not notes
        clock.advance(6 * 60)
        await dog.check()
        assert dog.state == "warning" and len(notes) == 1 and "destroyed in about 4 min" in notes[0][1]
        clock.advance(4 * 60)
        await dog.check()
        assert dog.state == "destroyed"
        assert await sim_cloud.provider(store).get(vm_id) is None
        assert store.get_session("kept-1").state == "destroyed"
        assert any("destroyed after 60 min kept" in e.message for e in store.events("kept-1"))
    finally:
        await live.close_all()
        store.close()


async def test_a_kept_vms_deadline_survives_a_restart_and_resume_resets_it(sim_cloud, paths):
    from maider_tui.ops.live import LiveSessions

    store = open_store(paths.database)
    clock = ManualClock(start=time.time())
    settings = Settings(watchdog=WatchdogSettings(timeout_minutes=30, warning_minutes=5))

    def sessions() -> LiveSessions:
        return LiveSessions(store=store, paths=paths, settings=settings, clock=clock,
                            provider=lambda: sim_cloud.provider(store), hf_token=lambda: None,
                            notify=lambda t, m: None)

    await kept_vm(sim_cloud, store, "kept-2", "failed")
    first = sessions()
    first.watch_all()
    clock.advance(20 * 60)
    await first.close_all()  # the app quits; 20 of its 30 minutes are gone
    second = sessions()
    try:
        second.watch_all()
        assert second.get("kept-2").watchdog.remaining_s == 10 * 60
        second.watching.unkeep("kept-2")  # what resuming it does first
        assert "kept_since" not in store.get_session("kept-2").extra
        second.watch_all()
        assert second.get("kept-2").watchdog.remaining_s == 30 * 60
    finally:
        await second.close_all()
        await sim_cloud.provider(store).destroy(store.get_session("kept-2").instance_id)
        store.close()


async def test_an_orphan_vm_is_destroyed_at_its_deadline_counted_from_when_first_found(sim_cloud, paths):
    from maider_tui.cloud import CreateSpec
    from maider_tui.ops.orphan_watch import OrphanWatch
    from maider_tui.ops.recover import recover

    store = open_store(paths.database)
    clock = ManualClock(start=time.time())
    provider = sim_cloud.provider(store)
    vm = await provider.create(CreateSpec(label="stray", region=catalog.gpu_type(GPU).regions[0], type=GPU,
                                          image="linode/ubuntu24.04", authorized_keys=[KEY.public_line]))
    notes: list[tuple[str, str]] = []
    settings = WatchdogSettings(timeout_minutes=30, warning_minutes=5)

    def watch() -> OrphanWatch:
        async def give():
            return provider
        return OrphanWatch(store=store, clock=clock, settings=settings, provider=give,
                           notify=lambda t, m: notes.append((t, m)))

    try:
        first = watch()
        first.set_orphans((await recover(provider=provider, store=store, clock=clock)).orphans)
        assert first.remaining_s(vm.id) == 30 * 60
        clock.advance(20 * 60)
        second = watch()  # a restart, or `maider-tui watch`: the same deadline
        second.set_orphans((await recover(provider=provider, store=store, clock=clock)).orphans)
        assert second.remaining_s(vm.id) == 10 * 60
        clock.advance(6 * 60)
        await second.check()
        assert len(notes) == 1 and "Adopt it" in notes[0][1] and await provider.get(vm.id) is not None
        clock.advance(4 * 60)
        await second.check()
        assert await provider.get(vm.id) is None and not second.orphans
        assert "destroyed" in notes[-1][0]
    finally:
        if await provider.get(vm.id) is not None:
            await provider.destroy(vm.id)
        store.close()


async def test_an_orphan_another_home_made_is_listed_but_never_counted_down_here(sim_cloud, paths):
    """The same Linode account used from two machines: each VM carries the home that made it, and a
    VM of the other home is that home's session, not an orphan to destroy from here."""
    from maider_tui.cloud import CreateSpec, home_tag
    from maider_tui.ops.orphan_watch import OrphanWatch
    from maider_tui.ops.recover import recover

    store = open_store(paths.database)
    clock = ManualClock(start=time.time())
    provider = sim_cloud.provider(store)
    other = home_tag("/home/someone/.local/share/maider-tui", host="the-other-laptop")
    theirs = await provider.create(CreateSpec(label="their-session", region=catalog.gpu_type(GPU).regions[0],
                                              type=GPU, image="linode/ubuntu24.04",
                                              authorized_keys=[KEY.public_line], tags=[other]))
    notes: list[tuple[str, str]] = []

    async def give():
        return provider

    try:
        (orphan,) = (await recover(provider=provider, store=store, clock=clock)).orphans
        assert orphan.elsewhere and "another machine" in orphan.reason
        watch = OrphanWatch(store=store, clock=clock, settings=WatchdogSettings(timeout_minutes=30),
                            provider=give, notify=lambda t, m: notes.append((t, m)))
        watch.set_orphans([orphan])
        assert watch.remaining_s(theirs.id) is None
        clock.advance(3 * 3600)
        await watch.check()
        assert await provider.get(theirs.id) is not None and notes == []
    finally:
        await provider.destroy(theirs.id)
        store.close()


async def test_a_kept_vm_resumed_elsewhere_is_then_watched_by_use(sim_cloud, paths):
    """Another window resumed it to ready: the kept countdown stops (it would destroy a serving VM)
    and an idle watchdog takes its place."""
    from maider_tui.ops.live import LiveSessions

    store = open_store(paths.database)
    clock = ManualClock(start=time.time())
    live = LiveSessions(store=store, paths=paths, settings=Settings(), clock=clock,
                        provider=lambda: sim_cloud.provider(store), hf_token=lambda: None,
                        notify=lambda t, m: None)
    vm_id = await kept_vm(sim_cloud, store, "kept-3", "failed")
    try:
        live.watch_all()
        kept = live.get("kept-3").watchdog
        assert kept.kept
        store.update_session("kept-3", state="ready", ready_at=clock.now())
        await kept.check()
        assert kept.state == "stopped" and kept.now_serving
        for _ in range(100):
            if live.get("kept-3").watchdog is not kept:
                break
            await asyncio.sleep(0.01)
        dog = live.get("kept-3").watchdog
        assert dog is not kept and not dog.kept and live.get("kept-3").lock is not None
    finally:
        await live.close_all()
        await sim_cloud.provider(store).destroy(vm_id)
        store.close()
