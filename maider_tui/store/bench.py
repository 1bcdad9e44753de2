"""Benchmark runs and their per-prompt results."""

from __future__ import annotations

import dataclasses
import sqlite3
from typing import Any

from .core import StoreBase
from .errors import StoreError
from .records import (
    BENCH_RESULT_FIELDS,
    BENCH_RUN_FIELDS,
    BENCH_RUN_JSON,
    BenchResultRecord,
    BenchRunRecord,
    bench_result_from_row,
    bench_run_from_row,
    to_row,
)

_INSERT_RUN = (
    f"INSERT INTO bench_runs ({', '.join(BENCH_RUN_FIELDS)}) "
    f"VALUES ({', '.join('?' * len(BENCH_RUN_FIELDS))})"
)
_INSERT_RESULT = (
    f"INSERT INTO bench_results (seq, {', '.join(BENCH_RESULT_FIELDS)}) "
    f"VALUES (?, {', '.join('?' * len(BENCH_RESULT_FIELDS))})"
)


class BenchMixin(StoreBase):
    """Benchmark runs and results; part of Store."""

    def add_bench_run(self, run: BenchRunRecord, results: list[BenchResultRecord]) -> str:
        """Store a run and all its results in one transaction (all or nothing); return the run id.

        A result whose run_id is not the run's id is refused before anything is written.
        """
        stray = [r.prompt_id for r in results if r.run_id != run.id]
        if stray:
            raise ValueError(f"results {stray} belong to another run than {run.id}")
        if run.timestamp is None:
            run = dataclasses.replace(run, timestamp=self.clock.now())
        with self._write() as conn:
            try:
                conn.execute(_INSERT_RUN, to_row(run, BENCH_RUN_FIELDS, BENCH_RUN_JSON))
                conn.executemany(
                    _INSERT_RESULT,
                    [(seq, *to_row(r, BENCH_RESULT_FIELDS, frozenset())) for seq, r in enumerate(results)],
                )
            except (sqlite3.IntegrityError, sqlite3.InterfaceError, sqlite3.ProgrammingError) as exc:
                # Rolled back whole by _write; say which run so the user can find it in the log.
                raise StoreError(
                    f"benchmark run {run.id} was not saved to {self.path} ({exc}); nothing of it was kept",
                    self.path,
                ) from exc
        return run.id

    def bench_runs(
        self, *, gpu_type: str | None = None, model_category: str | None = None
    ) -> list[BenchRunRecord]:
        """Runs matching the filters, newest first."""
        where: list[str] = []
        params: list[Any] = []
        if gpu_type is not None:
            where.append("gpu_type = ?")
            params.append(gpu_type)
        if model_category is not None:
            where.append("model_category = ?")
            params.append(model_category)
        sql = "SELECT * FROM bench_runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY timestamp DESC, id"
        with self._read() as conn:
            rows = conn.execute(sql, params).fetchall()
        return [bench_run_from_row(row) for row in rows]

    def get_bench_run(self, run_id: str) -> BenchRunRecord | None:
        """One run by id, or None."""
        with self._read() as conn:
            row = conn.execute("SELECT * FROM bench_runs WHERE id = ?", (run_id,)).fetchone()
        return None if row is None else bench_run_from_row(row)

    def bench_results(self, run_id: str) -> list[BenchResultRecord]:
        """A run's per-prompt results in the order they were given."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT * FROM bench_results WHERE run_id = ? ORDER BY seq", (run_id,)
            ).fetchall()
        return [bench_result_from_row(row) for row in rows]

    def delete_bench_run(self, run_id: str) -> bool:
        """Delete a run and its results; True if it existed."""
        with self._write() as conn:
            return conn.execute("DELETE FROM bench_runs WHERE id = ?", (run_id,)).rowcount > 0
