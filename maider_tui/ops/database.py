"""The session database's health: a lock another program holds, and a file that cannot be read
(moved aside, renamed and never deleted, and a new one opened)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..store import StoreCorruptError, StoreError

if TYPE_CHECKING:
    from ..clock import Clock
    from ..context import AppContext
    from ..store import Store

__all__ = ["StoreError", "broken_beyond_reading", "replace_broken", "reopen", "watch_lock"]


def replace_broken(database: Path, clock: Clock) -> tuple[Path, Store]:
    """Move the unreadable `database` aside and open a new, empty one there: (where the old one went,
    the new store). StoreError when the new one cannot be opened either (the old one stays moved)."""
    from ..store import move_aside, open_store

    moved = move_aside(database, clock=clock)
    return moved, open_store(database, clock=clock)


def watch_lock(context: AppContext, changed: Callable[[bool], None]) -> None:
    """Call `changed(locked)` each time another program starts or stops holding the database (from
    the thread that wrote), and at once if it holds it already. Nothing without a database."""
    store = context.store
    if store is None:
        return
    store.on_lock_change = changed
    if store.locked:  # it happened before anyone listened
        changed(True)


def broken_beyond_reading(context: AppContext) -> bool:
    """The database could not be opened because the file is damaged (so moving it aside may help)."""
    return isinstance(context.store_error, StoreCorruptError)


async def reopen(context: AppContext) -> Path:
    """Move the broken database aside and open a new one in its place, in a thread; where the old one
    went. StoreError (kept as the context's error) when the new one cannot be opened; OSError when
    the old one cannot be moved."""
    try:
        moved, store = await asyncio.to_thread(replace_broken, context.paths.database, context.clock)
    except StoreError as exc:
        context.store_error = exc
        raise
    context.store, context.store_error = store, None
    return moved
