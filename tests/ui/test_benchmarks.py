"""The comparison screen on hand-made runs (rows, colours, filters, sort, export, import) and a run from the app.

The hand-made runs here (`sample_runs`, `add_runs`) serve the recommend and snapshot tests too.
"""

from __future__ import annotations

import asyncio
import csv
import json

import pytest

from maider_tui.app import MaiderApp
from maider_tui.bench.dbjson import export_database
from maider_tui.store import BenchRunRecord
from maider_tui.ui.dialogs.export_path import PathDialog
from maider_tui.ui.screens.benchmarks import BenchmarksScreen

from .toasts import toasts

DAY = 86_400.0


BenchApp = MaiderApp  # the app opens the benchmark screens (BenchmarksRequested and the like)


def run(run_id: str, gpu_type: str, gpu_count: int, vram: float, hourly: float, model_id: str, category: str,
        tok_s: float, ttft: float, ts: float, *, coding: float | None = None,
        sweep: tuple[float, float, float] | None = None) -> BenchRunRecord:
    """One run: overall `tok_s`; per category the same figure except `coding` when given; `sweep` the total
    tok/s at 1, 4 and 8 requests in parallel."""
    by_cat = {cat: {"avg_tokens_per_sec": tok_s, "p50_ttft_s": ttft, "tests_passed": 4, "tests_total": 4}
              for cat in ("coding", "context_heavy", "reasoning")}
    if coding is not None:
        by_cat["coding"]["avg_tokens_per_sec"] = coding
    summary: dict = {"avg_tokens_per_sec": tok_s, "p50_ttft_s": ttft, "tests_passed": 12, "tests_total": 12}
    if sweep is not None:
        summary["concurrency"] = [{"concurrency": n, "throughput_tok_s": rate, "errors": 0}
                                  for n, rate in zip((1, 4, 8), sweep)]
    return BenchRunRecord(id=run_id, timestamp=ts, gpu_type=gpu_type, gpu_count=gpu_count,
                          vram_per_gpu=vram / gpu_count, total_vram=vram, hourly_usd=hourly, model_id=model_id,
                          model_category=category, results_by_category=by_cat, summary=summary)


def sample_runs(now: float) -> list[BenchRunRecord]:
    """Three configurations: High (3 runs), Medium (2), Low (1, stale)."""
    a = ("g2-gpu-rtx4000a2-s", 2, 40.0, 1.04, "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ", "30b")
    b = ("g1-gpu-rtx6000-4", 4, 96.0, 6.00, "Qwen/Qwen2.5-72B-Instruct-AWQ", "70b")
    c = ("g2-gpu-rtx4000a1-s", 1, 20.0, 0.52, "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", "7b")
    return [
        run("a1", *a, 37.0, 0.40, now - 2 * DAY, sweep=(37.5, 131.2, 208.4)), run("a2", *a, 38.0, 0.42, now - DAY),
        run("a3", *a, 39.3, 0.44, now - 3 * DAY, coding=20.0),
        run("b1", *b, 45.0, 0.60, now - DAY), run("b2", *b, 45.6, 0.62, now - 2 * DAY),
        run("c1", *c, 80.0, 0.20, now - 45 * DAY),
    ]


def add_runs(store, now: float) -> None:
    """Store the sample runs (imported figures only: no per-prompt results)."""
    for r in sample_runs(now):
        store.add_bench_run(r, [])


@pytest.fixture
def app(make_context, clock):
    context = make_context()
    add_runs(context.store, clock.now())
    return BenchApp(context)


async def open_screen(app, pilot) -> BenchmarksScreen:
    app.open_benchmarks()
    await pilot.pause()
    assert isinstance(app.screen, BenchmarksScreen)
    return app.screen


def order(screen: BenchmarksScreen) -> list[str]:
    return [r.gpu_type for r in screen.rows]


async def answer(pilot, path: str) -> None:
    """Type `path` into the open path dialog and press enter."""
    dialog = pilot.app.screen
    assert isinstance(dialog, PathDialog)
    dialog.query_one("Input").value = path
    await pilot.press("enter")
    await pilot.pause()


async def wait_files(pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def test_rows_and_confidence_colours(app):
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(app, pilot)
        table = screen.query_one("#bench-table")
        assert table.row_count == 3
        colours = app.get_css_variables()
        confidence = {r.gpu_type: r.confidence for r in screen.rows}
        assert confidence == {"g2-gpu-rtx4000a2-s": "High", "g1-gpu-rtx6000-4": "Medium",
                              "g2-gpu-rtx4000a1-s": "Low"}
        wanted = {"High": colours["success"], "Medium": colours["warning"], "Low": colours["error"]}
        for i, row in enumerate(screen.rows):
            cell = table.get_row_at(i)[-1]
            assert cell.plain == row.confidence and wanted[row.confidence] in str(cell.style)
        assert "3/7 GPU types" in str(screen.query_one("#bench-coverage").render())
        assert "stale" in str(screen.query_one("#bench-coverage").render())


async def test_the_concurrency_sweep_peak_shows_in_the_table_and_the_chart(app):
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(app, pilot)
        table = screen.query_one("#bench-table")
        cells = {row.gpu_type: [str(c) for c in table.get_row_at(i)] for i, row in enumerate(screen.rows)}
        assert "208 @8" in cells["g2-gpu-rtx4000a2-s"]  # the sweep's best: 8 requests in parallel
        assert "—" in cells["g1-gpu-rtx6000-4"]  # no sweep run
        chart = screen.query_one("#bench-chart")
        for _ in range(2):  # efficiency -> tokens/s -> peak
            await pilot.press("c")
        assert screen.chart_metric == "peak_tok_s"
        assert screen.query_one("#bench-chart-box").border_title.startswith("Peak tok/s")
        assert ("RTX4000x2 Coder-32B-AWQ @8", 208.4) in chart.bars
        await pilot.press("c")
        assert screen.chart_metric == "cost_efficiency"


async def test_coverage_takes_the_table_place_when_narrow(app):
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot)
        cover, main = screen.query_one("#bench-coverage-box"), screen.query_one("#bench-main")
        assert not cover.display and main.display
        await pilot.press("v")
        assert cover.display and not main.display
        await pilot.press("v")
        assert not cover.display and main.display


async def test_filters_narrow(app):
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(app, pilot)
        await pilot.press("g")  # first GPU type in sorted order
        assert order(screen) == ["g1-gpu-rtx6000-4"]
        await pilot.press("g", "g", "g")  # through the other two and back to all
        assert len(screen.rows) == 3
        await pilot.press("m")  # 30b
        assert order(screen) == ["g2-gpu-rtx4000a2-s"]
        await pilot.press("m", "m", "m")  # 70b, 7b, all
        assert len(screen.rows) == 3
        await pilot.press("t")  # coding: the RTX 4000 x2 figures drop to its coding mean
        assert screen.task_filter == "coding"
        row = next(r for r in screen.rows if r.gpu_type == "g2-gpu-rtx4000a2-s")
        assert row.tokens_per_sec == pytest.approx((37.0 + 38.0 + 20.0) / 3)
        assert "Task [coding]" in str(screen.query_one("#bench-filters").render())


async def test_sort_and_reverse(app):
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(app, pilot)
        assert screen.sort_by == "cost_efficiency"
        assert order(screen) == ["g2-gpu-rtx4000a1-s", "g2-gpu-rtx4000a2-s", "g1-gpu-rtx6000-4"]
        await pilot.press("s")  # tokens/s, fastest first
        assert screen.sort_by == "tokens_per_sec"
        assert order(screen) == ["g2-gpu-rtx4000a1-s", "g1-gpu-rtx6000-4", "g2-gpu-rtx4000a2-s"]
        await pilot.press("S")
        assert order(screen) == ["g2-gpu-rtx4000a2-s", "g1-gpu-rtx6000-4", "g2-gpu-rtx4000a1-s"]
        screen.sort_by_column("hourly_usd")  # what a click on the $/H header does
        await pilot.pause()
        assert order(screen) == ["g2-gpu-rtx4000a1-s", "g2-gpu-rtx4000a2-s", "g1-gpu-rtx6000-4"]
        await pilot.click("#bench-table", offset=(2, 0))  # the GPU header: sorted by name
        await pilot.pause()
        assert screen.sort_by == "gpu_type"
        assert order(screen) == sorted(order(screen))


@pytest.mark.parametrize("name,check", [
    ("out.csv", lambda text: list(csv.DictReader(text.splitlines()))[0]["gpu_type"] == "g2-gpu-rtx4000a1-s"),
    ("out.json", lambda text: len(json.loads(text)) == 3 and json.loads(text)[0]["runs"] == 1),
    ("out.md", lambda text: text.startswith("| GPU type |") and text.count("\n") == 5),
])
async def test_export_formats(app, tmp_path, name, check):
    async with app.run_test(size=(120, 40)) as pilot:
        await open_screen(app, pilot)
        await pilot.press("x")
        await pilot.pause()
        await answer(pilot, str(tmp_path / name))
        await wait_files(pilot)
        assert check((tmp_path / name).read_text())


async def test_bad_export_path_writes_nothing(app, tmp_path):
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(app, pilot)
        await pilot.press("x")
        await pilot.pause()
        await answer(pilot, str(tmp_path / "table.txt"))  # an ending we cannot write: refused in place
        dialog = app.screen
        assert isinstance(dialog, PathDialog)
        assert ".csv, .json or .md" in str(dialog.query_one("#path-error").render())
        await answer(pilot, str(tmp_path / "no-such-dir" / "t.csv"))  # so is a folder that is not there
        assert app.screen is dialog and "does not exist" in str(dialog.query_one("#path-error").render())
        await pilot.press("escape")
        await wait_files(pilot)
        assert screen.last_file_message == ""
        assert not (tmp_path / "no-such-dir").exists() and not (tmp_path / "table.txt").exists()


async def test_import_malformed_imports_nothing(app, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": "1.0", "benchmarks": [{"id": "x", "gpu_count": "two"}]}')
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(app, pilot)
        await pilot.press("i")
        await pilot.pause()
        await answer(pilot, str(bad))
        await wait_files(pilot)
        assert "Nothing imported" in screen.last_file_message
        assert "benchmarks[0]" in screen.last_file_message
        assert len(app.context.store.bench_runs()) == 6


async def test_import_good_file_adds_runs(make_context, clock, tmp_path):
    source = make_context()  # fill one store, export it, import into an empty one
    add_runs(source.store, clock.now())
    export_database(source.store, tmp_path / "db.json")
    source.store.close()
    app = BenchApp(make_context())
    for r in app.context.store.bench_runs():  # same home: start from an empty database
        app.context.store.delete_bench_run(r.id)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(app, pilot)
        assert screen.query_one("#bench-empty").display
        await pilot.press("i")
        await pilot.pause()
        await answer(pilot, str(tmp_path / "db.json"))
        await wait_files(pilot)
        assert "Imported 6 runs" in screen.last_file_message
        assert len(screen.rows) == 3 and not screen.query_one("#bench-empty").display
        await pilot.press("E")
        await pilot.pause()
        await answer(pilot, str(tmp_path / "again.json"))
        await wait_files(pilot)
        assert json.loads((tmp_path / "again.json").read_text()) == json.loads((tmp_path / "db.json").read_text())


async def test_without_a_database_import_and_export_say_so_plainly(make_context, clock, tmp_path):
    """The palette reaches import and export whatever the keys say: with no database they said
    "Import runs failed: 'NoneType' object has no attribute 'get_bench_run'"."""
    from maider_tui.store import StoreError

    source = make_context()
    add_runs(source.store, clock.now())
    export_database(source.store, tmp_path / "db.json")
    context = make_context()
    context.store.close()
    context.store, context.store_error = None, StoreError("the database cannot be opened")
    app = BenchApp(context)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        screen = await open_screen(app, pilot)
        await wait_files(pilot)
        assert screen.check_action("import_db", ()) is None  # greyed out; the palette still offers it
        screen.import_db(str(tmp_path / "db.json"))
        await wait_files(pilot)
        assert screen.last_file_message == ("Nothing imported: there is no session database this time (it "
                                            "could not be opened); restart the app to try again.")
        screen.export_db(tmp_path, str(tmp_path / "out.json"))
        await wait_files(pilot)
        assert screen.last_file_message.startswith("Nothing exported: there is no session database")
        assert not (tmp_path / "out.json").exists()
        assert not [text for text in toasts(app, "error") if "failed" in text]
    source.store.close()


# --- a benchmark run from the app on a real simulated session ---------------------------------------

@pytest.fixture
def live_app(paths, sim_cloud):
    """The app on the sim with a moving clock (the sim runs in real time, sped up), as the dashboard tests."""
    from maider_tui.clock import SystemClock
    from maider_tui.context import build_context

    context = build_context(paths, clock=SystemClock(), environ={})
    context.provider = sim_cloud.provider(store=context.store)
    context.cloud_speed = 1000.0
    return BenchApp(context)


async def test_run_benchmark_on_a_live_session(live_app, sim_cloud, monkeypatch):
    from maider_tui.ops import bench_run
    from maider_tui.ui.screens.bench_run import BenchRunScreen

    from .test_dashboard import cleanup, launch, until

    app = live_app
    held: list[list[str]] = []  # the watchdog's holds each time a prompt finished, as it finished
    original = bench_run.run_benchmark

    async def spying(target, *, emit, **options):
        def spy(event) -> None:
            held.append(list(app.live.get(event.session).watchdog.holds))
            emit(event)

        return await original(target, emit=spy, **options)

    monkeypatch.setattr(bench_run, "run_benchmark", spying)
    async with app.run_test(size=(100, 20)) as pilot:  # a short dialog: the log outgrows it
        name, _ = await launch(app, pilot)
        try:
            app.run_benchmark_on(name, max_tokens_scale=0.05)
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, BenchRunScreen)
            screen.query_one("#benchrun-category").query("RadioButton")[1].value = True  # coding
            screen.query_one("#benchrun-sweep").value = True
            await pilot.pause()
            assert screen.category == "coding"
            await pilot.press("enter")
            await until(lambda: screen.outcome is not None or "failed" in " ".join(screen.lines), timeout=30)
            assert screen.outcome is not None, screen.lines
            prompt_lines = [line for line in screen.lines if "tok/s" in line and "/4 " in line]
            assert len(prompt_lines) == 4 and "TTFT" in prompt_lines[0]
            await pilot.pause()
            log = screen.query_one("#benchrun-log")
            assert log.max_scroll_y > 0 and log.scroll_y == log.max_scroll_y  # the newest line in view
            assert "8 in parallel" in screen.lines[-1]
            stored = app.context.store.bench_runs()
            assert [r.id for r in stored] == [screen.outcome.run.id]
            assert stored[0].summary["category"] == "coding" and stored[0].session == name
            assert [p["concurrency"] for p in stored[0].summary["concurrency"]] == [1, 4, 8]
            assert held and all(h == ["benchmark"] for h in held)
            assert app.live.get(name).watchdog.holds == []
            summary = str(screen.query_one("#benchrun-summary").render())
            assert "tests passed" in summary and " in parallel" in summary
            await pilot.press("escape")
            await pilot.pause()
            app.open_benchmarks()
            await pilot.pause()
            assert [r.gpu_type for r in app.screen.rows] == [stored[0].gpu_type]
            peak = app.screen.rows[0]
            assert peak.peak_tok_s and peak.peak_concurrency in (1, 4, 8)
            cells = [str(c) for c in app.screen.query_one("#bench-table").get_row_at(0)]
            assert f"{peak.peak_tok_s:.0f} @{peak.peak_concurrency}" in cells
        finally:
            await cleanup(app, name, sim_cloud)


async def test_cancel_a_benchmark_stores_nothing(live_app, sim_cloud):
    from maider_tui.ui.screens.bench_run import BenchRunScreen

    from .test_dashboard import cleanup, launch, until

    app = live_app
    async with app.run_test(size=(120, 40)) as pilot:
        name, _ = await launch(app, pilot)
        try:
            app.run_benchmark_on(name, max_tokens_scale=0.5)
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, BenchRunScreen)
            await pilot.press("enter")
            await until(lambda: len(screen.lines) >= 2, timeout=20)  # the warm-up or a prompt is done
            assert screen.outcome is None and app.live.get(name).watchdog.holds == ["benchmark"]
            await pilot.press("escape")
            await until(lambda: app.live.get(name).watchdog.holds == [])  # released by the cancelled worker
            assert not isinstance(app.screen, BenchRunScreen)
            await asyncio.sleep(0.3)  # had the run gone on, its next prompts would finish by now
            assert app.context.store.bench_runs() == []
        finally:
            await cleanup(app, name, sim_cloud)


async def test_each_file_action_has_one_name_in_the_footer_the_palette_and_the_readme(make_context, clock):
    from pathlib import Path

    context = make_context()
    add_runs(context.store, clock.now())  # with runs every file action can act, so the palette lists it
    app = BenchApp(context)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(app, pilot)
        titles = {c.title for c in screen.palette_commands()}
    bindings = {b.key: b for b in BenchmarksScreen.BINDINGS}
    readme = next(line for line in (Path(__file__).resolve().parents[2] / "README.md").read_text().splitlines()
                  if line.startswith("| benchmarks |"))
    for key in ("x", "E", "i", "R"):
        name = bindings[key].description.lower()
        assert bindings[key].show, f"{key} is missing from the footer"
        assert f"bench: {name}" in titles, (key, name, titles)
        assert f"`{key}` {name}" in readme, (key, name, readme)
