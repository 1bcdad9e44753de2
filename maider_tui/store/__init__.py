"""The local database: sessions, their events, benchmark runs and an API cache, in one SQLite file.

Open it with `open_store(AppPaths.database)`; see docs/store.md for what happens with an old,
newer or broken file and how several processes share it.
"""

from .errors import StoreCorruptError, StoreError, StoreLockedError, StoreTooNewError
from .records import ENDED_STATES, BenchResultRecord, BenchRunRecord, EventRecord, NodeRecord, SessionRecord
from .schema import LATEST_VERSION, MIGRATIONS, Migration, sql_migration
from .store import DEFAULT_BUSY_TIMEOUT_S, Store, move_aside, open_store

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_S",
    "ENDED_STATES",
    "LATEST_VERSION",
    "MIGRATIONS",
    "BenchResultRecord",
    "BenchRunRecord",
    "EventRecord",
    "NodeRecord",
    "Migration",
    "SessionRecord",
    "Store",
    "StoreCorruptError",
    "StoreError",
    "StoreLockedError",
    "StoreTooNewError",
    "move_aside",
    "open_store",
    "sql_migration",
]
