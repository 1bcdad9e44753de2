"""Only one process watches a session: the per-session file lock, across real processes."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import time

from maider_tui.ops.owner import owner_of, stop_owner, this_process, try_acquire
from maider_tui.paths import AppPaths
from maider_tui.store import SessionRecord, open_store


def hold_lock(home: str, name: str, held, done) -> None:
    """Child process: take the lock, say so, keep it until told to exit (exiting releases it)."""
    lock = try_acquire(AppPaths.under(Path(home)), name)
    held.put(None if lock is None else lock.owner)
    done.wait(20)


def test_an_app_window_holding_the_lock_is_never_asked_to_stop(tmp_path: Path):
    paths = AppPaths.under(tmp_path)
    ctx = multiprocessing.get_context("spawn")
    held, done = ctx.Queue(), ctx.Event()
    child = ctx.Process(target=hold_lock, args=(str(tmp_path), "s1", held, done))
    child.start()
    try:
        assert held.get(timeout=30)
        assert stop_owner(paths, "s1") is False
        assert child.is_alive() and owner_of(paths, "s1") is not None
    finally:
        done.set()
        child.join(10)
    assert child.exitcode == 0


def test_second_process_cannot_acquire_until_the_first_exits(tmp_path: Path):
    paths = AppPaths.under(tmp_path)
    ctx = multiprocessing.get_context("spawn")
    held, done = ctx.Queue(), ctx.Event()
    child = ctx.Process(target=hold_lock, args=(str(tmp_path), "s1", held, done))
    child.start()
    try:
        child_owner = held.get(timeout=30)
        assert child_owner and child_owner.endswith(f":{child.pid}")
        assert try_acquire(paths, "s1") is None
        assert owner_of(paths, "s1") == child_owner
        assert try_acquire(paths, "other") is not None, "locks are per session"
    finally:
        done.set()
        child.join(30)
    # The child exited without releasing: the kernel dropped its lock.
    assert owner_of(paths, "s1") is None
    lock = try_acquire(paths, "s1")
    assert lock is not None and lock.owner == this_process()
    lock.release()


def test_lock_is_exclusive_within_a_process_and_sets_the_owner(tmp_path: Path):
    paths = AppPaths.under(tmp_path)
    with open_store(tmp_path / "db.sqlite3") as store:
        store.add_session(SessionRecord(name="s1", state="ready"))
        assert owner_of(paths, "s1") is None
        with try_acquire(paths, "s1", store=store) as lock:
            assert store.get_session("s1").owner == lock.owner == f"{os.uname().nodename}:{os.getpid()}"
            assert try_acquire(paths, "s1") is None
            assert owner_of(paths, "s1") == lock.owner
        assert not lock.held and store.get_session("s1").owner is None
        assert owner_of(paths, "s1") is None
        again = try_acquire(paths, "s1")
        assert again is not None
        again.release()
        again.release()  # idempotent


def hold_lock_until_signalled(home: str, name: str, held) -> None:
    """Child process: take the lock as `maider-tui watch` does and sleep; SIGTERM ends it (a killed
    waiter would jam an Event)."""
    lock = try_acquire(AppPaths.under(Path(home)), name, background=True)
    held.put(None if lock is None else lock.owner)
    time.sleep(30)


def test_stop_owner_makes_the_watcher_let_go(tmp_path: Path):
    paths = AppPaths.under(tmp_path)
    assert stop_owner(paths, "s1") is False, "nobody to stop"
    ctx = multiprocessing.get_context("spawn")
    held = ctx.Queue()
    child = ctx.Process(target=hold_lock_until_signalled, args=(str(tmp_path), "s1", held))
    child.start()
    try:
        owner = held.get(timeout=30)
        assert owner_of(paths, "s1") == owner  # the background mark is not part of the name shown
        assert stop_owner(paths, "s1") is True
        child.join(10)
        assert child.exitcode == -15
    finally:
        if child.is_alive():
            child.kill()
            child.join(10)
    assert owner_of(paths, "s1") is None
    lock = try_acquire(paths, "s1")
    assert lock is not None
    lock.release()
    with try_acquire(paths, "own") as mine:
        assert mine is not None and stop_owner(paths, "own") is False, "never signals itself"


def test_a_database_locked_elsewhere_does_not_stop_the_watch(tmp_path: Path):
    """The owner field is for display: when the database cannot be written, the lock is still taken
    (and given back), never left held by nobody watching."""
    import sqlite3

    paths = AppPaths.under(tmp_path)
    with open_store(paths.database, busy_timeout_s=0.05) as store:
        store.add_session(SessionRecord("s1", state="ready"))
        other = sqlite3.connect(paths.database, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            lock = try_acquire(paths, "s1", store=store)
            assert lock is not None and lock.held and owner_of(paths, "s1") == lock.owner
            lock.release()
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert owner_of(paths, "s1") is None and store.get_session("s1").owner is None
        again = try_acquire(paths, "s1", store=store)
        assert again is not None and store.get_session("s1").owner == again.owner
        again.release()
