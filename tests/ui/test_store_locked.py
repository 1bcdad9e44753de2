"""A database another program holds for long: the app says so once and does not freeze on every write."""

from __future__ import annotations

import asyncio
import sqlite3

from maider_tui.app import MaiderApp
from maider_tui.store import SessionRecord, StoreError, open_store

from .toasts import toasts

import pytest

LOCKED = "is locked by another program"


async def test_a_locked_database_is_said_once_and_writes_stop_waiting(make_context, sim_cloud, paths):
    context = make_context()
    context.store.close()
    context.store = open_store(paths.database, busy_timeout_s=0.2)
    context.provider = sim_cloud.provider(store=context.store)  # it caches the API's answers in the store
    other = sqlite3.connect(paths.database, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    app = MaiderApp(context)
    try:
        async with app.run_test(notifications=True) as pilot:
            await app.workers.wait_for_complete()  # the account check's cache writes found the file locked
            assert context.store.locked
            await pilot.pause()
            said = [text for text in toasts(app) if LOCKED in text]
            assert len(said) == 1 and said == [text for text in toasts(app, "error") if LOCKED in text]
            with pytest.raises(StoreError):  # another write in the same episode is not said again
                await asyncio.to_thread(context.store.add_session, SessionRecord("during-the-lock"))
            await pilot.pause()
            assert len([text for text in toasts(app) if LOCKED in text]) == 1
            other.execute("ROLLBACK")
            context.store.add_session(SessionRecord("after-the-lock"))
            assert not context.store.locked
            other.execute("BEGIN EXCLUSIVE")  # a new episode is said again
            with pytest.raises(StoreError):
                context.store.add_session(SessionRecord("second-lock"))
            await pilot.pause()
            assert len([text for text in toasts(app) if LOCKED in text]) == 2
            other.execute("ROLLBACK")
    finally:
        other.close()


async def test_keys_answer_while_the_account_checks_cache_write_waits_for_the_lock(make_context, sim_cloud,
                                                                                  paths):
    """The account check keeps the API's answers in the database: with the file write-locked by
    another program, that write waits out the busy timeout in a thread, and a key opens its screen
    meanwhile. (The write ran on the UI loop: nothing answered until it gave up.)"""
    import threading

    from maider_tui.ui.screens.recommend import RecommendScreen

    context = make_context()
    context.store.close()
    context.store = open_store(paths.database, busy_timeout_s=5.0)  # the lock ends at once after the key
    context.provider = sim_cloud.provider(store=context.store)
    writing = threading.Event()
    cache_put = context.store.cache_put

    def watched_put(*args, **kwargs):
        writing.set()
        try:
            return cache_put(*args, **kwargs)
        finally:
            writing.clear()

    context.store.cache_put = watched_put
    other = sqlite3.connect(paths.database, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    app = MaiderApp(context)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            for _ in range(300):
                if writing.is_set():
                    break
                await asyncio.sleep(0.01)
            seen_waiting = writing.is_set()
            await pilot.press("R")
            for _ in range(100):  # a loaded machine may take a few frames to show it
                if isinstance(app.screen, RecommendScreen):
                    break
                await pilot.pause(0.02)
            answered_during_the_write = isinstance(app.screen, RecommendScreen) and writing.is_set()
            other.execute("ROLLBACK")
            await app.workers.wait_for_complete()
            assert seen_waiting and answered_during_the_write
    finally:
        other.close()
