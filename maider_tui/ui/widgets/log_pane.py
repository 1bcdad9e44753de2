"""The Log pane: the session's events, or (toggled with `l`) the tail of the vLLM container's log."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import RichLog

from ...ops.events import (DestroyedEvent, FailedEvent, HealEvent, LogEvent, OpsEvent, ReadyEvent,
                           RolledBackEvent, StageEvent, WarningEvent, WatchdogEvent)
from ...words import duration, plural


def event_text(event: OpsEvent) -> str:
    """One log line for an ops event, in the user's words."""
    if isinstance(event, StageEvent):
        return event.message
    if isinstance(event, LogEvent):
        return event.text
    if isinstance(event, HealEvent):
        return f"heal {event.attempt}: {event.kind}; {event.change}"
    if isinstance(event, WarningEvent):
        return f"warning: {event.message}"
    if isinstance(event, ReadyEvent):
        return f"ready at {event.endpoint} in {event.elapsed_s:.0f} s" + (
            f" ({plural(event.heals, 'heal')})" if event.heals else "")
    if isinstance(event, FailedEvent):
        return f"failed at {event.stage}: {event.message}"
    if isinstance(event, DestroyedEvent):
        return f"destroyed: {duration(event.hours)}, ${event.cost_usd:.2f}"
    if isinstance(event, WatchdogEvent):
        return f"watchdog: {event.message}"  # the message says the state in words
    if isinstance(event, RolledBackEvent):
        return event.message
    return str(event)


def stamp(ts: float | None) -> str:
    """HH:MM:SS in local time (the tests pin TZ), or blank padding when the event has no time."""
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S") if ts is not None else " " * 8


class LogPane(Vertical):
    """Two logs, one shown at a time; both keep filling so a toggle shows what happened meanwhile."""

    DEFAULT_CSS = """
    LogPane { height: 1fr; }
    LogPane > RichLog { height: 1fr; background: $background; scrollbar-size-vertical: 1; overflow-y: auto;
                        scrollbar-gutter: stable; }  /* lines wrap to the width kept once it scrolls */
    LogPane > #vllm-log { display: none; }
    LogPane.-vllm > #events-log { display: none; }
    LogPane.-vllm > #vllm-log { display: block; }
    """

    def compose(self) -> ComposeResult:
        # min_width: lines wrap to the box, not to RichLog's default 78 columns.
        yield RichLog(id="events-log", wrap=True, markup=False, max_lines=1000, min_width=20)
        yield RichLog(id="vllm-log", wrap=False, markup=False, max_lines=1000)

    @property
    def showing_vllm(self) -> bool:
        return self.has_class("-vllm")

    def toggle(self) -> bool:
        """Switch between the session events and the vLLM log; True when the vLLM log is shown now."""
        self.toggle_class("-vllm")
        return self.showing_vllm

    _held_lines: list[str] | None = None  # lines added while the history is read, shown after it

    def hold_for_history(self) -> None:
        """The history is being read: lines added meanwhile wait, so they show after it, in order."""
        if self._held_lines is None:
            self._held_lines = []

    def add(self, text: str, ts: float | None = None) -> None:
        """Append one session event."""
        line = f"{stamp(ts)} {text}"
        if self._held_lines is not None:
            self._held_lines.append(line)
        else:
            self.query_one("#events-log", RichLog).write(line)

    def add_history(self, lines: Iterable[tuple[str, float | None]]) -> None:
        """The session's history, then the lines held while it was read."""
        log = self.query_one("#events-log", RichLog)
        for text, ts in lines:
            log.write(f"{stamp(ts)} {text}")
        held, self._held_lines = self._held_lines or [], None
        for line in held:
            log.write(line)

    def set_vllm_log(self, text: str) -> None:
        """Replace the vLLM log tail (a fresh `docker compose logs --tail` each time)."""
        log = self.query_one("#vllm-log", RichLog)
        log.clear()
        log.write(text.rstrip() or "(the vLLM container has logged nothing)")
