"""Who watches a session: one process at a time, through a file lock per session.

The lock is `fcntl.flock` on `<data_dir>/locks/<name>.lock`, so the kernel releases it when the
holder exits or crashes: no stale lock survives a dead watcher. The file holds "host:pid" for
display, and the session record's `owner` says the same for screens that only read the store.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
from pathlib import Path
from typing import Any

from maider_tui.paths import AppPaths

log = logging.getLogger(__name__)


def lock_path(paths: AppPaths, name: str) -> Path:
    return paths.data_dir / "locks" / f"{name}.lock"


def this_process() -> str:
    """How this process names itself as an owner: "host:pid"."""
    return f"{socket.gethostname()}:{os.getpid()}"


class SessionLock:
    """A held watch lock; `release()` (or leaving the `with` block, or exiting) gives it up."""

    def __init__(self, name: str, path: Path, fd: int, owner: str, store: Any | None) -> None:
        self.name, self.path, self.owner = name, path, owner
        self._fd: int | None = fd
        self._store = store

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Give the session up; idempotent."""
        if self._fd is None:
            return
        if self._store is not None:
            try:
                record = self._store.get_session(self.name)
                if record is not None and record.owner == self.owner:
                    self._store.update_session(self.name, owner=None)
            except Exception:  # noqa: BLE001 - the lock itself must still be released
                log.exception("clearing the owner of %s", self.name)
        fd, self._fd = self._fd, None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> SessionLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def try_acquire(paths: AppPaths, name: str, *, store: Any | None = None) -> SessionLock | None:
    """Take the watch lock of session `name`, or None when another holder (any process) has it.

    With `store`, the session record's `owner` is set to this process while the lock is held.
    """
    path = lock_path(paths, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # BlockingIOError: someone holds it
        os.close(fd)
        return None
    owner = this_process()
    os.ftruncate(fd, 0)
    os.pwrite(fd, owner.encode(), 0)
    if store is not None and store.get_session(name) is not None:
        store.update_session(name, owner=owner)
    return SessionLock(name, path, fd, owner, store)


def owner_of(paths: AppPaths, name: str) -> str | None:
    """"host:pid" of whoever holds the watch lock of `name` now, or None when nobody does.

    A lock this process holds counts too (flock locks belong to the open file, not the process).
    """
    path = lock_path(paths, name)
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            text = os.pread(fd, 256, 0).decode(errors="replace").strip()
            return text or "another process"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def stop_owner(paths: AppPaths, name: str) -> bool:
    """Ask the process watching `name` to stop (SIGTERM), so the app can take the session over.

    True when a signal was sent. Only a watcher on this host can be asked; `maider-tui watch` stops
    on SIGTERM and releases its locks, after which `try_acquire` succeeds.
    """
    import signal

    holder = owner_of(paths, name)
    host, _, pid = (holder or "").rpartition(":")
    if not pid.isdigit() or host != socket.gethostname() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), signal.SIGTERM)
    except OSError:  # it exited meanwhile: nothing to stop
        return False
    return True
