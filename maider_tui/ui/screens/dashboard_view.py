"""What the dashboard shows and when it draws it: the frozen `DashboardState` of one instant, the
pacing that makes the 1 Hz GPU sample the one frame per second, and the top bar's title."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..widgets.gpu_bars import HISTORY
from ..widgets.watchdog_panel import WatchdogView

if TYPE_CHECKING:
    from ...clock import Clock
    from ...ops.telemetry import VllmReading
    from ...remote.gpu import GpuSnapshot
    from ...ops.views import SessionRecord

# The stream samples every second: one that came less than this long ago means the next is on its way.
SAMPLE_DUE_S = 1.5


@dataclass(frozen=True)
class DashboardState:
    """Everything the panels show at one instant; a new one per tick, never mutated."""

    now: float
    gpu: GpuSnapshot | None = None
    history: tuple[tuple[float | None, ...], ...] = ()
    vllm: VllmReading | None = None
    tunnel: str = "not connected"
    watchdog: WatchdogView = WatchdogView()
    model: str = ""


class FramePacer:
    """Turns samples, readings and ticks into state changes, so frames come once a second.

    Each GPU sample redraws every panel; a vLLM reading that arrives while samples are flowing rides
    the next sample's frame instead of drawing one of its own; the 1 s tick draws only once the stream
    has stalled (or without one). `stream` False (snapshot tests): nothing is ever due.
    """

    def __init__(self, clock: Clock, *, stream: bool) -> None:
        self.clock, self.stream = clock, stream
        self._util: dict[int, deque] = {}
        self._sampled_at = float("-inf")  # the clock's time of the last GPU sample
        self._pending_vllm: VllmReading | None = None

    def sample(self, snapshot: GpuSnapshot) -> dict[str, Any]:
        """One nvidia-smi tick: the histories updated; the changes of its frame."""
        for sample in snapshot.gpus:
            self._util.setdefault(sample.index, deque(maxlen=HISTORY)).append(sample.utilization_pct)
        history = tuple(tuple(self._util.get(s.index, ())) for s in snapshot.gpus)
        self._sampled_at = self.clock.now()
        return {"gpu": snapshot, "history": history, "tunnel": "ok", **self._take_pending()}

    def sample_due(self) -> bool:
        """Whether the stream is delivering: a sample came less than 1.5 s ago, so the next one is due
        within the second."""
        return self.stream and self.clock.now() - self._sampled_at < SAMPLE_DUE_S

    def reading(self, reading: VllmReading) -> dict[str, Any] | None:
        """A vLLM reading: its changes to draw now, or None when it waits for the next sample's frame."""
        if self.sample_due():
            self._pending_vllm = reading
            return None
        return {"vllm": reading}

    def tick(self, drawn_at: float) -> dict[str, Any] | None:
        """The 1 s tick: changes to draw (a waiting reading, the clock) or None while samples come."""
        if self.sample_due():
            return None
        if self._pending_vllm is not None or self.clock.now() - drawn_at >= 1.0:
            return self._take_pending()
        return None

    def _take_pending(self) -> dict[str, Any]:
        reading, self._pending_vllm = self._pending_vllm, None
        return {} if reading is None else {"vllm": reading}


def top_bar_title(session: str, record: SessionRecord | None, state: DashboardState) -> str:
    """Name · state · model · GPUs · region; "ready · vLLM down" when the VM serves nothing."""
    from .home import gpu_label, model_label, state_label

    if record is None:
        return f"{session} · unknown session"
    status = "reconnecting" if state.tunnel == "reconnecting" else state_label(record)
    if status == "ready" and state.vllm is not None and state.vllm.error is not None:
        status = "ready · vLLM down"  # the VM is there and paid for; its server is not serving
    return " · ".join([session, status, model_label(state.model or record.model), gpu_label(record), record.region])


def gpus_title(record: SessionRecord | None) -> str:
    """The GPUs panel's title; a session over several VMs says how many and that they are linked."""
    nodes = record.nodes if record is not None else 1
    return "GPUs" if nodes == 1 else f"GPUs · {nodes} VMs, linked over the session's private network"
