"""Files the user asks for (benchmark exports, validation reports, F12 screenshots) land in the exports
folder (the data folder's `exports/`, or `files.exports_dir`), never the current directory, and the
toast names the whole path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from maider_tui.app import MaiderApp
from maider_tui.clock import ManualClock
from maider_tui.ui.dialogs.export_path import PathDialog
from maider_tui.ui.screens.benchmarks import BenchmarksScreen
from maider_tui.ui.screens.validation import ValidationScreen
from tests.ui.test_dashboard import until
from tests.ui.test_benchmarks import add_runs, answer, sample_runs, wait_files
from tests.ui.test_validation_screen import canned
from tests.ui.toasts import toasts


@pytest.fixture
def cwd(tmp_path, monkeypatch) -> Path:
    """An empty current directory, which must stay empty."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


async def export_table(app: MaiderApp, pilot) -> BenchmarksScreen:
    """Open the benchmarks screen and press `x` (export the table): the screen, under its path dialog."""
    app.open_benchmarks()
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, BenchmarksScreen)
    await pilot.press("x")
    return screen


async def test_benchmark_exports_land_in_the_exports_folder(make_context, clock, paths, cwd):
    context = make_context()
    add_runs(context.store, clock.now())
    exports = paths.data_dir / "exports"
    app = MaiderApp(context)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await export_table(app, pilot)
        await pilot.pause()
        assert isinstance(app.screen, PathDialog)
        await pilot.press("enter")  # the offered name, as it is
        await wait_files(pilot)
        assert (exports / "benchmarks.csv").read_text().startswith("gpu_type,")
        assert screen.last_file_message == f"Wrote 3 rows as csv to {exports / 'benchmarks.csv'}."
        await pilot.press("E")
        await pilot.pause()
        await answer(pilot, "runs.json")  # a bare name lands in the exports folder too
        await wait_files(pilot)
        assert (exports / "runs.json").is_file()
        assert screen.last_file_message == f"Wrote 6 runs to {exports / 'runs.json'}."
    assert os.listdir(cwd) == []


async def test_a_validation_report_lands_in_the_exports_folder(make_context, paths, cwd):
    context = make_context()
    report = canned(ManualClock(start=1_795_351_260.0))
    app = MaiderApp(context)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        screen = ValidationScreen(context, None, report.session, report=report)
        app.push_screen(screen)
        await pilot.pause()
        await pilot.press("x")
        await pilot.pause()
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        written = paths.data_dir / "exports" / f"validation-{report.session}-full.md"
        assert written.read_text().startswith(f"# GPU validation (full): {report.session}")
        assert f"Report written to {written}." in screen.message_text
    assert os.listdir(cwd) == []


@pytest.mark.parametrize("configured", [False, True])
async def test_a_screenshot_lands_in_the_exports_folder_and_the_toast_says_where(make_context, paths, cwd,
                                                                                tmp_path, configured):
    mine = tmp_path / "my exports"
    context = make_context(environ={"MAIDER_FILES__EXPORTS_DIR": str(mine)} if configured else None)
    folder = mine if configured else paths.data_dir / "exports"
    app = MaiderApp(context)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("f12")
        await app.workers.wait_for_complete()
        await pilot.pause()
        await until(lambda: any("Saved the screen" in t for t in toasts(app)))
        shots = list(folder.glob("maider-tui_*.svg"))
        assert len(shots) == 1 and "<svg" in shots[0].read_text()
        assert any(f"Saved the screen to {shots[0]}." in t for t in toasts(app)), toasts(app)
    assert os.listdir(cwd) == []


async def test_one_row_and_one_run_are_said_in_the_singular(make_context, clock, paths, cwd):
    context = make_context()
    context.store.add_bench_run(sample_runs(clock.now())[0], [])
    exports = paths.data_dir / "exports"
    app = MaiderApp(context)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await export_table(app, pilot)
        await pilot.pause()
        await answer(pilot, "one.md")
        await wait_files(pilot)
        assert screen.last_file_message == f"Wrote 1 row as markdown to {exports / 'one.md'}."
        await pilot.press("E")
        await pilot.pause()
        await answer(pilot, "one.json")
        await wait_files(pilot)
        assert screen.last_file_message == f"Wrote 1 run to {exports / 'one.json'}."
