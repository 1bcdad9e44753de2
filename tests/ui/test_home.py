"""The home screen: first-run message, sessions, quitting, the palette."""

from __future__ import annotations

import pytest

from maider_tui.app import MaiderApp
from maider_tui.ui.screens.home import HomeScreen
from textual.widget import Widget
from textual.widgets import DataTable, Static

from .sessions import add_sample_sessions
from .toasts import toasts


async def test_first_run_says_how_to_add_a_token(make_context):
    app = MaiderApp(make_context())
    async with app.run_test() as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen)
        text = str(app.screen.query_one("#first-run", Static).render())
        assert "maider-tui token set linode" in text
        assert "--demo" in text
        assert not app.screen.query_one(DataTable).display


async def test_with_an_account_the_welcome_says_what_it_can_rent(sim_context):
    app = MaiderApp(sim_context())
    async with app.run_test() as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        text = str(app.screen.query_one("#first-run", Static).render())
        assert text.startswith("No sessions yet.")
        assert "Account sim-user: 7 GPU plans in 12 GPU regions (from the API)." in text


async def test_a_refused_token_is_said_on_screen(make_context, memory_keyring, sim_cloud):
    from maider_tui.cloud.linode import LinodeProvider

    context = make_context()
    context.provider = LinodeProvider("not-the-token", base_url=sim_cloud.linode_base_url, store=context.store)
    app = MaiderApp(context)
    async with app.run_test(notifications=True) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        text = str(app.screen.query_one("#first-run", Static).render())
        assert "token was refused" in text
        assert any("token was refused" in text for text in toasts(app))


@pytest.fixture
def sample_app(make_context, clock) -> MaiderApp:
    """The app over the three sample sessions (two live)."""
    context = make_context()
    add_sample_sessions(context.store, clock.now())
    return MaiderApp(context)


async def test_sessions_are_listed_with_cost_and_live_total(sample_app):
    app = sample_app
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        assert table.row_count == 3
        assert str(table.get_cell("qwen32b-20261122-093012", "state")) == "ready"
        # 3 hours at $1.04/h
        assert str(table.get_cell("qwen32b-20261122-093012", "so_far")) == "3.12"
        assert "2 live · $4.04/h" in app.screen.query_one("TopBar").status


async def test_a_tick_updates_only_the_cells_that_changed_and_keeps_the_rows(sample_app, clock):
    """The cost and countdown move every second; the table is not rebuilt (nor laid out) for that."""
    app = sample_app
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        table.move_cursor(row=1)
        rows_before = dict(table.rows)
        updated: list[tuple[str, str]] = []
        original = table.update_cell

        def spy(row_key, column_key, value, **kwargs):
            updated.append((row_key, column_key.value))
            return original(row_key, column_key, value, **kwargs)

        table.update_cell = spy
        clock.advance(3600)  # an hour on: every live session's cost so far changed
        app.screen.refresh_sessions()
        await pilot.pause()
        assert dict(table.rows) == rows_before and table.cursor_row == 1
        assert sorted(updated) == [("qwen14b-20261122-101544", "so_far"), ("qwen32b-20261122-093012", "so_far")]
        assert str(table.get_cell("qwen32b-20261122-093012", "so_far")) == "4.16"
        updated.clear()
        app.screen.refresh_sessions()
        assert updated == []  # nothing moved: nothing touched


async def test_a_cell_update_repaints_its_row_only_and_the_row_shows_every_change(sample_app, clock,
                                                                                 monkeypatch):
    """After every tick, each repaint the table asks for is one line, that line is the updated row's,
    and the table draws it (`render_line`, what the compositor sends) with the row's new cost; a row
    left out of the repaint, or a line drawn from a stale cache, would fail."""
    app = sample_app
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen, table = app.screen, app.screen.query_one(DataTable)
        repainted: list = []  # what reaches Textual's Widget.refresh for the table
        refresh = Widget.refresh

        def spy(widget, *regions, **kwargs):
            if widget is table:
                repainted.append(regions)
            return refresh(widget, *regions, **kwargs)

        monkeypatch.setattr(Widget, "refresh", spy)
        costs = set()
        for _ in range(3):  # ten minutes on each time: both live sessions' costs move, no wider
            repainted.clear()
            clock.advance(600)
            screen.refresh_sessions()
            lines = {region.y: table.render_line(region.y).text
                     for regions in repainted for region in regions}
            await pilot.pause()
            # Two rows changed, and only they were repainted: not the 30-odd lines of the box.
            assert len(repainted) == 2 and all(len(r) == 1 and r[0].height == 1 for r in repainted)
            for name in ("qwen32b-20261122-093012", "qwen14b-20261122-101544"):
                cost = str(table.get_cell(name, "so_far"))
                [line] = [text for text in lines.values() if name in text]
                assert f" {cost} " in line
                costs.add(cost)
        assert "3.64" in costs and len(costs) == 6  # 3.5 hours at $1.04 at the end; every tick moved both


async def test_the_tick_sleeps_while_another_screen_is_on_top(make_context, monkeypatch):
    """Under the dashboard nobody sees the table: its timer must not wake the app every second."""
    from textual.screen import Screen

    app = MaiderApp(make_context())
    async with app.run_test() as pilot:
        home = app.screen
        ticker, calls = home._ticker, []
        for name in ("pause", "resume"):  # Timer has no public flag: its public switches are watched
            switch = getattr(ticker, name)
            monkeypatch.setattr(ticker, name, lambda _n=name, _f=switch: calls.append(_n) or _f())
        await app.push_screen(Screen())
        await pilot.pause()
        assert calls == ["pause"]
        await app.pop_screen()
        await pilot.pause()
        assert calls == ["pause", "resume"]


async def test_q_quits(make_context):
    app = MaiderApp(make_context())
    async with app.run_test() as pilot:
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_palette_offers_namespaced_commands(make_context):
    app = MaiderApp(make_context())
    async with app.run_test() as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"where are")
        await pilot.pause(0.3)
        from textual.command import CommandPalette

        palette = app.screen
        assert isinstance(palette, CommandPalette)
        text = " ".join(str(opt.prompt) for opt in palette.query_one("CommandList").options)
        assert "help: where are my files" in text


async def test_broken_settings_file_is_reported_on_screen(make_context, paths):
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text("[vllm]\nport = 'abc'\n")
    app = MaiderApp(make_context())
    async with app.run_test(notifications=True) as pilot:
        await pilot.pause()
        messages = toasts(app)
        assert any("port" in m and "config.toml" in m for m in messages), messages
        assert app.context.settings.settings.vllm.port == 8000


async def _home_app(sim_context, sim_cloud, clock):
    context = sim_context()
    add_sample_sessions(context.store, clock.now(), sim_cloud)
    return context, MaiderApp(context)


async def test_d_then_n_keeps_and_d_then_y_destroys(sim_context, sim_cloud, clock):
    context, app = await _home_app(sim_context, sim_cloud, clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        table = app.screen.query_one(DataTable)
        table.move_cursor(row=table.get_row_index("qwen32b-20261122-093012"))
        await pilot.press("d")
        await pilot.pause()
        from maider_tui.ui.dialogs.confirm import ConfirmDialog

        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")
        await pilot.pause()
        assert context.store.get_session("qwen32b-20261122-093012").state == "ready"
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        record = context.store.get_session("qwen32b-20261122-093012")
        assert record.state == "destroyed" and record.cost_usd is not None
        assert str(app.screen.query_one(DataTable).get_cell("qwen32b-20261122-093012", "state")) == "destroyed"
    assert all(vm.label != "qwen32b-20261122-093012" for vm in sim_cloud.world.list())


async def test_orphans_are_listed_and_can_be_adopted(sim_context, sim_cloud):
    async def orphan():
        return sim_cloud.world.create("lost-vm-1", "us-east", "g1-gpu-rtx6000-1",
                                      tags=["maider", "maider-session:lost-vm-1"])

    vm = sim_cloud.call(orphan())
    context = sim_context()
    app = MaiderApp(context)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        assert str(table.get_cell(f"orphan:{vm.id}", "hourly")) == "1.50"
        assert "1 orphan" in app.screen.query_one("TopBar").status
        table.move_cursor(row=table.get_row_index(f"orphan:{vm.id}"))
        await pilot.press("a")
        await app.workers.wait_for_complete()
        await pilot.pause()
        adopted = [r for r in context.store.list_sessions() if r.instance_id == vm.id]
        assert len(adopted) == 1 and adopted[0].state in {"unreachable", "ready"}
        assert not app.screen.orphans


async def _watched(app, pilot, *names: str) -> None:
    """Wait for the start-up check to have started the sessions' watchdogs."""
    for _ in range(200):
        if all(app.live.get(n) is not None and app.live.get(n).watchdog is not None for n in names):
            return
        await app.workers.wait_for_complete()
        await pilot.pause(0.02)
    raise AssertionError(f"{names} were never watched")


async def test_quit_with_live_sessions_asks_first(sim_context, sim_cloud, clock):
    context, app = await _home_app(sim_context, sim_cloud, clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await _watched(app, pilot, "qwen14b-20261122-101544", "qwen32b-20261122-093012")
        await pilot.press("q")
        await pilot.pause()
        from maider_tui.ui.dialogs.quit import QuitDialog

        assert isinstance(app.screen, QuitDialog)
        text = " ".join(str(w.render()) for w in app.screen.query("Static"))
        assert "2 VMs still running · $4.04/h" in text
        # What becomes of each once the app is gone, truthfully.
        assert "destroyed after 30 min idle" in text and "destroyed in 30 min (kept)" in text
        assert "background `maider-tui watch`" in text
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, QuitDialog)
        assert app.is_running


async def test_enter_opens_the_dashboard_of_a_ready_session(sim_context, sim_cloud, clock):
    from maider_tui.ui.screens.dashboard import DashboardScreen

    context, app = await _home_app(sim_context, sim_cloud, clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        table = app.screen.query_one(DataTable)
        table.move_cursor(row=table.get_row_index("qwen32b-20261122-093012"))
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, DashboardScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen)


async def test_c_finds_orphans_and_destroys_them_after_a_confirm(sim_context, sim_cloud):
    from maider_tui.ui.dialogs.confirm import ConfirmDialog

    app = MaiderApp(sim_context())
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()

        async def orphan():
            return sim_cloud.world.create("stray-1", "us-ord", "g2-gpu-rtx4000a1-s",
                                          tags=["maider", "maider-session:stray-1"])

        vm = sim_cloud.call(orphan())
        await pilot.press("c")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not app.screen.orphans
    assert all(v.id != vm.id for v in sim_cloud.world.list())


async def test_ready_sessions_are_watched_from_start_up(sim_context, sim_cloud, clock):
    context, app = await _home_app(sim_context, sim_cloud, clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        live = app.live.get("qwen32b-20261122-093012")
        assert live is not None and live.watchdog is not None and live.lock is not None
        assert not live.watchdog.kept


async def test_an_interrupted_launch_is_kept_watched_with_a_countdown(sim_context, sim_cloud, clock):
    """Its VM bills with no vLLM to read: it is offered for resume, and meanwhile it has a deadline
    (kept + the idle timeout), counting down in IDLE LEFT (it showed "—" and was never destroyed)."""
    context, app = await _home_app(sim_context, sim_cloud, clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await _watched(app, pilot, "qwen14b-20261122-101544")
        live = app.live.get("qwen14b-20261122-101544")
        assert live is not None and live.watchdog is not None and live.watchdog.kept
        assert live.lock is not None
        table = app.screen.query_one(DataTable)
        assert str(table.get_cell("qwen14b-20261122-101544", "idle_left")) == "30:00"
        clock.advance(12 * 60)
        app.screen.refresh_sessions()
        assert str(table.get_cell("qwen14b-20261122-101544", "idle_left")) == "18:00"
        assert context.store.get_session("qwen14b-20261122-101544").extra["kept_since"] == clock.now() - 12 * 60


async def test_the_header_counts_only_sessions_whose_vm_bills(make_context, clock):
    from maider_tui.store import SessionRecord

    context = make_context()
    add_sample_sessions(context.store, clock.now())
    # Stopped before its VM was ever created: nothing bills.
    context.store.add_session(SessionRecord(name="never-created", state="creating", stage="create",
                                            hourly_usd=5.00, created_at=clock.now() - 60))
    app = MaiderApp(context)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.screen.query_one(DataTable).row_count == 4
        assert "2 live · $4.04/h" in app.screen.query_one("TopBar").status


async def test_quit_with_only_an_orphan_billing_asks_and_destroy_all_destroys_it(sim_context, sim_cloud):
    from maider_tui.ui.dialogs.quit import QuitDialog

    vm = sim_cloud.call(_stray(sim_cloud))
    app = MaiderApp(sim_context())
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(200):
            if app.screen.orphans:
                break
            await app.workers.wait_for_complete()
            await pilot.pause(0.02)
        assert [o.id for o in app.screen.orphans] == [vm.id]
        table = app.screen.query_one(DataTable)
        assert str(table.get_cell(f"orphan:{vm.id}", "idle_left")) == "30:00"  # found now + the idle timeout
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, QuitDialog)
        text = " ".join(str(w.render()) for w in app.screen.query("Static"))
        assert "1 VM still running" in text and "(orphan) stray-1" in text
        assert "destroyed in 30 min" in text
        await pilot.press("D")
        await app.workers.wait_for_complete()
        await pilot.pause()
    assert all(v.id != vm.id for v in sim_cloud.world.list())


async def _stray(sim_cloud):
    # On the sim's own loop: its "created" listeners start the VM's SSH server there.
    return sim_cloud.world.create("stray-1", "us-ord", "g2-gpu-rtx4000a1-s",
                                  tags=["maider", "maider-session:stray-1"])


async def test_enter_on_an_interrupted_launch_offers_to_resume(sim_context, sim_cloud, clock):
    from maider_tui.ui.dialogs.confirm import ConfirmDialog

    context, app = await _home_app(sim_context, sim_cloud, clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        table = app.screen.query_one(DataTable)
        table.move_cursor(row=table.get_row_index("qwen14b-20261122-101544"))
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        assert "Resume qwen14b-20261122-101544?" in str(app.screen.query_one("#title").render())
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen)


async def test_f12_saves_a_screenshot_or_says_why_not(make_context, paths, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = MaiderApp(make_context())
    async with app.run_test(notifications=True) as pilot:
        await pilot.press("f12")
        await app.workers.wait_for_complete()
        [shot] = (paths.data_dir / "exports").glob("maider-tui_*.svg")
        assert not list(tmp_path.glob("maider-tui_*.svg"))  # not the current directory
        assert "Sessions" in shot.read_text(encoding="utf-8")

        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr("pathlib.Path.write_text", refuse)
        await pilot.press("f12")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert any("was not saved" in text and "Permission denied" in text for text in toasts(app))


def test_the_sessions_table_does_not_load_richs_emoji_table(tmp_path):
    """Cells and headers are plain Text: a string cell would be parsed as markup, which loads Rich's
    table of emoji codes (about 1 MiB) for names that never hold one."""
    import subprocess
    import sys
    from pathlib import Path

    script = """
import asyncio, sys, time
from maider_tui.app import MaiderApp
from maider_tui.context import build_context
from maider_tui.paths import AppPaths
from textual.widgets import DataTable
from tests.ui.sessions import add_sample_sessions

async def main():
    context = build_context(AppPaths.under(sys.argv[1]), environ={}, use_keyring=False)
    add_sample_sessions(context.store, time.time())
    app = MaiderApp(context)
    async with app.run_test() as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        rows = app.screen.query_one(DataTable).row_count
    print(rows, "rich._emoji_codes" in sys.modules)

asyncio.run(main())
"""
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                         timeout=60, cwd=root)
    assert out.returncode == 0, out.stderr
    rows, emoji_loaded = out.stdout.strip().splitlines()[-1].split()
    assert int(rows) > 0 and emoji_loaded == "False"


async def test_keys_answer_while_the_sessions_are_read(make_context, clock):
    """The sessions table is read off the UI loop: with the read held (a slow disk, another program
    busy with the file), a key still opens its screen, and the rows follow once the read is back.
    (The read ran on the UI loop: nothing answered until it returned.)"""
    import asyncio
    import threading

    from maider_tui.ui.screens.recommend import RecommendScreen

    context = make_context()
    add_sample_sessions(context.store, clock.now())
    release, reading = threading.Event(), threading.Event()
    list_sessions = context.store.list_sessions

    def held_read(**options):
        reading.set()
        release.wait(10)  # released by the test at once; the wait only bounds a hang
        try:
            return list_sessions(**options)
        finally:
            reading.clear()

    context.store.list_sessions = held_read
    app = MaiderApp(context)
    async with app.run_test(size=(120, 40)) as pilot:
        try:
            for _ in range(100):
                if reading.is_set():
                    break
                await asyncio.sleep(0.02)
            await pilot.press("R")
            for _ in range(100):  # a loaded machine may take a few frames to show it
                if isinstance(app.screen, RecommendScreen):
                    break
                await pilot.pause(0.02)
            answered_during_the_read = isinstance(app.screen, RecommendScreen) and reading.is_set()
        finally:
            release.set()
        assert answered_during_the_read
        await pilot.press("escape")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.screen.query_one(DataTable).row_count == 3


async def test_a_read_the_database_refuses_keeps_the_rows_and_is_said_once(sample_app):
    """Another program holding the file exclusively: the list keeps the rows it read last, and the
    failure is said once, not once a second."""
    from maider_tui.store import StoreError

    app = sample_app
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        store, screen = app.context.store, app.screen
        list_sessions = store.list_sessions

        def refused(**options):
            raise StoreError("the database is held by another program")

        store.list_sessions = refused
        store.update_session("qwen32b-20261122-093012", region="jp-osa")  # a change: the list reads again
        for _ in range(3):
            screen.refresh_sessions()
            await app.workers.wait_for_complete()
        await pilot.pause()
        assert screen.query_one(DataTable).row_count == 3
        said = [text for text in toasts(app, "error") if "Could not read the sessions" in text]
        assert len(said) == 1 and "held by another program" in said[0]
        store.list_sessions = list_sessions
        screen.refresh_sessions()
        await app.workers.wait_for_complete()
        assert str(screen.query_one(DataTable).get_cell("qwen32b-20261122-093012", "region")) == "jp-osa"
