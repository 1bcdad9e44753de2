"""Typed events the workflows report; the UI turns them into widget updates, tests assert on them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Union

if TYPE_CHECKING:
    from maider_tui.store import Store


@dataclass(frozen=True)
class StageEvent:
    """A provisioning (or switching) stage began; `fraction` is the whole job's progress, 0..1."""

    session: str
    stage: str
    fraction: float
    eta_s: float | None
    message: str


@dataclass(frozen=True)
class NodeEvent:
    """One VM of a session over several reached a step (created, running, ssh, cloud-init, uploaded,
    started): the provisioning screen shows the nodes side by side."""

    session: str
    node: int  # 0 is the head
    step: str
    message: str


@dataclass(frozen=True)
class LogEvent:
    """A line for the session's log that the store does not keep; `ts` is when it appeared, so the
    log can place it among the stored events (the session's LiveSessions stamps one sent without)."""

    session: str
    text: str
    ts: float | None = None


@dataclass(frozen=True)
class HealEvent:
    """One self-healing attempt: what the log said and which flags changed."""

    session: str
    attempt: int
    kind: str
    evidence: str
    change: str


@dataclass(frozen=True)
class WarningEvent:
    session: str
    message: str


@dataclass(frozen=True)
class ReadyEvent:
    session: str
    endpoint: str
    elapsed_s: float
    max_model_len: int | None
    heals: int = 0


@dataclass(frozen=True)
class FailedEvent:
    """The workflow stopped; the VM (if any) is left for the user to inspect or destroy."""

    session: str
    stage: str
    message: str
    diagnosis: str | None = None


@dataclass(frozen=True)
class DestroyedEvent:
    """The final receipt of a session."""

    session: str
    hours: float
    cost_usd: float
    tokens: int | None
    usd_per_1k_tokens: float | None


@dataclass(frozen=True)
class WatchdogEvent:
    """The idle watchdog changed state (watching, warning, paused, destroying, destroyed, stopped)."""

    session: str
    state: str
    remaining_s: float | None
    message: str


@dataclass(frozen=True)
class RolledBackEvent:
    session: str
    model: str
    message: str


OpsEvent = Union[StageEvent, LogEvent, HealEvent, WarningEvent, ReadyEvent, FailedEvent, DestroyedEvent,
                 RolledBackEvent, WatchdogEvent, NodeEvent]
EventSink = Callable[[OpsEvent], None]


@dataclass
class EventRecorder:
    """An EventSink that keeps everything, for tests and for replaying into a screen."""

    events: list[OpsEvent] = field(default_factory=list)

    def __call__(self, event: OpsEvent) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


def session_history(store: Store | None, name: str, recent: Iterable[OpsEvent] = (), *,
                    limit: int = 100) -> list[tuple[str, float | None]]:
    """A session's log as (message, time), in the order things happened: its last `limit` store events
    and the log lines among `recent` (a live session's events) that the store does not hold, merged by
    time (a stored event first on a tie; a line without a time last); `store` None: only those lines."""
    stored: list[tuple[str, float | None]] = []
    if store is not None:
        stored = [(event.message, event.ts) for event in store.events(name, limit=limit)]
    seen = {message for message, _ in stored}
    # Only log lines are never stored; every other ops event has its store twin above.
    logs = [(event.text, event.ts) for event in recent if isinstance(event, LogEvent) and event.text not in seen]
    timed = [line for line in logs if line[1] is not None]
    merged = sorted(stored + timed, key=lambda line: line[1] if line[1] is not None else float("-inf"))
    return merged + [line for line in logs if line[1] is None]
