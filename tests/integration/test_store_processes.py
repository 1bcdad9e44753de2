"""Two app processes writing to one database at the same time lose nothing."""

from __future__ import annotations

import multiprocessing
import queue
import time
from pathlib import Path

import pytest

from maider_tui.store import LATEST_VERSION, BenchResultRecord, BenchRunRecord, SessionRecord, open_store

EVENTS = 200
RUNS = 50
RESULTS_PER_RUN = 3

pytestmark = pytest.mark.slow


def write_a_lot(path: str, session: str, barrier, results) -> None:
    """Child process: wait for the other writer, then write events and benchmark runs as fast as it can."""
    try:
        # A generous timeout: the other process holds the write lock for many short moments.
        with open_store(Path(path), busy_timeout_s=30) as store:
            barrier.wait(20)  # both begin writing together, not one after the other
            for i in range(EVENTS):
                store.add_event(session, "log", f"{session} line {i}", {"i": i})
                if i % 4 == 0:
                    run = BenchRunRecord(session=session, gpu_type=f"gpu-{session}", model_id="m")
                    rows = [
                        BenchResultRecord(run.id, f"p{k}", "coding", True, tokens_per_sec=40.0 + k)
                        for k in range(RESULTS_PER_RUN)
                    ]
                    store.add_bench_run(run, rows)
                # A breath between writes, as the app has: otherwise one writer can keep the lock
                # for its whole batch while the other sleeps in SQLite's busy back-off.
                time.sleep(0.001)
        results.put(f"ok {session}")
    except BaseException as exc:  # reported to the parent: a child's traceback is easy to miss
        results.put(f"{session}: {exc!r}")
        raise


def run_children(target, args: list[tuple]) -> list:
    """Run `target(*a, barrier, results)` in a spawned process per `a`; return what they put on `results`.

    Plain processes with a join timeout rather than a Pool, so a stuck child fails the test
    instead of hanging it.
    """
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    barrier = ctx.Barrier(len(args))
    procs = [ctx.Process(target=target, args=(*a, barrier, results)) for a in args]
    for proc in procs:
        proc.start()
    deadline = time.monotonic() + 60
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
    alive = [p for p in procs if p.is_alive()]
    for proc in alive:
        proc.kill()
        proc.join()
    reported = []
    while len(reported) < len(procs):
        try:
            reported.append(results.get(timeout=1))
        except queue.Empty:
            break
    assert not alive, f"a child hung: {reported}"
    assert [p.exitcode for p in procs] == [0] * len(procs), reported
    return reported


def test_two_processes_write_at_once_and_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "data" / "maider.sqlite3"
    sessions = ["alpha", "beta"]
    with open_store(path) as store:
        for name in sessions:
            store.add_session(SessionRecord(name))

    assert sorted(run_children(write_a_lot, [(str(path), s) for s in sessions])) == ["ok alpha", "ok beta"]

    with open_store(path) as store:
        assert store.schema_version == LATEST_VERSION
        for name in sessions:
            events = store.events(name, limit=10_000)
            assert [e.data["i"] for e in events] == list(range(EVENTS))
            runs = store.bench_runs(gpu_type=f"gpu-{name}")
            assert len(runs) == RUNS
            assert all(len(store.bench_results(r.id)) == RESULTS_PER_RUN for r in runs)
        assert len({r.id for r in store.bench_runs()}) == RUNS * len(sessions)
        rows = store._connection().execute("SELECT session FROM session_events ORDER BY id").fetchall()
    order = [row[0] for row in rows]
    # The writers really overlapped (alpha, beta, alpha... at least once), so the lock was contended.
    assert sum(a != b for a, b in zip(order, order[1:])) >= 2


def open_and_add(path: str, name: str, barrier, results) -> None:
    """Child process: a first start of the app, racing the other to create the file."""
    try:
        barrier.wait(20)
        with open_store(Path(path), busy_timeout_s=30) as store:
            store.add_session(SessionRecord(name))
            results.put(store.schema_version)
    except BaseException as exc:
        results.put(f"{name}: {exc!r}")
        raise


def test_two_processes_create_a_new_file_at_once(tmp_path: Path) -> None:
    """Two first starts race to create and migrate the file; it is migrated once and both write."""
    path = tmp_path / "fresh" / "maider.sqlite3"
    versions = run_children(open_and_add, [(str(path), "one"), (str(path), "two")])
    assert versions == [LATEST_VERSION, LATEST_VERSION]
    with open_store(path) as store:
        assert store.session_names() == {"one", "two"}
        applied = store._connection().execute("SELECT COUNT(*) FROM schema_version").fetchone()[0]
    assert applied == LATEST_VERSION
