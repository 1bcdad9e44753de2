"""The connection, its lock and its transactions; the table methods live in the mixins built on this."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from maider_tui.clock import Clock

from .errors import StoreError, is_busy, translate

# Once a write waited out the whole busy timeout, the file is held elsewhere for long: later writes
# wait this long instead, so each one does not freeze its caller for seconds, until one gets through.
QUICK_BUSY_TIMEOUT_S = 0.1


class StoreBase:
    """One SQLite connection shared by the app's threads, one call at a time."""

    def __init__(
        self, conn: sqlite3.Connection, path: Path, clock: Clock, busy_timeout_s: float, version: int
    ) -> None:
        self._conn: sqlite3.Connection | None = conn
        # RLock: a method that writes may call another public method that reads.
        self._lock = threading.RLock()
        self.path = path
        self.clock = clock
        self.busy_timeout_s = busy_timeout_s
        self.schema_version = version
        self.locked = False
        """True from a write that found the file locked by another program until a write succeeds."""
        self._commits = 0  # this connection's: PRAGMA data_version counts only other connections'
        self.on_lock_change: Callable[[bool], None] | None = None
        """Called with the new `locked` each time it changes, in the thread that wrote."""

    def _set_locked(self, locked: bool) -> None:
        if locked != self.locked:
            self.locked = locked
            if self.on_lock_change is not None:
                self.on_lock_change(locked)

    def close(self) -> None:
        """Close the connection; safe to call twice. The last closer folds the WAL back into the file."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @property
    def closed(self) -> bool:
        """True after close()."""
        return self._conn is None

    def __enter__(self) -> StoreBase:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def version(self) -> tuple[int, int]:
        """Changes with every commit, this store's or another program's; while it stays equal, what was
        read before is still what the database holds (a cheap check for a reader that keeps a copy)."""
        with self._read() as conn:
            return self._commits, int(conn.execute("PRAGMA data_version").fetchone()[0])

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"the database {self.path} was already closed; open it again", self.path)
        return self._conn

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """Run reads under the lock, turning sqlite3 errors into StoreErrors."""
        with self._lock:
            conn = self._connection()
            try:
                yield conn
            except sqlite3.Error as exc:
                raise translate(exc, self.path, self.busy_timeout_s) from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of the block's statements land, or none do.

        BEGIN IMMEDIATE takes the write lock up front, so a second process waits (busy timeout) instead
        of failing halfway through, and no read-then-write race can lose a row.
        """
        with self._lock:
            conn = self._connection()
            quick = self.locked
            waited = min(QUICK_BUSY_TIMEOUT_S, self.busy_timeout_s) if quick else self.busy_timeout_s
            try:
                if quick:
                    conn.execute(f"PRAGMA busy_timeout = {int(waited * 1000)}")
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                self._set_locked(quick or is_busy(exc))
                raise translate(exc, self.path, waited) from exc
            finally:
                if quick:
                    conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            self._set_locked(False)
            try:
                yield conn
                conn.execute("COMMIT")
                self._commits += 1
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise translate(exc, self.path, self.busy_timeout_s) from exc
                raise
