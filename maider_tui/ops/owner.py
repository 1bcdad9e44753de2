"""Who watches a session: one process at a time, through a file lock per session.

The lock is `fcntl.flock` on `<data_dir>/locks/<name>.lock`, so the kernel releases it when the
holder exits or crashes: no stale lock survives a dead watcher. The file holds "host:pid" for
display (and a second line "background" for `maider-tui watch`, the only holder another process
may ask to stop), and the session record's `owner` says the same for screens that only read the store.

Destroying takes a second lock, `<name>.destroy.lock` (`destroying`), so two processes (an app and
another app's watchdog, say) never delete one session's VM at the same time.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from maider_tui.paths import AppPaths
from maider_tui.store import StoreError

if TYPE_CHECKING:
    from maider_tui.store import Store

log = logging.getLogger(__name__)

BACKGROUND = "background"
DESTROY_WAIT_S = 300.0  # a destroy retries the API for a few minutes at most; waiting longer means trouble


def lock_path(paths: AppPaths, name: str) -> Path:
    return paths.data_dir / "locks" / f"{name}.lock"


def this_process() -> str:
    """How this process names itself as an owner: "host:pid"."""
    return f"{socket.gethostname()}:{os.getpid()}"


class SessionLock:
    """A held watch lock; `release()` (or leaving the `with` block, or exiting) gives it up."""

    def __init__(self, name: str, path: Path, fd: int, owner: str, store: Store | None) -> None:
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


def try_acquire(paths: AppPaths, name: str, *, store: Store | None = None,
                background: bool = False) -> SessionLock | None:
    """Take the watch lock of session `name`, or None when another holder (any process) has it.

    With `store`, the session record's `owner` is set to this process while the lock is held.
    `background`: the holder is a headless watcher that `stop_owner` may ask to let go; an app
    window is never asked (a second window must not close the first).
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
    os.pwrite(fd, (owner + (f"\n{BACKGROUND}" if background else "")).encode(), 0)
    if store is not None:
        try:
            if store.get_session(name) is not None:
                store.update_session(name, owner=owner)
        except StoreError as exc:  # the lock is what counts; a database locked elsewhere must not stop the watch
            log.warning("could not record %s as the watcher of %s: %s", owner, name, exc)
    return SessionLock(name, path, fd, owner, store)


def owner_of(paths: AppPaths, name: str) -> str | None:
    """"host:pid" of whoever holds the watch lock of `name` now, or None when nobody does.

    A lock this process holds counts too (flock locks belong to the open file, not the process).
    """
    holder = _holder(paths, name)
    return holder[0] if holder is not None else None


def _holder(paths: AppPaths, name: str) -> tuple[str, bool] | None:
    """(owner, is a background watcher) of the held watch lock of `name`, or None."""
    path = lock_path(paths, name)
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            lines = os.pread(fd, 256, 0).decode(errors="replace").strip().splitlines()
            return (lines[0].strip() if lines else "") or "another process", BACKGROUND in lines[1:]
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def stop_owner(paths: AppPaths, name: str) -> bool:
    """Ask the background watcher of `name` to stop (SIGTERM), so the app can take the session over.

    True when a signal was sent. Only a `maider-tui watch` on this host can be asked (it stops on
    SIGTERM and releases its locks, after which `try_acquire` succeeds); another app window
    holding the session is left alone, and keeps watching it.
    """
    import signal

    holder = _holder(paths, name)
    if holder is None or not holder[1]:
        return False
    host, _, pid = holder[0].rpartition(":")
    if not pid.isdigit() or host != socket.gethostname() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), signal.SIGTERM)
    except OSError:  # it exited meanwhile: nothing to stop
        return False
    return True


def destroy_lock_path(paths: AppPaths, name: str) -> Path:
    return paths.data_dir / "locks" / f"{name}.destroy.lock"


@asynccontextmanager
async def destroying(paths: AppPaths, name: str, *, on_wait: Callable[[], object] | None = None,
                     wait_s: float = DESTROY_WAIT_S, poll_s: float = 0.05) -> AsyncIterator[None]:
    """Hold the destroy lock of `name` for the block: one destroy of a session at a time, across processes.

    A second destroyer waits (real time; `on_wait()` is called once when it has to) until the first
    is done, then should read the session again: it has usually ended by then. RuntimeError after
    `wait_s`. The kernel drops the lock of a destroyer that crashed.
    """
    path = destroy_lock_path(paths, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if not waited and on_wait is not None:
                    on_wait()
                waited = True
                if loop.time() >= deadline:
                    raise RuntimeError(f"{name} is still being destroyed by another maider-tui process "
                                       f"after {wait_s:g} s; try again") from None
                await asyncio.sleep(poll_s)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
