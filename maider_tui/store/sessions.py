"""Sessions (one rented VM each) and their event history."""

from __future__ import annotations

import dataclasses
import sqlite3
from typing import Any

from .core import StoreBase
from .errors import StoreError
from .records import (
    ENDED_STATES,
    SESSION_FIELDS,
    SESSION_JSON,
    EventRecord,
    SessionRecord,
    dumps,
    event_from_row,
    session_from_row,
    to_row,
)

_INSERT_SESSION = (
    f"INSERT INTO sessions ({', '.join(SESSION_FIELDS)}) VALUES ({', '.join('?' * len(SESSION_FIELDS))})"
)
_UPDATABLE = frozenset(SESSION_FIELDS) - {"name"}
# What a session's end settles for good: a launch, switch or watchdog that learns of the end late
# must not bring back "failed" or "ready" over "destroyed".
_SETTLED_AT_END = frozenset({"state", "stage", "ended_at", "ready_at", "cost_usd"})


class SessionsMixin(StoreBase):
    """Sessions and their events; part of Store."""

    def add_session(self, rec: SessionRecord) -> SessionRecord:
        """Store a new session and return it as stored (created_at filled from the clock when None)."""
        if rec.created_at is None:
            rec = dataclasses.replace(rec, created_at=self.clock.now())
        with self._write() as conn:
            try:
                conn.execute(_INSERT_SESSION, to_row(rec, SESSION_FIELDS, SESSION_JSON))
            except sqlite3.IntegrityError as exc:
                if conn.execute("SELECT 1 FROM sessions WHERE name = ?", (rec.name,)).fetchone():
                    raise StoreError(
                        f"a session named {rec.name!r} already exists in {self.path}; choose another name",
                        self.path,
                    ) from exc
                raise StoreError(f"session {rec.name!r} could not be saved: {exc}", self.path) from exc
        return rec

    def get_session(self, name: str) -> SessionRecord | None:
        """The session called `name`, or None."""
        with self._read() as conn:
            row = conn.execute("SELECT * FROM sessions WHERE name = ?", (name,)).fetchone()
        return None if row is None else session_from_row(row)

    def session(self, name: str) -> SessionRecord:
        """The session called `name`; StoreError when there is none (it was forgotten meanwhile)."""
        record = self.get_session(name)
        if record is None:
            raise StoreError(f"there is no session named {name!r} in {self.path}", self.path)
        return record

    def update_session(self, name: str, **fields: Any) -> SessionRecord:
        """Change some fields of a session and return it as now stored.

        An unknown field (or `name`, which is the key) raises TypeError, like a wrong keyword argument.
        Once a session has ended, its state, stage, end, ready time and cost stay as they are (other
        fields still change): read `ended` on the returned record to learn that it had ended.
        """
        unknown = sorted(set(fields) - _UPDATABLE)
        if unknown:
            raise TypeError(f"update_session() got unknown session field(s): {', '.join(unknown)}")
        with self._write() as conn:
            if _SETTLED_AT_END & set(fields):
                row = conn.execute("SELECT state, ended_at FROM sessions WHERE name = ?", (name,)).fetchone()
                if row is not None and (row["ended_at"] is not None or row["state"] in ENDED_STATES):
                    fields = {k: v for k, v in fields.items() if k not in _SETTLED_AT_END}
            if fields:
                columns = ", ".join(f"{key} = ?" for key in fields)
                values = [dumps(v) if k in SESSION_JSON else v for k, v in fields.items()]
                conn.execute(f"UPDATE sessions SET {columns} WHERE name = ?", (*values, name))
            row = conn.execute("SELECT * FROM sessions WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise StoreError(f"there is no session named {name!r} in {self.path}", self.path)
        return session_from_row(row)

    def list_sessions(self, *, include_ended: bool = True) -> list[SessionRecord]:
        """All sessions, newest first; without ended ones (destroyed, or ended_at set) when asked."""
        sql = "SELECT * FROM sessions"
        params: list[Any] = []
        if not include_ended:
            marks = ", ".join("?" * len(ENDED_STATES))
            sql += f" WHERE ended_at IS NULL AND state NOT IN ({marks})"
            params.extend(sorted(ENDED_STATES))
        sql += " ORDER BY created_at DESC, name"
        with self._read() as conn:
            rows = conn.execute(sql, params).fetchall()
        return [session_from_row(row) for row in rows]

    def delete_session(self, name: str) -> bool:
        """Forget a session and its events; True if it existed."""
        with self._write() as conn:
            return conn.execute("DELETE FROM sessions WHERE name = ?", (name,)).rowcount > 0

    def session_names(self) -> set[str]:
        """Every session name in use, for picking a fresh one."""
        with self._read() as conn:
            return {row[0] for row in conn.execute("SELECT name FROM sessions")}

    def add_event(
        self,
        session: str,
        kind: str,
        message: str,
        data: dict[str, Any] | None = None,
        ts: float | None = None,
    ) -> int:
        """Append to a session's history and return the event id; `ts` defaults to the clock's now."""
        when = self.clock.now() if ts is None else ts
        with self._write() as conn:
            try:
                cursor = conn.execute(
                    "INSERT INTO session_events (session, ts, kind, message, data) VALUES (?, ?, ?, ?, ?)",
                    (session, when, kind, message, None if data is None else dumps(data)),
                )
            except sqlite3.IntegrityError as exc:
                raise StoreError(
                    f"cannot log an event for {session!r}: there is no such session in {self.path}", self.path
                ) from exc
            return int(cursor.lastrowid or 0)

    def events(self, session: str, *, limit: int = 200) -> list[EventRecord]:
        """The newest `limit` events of a session, oldest first (as a log reads)."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT * FROM (SELECT * FROM session_events WHERE session = ? "
                "ORDER BY ts DESC, id DESC LIMIT ?) ORDER BY ts, id",
                (session, limit),
            ).fetchall()
        return [event_from_row(row) for row in rows]
