"""What the sessions screen asks of ops: reconcile the account's VMs, adopt or destroy an orphan, replace
a broken database, write a validation report; against the simulated cloud and a real home."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from maider_tui.clock import SystemClock
from maider_tui.ops import cleanup
from maider_tui.ops.database import replace_broken
from maider_tui.ops.live import LiveSessions
from maider_tui.ops.validate_report import write_report
from maider_tui.ops.vllm_care import remember_tokens
from maider_tui.settings import Settings
from maider_tui.store import SessionRecord, StoreCorruptError, open_store

from tests.integration.test_destroy_recover import bare_vm, make_provider
from tests.integration.simfix import sim_limits

LIMITS = sim_limits(1000)


@pytest.fixture
async def live(sim_cloud, paths):
    store = open_store(paths.database)
    notes: list[tuple[str, str]] = []
    sessions = LiveSessions(store=store, paths=paths, settings=Settings(), clock=SystemClock(),
                            provider=lambda: make_provider(sim_cloud, store), hf_token=lambda: None,
                            limits=LIMITS, notify=lambda title, message: notes.append((title, message)))
    try:
        yield sessions
    finally:
        await sessions.close_all()
        store.close()


async def test_reconcile_finds_orphans_and_gives_each_a_deadline(live, sim_cloud):
    provider = make_provider(sim_cloud, live.store)
    stray = await provider.create(bare_vm("stray-one"))
    report = await cleanup.reconcile(live, on_orphan_destroyed=lambda vm_id: None)
    assert [o.id for o in report.orphans] == [stray.id]
    assert live.orphan_watch is not None and live.orphan_watch.remaining_s(stray.id) is not None
    assert live.store.list_sessions() == []  # nothing recorded without the user's choice


async def test_an_adopted_orphan_is_a_session_and_loses_its_deadline(live, sim_cloud):
    provider = make_provider(sim_cloud, live.store)
    stray = await provider.create(bare_vm("stray-two"))
    [orphan] = (await cleanup.reconcile(live)).orphans
    record = await cleanup.adopt(live, orphan)
    assert record.instance_id == stray.id and live.store.get_session(record.name) is not None
    assert live.orphan_watch.remaining_s(stray.id) is None


async def test_a_destroyed_orphan_is_gone_and_loses_its_deadline(live, sim_cloud):
    provider = make_provider(sim_cloud, live.store)
    stray = await provider.create(bare_vm("stray-three"))
    [orphan] = (await cleanup.reconcile(live)).orphans
    await cleanup.destroy_orphan(live, orphan)
    assert stray.id not in {vm.id for vm in sim_cloud.world.list()}
    assert live.orphan_watch.remaining_s(stray.id) is None


def test_a_broken_database_is_moved_aside_and_a_new_one_opened(paths):
    paths.database.parent.mkdir(parents=True, exist_ok=True)
    paths.database.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreCorruptError):
        open_store(paths.database)
    moved, store = replace_broken(paths.database, SystemClock())
    try:
        assert moved.read_bytes().startswith(b"not a database at all")  # kept, not deleted
        store.add_session(SessionRecord(name="fresh", state="ready"))
        assert store.get_session("fresh") is not None
        with sqlite3.connect(paths.database) as db:  # a real database where the broken file was
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        store.close()


async def test_the_tokens_seen_are_kept_only_while_the_session_lives(paths):
    class Live:
        store = open_store(paths.database)

    live = Live()
    try:
        live.store.add_session(SessionRecord(name="on", state="ready"))
        live.store.add_session(SessionRecord(name="off", state="destroyed", ended_at=1.0))
        assert await remember_tokens(live, "on", 1234)
        assert live.store.get_session("on").tokens_generated == 1234
        assert not await remember_tokens(live, "off", 99)
        assert live.store.get_session("off").tokens_generated != 99
    finally:
        live.store.close()


def test_a_report_is_written_whole_or_not_at_all(tmp_path: Path):
    target = tmp_path / "report.md"
    write_report(target, "# GPU validation\n")
    assert target.read_text() == "# GPU validation\n"
    with pytest.raises(FileNotFoundError):
        write_report(tmp_path / "missing" / "r.md", "x")
    with pytest.raises(IsADirectoryError):
        write_report(tmp_path, "x")
    assert not (tmp_path / "missing").exists()


def test_a_sessions_history_is_the_store_then_the_unstored_log_lines(paths):
    from maider_tui.ops.events import LogEvent, WarningEvent, session_history

    store = open_store(paths.database)
    try:
        store.add_session(SessionRecord(name="s", state="ready"))
        store.add_event("s", "ready", "ready in 6m", ts=10.0)
        recent = [LogEvent("s", "ready in 6m"), LogEvent("s", "pulling the image"), WarningEvent("s", "slow")]
        assert session_history(store, "s", recent) == [("ready in 6m", 10.0), ("pulling the image", None)]
        assert session_history(None, "s", recent) == [("ready in 6m", None), ("pulling the image", None)]
    finally:
        store.close()
