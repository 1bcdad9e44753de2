"""The rows of the store as plain dataclasses, and their conversion to and from SQLite rows."""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass, field, fields
from typing import Any

# A session in one of these states no longer has a VM running (ended_at set means the same).
ENDED_STATES = frozenset({"destroyed", "ended"})


@dataclass
class SessionRecord:
    """One rented VM and what runs on it; `name` is unique and is also the VM's label."""

    name: str
    state: str = "creating"
    stage: str | None = None
    provider: str = "linode"
    instance_id: int | None = None
    region: str = ""
    gpu_type: str = ""
    gpu_count: int = 1
    model: str = ""
    hourly_usd: float = 0.0
    # None means "now by the store's clock" when the record is added.
    created_at: float | None = None
    ready_at: float | None = None
    ended_at: float | None = None
    ip: str | None = None
    ssh_port: int = 22
    host_key: str | None = None
    vllm_config: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    cost_usd: float | None = None
    tokens_generated: int | None = None
    last_activity: float | None = None
    owner: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    nodes: int = 1  # VMs the session spans; above 1, its nodes are NodeRecords and it has a VPC
    vpc_id: int | None = None  # the session's private network (a multi-VM session), once made

    @property
    def ended(self) -> bool:
        """True once the VM is gone (destroyed or ended); failed or orphan sessions may still cost money."""
        return self.ended_at is not None or self.state in ENDED_STATES


@dataclass
class NodeRecord:
    """One VM of a session that spans several; index 0 is the head (whose VM the session record names)."""

    session: str
    index: int
    address: str  # its fixed address on the session's VPC
    state: str = "creating"  # creating, booting, ready, lost, destroyed
    instance_id: int | None = None
    ip: str | None = None
    ssh_port: int = 22
    host_key: str | None = None

    @property
    def role(self) -> str:
        return "head" if self.index == 0 else "worker"


@dataclass
class EventRecord:
    """One line of a session's history (stage reached, heal attempt, warning...)."""

    id: int
    session: str
    ts: float
    kind: str
    message: str
    data: dict[str, Any] | None = None


@dataclass
class BenchRunRecord:
    """One benchmark suite run on one GPU type and model; shaped like the old tool's JSON database entry."""

    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    # None means "now by the store's clock" when the run is added.
    timestamp: float | None = None
    session: str | None = None
    gpu_type: str = ""
    gpu_count: int = 1
    vram_per_gpu: float = 0.0
    total_vram: float = 0.0
    hourly_usd: float = 0.0
    model_id: str = ""
    model_category: str = ""
    vllm_config: dict[str, Any] = field(default_factory=dict)
    results_by_category: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    source: str = "measured"


@dataclass
class BenchResultRecord:
    """One prompt's outcome within a benchmark run."""

    run_id: str
    prompt_id: str
    category: str
    ok: bool
    ttft_s: float | None = None
    tokens_per_sec: float | None = None
    output_tokens: int | None = None
    e2e_s: float | None = None
    error: str | None = None


SESSION_FIELDS = tuple(f.name for f in fields(SessionRecord))
SESSION_JSON = frozenset({"vllm_config", "options", "extra"})
BENCH_RUN_FIELDS = tuple(f.name for f in fields(BenchRunRecord))
BENCH_RUN_JSON = frozenset({"vllm_config", "results_by_category", "summary"})
BENCH_RESULT_FIELDS = tuple(f.name for f in fields(BenchResultRecord))


def dumps(value: Any) -> str:
    """JSON text for a column; sorted keys so equal values store equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def to_row(record: Any, names: tuple[str, ...], json_names: frozenset[str]) -> list[Any]:
    """Column values of `record` in `names` order, JSON-encoding the dict columns."""
    return [dumps(getattr(record, n)) if n in json_names else getattr(record, n) for n in names]


def session_from_row(row: sqlite3.Row) -> SessionRecord:
    values = {n: (loads(row[n]) if n in SESSION_JSON else row[n]) for n in SESSION_FIELDS}
    return SessionRecord(**values)


def node_from_row(row: sqlite3.Row) -> NodeRecord:
    return NodeRecord(row["session"], row["idx"], row["address"], row["state"], row["instance_id"], row["ip"],
                      row["ssh_port"], row["host_key"])


def event_from_row(row: sqlite3.Row) -> EventRecord:
    return EventRecord(row["id"], row["session"], row["ts"], row["kind"], row["message"], loads(row["data"]))


def bench_run_from_row(row: sqlite3.Row) -> BenchRunRecord:
    values = {n: (loads(row[n]) if n in BENCH_RUN_JSON else row[n]) for n in BENCH_RUN_FIELDS}
    return BenchRunRecord(**values)


def bench_result_from_row(row: sqlite3.Row) -> BenchResultRecord:
    values = {n: row[n] for n in BENCH_RESULT_FIELDS}
    values["ok"] = bool(values["ok"])
    return BenchResultRecord(**values)
