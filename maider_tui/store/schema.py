"""The schema as a list of forward migrations; later versions append to MIGRATIONS, never edit one.

Each migration runs in its own write transaction together with its row in `schema_version`, so a
file is always at exactly one version, and two processes opening an old file migrate it only once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from maider_tui.clock import Clock

from .errors import StoreTooNewError, translate


@dataclass(frozen=True)
class Migration:
    """Brings a file from `version - 1` to `version`; `apply` runs inside an open transaction."""

    version: int
    name: str
    apply: Callable[[sqlite3.Connection], None]


def sql_migration(version: int, name: str, *statements: str) -> Migration:
    """A migration made of plain SQL statements, run one by one (executescript would commit early)."""

    def apply(conn: sqlite3.Connection) -> None:
        for statement in statements:
            conn.execute(statement)

    return Migration(version, name, apply)


MIGRATIONS: tuple[Migration, ...] = (
    sql_migration(
        1,
        "sessions, events, benchmarks, api cache",
        """CREATE TABLE schema_version (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at REAL NOT NULL)""",
        """CREATE TABLE sessions (
            name TEXT PRIMARY KEY,
            state TEXT NOT NULL,
            stage TEXT,
            provider TEXT NOT NULL,
            instance_id INTEGER,
            region TEXT NOT NULL,
            gpu_type TEXT NOT NULL,
            gpu_count INTEGER NOT NULL,
            model TEXT NOT NULL,
            hourly_usd REAL NOT NULL,
            created_at REAL NOT NULL,
            ready_at REAL,
            ended_at REAL,
            ip TEXT,
            ssh_port INTEGER NOT NULL,
            host_key TEXT,
            vllm_config TEXT NOT NULL,
            options TEXT NOT NULL,
            cost_usd REAL,
            tokens_generated INTEGER,
            last_activity REAL,
            owner TEXT,
            extra TEXT NOT NULL)""",
        """CREATE TABLE session_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            session TEXT NOT NULL REFERENCES sessions(name) ON DELETE CASCADE,
            ts REAL NOT NULL,
            kind TEXT NOT NULL,
            message TEXT NOT NULL,
            data TEXT)""",
        # No foreign key to sessions: a benchmark stays useful after its session is deleted.
        """CREATE TABLE bench_runs (
            id TEXT PRIMARY KEY,
            timestamp REAL NOT NULL,
            session TEXT,
            gpu_type TEXT NOT NULL,
            gpu_count INTEGER NOT NULL,
            vram_per_gpu REAL NOT NULL,
            total_vram REAL NOT NULL,
            hourly_usd REAL NOT NULL,
            model_id TEXT NOT NULL,
            model_category TEXT NOT NULL,
            vllm_config TEXT NOT NULL,
            results_by_category TEXT NOT NULL,
            summary TEXT NOT NULL,
            source TEXT NOT NULL)""",
        # seq, not prompt_id, is the key: a suite may run the same prompt more than once.
        """CREATE TABLE bench_results (
            run_id TEXT NOT NULL REFERENCES bench_runs(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            prompt_id TEXT NOT NULL,
            category TEXT NOT NULL,
            ok INTEGER NOT NULL CHECK (ok IN (0, 1)),
            ttft_s REAL,
            tokens_per_sec REAL,
            output_tokens INTEGER,
            e2e_s REAL,
            error TEXT,
            PRIMARY KEY (run_id, seq))""",
        """CREATE TABLE api_cache (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            stored_at REAL NOT NULL,
            expires_at REAL NOT NULL)""",
    ),
    sql_migration(
        2,
        "indexes for the list queries",
        "CREATE INDEX session_events_by_session ON session_events(session, ts, id)",
        "CREATE INDEX sessions_by_created ON sessions(created_at)",
        "CREATE INDEX bench_runs_by_time ON bench_runs(timestamp)",
        "CREATE INDEX bench_runs_by_gpu ON bench_runs(gpu_type, model_category)",
        "CREATE INDEX api_cache_by_expiry ON api_cache(expires_at)",
    ),
    sql_migration(
        3,
        "sessions over several VMs: their nodes and private network",
        "ALTER TABLE sessions ADD COLUMN nodes INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE sessions ADD COLUMN vpc_id INTEGER",
        # Node 0 is the head; the session's own instance_id, ip and host_key are the head's too.
        """CREATE TABLE session_nodes (
            session TEXT NOT NULL REFERENCES sessions(name) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            address TEXT NOT NULL,
            state TEXT NOT NULL,
            instance_id INTEGER,
            ip TEXT,
            ssh_port INTEGER NOT NULL,
            host_key TEXT,
            PRIMARY KEY (session, idx))""",
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version


def check_migrations(migrations: Sequence[Migration]) -> None:
    """Versions must run 1, 2, 3... with no gap, or a file could skip a step."""
    versions = [m.version for m in migrations]
    if not versions or versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migration versions must be 1..n without gaps, got {versions}")


def read_version(conn: sqlite3.Connection) -> int:
    """The file's schema version; 0 for a new, empty database. Reads only."""
    has_table = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if not has_table:
        return 0
    return int(conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0])


def migrate(
    conn: sqlite3.Connection,
    path: Path,
    migrations: Sequence[Migration],
    clock: Clock,
    busy_timeout_s: float,
) -> int:
    """Apply every migration newer than the file, each in its own transaction; return the new version."""
    known = migrations[-1].version
    for migration in migrations:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise translate(exc, path, busy_timeout_s) from exc
        try:
            # Read again under the write lock: another process may have migrated meanwhile.
            current = read_version(conn)
            if current > known:
                raise StoreTooNewError(path, current, known)
            if current >= migration.version:
                conn.execute("ROLLBACK")
                continue
            migration.apply(conn)
            conn.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, clock.now()),
            )
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise translate(exc, path, busy_timeout_s) from exc
            raise
    return read_version(conn)
