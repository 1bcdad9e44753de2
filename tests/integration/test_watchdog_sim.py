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
from maider_tui.ops.readiness import ReadinessLimits
from maider_tui.ops.watchdog import Watchdog, metrics_from_tunnel
from maider_tui.remote.vllm import VllmClient
from maider_tui.settings import Settings, WatchdogSettings
from maider_tui.store import open_store

MODEL = "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ"
GPU = "g2-gpu-rtx4000a1-s"
LIMITS = ReadinessLimits(running_s=20, ssh_s=20, cloud_init_s=20, vllm_s=20, poll_s=0.02, time_scale=1000)
SETTINGS = WatchdogSettings(timeout_minutes=30, warning_minutes=5, poll_seconds=60)


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
