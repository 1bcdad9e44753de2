"""ops.telemetry: the nvidia-smi stream survives drops; tokens/s come from counter deltas."""

from __future__ import annotations

import asyncio

import pytest

from maider_tui.clock import ManualClock
from maider_tui.ops.telemetry import MetricsPoller, TokenRate, gpu_snapshots
from maider_tui.remote.gpu import nvidia_smi_command
from maider_tui.remote.ssh import SshClosed, SshDropped
from maider_tui.remote.vllm import VllmMetrics


def rows(tick: int, gpus: int = 2) -> list[str]:
    return [f"{i}, NVIDIA RTX 4000 Ada Generation, {1000 + tick}, 20475, {tick % 100}, 60, 110.5"
            for i in range(gpus)]


class FakeSsh:
    """Each `stream` call plays the next script: a list of lines, ending in an exception or not."""

    def __init__(self, *scripts) -> None:
        self.scripts = list(scripts)
        self.commands: list[str] = []

    async def stream(self, cmd: str):
        self.commands.append(cmd)
        if not self.scripts:
            raise SshClosed("the SSH session is closed")
        lines, error = self.scripts.pop(0)
        for line in lines:
            yield line
        if error is not None:
            raise error


async def collect(ssh, clock, n: int, statuses: list[str], **kwargs):
    got = []
    async for snapshot in gpu_snapshots(ssh, gpu_count=2, clock=clock, on_status=statuses.append, **kwargs):
        got.append(snapshot)
        if len(got) == n:
            break
    return got


async def test_stream_resumes_after_a_drop_with_backoff_on_the_clock():
    clock = ManualClock()
    ssh = FakeSsh((rows(1) + rows(2), SshDropped("connection lost")), (rows(3), None))
    statuses: list[str] = []
    task = asyncio.ensure_future(collect(ssh, clock, 3, statuses, backoff=(5.0,)))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not task.done()  # waiting on the clock's backoff, not spinning
    assert statuses == ["ok", "reconnecting"]
    clock.advance(5.0)
    got = await asyncio.wait_for(task, 1)
    assert [s.gpus[0].memory_used_mib for s in got] == [1001, 1002, 1003]
    assert statuses == ["ok", "reconnecting", "ok"]
    assert ssh.commands == [nvidia_smi_command(1000)] * 2


async def test_stream_ends_when_the_session_is_closed():
    clock = ManualClock()
    statuses: list[str] = []
    got = await asyncio.wait_for(collect(FakeSsh((rows(1), SshClosed("closed"))), clock, 5, statuses), 1)
    assert len(got) == 1 and len(got[0].gpus) == 2
    assert statuses == ["ok", "closed"]


async def test_backoff_grows_and_resets_after_data():
    clock = ManualClock()
    ssh = FakeSsh(([], SshDropped("x")), ([], SshDropped("y")), (rows(1), None))
    statuses: list[str] = []
    task = asyncio.ensure_future(collect(ssh, clock, 1, statuses, backoff=(1.0, 2.0)))
    for step in (1.0, 2.0):
        for _ in range(10):
            await asyncio.sleep(0)
        assert not task.done()
        clock.advance(step)
    got = await asyncio.wait_for(task, 1)
    assert len(got) == 1
    assert statuses == ["reconnecting", "ok"]


def test_token_rate_from_counter_deltas():
    rate = TokenRate()
    assert rate.update(1000, at=0.0) is None
    assert rate.update(1100, at=2.0) == pytest.approx(50.0)
    assert rate.update(1100, at=4.0) == 0.0
    assert rate.update(10, at=6.0) is None  # vLLM restarted: the counter went back
    assert rate.update(70, at=8.0) == pytest.approx(30.0)


async def test_poller_rates_and_errors():
    clock = ManualClock()
    counters = iter([100.0, 300.0])

    async def fetch():
        try:
            return VllmMetrics(generation_tokens_total=next(counters), kv_cache_usage=0.5, reported=True)
        except StopIteration:
            raise ConnectionError("tunnel down") from None

    poller = MetricsPoller(fetch, clock)
    first = await poller.poll()
    assert first.generation_tok_s is None and first.tokens_generated == 100
    clock.advance(2.0)
    second = await poller.poll()
    assert second.generation_tok_s == pytest.approx(100.0)
    third = await poller.poll()
    assert third.metrics is None and "tunnel down" in third.error and third.tokens_generated is None


async def test_a_server_whose_health_fails_reads_as_down_even_with_metrics():
    """A vLLM whose engine died still serves /metrics: its numbers are not load."""
    healthy = [True, False]

    async def fetch():
        return VllmMetrics(generation_tokens_total=10.0, reported=True)

    async def health():
        return healthy.pop(0)

    poller = MetricsPoller(fetch, ManualClock(), health=health)
    assert (await poller.poll()).metrics is not None
    down = await poller.poll()
    assert down.metrics is None and "/health fails" in down.error


async def test_a_session_over_two_vms_streams_both_as_one_snapshot_per_head_tick():
    from maider_tui.ops.telemetry import cluster_snapshots

    clock = ManualClock()

    class PacedHead(FakeSsh):
        async def stream(self, cmd: str):
            for tick in (1, 2, 3):
                for line in rows(tick):
                    yield line
                await asyncio.sleep(0.01)  # a tick a while: the worker's first tick is in meanwhile

    head = PacedHead()
    worker = FakeSsh((rows(7), SshDropped("connection lost")))
    statuses: list[str] = []
    got = []
    async for snapshot in cluster_snapshots([head, worker], gpus_per_node=2, clock=clock, backoff=(60.0,),
                                            on_status=statuses.append):
        got.append(snapshot)
        if len(got) == 3:
            break
    assert all(s.per_node == 2 and [g.index for g in s.gpus] == [0, 1, 2, 3] for s in got)
    assert [s.gpus[0].memory_used_mib for s in got] == [1001, 1002, 1003]  # the head's own ticks
    assert got[-1].gpus[2].memory_used_mib == 1007  # the worker's latest, GPU 0 of VM 1 as GPU 2
    assert "reconnecting" in statuses  # a worker's dropped stream shows


async def test_a_worker_silent_for_three_intervals_shows_no_values_not_stale_ones():
    from maider_tui.ops.telemetry import cluster_snapshots

    clock = ManualClock()

    class SlowHead(FakeSsh):
        async def stream(self, cmd: str):
            for tick in (1, 2):
                for line in rows(tick):
                    yield line
                clock.advance(5.0)  # the head ticks on; the worker said nothing since its first tick

    worker = FakeSsh((rows(7), None))
    got = []
    async for snapshot in cluster_snapshots([SlowHead(), worker], gpus_per_node=2, clock=clock, backoff=(60.0,)):
        got.append(snapshot)
        if len(got) == 2:
            break
    assert got[-1].gpus[2].memory_used_mib is None and got[-1].gpus[0].memory_used_mib == 1002


async def test_a_session_over_two_vms_whose_worker_did_not_answer_streams_the_heads_own_gpus():
    from types import SimpleNamespace

    from maider_tui.ops.telemetry import session_gpu_snapshots
    from maider_tui.store import SessionRecord

    class OneTickThenQuiet(FakeSsh):
        async def stream(self, cmd: str):
            for line in rows(1, gpus=4):
                yield line
            await asyncio.Event().wait()  # nvidia-smi's next tick has not come yet

    handle = SimpleNamespace(ssh=OneTickThenQuiet(), workers=[], record=SessionRecord("big", gpu_count=8, nodes=2))
    stream = session_gpu_snapshots(handle, clock=ManualClock())
    first = await asyncio.wait_for(anext(stream), 1)  # the head's four make a tick: not waiting for eight
    assert len(first.gpus) == 4
    await stream.aclose()
