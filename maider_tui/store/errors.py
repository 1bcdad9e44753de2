"""What can go wrong with the database file, each said in one sentence the user can act on."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ..paths import display_path

# Primary result codes (the low byte of an extended code), so we need not rely on the module's constants.
_BUSY, _LOCKED, _CORRUPT, _CANTOPEN, _NOTADB = 5, 6, 11, 14, 26


class StoreError(Exception):
    """Any failure of the local database; `path` names the file when one is involved."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


class StoreCorruptError(StoreError):
    """The file is not a SQLite database of ours, or it is damaged; it was left exactly as it was."""

    def __init__(self, path: Path, detail: str = "") -> None:
        why = f" ({detail})" if detail else ""
        super().__init__(
            f"{display_path(path)} is not a maider-tui database{why}; the file was left as it is: "
            "move it aside to start a new one",
            path,
        )


class StoreTooNewError(StoreError):
    """The file was written by a newer maider-tui; it was neither read further nor changed."""

    def __init__(self, path: Path, found: int, known: int) -> None:
        super().__init__(
            f"{display_path(path)} was written by a newer maider-tui (schema {found}, this version knows up to {known}); "
            "upgrade maider-tui to open it (the file was not changed)",
            path,
        )
        self.found = found
        self.known = known


class StoreLockedError(StoreError):
    """Another program held the write lock for longer than the busy timeout."""

    def __init__(self, path: Path, timeout_s: float) -> None:
        super().__init__(
            f"{display_path(path)} is still locked by another program after waiting {timeout_s:g} s; "
            "close other maider-tui windows using it and try again",
            path,
        )
        self.timeout_s = timeout_s


def is_busy(exc: sqlite3.Error) -> bool:
    """True when SQLite refused because another connection holds a lock."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    text = str(exc).lower()
    return code in (_BUSY, _LOCKED) or "locked" in text or "busy" in text


def translate(exc: sqlite3.Error, path: Path, timeout_s: float) -> StoreError:
    """Turn a sqlite3 exception into the StoreError a user can act on."""
    if is_busy(exc):
        return StoreLockedError(path, timeout_s)
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    text = str(exc).lower()
    if code in (_CORRUPT, _NOTADB) or "malformed" in text or "not a database" in text:
        return StoreCorruptError(path, str(exc))
    if code == _CANTOPEN:
        return StoreError(
            f"cannot open {path} ({exc}); check the folder exists and you may write to it", path
        )
    return StoreError(
        f"the database {path} failed ({exc}); if this happens again, move the file aside", path
    )
