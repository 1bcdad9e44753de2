"""The session database when it cannot be read: moved aside (renamed, never deleted), a new one opened."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..clock import Clock
    from ..store import Store


def replace_broken(database: Path, clock: Clock) -> tuple[Path, Store]:
    """Move the unreadable `database` aside and open a new, empty one there: (where the old one went,
    the new store). StoreError when the new one cannot be opened either (the old one stays moved)."""
    from ..store import move_aside, open_store

    moved = move_aside(database, clock=clock)
    return moved, open_store(database, clock=clock)
