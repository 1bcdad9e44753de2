"""A small key-value cache with expiry, for API answers (GPU types, regions) that change rarely."""

from __future__ import annotations

import json
from typing import Any

from .core import StoreBase
from .records import dumps


class CacheMixin(StoreBase):
    """The API cache; part of Store."""

    def cache_get(self, key: str) -> Any | None:
        """The cached value, or None when missing or expired by the store's clock."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT value FROM api_cache WHERE key = ? AND expires_at > ?", (key, self.clock.now())
            ).fetchone()
        return None if row is None else json.loads(row[0])

    def cache_put(self, key: str, value: Any, ttl_s: float) -> None:
        """Cache a JSON-serialisable value for `ttl_s` seconds, replacing any older one."""
        text = dumps(value)  # fails here, before the transaction, when the value is not JSON
        now = self.clock.now()
        with self._write() as conn:
            conn.execute(
                "INSERT INTO api_cache (key, value, stored_at, expires_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value, stored_at = excluded.stored_at, "
                "expires_at = excluded.expires_at",
                (key, text, now, now + ttl_s),
            )
            # Expired rows are never read again; drop them while we hold the write lock anyway.
            conn.execute("DELETE FROM api_cache WHERE expires_at <= ?", (now,))

    def cache_clear(self, prefix: str | None = None) -> int:
        """Drop every cached entry, or those whose key starts with `prefix`; return how many."""
        with self._write() as conn:
            if prefix is None:
                return conn.execute("DELETE FROM api_cache").rowcount
            # substr, not LIKE: a prefix may contain % or _.
            return conn.execute(
                "DELETE FROM api_cache WHERE substr(key, 1, ?) = ?", (len(prefix), prefix)
            ).rowcount
