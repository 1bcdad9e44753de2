"""Opening the database safely, and moving a broken one aside."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeVar

from maider_tui.clock import Clock, SystemClock
from maider_tui.paths import display_path

from .bench import BenchMixin
from .cache import CacheMixin
from .nodes import NodesMixin
from .errors import StoreCorruptError, StoreError, StoreTooNewError, is_busy, translate
from .schema import MIGRATIONS, Migration, check_migrations, migrate, read_version
from .sessions import SessionsMixin

T = TypeVar("T")

DEFAULT_BUSY_TIMEOUT_S = 5.0
SQLITE_HEADER = b"SQLite format 3\x00"
# Files SQLite keeps beside the database; they belong to it and travel with it.
SIDECARS = ("-wal", "-shm", "-journal")


class Store(SessionsMixin, NodesMixin, BenchMixin, CacheMixin):
    """The app's local state: sessions (and the nodes of those over several VMs), their events, benchmark
    runs and the API cache."""

    def __enter__(self) -> Store:
        return self


def open_store(
    path: Path,
    *,
    clock: Clock | None = None,
    busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
    migrations: Sequence[Migration] | None = None,
) -> Store:
    """Open (creating if missing) the database at `path` and bring its schema up to date.

    A file that is not ours, is damaged, or is newer than this version is never written to:
    StoreCorruptError or StoreTooNewError says so and leaves it byte for byte as it was.
    `migrations` is for tests that need an extra future step; the app leaves it alone.
    """
    path = Path(path)
    clock = clock or SystemClock()
    migrations = tuple(MIGRATIONS if migrations is None else migrations)
    check_migrations(migrations)
    known = migrations[-1].version
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create the folder for {path} ({exc.strerror}); check its permissions", path
        ) from exc
    _check_header(path)
    conn = _connect(path, busy_timeout_s)
    deadline = time.monotonic() + busy_timeout_s
    try:
        # Everything up to the version check only reads, so a file we refuse stays untouched.
        version = _until_free(lambda: _inspect(conn, path), deadline, path, busy_timeout_s)
        if version > known:
            raise StoreTooNewError(path, version, known)
        _until_free(lambda: _use_wal(conn), deadline, path, busy_timeout_s)
        if version < known:
            version = migrate(conn, path, migrations, clock, busy_timeout_s)
    except BaseException:
        conn.close()
        raise
    return Store(conn, path, clock, busy_timeout_s, version)


def move_aside(path: Path, *, clock: Clock | None = None) -> Path:
    """Rename a database the user agreed to give up on to `<name>.broken-<UTC time>`; delete nothing.

    Its -wal/-shm/-journal files move with it under the new name, so the copy stays openable.
    Returns the new path of the main file.
    """
    path = Path(path)
    now = (clock or SystemClock()).now()
    stamp = datetime.fromtimestamp(now, tz=timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.broken-{stamp}")
    n = 1
    # Never overwrite an earlier broken copy made in the same second.
    while any(Path(f"{target}{s}").exists() for s in ("", *SIDECARS)):
        target = path.with_name(f"{path.name}.broken-{stamp}-{n}")
        n += 1
    try:
        path.rename(target)
        for suffix in SIDECARS:
            side = Path(f"{path}{suffix}")
            if side.exists():
                side.rename(Path(f"{target}{suffix}"))
    except OSError as exc:
        raise StoreError(f"could not move {path} aside ({exc.strerror}); rename it yourself", path) from exc
    return target


def _check_header(path: Path) -> None:
    """Refuse a non-SQLite file before SQLite opens it (and might write a header or sidecars)."""
    if not path.exists():
        return
    if path.is_dir():
        raise StoreError(f"{display_path(path)} is a folder, not a database file; move it or choose another path", path)
    try:
        with path.open("rb") as handle:
            head = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise StoreError(f"cannot read {path} ({exc.strerror}); check its permissions", path) from exc
    # An empty file is a database nobody has written yet; SQLite starts it fresh.
    if head and head != SQLITE_HEADER:
        raise StoreCorruptError(path, "no SQLite header")


def _connect(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    try:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves. check_same_thread=False: the Store's
        # lock serialises callers, so a worker thread may use the connection the UI opened.
        conn = sqlite3.connect(
            str(path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise translate(exc, path, busy_timeout_s) from exc
    conn.row_factory = sqlite3.Row
    try:
        # Per-connection settings: none of these writes to the file.
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
    except sqlite3.Error as exc:
        conn.close()
        raise translate(exc, path, busy_timeout_s) from exc
    return conn


def _until_free(step: Callable[[], T], deadline: float, path: Path, busy_timeout_s: float) -> T:
    """Run an opening step, retrying while another connection holds the file.

    Needed because a journal-mode switch, or reading a file another process is switching, gets BUSY
    at once without SQLite's busy handler (two first starts racing); we wait in real time like it.
    """
    while True:
        try:
            return step()
        except sqlite3.Error as exc:
            if not is_busy(exc) or time.monotonic() >= deadline:
                raise translate(exc, path, busy_timeout_s) from exc
            time.sleep(0.01)


def _inspect(conn: sqlite3.Connection, path: Path) -> int:
    """Check the file reads cleanly and is ours; return its schema version. Reads only."""
    problems = [row[0] for row in conn.execute("PRAGMA quick_check").fetchall()]
    if problems != ["ok"]:
        raise StoreCorruptError(path, problems[0] if problems else "integrity check failed")
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if tables and "schema_version" not in tables:
        raise StoreCorruptError(path, "it holds another program's tables")
    return read_version(conn)


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL, so readers never wait for a writer; it stays set in the file."""
    if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        # Some file systems (network shares) refuse WAL; SQLite then keeps its rollback journal.
        conn.execute("PRAGMA journal_mode = WAL")
    # In WAL mode NORMAL is still crash-safe; only a power cut may lose the last commits.
    conn.execute("PRAGMA synchronous = NORMAL")
