"""The VMs of a session that spans several (its nodes); part of Store."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from .core import StoreBase
from .errors import StoreError
from .records import NodeRecord, node_from_row

_COLUMNS = {"index": "idx", "address": "address", "state": "state", "instance_id": "instance_id", "ip": "ip",
            "ssh_port": "ssh_port", "host_key": "host_key"}


class NodesMixin(StoreBase):
    """A multi-VM session's nodes: added together when the session is planned, updated one by one."""

    def add_nodes(self, nodes: Iterable[NodeRecord]) -> list[NodeRecord]:
        """Store a session's nodes at once (all or none); StoreError when the session does not exist."""
        rows = list(nodes)
        with self._write() as conn:
            try:
                conn.executemany(
                    "INSERT INTO session_nodes (session, idx, address, state, instance_id, ip, ssh_port, host_key) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [(n.session, n.index, n.address, n.state, n.instance_id, n.ip, n.ssh_port, n.host_key)
                     for n in rows])
            except sqlite3.IntegrityError as exc:
                raise StoreError(f"the nodes of {rows[0].session if rows else '?'} could not be saved: {exc}",
                                 self.path) from exc
        return rows

    def nodes(self, session: str) -> list[NodeRecord]:
        """A session's nodes, the head first; empty for a single-VM session."""
        with self._read() as conn:
            found = conn.execute("SELECT * FROM session_nodes WHERE session = ? ORDER BY idx", (session,)).fetchall()
        return [node_from_row(row) for row in found]

    def update_node(self, session: str, index: int, **fields: Any) -> NodeRecord:
        """Change some fields of one node and return it as now stored; TypeError for an unknown field."""
        unknown = sorted(set(fields) - (set(_COLUMNS) - {"index"}))
        if unknown:
            raise TypeError(f"update_node() got unknown node field(s): {', '.join(unknown)}")
        with self._write() as conn:
            if fields:
                columns = ", ".join(f"{_COLUMNS[key]} = ?" for key in fields)
                conn.execute(f"UPDATE session_nodes SET {columns} WHERE session = ? AND idx = ?",
                             (*fields.values(), session, index))
            row = conn.execute("SELECT * FROM session_nodes WHERE session = ? AND idx = ?",
                               (session, index)).fetchone()
        if row is None:
            raise StoreError(f"{session} has no node {index} in {self.path}", self.path)
        return node_from_row(row)
