"""The benchmarks screen: the comparison table with filters and sort, a bar chart, coverage, files.

Reads the runs through ops.views in a worker after every change; file exports and imports run in
workers and report back with `FileDone`, so neither SQLite nor a slow disk stalls the screen.
"""

from __future__ import annotations

from functools import partial
import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from ...paths import display_path, styles_dir
from ...words import plural
from ...bench.aggregate import SORT_KEYS, ComparisonRow, comparison_rows
from ...bench.coverage import coverage_report
from ..commands import PaletteCommand, key_commands
from ..messages import RecommendRequested
from ..dialogs.export_path import PathDialog, check_export_path, check_file_path, export_format
from ..widgets.bar_chart import BarChart
from ..widgets.top_bar import TopBar
from .benchmarks_panes import (
    COLUMNS,
    EMPTY_MESSAGE,
    SORT_ALIAS,
    SORT_CYCLE,
    SORT_WORDS,
    TASKS,
    chart_bars,
    coverage_text,
    gpu_label,
    row_cells,
)

if TYPE_CHECKING:
    from ...context import AppContext

NARROW = 100  # below this many columns the coverage pane gets narrower
CHART_METRICS = {"cost_efficiency": "Efficiency (tok/s per $/h)", "tokens_per_sec": "Tokens/s",
                 "peak_tok_s": "Peak tok/s, every request together (@ how many in parallel)"}


class FileDone(Message):
    """An export or import finished (or failed); `text` says what happened, in one sentence."""

    def __init__(self, text: str, *, ok: bool, changed: bool = False) -> None:
        super().__init__()
        self.text, self.ok, self.changed = text, ok, changed


class BenchmarksScreen(Screen[None]):
    """Every configuration measured, compared by cost; filters, sort, chart, coverage, export, import."""

    CSS_PATH = styles_dir() / "benchmarks.tcss"

    BINDING_GROUP_TITLE = "Benchmarks"
    BINDINGS = [
        Binding("g", "cycle_filter('gpu')", "GPU", show=False, id="bench.gpu", tooltip="Show one GPU type, or all"),
        Binding("m", "cycle_filter('model')", "Model", show=False, id="bench.model",
                tooltip="Show one model category (7b, 14b, 30b, 70b), or all"),
        Binding("t", "cycle_filter('task')", "Task", show=False, id="bench.task",
                tooltip="Figures for one task category (coding, context-heavy, reasoning), or all"),
        Binding("s", "cycle_sort", "Sort", show=False, id="bench.sort", tooltip="Sort by the next column"),
        Binding("S", "reverse", "Reverse", id="bench.reverse", show=False, tooltip="Reverse the sort order"),
        Binding("c", "toggle_chart", "Chart", id="bench.chart", show=False,  # the chart's title names it
                tooltip="Chart efficiency, tokens/s or the concurrency sweep's peak, in turn"),
        Binding("v", "toggle_coverage", "Coverage", id="bench.coverage",
                tooltip="Show or hide the coverage pane (below 100 columns it takes the table's place)"),
        Binding("x", "export", "Export table", id="bench.export",
                tooltip="Write the rows shown as CSV, JSON or Markdown (the file's ending chooses)"),
        Binding("E", "export_db", "Export runs", id="bench.export_db",
                tooltip="Write every run to a benchmark-database.json (the old tool's format)"),
        Binding("i", "import_db", "Import runs", id="bench.import",
                tooltip="Import the runs of a benchmark-database.json (the old tool's format)"),
        Binding("R", "recommend", "Recommend", id="bench.recommend",
                tooltip="Recommend a GPU type and model for a task and budget"),
        # Not in the footer, so the screen's own keys fit at 80 columns; escape goes back on every screen.
        Binding("escape", "back", "Back", id="bench.back", show=False, tooltip="Back to the previous screen"),
    ]

    def __init__(self, context: "AppContext") -> None:
        super().__init__()
        self.context = context
        self.gpu_filter: str | None = None
        self.model_filter: str | None = None
        self.task_filter: str | None = None
        self.sort_by = "cost_efficiency"
        self.descending: bool | None = None  # None: the column's natural direction (best first)
        self.chart_metric = "cost_efficiency"
        self.runs: list = []
        self.rows: list[ComparisonRow] = []
        self.last_file_message = ""  # the last export or import result, as the toast said it

    def compose(self) -> ComposeResult:
        yield TopBar(self.context.clock)
        yield Static("", id="bench-filters", markup=False)
        with Horizontal(id="bench-body"):
            with Vertical(id="bench-main"):
                yield DataTable(id="bench-table", cursor_type="row")
                yield Static(EMPTY_MESSAGE, id="bench-empty", markup=False)
                with VerticalScroll(id="bench-chart-box"):
                    yield BarChart(id="bench-chart")
            with VerticalScroll(id="bench-coverage-box"):
                yield Static("", id="bench-coverage", markup=False)
        yield Footer(compact=True)  # every key fits at 80 columns

    def on_mount(self) -> None:
        bar = self.query_one(TopBar)
        bar.title = "Benchmarks"
        bar.badge = "demo" if self.context.demo else ""
        table = self.query_one("#bench-table", DataTable)
        for key, header in COLUMNS:
            # CONF gets a fixed width: "Medium" must fit whichever row is measured first.
            table.add_column(header, key=key, width=6 if key == "confidence" else None)
        self.query_one("#bench-coverage-box").border_title = "Coverage"
        self.refresh_data()

    def on_resize(self) -> None:
        self.set_class(self.size.width < NARROW, "-narrow")

    def action_toggle_coverage(self) -> None:
        """Wide: hide or show the pane. Narrow: the pane replaces the table until pressed again."""
        self.toggle_class("-coverage-toggled")

    # --- data ---------------------------------------------------------------------------------

    @work(exclusive=True, exit_on_error=False, group="bench-runs", description="Read the benchmark runs")
    async def refresh_data(self) -> None:
        """Read the runs again (after an import or a new run) and redraw everything."""
        from ...ops.views import Views

        self.runs = await Views(self.context).bench_runs()
        self.redraw()
        self.refresh_bindings()

    def _colours(self) -> dict[str, str]:
        # Rich cells cannot name theme variables: resolve them from the current theme instead.
        return self.app.get_css_variables()

    def _choices(self, which: str) -> list[str | None]:
        if which == "gpu":
            return [None, *sorted({r.gpu_type for r in self.runs})]
        if which == "model":
            return [None, *sorted({r.model_category for r in self.runs if r.model_category})]
        return list(TASKS)

    def redraw(self) -> None:
        """Rows, table, chart, coverage and the filter line from the current runs and choices."""
        self.rows = comparison_rows(self.runs, gpu_type=self.gpu_filter, model_category=self.model_filter,
                                    task_category=self.task_filter, sort_by=self.sort_by,
                                    descending=self.descending)
        empty = not self.runs
        self.query_one("#bench-empty").display = empty
        self.query_one("#bench-table").display = not empty
        self.query_one("#bench-chart-box").display = not empty
        colours = self._colours()
        table = self.query_one("#bench-table", DataTable)
        table.clear()
        for row in self.rows:
            table.add_row(*row_cells(row, colours), key=f"{row.gpu_type}|{row.model_id}")
        self.query_one("#bench-main").border_title = (
            "No runs yet" if empty else f"{len(self.rows)} configuration{'s' if len(self.rows) != 1 else ''}")
        chart_box = self.query_one("#bench-chart-box")
        chart_box.border_title = f"{CHART_METRICS[self.chart_metric]} · c switches"
        fmt = "{:.1f}"
        self.query_one(BarChart).set_bars(chart_bars(self.rows, self.chart_metric), fmt)
        if not self.rows and self.runs:
            self.query_one(BarChart).update("No configuration matches these filters: g, m and t change them.")
        report = coverage_report(self.runs, now=self.context.clock.now())
        self.query_one("#bench-coverage", Static).update(coverage_text(report, colours))
        self.query_one("#bench-filters", Static).update(self.filter_line())

    def filter_line(self) -> str:
        """The header line: each filter and the sort, with the key that changes it."""
        desc = SORT_KEYS[self.sort_by] if self.descending is None else self.descending
        gpu = gpu_label(self.gpu_filter) if self.gpu_filter else "all"
        task = (self.task_filter or "all").replace("_", "-")
        # The keys are named here, beside what they change, so the footer keeps room for the rest.
        return (f" g GPU [{gpu}]  m Model [{self.model_filter or 'all'}]  t Task [{task}]  "
                f"s/S Sort [{SORT_WORDS.get(self.sort_by, self.sort_by)} {'↓' if desc else '↑'}]")

    # --- keys -----------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Greys out what needs runs (or a database) to act on."""
        if action in ("export", "export_db", "cycle_filter", "cycle_sort", "reverse", "toggle_chart"):
            return True if self.runs else None
        if action == "import_db":
            from ...ops.views import Views

            return True if Views(self.context).available else None
        return True

    def action_cycle_filter(self, which: str) -> None:
        attr = {"gpu": "gpu_filter", "model": "model_filter", "task": "task_filter"}[which]
        choices = self._choices(which)
        current = getattr(self, attr)
        index = choices.index(current) if current in choices else 0
        setattr(self, attr, choices[(index + 1) % len(choices)])
        self.redraw()

    def action_cycle_sort(self) -> None:
        index = SORT_CYCLE.index(self.sort_by) if self.sort_by in SORT_CYCLE else -1
        self.sort_by_column(SORT_CYCLE[(index + 1) % len(SORT_CYCLE)])

    def sort_by_column(self, column: str) -> None:
        """Sort by `column` best first; the same column again reverses it (as a header click does)."""
        column = SORT_ALIAS.get(column, column)
        if column not in SORT_KEYS:
            return
        if column == self.sort_by:
            self.action_reverse()
            return
        self.sort_by, self.descending = column, None
        self.redraw()

    @on(DataTable.HeaderSelected)
    def _header_clicked(self, event: DataTable.HeaderSelected) -> None:
        self.sort_by_column(str(event.column_key.value))

    def action_reverse(self) -> None:
        current = SORT_KEYS[self.sort_by] if self.descending is None else self.descending
        self.descending = not current
        self.redraw()

    def action_toggle_chart(self) -> None:
        metrics = list(CHART_METRICS)
        self.chart_metric = metrics[(metrics.index(self.chart_metric) + 1) % len(metrics)]
        self.redraw()

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_recommend(self) -> None:
        self.post_message(RecommendRequested())

    # --- files ----------------------------------------------------------------------------------

    def action_export(self) -> None:
        folder = self.context.exports_dir()

        def chosen(path: str | None) -> None:
            if path:
                self.export_table(list(self.rows), folder, path, export_format(path) or "csv")

        self.app.push_screen(PathDialog(
            "Export table", "The ending chooses the format: .csv, .json or .md. "
            "Only the rows shown (with these filters) are written.", display_path(folder / "benchmarks.csv"),
            partial(check_export_path, exports=folder)), chosen)

    def action_export_db(self) -> None:
        folder = self.context.exports_dir()

        def chosen(path: str | None) -> None:
            if path:
                self.export_db(folder, path)

        self.app.push_screen(PathDialog(
            "Export runs (benchmark-database.json)",
            "The old tool's format: it can import this file, and so can maider-tui.",
            display_path(folder / "benchmark-database.json"), partial(check_file_path, exports=folder)), chosen)

    def action_import_db(self) -> None:
        def chosen(path: str | None) -> None:
            if path:
                self.import_db(path)

        self.app.push_screen(PathDialog(
            "Import runs", "A benchmark-database.json from the old tool (version 1.0). "
            "A malformed file imports nothing.", "benchmark-database.json",
            lambda p: None if p.strip() else "Type the path of the file."), chosen)

    @work(thread=True, exclusive=True, exit_on_error=False, group="bench-file", description="Export the table")
    def export_table(self, rows: list[ComparisonRow], folder: Path, path: str, fmt: str) -> None:
        from ...bench.export import ExportError, export_rows
        from ...ops.exports import prepare

        try:
            target = export_rows(rows, prepare(folder, path), fmt)
        except ExportError as exc:
            self.post_message(FileDone(str(exc), ok=False))
            return
        except OSError as exc:  # the exports folder could not be made
            reason = exc.strerror or str(exc)
            self.post_message(FileDone(f"Cannot make {folder}: {reason}. Choose another path.", ok=False))
            return
        self.post_message(FileDone(f"Wrote {plural(len(rows), 'row')} as {fmt} to {target}.", ok=True))

    @work(exclusive=True, exit_on_error=False, group="bench-file", description="Export the runs")
    async def export_db(self, folder: Path, path: str) -> None:
        from ...ops.exports import prepare
        from ...ops.views import NoDatabaseError, Views

        target = Path(path)
        try:
            target = await asyncio.to_thread(prepare, folder, path)
            count = await Views(self.context).export_benchmarks(target)
        except NoDatabaseError as exc:
            self.post_message(FileDone(f"Nothing exported: {exc}", ok=False))
            return
        except OSError as exc:
            reason = exc.strerror or str(exc)
            self.post_message(FileDone(f"Cannot write {target}: {reason}. Choose another path.", ok=False))
            return
        self.post_message(FileDone(f"Wrote {plural(count, 'run')} to {target}.", ok=True))

    @work(exclusive=True, exit_on_error=False, group="bench-file", description="Import runs")
    async def import_db(self, path: str) -> None:
        from ...bench.dbjson import DatabaseFormatError
        from ...ops.views import NoDatabaseError, Views

        target = Path(path)
        try:
            target = target.expanduser()
            report = await Views(self.context).import_benchmarks(target)
        except NoDatabaseError as exc:
            self.post_message(FileDone(f"Nothing imported: {exc}", ok=False))
            return
        except DatabaseFormatError as exc:
            self.post_message(FileDone(f"Nothing imported: {target.name} breaks at {exc.where}: {exc.problem}.",
                                       ok=False))
            return
        except (OSError, ValueError, RuntimeError) as exc:  # also a NUL in the name, an unknown ~user
            reason = getattr(exc, "strerror", None) or exc
            self.post_message(FileDone(f"Nothing imported: cannot read {target} ({reason}).", ok=False))
            return
        skipped = f"; {report.skipped} already here" if report.skipped else ""
        self.post_message(FileDone(f"Imported {plural(report.imported, 'run')} from {target.name}{skipped}.", ok=True,
                                   changed=report.imported > 0))

    def on_file_done(self, message: FileDone) -> None:
        self.last_file_message = message.text
        self.notify(message.text, title="Benchmarks", severity="information" if message.ok else "error",
                    timeout=10 if message.ok else 30)
        if message.changed:
            self.refresh_data()
            self.refresh_bindings()

    def palette_commands(self) -> Iterable[PaletteCommand]:
        yield from key_commands(self, "bench", {
            "cycle_filter('gpu')": "filter by GPU type", "cycle_filter('model')": "filter by model size",
            "cycle_filter('task')": "filter by task", "cycle_sort": "sort by the next column",
            "reverse": "reverse the sort", "toggle_chart": "chart efficiency, tokens/s or peak",
            "toggle_coverage": "show or hide coverage", "export": "export table",
            "import_db": "import runs", "export_db": "export runs",
            "recommend": "recommend"})
