"""A session's watchdog deadline, from what its record says: its own minutes (or the global ones),
whether its VM is kept (billing with no model to read), and when it goes if nothing happens. The
Watchdog counts down with these rules; `ls`, the panels and the quit dialog read them from the store
without one running."""

from __future__ import annotations

from typing import TYPE_CHECKING

from maider_tui.settings import WatchdogSettings

if TYPE_CHECKING:
    from maider_tui.store import SessionRecord


def session_minutes(record: SessionRecord | None, settings: WatchdogSettings) -> int:
    """The idle timeout of a session: its own "Watchdog minutes" when it has one, else the global one."""
    options = getattr(record, "options", None) or {}
    value = options.get("watchdog_minutes")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 1:
        return int(value)
    return settings.timeout_minutes


def kept_minutes(record: SessionRecord | None, settings: WatchdogSettings) -> int:
    """How long a VM with no model serving is kept before it is destroyed."""
    return max(session_minutes(record, settings), settings.inspect_minutes)


def is_kept(record: SessionRecord | None) -> bool:
    """A session whose VM bills but has no vLLM to read: watched by the time it was kept, not by use."""
    return record is not None and not record.ended and record.instance_id is not None and record.state != "ready"


def stored_deadline(record: SessionRecord, settings: WatchdogSettings) -> float | None:
    """When the watchdog destroys the session's VM if nothing happens, from what the store keeps (for
    `ls`); None when it is not watched (the watchdog off, nothing billing, a kept VM not yet seen)."""
    if not settings.enabled or record is None or record.ended:
        return None
    if is_kept(record):
        since = record.extra.get("kept_since")
        return float(since) + kept_minutes(record, settings) * 60.0 if isinstance(since, (int, float)) else None
    if record.state != "ready":
        return None
    for value in (record.extra.get("idle_since"), record.last_activity, record.ready_at, record.created_at):
        if isinstance(value, (int, float)):
            return float(value) + session_minutes(record, settings) * 60.0
    return None
