"""A launch's session name: chosen before any event, so all carry it, and reserved by the record's insert.

Two launches (two windows on one home) may want the same name in the same second: only the insert of
the session's record decides. An automatic name taken meanwhile moves on to the next free one; a name
the user gave is refused with the reason.
"""

from __future__ import annotations

from collections.abc import Callable

from maider_tui.ops.naming import next_free, session_name, validate_session_name
from maider_tui.ops.readiness import StageFailed
from maider_tui.store import SessionRecord, Store, StoreError

NAME_TRIES = 50  # automatic names taken meanwhile by other launches: -2, -3 ... until one is free


def choose_name(store: Store, name: str, *, auto: bool, model: str, now: float) -> str:
    """The user's name, checked (StageFailed "record" when it cannot be used), or a fresh automatic one."""
    taken = store.session_names()
    if name and not auto:
        problem = validate_session_name(name, taken)
        if problem:
            raise StageFailed("record", problem)
        return name
    return name or session_name(model, now, taken)


def reserve(store: Store, name: str, *, auto: bool, make: Callable[[str], SessionRecord]) -> str:
    """Insert `make(name)`: the insert is the reservation. Returns the name the record got."""
    base = name
    for _ in range(NAME_TRIES):
        try:
            store.add_session(make(name))
            return name
        except StoreError:
            taken = store.session_names()
            if not auto or name not in taken:
                raise StageFailed("record", validate_session_name(name, taken) or
                                  f"{name} could not be recorded.") from None
            name = next_free(base, taken)
    raise StageFailed("record", "No free session name was found; give the session a name of your own.")
