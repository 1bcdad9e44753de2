"""Message classes the screens and workers exchange; workers report only through these."""

from __future__ import annotations

from typing import Any

from textual.message import Message

from ..ops.telemetry import VllmReading
from ..remote.gpu import GpuSnapshot


class Telemetry(Message):
    """A GPU snapshot from the nvidia-smi stream."""

    def __init__(self, snapshot: GpuSnapshot) -> None:
        super().__init__()
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        # A slow terminal should show the newest sample, not work through a backlog of stale ones.
        return isinstance(message, Telemetry)


class TelemetryStatus(Message):
    """The telemetry stream's state: "ok", "reconnecting" or "closed"."""

    def __init__(self, status: str) -> None:
        super().__init__()
        self.status = status


class MetricsRead(Message):
    """One vLLM /metrics scrape (with tokens/s), or why it failed."""

    def __init__(self, reading: VllmReading) -> None:
        super().__init__()
        self.reading = reading

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, MetricsRead)


class SessionEvent(Message):
    """An ops event (launch, heal, switch, watchdog, destroy) for the session a screen shows."""

    def __init__(self, event: Any) -> None:
        super().__init__()
        self.event = event


class StoreLock(Message):
    """The database became locked by another program (`locked`), or writable again. Posted from any thread."""

    def __init__(self, locked: bool) -> None:
        super().__init__()
        self.locked = locked


class Attached(Message):
    """The dashboard's session is connected (or could not be: `error`)."""

    def __init__(self, error: str | None = None) -> None:
        super().__init__()
        self.error = error


class VllmLog(Message):
    """The tail of the vLLM container's log, fetched over SSH."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class Destroyed(Message):
    """The session's VM is gone; `receipt` is its ops.receipt.Receipt."""

    def __init__(self, receipt: Any) -> None:
        super().__init__()
        self.receipt = receipt


class HealOffer(Message):
    """vLLM's log named a failure and a remedy exists (`proposal.config`): ask before applying it."""

    def __init__(self, proposal: HealProposal) -> None:
        super().__init__()
        self.proposal = proposal
