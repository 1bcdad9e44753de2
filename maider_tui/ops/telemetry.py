"""Live numbers for the dashboard: the nvidia-smi stream and the vLLM /metrics poll. UI-free.

`gpu_snapshots` streams `nvidia-smi -lms` over the session's SSH connection and, when the
connection drops, says so and resumes by itself (the SSH session reconnects underneath; we only
retry the stream with a backoff measured on the injected clock). `TokenRate` turns vLLM's
cumulative counters into tokens per second; `MetricsPoller` does one scrape and keeps the rate.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from maider_tui.clock import Clock
from maider_tui.remote.gpu import GpuSample, GpuSnapshot, TelemetryReader, nvidia_smi_command
from maider_tui.remote.ssh import SshClosed, SshError, SshSession
from maider_tui.remote.vllm_metrics import VllmMetrics

if TYPE_CHECKING:
    from maider_tui.ops.launch_plan import SessionHandle

DEFAULT_BACKOFF: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
StatusSink = Callable[[str], None]


async def gpu_snapshots(ssh: SshSession, *, gpu_count: int | None, clock: Clock, interval_ms: int = 1000,
                        backoff: Sequence[float] = DEFAULT_BACKOFF,
                        on_status: StatusSink | None = None) -> AsyncIterator[GpuSnapshot]:
    """One `GpuSnapshot` per nvidia-smi tick, for as long as the caller iterates.

    on_status("ok") after the first snapshot of each (re)started stream, on_status("reconnecting")
    when the stream dropped; the stream is retried after backoff[attempt] clock seconds (the last
    value repeats). A closed session (SshClosed) ends the iteration: nobody will reconnect it.
    """
    command = nvidia_smi_command(interval_ms)
    attempt = 0
    status = ""

    def say(new: str) -> None:
        nonlocal status
        if new != status:
            status = new
            if on_status is not None:
                on_status(new)

    while True:
        try:
            async for snapshot in TelemetryReader(ssh.stream(command), gpu_count=gpu_count, clock=clock):
                attempt = 0  # a stream that delivered has earned a fresh backoff
                say("ok")
                yield snapshot
        except SshClosed:
            say("closed")
            return
        except SshError:
            pass  # dropped, timed out or refused to start: the same answer, wait and try again
        # Reaching here without an error means nvidia-smi itself ended (a driver hiccup): retry too.
        say("reconnecting")
        await clock.sleep(backoff[min(attempt, len(backoff) - 1)] if backoff else 1.0)
        attempt += 1


STATUS_RANK = {"ok": 0, "": 1, "reconnecting": 2, "closed": 3}


async def cluster_snapshots(sessions: Sequence[Any], *, gpus_per_node: int, clock: Clock, interval_ms: int = 1000,
                            backoff: Sequence[float] = DEFAULT_BACKOFF,
                            on_status: StatusSink | None = None) -> AsyncIterator[GpuSnapshot]:
    """The GPUs of every VM of a session over several, one stream per VM (`gpu_snapshots`), as one
    snapshot per tick of the head: GPU indexes run on across VMs (the worker's first is `gpus_per_node`),
    and the snapshot's `per_node` says how many a VM holds. A VM whose last tick is older than three intervals shows its GPUs with
    no values rather than stale ones. on_status gets the worst stream's status (a worker reconnecting
    shows as "reconnecting"). Ends when the head's session is closed."""
    queue: asyncio.Queue[tuple[int, GpuSnapshot | None]] = asyncio.Queue()
    statuses = [""] * len(sessions)
    said = ""

    def status_sink(node: int) -> StatusSink:
        def say(status: str) -> None:
            nonlocal said
            statuses[node] = status
            worst = max(statuses, key=lambda s: STATUS_RANK.get(s, 2))
            if worst != said and on_status is not None:
                said = worst
                on_status(worst)
        return say

    async def pump(node: int, ssh: Any) -> None:
        async for snapshot in gpu_snapshots(ssh, gpu_count=gpus_per_node, clock=clock, interval_ms=interval_ms,
                                            backoff=backoff, on_status=status_sink(node)):
            await queue.put((node, snapshot))
        await queue.put((node, None))

    tasks = [asyncio.ensure_future(pump(node, ssh)) for node, ssh in enumerate(sessions)]
    latest: dict[int, GpuSnapshot] = {}
    fresh_s = 3 * interval_ms / 1000
    try:
        while True:
            node, snapshot = await queue.get()
            if snapshot is None:
                if node == 0:
                    return
                latest.pop(node, None)
                continue
            latest[node] = snapshot
            if node != 0:
                continue
            gpus: list[GpuSample] = []
            for index in range(len(sessions)):
                seen = latest.get(index)
                fresh = seen is not None and snapshot.timestamp - seen.timestamp <= fresh_s
                for i in range(gpus_per_node):
                    sample = seen.gpus[i] if fresh and seen is not None and i < len(seen.gpus) else None
                    base = sample or GpuSample(index=i, name="")
                    gpus.append(dataclasses.replace(base, index=index * gpus_per_node + i))
            yield GpuSnapshot(snapshot.timestamp, tuple(gpus), per_node=gpus_per_node)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def session_gpu_snapshots(handle: SessionHandle, *, clock: Clock,
                          on_status: StatusSink | None = None) -> AsyncIterator[GpuSnapshot]:
    """The GPUs of a ready session: its VM's stream, or every connected VM's of a session over several
    (a worker that did not answer leaves only the head's GPUs, each VM's count as recorded)."""
    per_node = handle.record.gpu_count // max(1, handle.record.nodes)
    if handle.workers:
        return cluster_snapshots([handle.ssh, *handle.workers], gpus_per_node=per_node, clock=clock,
                                 on_status=on_status)
    return gpu_snapshots(handle.ssh, gpu_count=per_node, clock=clock, on_status=on_status)


class TokenRate:
    """Tokens per second from a cumulative counter, differencing consecutive readings.

    A counter that went down means vLLM restarted (a model switch, a heal): the rate restarts too.
    """

    def __init__(self) -> None:
        self._last: tuple[float, float] | None = None  # (time, counter)

    def update(self, counter: float, at: float) -> float | None:
        """Feed one reading; returns tokens/s since the previous one, None for the first or a reset."""
        last, self._last = self._last, (at, counter)
        if last is None:
            return None
        then, before = last
        if counter < before or at <= then:
            return None
        return (counter - before) / (at - then)


@dataclass(frozen=True)
class VllmReading:
    """One /metrics scrape with the rates worked out; `error` says why there are no metrics."""

    at: float
    metrics: VllmMetrics | None = None
    generation_tok_s: float | None = None
    error: str | None = None

    @property
    def tokens_generated(self) -> int | None:
        """vLLM's generation token counter (since its last start), None when unknown."""
        if self.metrics is None or not self.metrics.reported:
            return None
        return int(self.metrics.generation_tokens_total)


class MetricsPoller:
    """One scrape per `poll()`; the caller re-arms its timer only after a poll returned."""

    def __init__(self, fetch: Callable[[], Awaitable[VllmMetrics]], clock: Clock,
                 health: Callable[[], Awaitable[bool]] | None = None) -> None:
        self._fetch, self._clock, self._health = fetch, clock, health
        self._rate = TokenRate()
        self.last_tok_s: float | None = None

    async def poll(self) -> VllmReading:
        """Scrape now; a failed scrape is a reading with an error, never an exception.

        With `health`, a server whose /metrics still answers but whose /health does not (its engine
        died) is a reading with an error too: the numbers of a dead server are not load.
        """
        try:
            metrics = await self._fetch()
            healthy = await self._health() if self._health is not None else True
        except Exception as exc:  # noqa: BLE001 - a gauge must survive any failure of its source
            return VllmReading(self._clock.monotonic(), error=str(exc) or type(exc).__name__)
        if not healthy:
            return VllmReading(self._clock.monotonic(), error="/health fails: the server is not serving")
        at = self._clock.monotonic()
        rate = self._rate.update(metrics.generation_tokens_total, at)
        # Keep showing the last rate when this scrape had nothing to compare with (first one, or
        # two scrapes with the same timestamp), rather than flicker to "—".
        if rate is not None:
            self.last_tok_s = rate
        return VllmReading(at, metrics, self.last_tok_s if rate is None else rate)
