"""What the screens read from (and file into) the session database, each call in a thread.

The UI never touches the store: it awaits these from its workers, so SQLite (and a busy timeout
while another program holds the file) never runs on the UI loop. The store is looked up at every
call, since a broken database may be replaced while the app runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..store.errors import StoreError
from ..store.records import BenchRunRecord, SessionRecord

if TYPE_CHECKING:
    from ..bench.dbjson import ImportReport
    from .bench_run import BenchOutcome, BenchTarget
    from ..context import AppContext
    from ..store import Store
    from .events import OpsEvent

__all__ = ["BenchRunRecord", "NoDatabaseError", "SessionRecord", "StoreError", "Views"]

T = TypeVar("T")

Version = tuple[object, int, int]
"""Which store, and its `version()`: equal while nothing was committed since."""


class NoDatabaseError(RuntimeError):
    """The session database could not be opened: there is nothing to read from or file into."""

    def __init__(self) -> None:
        super().__init__("there is no session database this time (it could not be opened); "
                         "restart the app to try again.")


class Views:
    """Typed reads of `context`'s store for the screens; with no store, an empty answer. A read the
    database refuses (another program holds it exclusively, the file broke) raises StoreError."""

    def __init__(self, context: AppContext) -> None:
        self.context = context

    @property
    def available(self) -> bool:
        """A database is open (without one, reads answer empty and filing raises NoDatabaseError)."""
        return self.context.store is not None

    @property
    def database(self) -> Path:
        return self.context.paths.database

    async def _read(self, read: Callable[[Store], T], empty: T) -> T:
        store = self.context.store
        if store is None:
            return empty
        return await asyncio.to_thread(read, store)

    async def _file(self, write: Callable[[Store], T]) -> T:
        store = self.context.store
        if store is None:
            raise NoDatabaseError()
        return await asyncio.to_thread(write, store)

    # sessions
    async def sessions(self, *, include_ended: bool = True) -> list[SessionRecord]:
        return await self._read(lambda store: store.list_sessions(include_ended=include_ended), [])

    async def session(self, name: str) -> SessionRecord | None:
        return await self._read(lambda store: store.get_session(name), None)

    async def session_names(self) -> set[str]:
        return await self._read(lambda store: store.session_names(), set())

    async def sessions_if_changed(self, since: Version | None
                                  ) -> tuple[Version | None, list[SessionRecord] | None]:
        """(the version now, every session) or, while nothing was committed since `since`, (since, None)."""
        def read(store: Store) -> tuple[Version | None, list[SessionRecord] | None]:
            version = (store, *store.version())
            return (since, None) if version == since else (version, store.list_sessions())

        return await self._read(read, (None, []))

    async def session_if_changed(self, name: str, since: Version | None
                                 ) -> tuple[Version | None, SessionRecord | None, bool]:
        """(the version now, the session, True) or, while nothing was committed since `since`,
        (since, None, False)."""
        def read(store: Store) -> tuple[Version | None, SessionRecord | None, bool]:
            version = (store, *store.version())
            return (since, None, False) if version == since else (version, store.get_session(name), True)

        return await self._read(read, (None, None, True))

    async def history(self, name: str, recent: Iterable[OpsEvent] = ()) -> list[tuple[str, float | None]]:
        """The session's log: its stored events, then the live log lines the store does not hold."""
        from .events import session_history

        recent = list(recent)
        store = self.context.store
        return await asyncio.to_thread(session_history, store, name, recent)

    # benchmarks
    async def bench_runs(self) -> list[BenchRunRecord]:
        return await self._read(lambda store: store.bench_runs(), [])

    async def run_benchmark(self, target: BenchTarget, **options: Any) -> BenchOutcome:
        """ops.bench_run.run_benchmark on `target`, the run kept in this database (when there is one)
        and stamped by the app's clock; `options` are its keywords."""
        from .bench_run import run_benchmark

        return await run_benchmark(target, store=self.context.store, clock=self.context.clock, **options)

    async def export_benchmarks(self, path: Path) -> int:
        """Every run to `path` in the seed's format; how many. NoDatabaseError, OSError."""
        from ..bench.dbjson import export_database

        return await self._file(lambda store: export_database(store, path))

    async def import_benchmarks(self, path: Path) -> ImportReport:
        """The runs of the file at `path` into the database, all or none. NoDatabaseError,
        DatabaseFormatError, OSError, the store's error."""
        from ..bench.dbjson import import_database

        return await self._file(lambda store: import_database(path, store))
