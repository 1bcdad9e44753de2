"""The local SQLite store: round-trips, expiry, migrations, and never harming a file it cannot read."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from maider_tui.paths import display_path
from maider_tui.clock import ManualClock
from maider_tui.store import (
    LATEST_VERSION,
    MIGRATIONS,
    BenchResultRecord,
    BenchRunRecord,
    SessionRecord,
    Store,
    StoreCorruptError,
    StoreError,
    StoreLockedError,
    StoreTooNewError,
    move_aside,
    open_store,
    sql_migration,
)
from maider_tui.store.records import SESSION_FIELDS, SESSION_JSON, NodeRecord, to_row

T0 = 1_795_351_260.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=T0)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "maider.sqlite3"


@pytest.fixture
def store(db_path: Path, clock: ManualClock):
    with open_store(db_path, clock=clock) as opened:
        yield opened


def sidecars(path: Path) -> list[Path]:
    return [p for p in path.parent.iterdir() if p.name != path.name and p.name.startswith(path.name)]


def full_session(name: str = "qwen32b-1") -> SessionRecord:
    return SessionRecord(
        name=name, state="ready", stage="vllm_ready", provider="linode", instance_id=4242,
        region="us-ord", gpu_type="g2-gpu-rtx4000a2-s", gpu_count=2,
        model="Qwen/Qwen2.5-Coder-32B-Instruct-AWQ", hourly_usd=1.04, created_at=T0 - 600,
        ready_at=T0 - 60, ended_at=None, ip="203.0.113.7", ssh_port=2222,
        host_key="ssh-ed25519 AAAAC3Nza example", vllm_config={"tensor_parallel_size": 2},
        options={"watchdog_minutes": 30}, cost_usd=None, tokens_generated=1234,
        last_activity=T0 - 5, owner="pid:99", extra={"note": ["a", 1]},
    )


def test_open_creates_folder_file_and_latest_schema(db_path: Path, clock: ManualClock) -> None:
    with open_store(db_path, clock=clock) as store:
        assert isinstance(store, Store)
        assert store.schema_version == LATEST_VERSION
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    versions = [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")]
    assert versions == [m.version for m in MIGRATIONS]
    conn.close()

    # An empty file is a database nobody has written yet.
    empty = db_path.with_name("empty.sqlite3")
    empty.write_bytes(b"")
    with open_store(empty, clock=clock) as store:
        assert store.schema_version == LATEST_VERSION


def test_closed_store_says_so(db_path: Path, clock: ManualClock) -> None:
    store = open_store(db_path, clock=clock)
    store.close()
    store.close()  # twice is fine
    with pytest.raises(StoreError, match="closed"):
        store.get_session("x")


def test_session_round_trip(store: Store) -> None:
    rec = full_session()
    store.add_session(rec)
    assert store.get_session(rec.name) == rec
    assert store.get_session("nope") is None
    # created_at left out is "now" by the store's clock.
    assert store.add_session(SessionRecord("fresh")).created_at == T0
    assert store.get_session("fresh").created_at == T0
    assert store.session_names() == {rec.name, "fresh"}


def test_duplicate_session_name_is_refused(store: Store) -> None:
    store.add_session(SessionRecord("twin"))
    with pytest.raises(StoreError, match="'twin' already exists"):
        store.add_session(SessionRecord("twin", state="booting"))
    assert store.get_session("twin").state == "creating"


def test_update_session(store: Store, clock: ManualClock) -> None:
    store.add_session(full_session("s"))
    updated = store.update_session(
        "s", state="destroyed", ended_at=clock.now(), cost_usd=0.52, vllm_config={"max_model_len": 8192}
    )
    assert store.get_session("s") == updated
    assert (updated.state, updated.cost_usd) == ("destroyed", 0.52)
    assert updated.vllm_config == {"max_model_len": 8192}


def test_version_moves_with_every_commit_ours_or_another_programs(store: Store, db_path: Path) -> None:
    store.add_session(SessionRecord("s"))
    before = store.version()
    store.get_session("s")
    assert store.version() == before  # reads change nothing
    store.update_session("s", state="ready")
    ours = store.version()
    assert ours != before
    other = sqlite3.connect(db_path)
    with other:
        other.execute("UPDATE sessions SET state = 'ended' WHERE name = 's'")
    other.close()
    theirs = store.version()
    assert theirs != ours
    with pytest.raises(StoreError):  # a write rolled back is no commit
        store.update_session("ghost", state="ready")
    assert store.version() == theirs


def test_update_unknown_field_is_a_type_error(store: Store) -> None:
    store.add_session(SessionRecord("s"))
    with pytest.raises(TypeError, match="colour"):
        store.update_session("s", colour="red")
    with pytest.raises(TypeError, match="name"):
        store.update_session("s", name="other")
    with pytest.raises(StoreError, match="no session named 'ghost'"):
        store.update_session("ghost", state="ready")


def test_list_sessions_newest_first_and_without_ended(store: Store) -> None:
    store.add_session(SessionRecord("old", created_at=T0 - 300))
    store.add_session(SessionRecord("gone", state="destroyed", created_at=T0 - 200))
    store.add_session(SessionRecord("stopped", state="ready", ended_at=T0 - 50, created_at=T0 - 100))
    store.add_session(SessionRecord("new", state="failed", created_at=T0))
    assert [s.name for s in store.list_sessions()] == ["new", "stopped", "gone", "old"]
    # A failed session may still have a VM costing money: it stays listed.
    assert [s.name for s in store.list_sessions(include_ended=False)] == ["new", "old"]


def test_events_round_trip_and_limit(store: Store, clock: ManualClock) -> None:
    store.add_session(SessionRecord("s"))
    first = store.add_event("s", "stage", "booting", {"fraction": 0.25})
    assert first > 0
    for i in range(9):
        clock.advance(1)
        store.add_event("s", "log", f"line {i}")
    got = store.events("s")
    assert len(got) == 10
    assert got[0].kind == "stage" and got[0].data == {"fraction": 0.25} and got[0].ts == T0
    assert got[0].session == "s" and got[0].id == first
    assert [e.message for e in store.events("s", limit=3)] == ["line 6", "line 7", "line 8"]
    assert store.add_event("s", "warning", "late", ts=T0 - 1) > first
    assert store.events("s", limit=1)[0].message == "line 8"
    assert store.events("s")[0].message == "late"
    with pytest.raises(StoreError, match="no such session"):
        store.add_event("ghost", "log", "hello")


def test_delete_session_takes_its_events(store: Store) -> None:
    store.add_session(SessionRecord("s"))
    store.add_event("s", "log", "x")
    assert store.delete_session("s") is True
    assert store.delete_session("s") is False
    assert store.get_session("s") is None and store.events("s") == []


def test_threads_share_one_store(store: Store) -> None:
    store.add_session(SessionRecord("s"))

    def write(n: int) -> None:
        for i in range(25):
            store.add_event("s", "log", f"{n}-{i}")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, range(4)))
    assert len(store.events("s", limit=1000)) == 100


def bench_run(gpu_type: str = "g1-gpu-rtx6000-2", category: str = "70b", **kw) -> BenchRunRecord:
    return BenchRunRecord(
        gpu_type=gpu_type, gpu_count=2, vram_per_gpu=24.0, total_vram=48.0, hourly_usd=3.0,
        model_id="Qwen/Qwen2.5-72B-Instruct-AWQ", model_category=category,
        vllm_config={"tensor_parallel_size": 2, "max_model_len": 32768},
        results_by_category={"coding": {"avg_tokens_per_sec": 45.3}},
        summary={
            "avg_tokens_per_sec": 43.7, "cost_per_1k_tokens": 0.0242, "tests_passed": 2, "tests_total": 2
        },
        **kw,
    )


def results_for(run: BenchRunRecord) -> list[BenchResultRecord]:
    return [
        BenchResultRecord(run.id, "code-1", "coding", True, 0.21, 45.0, 512, 11.6),
        BenchResultRecord(run.id, "code-1", "coding", False, error="timeout"),
    ]


def test_bench_round_trip(store: Store, clock: ManualClock) -> None:
    run = bench_run(session="s")
    assert store.add_bench_run(run, results_for(run)) == run.id
    (stored,) = store.bench_runs()
    assert stored == BenchRunRecord(**{**run.__dict__, "timestamp": T0})
    assert store.get_bench_run(run.id) == stored
    assert store.bench_results(run.id) == results_for(run)
    # Deleting a run takes its results along.
    assert store.delete_bench_run(run.id) is True and store.delete_bench_run(run.id) is False
    assert store.bench_runs() == [] and store.bench_results(run.id) == []


def test_bench_filters_and_order(store: Store) -> None:
    a = bench_run(timestamp=T0 - 100)
    b = bench_run(gpu_type="g2-gpu-rtx4000a2-s", category="30b", timestamp=T0)
    c = bench_run(category="30b", timestamp=T0 - 50, source="imported")
    for run in (a, b, c):
        store.add_bench_run(run, [])
    assert [r.id for r in store.bench_runs()] == [b.id, c.id, a.id]
    assert [r.id for r in store.bench_runs(gpu_type="g1-gpu-rtx6000-2")] == [c.id, a.id]
    assert [r.id for r in store.bench_runs(model_category="30b")] == [b.id, c.id]
    assert [r.id for r in store.bench_runs(gpu_type="g1-gpu-rtx6000-2", model_category="30b")] == [c.id]


def test_bench_run_is_all_or_nothing(store: Store) -> None:
    run = bench_run()
    bad = BenchResultRecord(run.id, None, "coding", True)  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="nothing of it was kept"):
        store.add_bench_run(run, [*results_for(run), bad])
    assert store.bench_runs() == [] and store.bench_results(run.id) == []
    # The same run goes in cleanly afterwards: nothing half-written is in the way.
    store.add_bench_run(run, results_for(run))
    assert len(store.bench_results(run.id)) == 2
    other = bench_run()
    with pytest.raises(ValueError, match="another run"):
        store.add_bench_run(other, [BenchResultRecord(run.id, "p", "coding", True)])
    assert store.get_bench_run(other.id) is None


def test_cache_round_trip_and_expiry(store: Store, clock: ManualClock) -> None:
    types = [{"id": "g2-gpu-rtx4000a1-s", "price": {"hourly": 0.52}}]
    store.cache_put("linode:types", types, ttl_s=3600)
    assert store.cache_get("linode:types") == types
    assert store.cache_get("missing") is None
    clock.advance(3599)
    assert store.cache_get("linode:types") == types
    clock.advance(1)
    assert store.cache_get("linode:types") is None
    store.cache_put("linode:types", {"fresh": True}, ttl_s=10)
    assert store.cache_get("linode:types") == {"fresh": True}


def test_cache_clear_by_prefix(store: Store) -> None:
    for key in ("linode:types", "linode:regions", "hf:model%_x"):
        store.cache_put(key, 1, ttl_s=60)
    assert store.cache_clear("linode:") == 2
    assert store.cache_get("hf:model%_x") == 1
    assert store.cache_clear("hf:model%") == 1
    store.cache_put("a", 1, ttl_s=60)
    assert store.cache_clear() == 1 and store.cache_get("a") is None
    with pytest.raises(TypeError):
        store.cache_put("k", object(), ttl_s=60)


def assert_refused_untouched(path: Path, error: type[StoreError], match: str, clock: ManualClock) -> None:
    before = path.read_bytes()
    with pytest.raises(error, match=match) as info:
        open_store(path, clock=clock, busy_timeout_s=0.2)
    assert display_path(path) in str(info.value) and info.value.path == path
    assert path.read_bytes() == before
    assert sidecars(path) == []


@pytest.mark.parametrize(
    "content",
    [b"my shopping list: eggs, milk\n" * 200, b"SQLite format 3\x00" + bytes(range(256)) * 16],
    ids=["garbage", "sqlite-header-then-junk"],
)
def test_unreadable_file_is_refused_and_kept(db_path: Path, clock: ManualClock, content: bytes) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(content)
    assert_refused_untouched(db_path, StoreCorruptError, "is not a maider-tui database.*move it aside", clock)


def test_truncated_store_is_refused_and_kept(db_path: Path, clock: ManualClock) -> None:
    with open_store(db_path, clock=clock) as store:
        for i in range(50):
            store.add_session(full_session(f"s{i}"))
    data = db_path.read_bytes()
    db_path.write_bytes(data[: len(data) // 2])
    assert_refused_untouched(db_path, StoreCorruptError, "not a maider-tui database", clock)


def test_another_programs_database_is_refused_and_kept(db_path: Path, clock: ManualClock) -> None:
    db_path.parent.mkdir(parents=True)
    with sqlite3.connect(db_path) as conn:
        conn.execute("CREATE TABLE recipes (name TEXT)")
    conn.close()
    assert_refused_untouched(db_path, StoreCorruptError, "another program", clock)


def test_newer_schema_is_refused_and_kept(db_path: Path, clock: ManualClock) -> None:
    with open_store(db_path, clock=clock) as store:
        store.add_session(SessionRecord("keep-me"))
    with sqlite3.connect(db_path) as conn:  # commits on leaving
        conn.execute("INSERT INTO schema_version VALUES (?, 'from the future', 0)", (LATEST_VERSION + 7,))
    conn.close()
    assert_refused_untouched(db_path, StoreTooNewError, "upgrade maider-tui", clock)


def test_old_version_file_is_migrated_keeping_rows(db_path: Path, clock: ManualClock) -> None:
    with open_store(db_path, clock=clock, migrations=MIGRATIONS[:1]) as old:
        assert old.schema_version == 1
        # Written as version 1 wrote it: only the columns that version had (later ones came with migrations).
        columns = [c[1] for c in old._connection().execute("PRAGMA table_info(sessions)")]
        assert "nodes" not in columns
        values = dict(zip(SESSION_FIELDS, to_row(full_session("kept"), SESSION_FIELDS, SESSION_JSON)))
        with old._connection() as conn:
            conn.execute(f"INSERT INTO sessions ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                         [values[c] for c in columns])
        old.add_event("kept", "log", "from version 1")
        old.cache_put("k", [1, 2], ttl_s=60)
    with open_store(db_path, clock=clock) as store:
        assert store.schema_version == LATEST_VERSION
        assert store.get_session("kept") == full_session("kept")
        assert [e.message for e in store.events("kept")] == ["from version 1"]
        assert store.cache_get("k") == [1, 2]
        indexes = {r[0] for r in store._connection().execute("SELECT name FROM sqlite_master")}
    assert "session_events_by_session" in indexes


def test_a_later_migration_is_applied_once(db_path: Path, clock: ManualClock) -> None:
    with open_store(db_path, clock=clock) as store:
        store.add_session(SessionRecord("kept"))
    future = sql_migration(
        LATEST_VERSION + 1, "session tags", "ALTER TABLE sessions ADD COLUMN tags TEXT NOT NULL DEFAULT '[]'"
    )
    for _ in range(2):  # the second open finds nothing to do
        with open_store(db_path, clock=clock, migrations=(*MIGRATIONS, future)) as store:
            assert store.schema_version == LATEST_VERSION + 1
            assert store.get_session("kept").name == "kept"
            assert store._connection().execute("SELECT tags FROM sessions").fetchone()[0] == "[]"
    # And this version, which does not know the new step, refuses the file rather than guess.
    with pytest.raises(StoreTooNewError):
        open_store(db_path, clock=clock)


def test_a_failing_migration_leaves_the_old_version(db_path: Path, clock: ManualClock) -> None:
    with open_store(db_path, clock=clock) as store:
        store.add_session(SessionRecord("kept"))
    broken = sql_migration(LATEST_VERSION + 1, "broken", "CREATE TABLE half_done (x)", "THIS IS NOT SQL")
    with pytest.raises(StoreError):
        open_store(db_path, clock=clock, migrations=(*MIGRATIONS, broken))
    with open_store(db_path, clock=clock) as store:
        assert store.schema_version == LATEST_VERSION
        assert store.get_session("kept") is not None
        tables = {r[0] for r in store._connection().execute("SELECT name FROM sqlite_master")}
    assert "half_done" not in tables


def test_move_aside_renames_and_keeps_bytes(db_path: Path, clock: ManualClock) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"garbage \x00\x01" * 100)
    Path(f"{db_path}-wal").write_bytes(b"wal bytes")
    before = db_path.read_bytes()
    moved = move_aside(db_path, clock=clock)
    assert moved.name == "maider.sqlite3.broken-20261122T124100Z"
    assert not db_path.exists() and not Path(f"{db_path}-wal").exists()
    assert moved.read_bytes() == before
    assert Path(f"{moved}-wal").read_bytes() == b"wal bytes"
    # The same second again: a new name, the earlier copy untouched.
    db_path.write_bytes(b"second")
    again = move_aside(db_path, clock=clock)
    assert again != moved and again.read_bytes() == b"second" and moved.read_bytes() == before
    # With the broken file out of the way, a fresh database starts.
    with open_store(db_path, clock=clock) as store:
        assert store.list_sessions() == []


def test_write_while_locked_raises_after_timeout(db_path: Path, clock: ManualClock) -> None:
    with open_store(db_path, clock=clock, busy_timeout_s=0.1) as store:
        other = sqlite3.connect(db_path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        try:
            # Reads still work in WAL mode while another process writes.
            assert store.get_session("s") is None
            with pytest.raises(StoreLockedError, match="still locked") as info:
                store.add_session(SessionRecord("s"))
            assert display_path(db_path) in str(info.value)
            assert store.locked
        finally:
            other.execute("ROLLBACK")
            other.close()
        store.add_session(SessionRecord("s"))
        assert store.session_names() == {"s"} and not store.locked


def test_once_a_write_timed_out_the_next_ones_fail_fast_until_one_gets_through(db_path: Path, clock) -> None:
    """Another program holding the file for long must not freeze every write for the full timeout."""
    with open_store(db_path, clock=clock, busy_timeout_s=2.0) as store:
        other = sqlite3.connect(db_path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        try:
            store.locked = True  # as after a first write that waited the whole 2 s
            with pytest.raises(StoreLockedError, match="after waiting 0.1 s"):
                store.add_session(SessionRecord("s"))
            assert store.locked
        finally:
            other.execute("ROLLBACK")
            other.close()
        store.add_session(SessionRecord("s"))
        assert not store.locked and store.session_names() == {"s"}
        # The full timeout is back for the writes that follow.
        assert store._connection().execute("PRAGMA busy_timeout").fetchone()[0] == 2000


def test_open_while_locked_raises_after_timeout(db_path: Path, clock: ManualClock) -> None:
    open_store(db_path, clock=clock, migrations=MIGRATIONS[:1]).close()
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("PRAGMA journal_mode = DELETE")  # so the exclusive lock blocks readers too
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreLockedError):
            open_store(db_path, clock=clock, busy_timeout_s=0.1)
    finally:
        other.execute("ROLLBACK")
        other.close()
    with open_store(db_path, clock=clock) as store:
        assert store.schema_version == LATEST_VERSION


def test_a_multi_vm_sessions_nodes_are_kept_in_order_and_go_with_it(store: Store) -> None:
    store.add_session(SessionRecord("big", nodes=2, gpu_count=8))
    store.add_nodes([NodeRecord("big", 1, "10.42.0.3"), NodeRecord("big", 0, "10.42.0.2")])
    assert [(n.index, n.role, n.address, n.state) for n in store.nodes("big")] == [
        (0, "head", "10.42.0.2", "creating"), (1, "worker", "10.42.0.3", "creating")]
    node = store.update_node("big", 1, instance_id=71, state="booting", ip="192.0.2.9")
    assert (node.instance_id, node.state, node.ip) == (71, "booting", "192.0.2.9")
    assert store.update_session("big", vpc_id=7001).vpc_id == 7001
    with pytest.raises(TypeError):
        store.update_node("big", 1, index=3)
    with pytest.raises(StoreError):
        store.update_node("big", 5, state="ready")
    with pytest.raises(StoreError):  # a node twice, or of a session that does not exist: nothing stored
        store.add_nodes([NodeRecord("big", 1, "10.42.0.4")])
    with pytest.raises(StoreError):
        store.add_nodes([NodeRecord("nobody", 0, "10.42.0.2")])
    assert store.nodes("nobody") == [] and len(store.nodes("big")) == 2
    store.delete_session("big")
    assert store.nodes("big") == []
