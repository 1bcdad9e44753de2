"""GPU validation of one live session: progress, findings with their evidence, utilisation, export.

The run is an async worker calling `ops.validate`; it reports back through this screen's messages
only. The app's own requests are wrapped in the session watchdog's `own_requests()`, so validating
never counts as the user's activity.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.markup import escape
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, ProgressBar, Static

from ...paths import display_path, styles_dir
from ..commands import PaletteCommand, key_commands
from ...ops.validate import (FULL_SECTIONS, QUICK_SECTIONS, ValidationProgress, full_validation, head_view,
                             quick_check)
from ...ops.validate_report import ValidationReport
from ...ops.validate_table import utilisation_table
from ..widgets.util_chart import UtilChart

if TYPE_CHECKING:
    from ...ops.live import LiveSessions
    from ...context import AppContext

_STYLE = {"pass": ("$success", "✓ pass"), "warn": ("$warning", "! warn"), "fail": ("$error", "✗ fail")}


class ValidationProgressed(Message):
    """A section of the running validation started or finished."""

    def __init__(self, event: ValidationProgress) -> None:
        super().__init__()
        self.event = event


class ValidationDone(Message):
    """The run ended: a report, or the reason there is none."""

    def __init__(self, report: ValidationReport | None, error: str | None = None) -> None:
        super().__init__()
        self.report, self.error = report, error


def findings_markup(report: ValidationReport) -> str:
    """Findings as Textual markup: coloured status, section, title, then the evidence dimmed."""
    lines = []
    for f in report.findings:
        colour, word = _STYLE[f.status]
        lines.append(f"[{colour} bold]{word}[/] [b]{escape(f.section)}[/]: {escape(f.title)}")
        lines += [f"    [dim]{escape(line)}[/]" for line in f.evidence[:8]]
    return "\n".join(lines) or "[dim]No findings yet.[/]"


class ValidationScreen(Screen[None]):
    """Quick check or full validation of session `name`. With `report`, shows it and runs nothing."""

    CSS_PATH = styles_dir() / "validation.tcss"

    BINDING_GROUP_TITLE = "Validation"
    BINDINGS = [
        Binding("f", "full", "Full validation", id="validation.full",
                tooltip="Run the seven-section validation (about 5 minutes)"),
        Binding("x", "export", "Export", id="validation.export", tooltip="Write the report to a Markdown file"),
        Binding("escape", "back", "Back", id="validation.back", tooltip="Back to the dashboard"),
    ]

    def __init__(self, context: "AppContext", live: LiveSessions | None, name: str, *, full: bool = False,
                 report: ValidationReport | None = None, run_options: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.context, self.live, self.session = context, live, name
        self.full, self.report = full, report
        self.run_options = dict(run_options or {})
        self.running = False
        self.message_text = ""

    def compose(self) -> ComposeResult:
        yield Static(id="val-title")
        with Horizontal(id="val-progress-row"):
            yield ProgressBar(total=len(FULL_SECTIONS if self.full else QUICK_SECTIONS), show_eta=False,
                              id="val-progress")
            yield Label("", id="val-stage")
        with VerticalScroll(id="val-body"):
            yield Static(id="val-findings", classes="panel")
            with Vertical(id="val-util", classes="panel"):
                yield UtilChart(id="val-chart")
                yield Static(id="val-table")
            yield Static(id="val-advice", classes="panel")
        with Horizontal(id="val-export"):
            yield Label("Export to", id="val-export-label")
            yield Input(id="val-path", placeholder="path of the Markdown file")
        yield Static(id="val-message")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#val-findings").border_title = "Findings"
        self.query_one("#val-util").border_title = "GPU utilisation under load"
        self.query_one("#val-advice").border_title = "Configuration advice"
        self.query_one("#val-export").display = False
        if self.report is not None:
            self.full = self.report.kind == "full"
            self._show(self.report)
            self.query_one(ProgressBar).update(total=1, progress=1)
            self.query_one("#val-stage", Label).update("done")
        else:
            self.run_validation_now(self.full)

    # --- the run -------------------------------------------------------------------------------------

    def _title(self) -> str:
        kind = "Full validation" if self.full else "Quick check"
        model = self.report.model if self.report else ""
        status = "[dim]running[/]"
        if self.report is not None and not self.running:
            colour, word = _STYLE[self.report.status]
            status = f"[{colour} bold]{word}[/]"
        # the verdict first: on a narrow terminal the model name is what gets cut
        return f"{status} · [b]{kind}[/] · {escape(self.session)} · [dim]{escape(model)}[/]"

    @work(exclusive=True, group="validate", exit_on_error=False, description="Validate the session's GPUs")
    async def run_validation(self, full: bool) -> None:
        live = self.live.get(self.session) if self.live is not None else None
        if live is None or live.handle is None:
            self.post_message(ValidationDone(None, "This session is not connected: open its dashboard first."))
            return
        handle = live.handle
        watchdog = live.watchdog
        speed = max(1.0, self.context.cloud_speed or 1.0)
        options: dict[str, Any] = {  # the ops' keywords; `run_options` may set others
            "local_port": handle.local_port, "config": head_view(handle.config, handle.record.nodes),
            "gpu_type": handle.record.gpu_type, "clock": self.context.clock, "session": self.session,
            "own_requests": watchdog.own_requests if watchdog is not None else None,
            "progress": lambda event: self.post_message(ValidationProgressed(event))}
        options.update(self.run_options.get("full" if full else "quick", {}))
        try:
            if full:
                options.setdefault("duration_scale", 1.0 / speed)  # the demo's cloud runs faster than life
                report = await full_validation(handle.ssh, **options)
            else:
                report = await quick_check(handle.ssh, **options)
        except Exception as exc:  # noqa: BLE001 - any failure is shown; the user can run it again
            self.post_message(ValidationDone(None, f"Validation stopped: {exc or type(exc).__name__}"))
            return
        self.post_message(ValidationDone(report))

    def on_validation_progressed(self, message: ValidationProgressed) -> None:
        event = message.event
        bar = self.query_one(ProgressBar)
        bar.update(total=event.total, progress=event.index + (1 if event.state == "finished" else 0))
        self.query_one("#val-stage", Label).update(f"{event.section} ({event.index + 1}/{event.total})"
                                                   + ("" if event.state == "finished" else "…"))
        if self.report is not None:
            self.report.findings.extend(event.findings)
            self._show(self.report)

    def on_validation_done(self, message: ValidationDone) -> None:
        self.running = False
        if message.report is None:
            self._say(message.error or "Validation stopped.", error=True)
            self.query_one("#val-stage", Label).update("stopped")
            return
        self.report = message.report
        self.query_one("#val-stage", Label).update("done")
        self._show(message.report)

    def _start(self, full: bool) -> None:
        self.full, self.running = full, True
        live = self.live.get(self.session) if self.live is not None else None
        handle = live.handle if live is not None else None
        model = handle.config.model if handle is not None else ""
        gpu_type = handle.record.gpu_type if handle is not None else ""
        # an empty report collects the findings as sections finish, so the screen fills in as it runs
        self.report = ValidationReport("full" if full else "quick", self.session, model, gpu_type,
                                       self.context.clock.now())
        self.query_one(ProgressBar).update(total=len(FULL_SECTIONS if full else QUICK_SECTIONS), progress=0)
        self._show(self.report)

    def run_validation_now(self, full: bool) -> None:
        self._start(full)
        self.run_validation(full)

    # --- showing the report --------------------------------------------------------------------------

    def _show(self, report: ValidationReport) -> None:
        self.query_one("#val-title", Static).update(self._title())
        self.query_one("#val-findings", Static).update(findings_markup(report))
        util = self.query_one("#val-util")
        util.display = bool(report.utilisation)
        if report.utilisation:
            self.query_one("#val-chart", UtilChart).set_rows(report.utilisation)
            self.query_one("#val-table", Static).update(escape("\n".join(utilisation_table(report.utilisation))))
        advice = self.query_one("#val-advice", Static)
        advice.display = bool(report.advice)
        advice.update("\n".join(f"[b]{escape(a.setting)}[/]  [dim]{escape(a.why)}[/]" for a in report.advice))

    def _say(self, text: str, *, error: bool = False) -> None:
        self.message_text = text
        widget = self.query_one("#val-message", Static)
        widget.set_class(error, "-error")
        widget.update(escape(text))

    # --- keys ----------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "full":
            return None if self.running else True
        if action == "export":
            return True if self.report is not None and self.report.findings else None
        return True

    def action_full(self) -> None:
        if not self.running:
            self.run_validation_now(True)

    def action_export(self) -> None:
        box = self.query_one("#val-export")
        box.display = True
        path = self.query_one("#val-path", Input)
        if not path.value and self.report is not None:
            name = f"validation-{self.session}-{self.report.kind}.md"
            path.value = display_path(self.context.exports_dir() / name)
        path.focus()

    def action_back(self) -> None:
        box = self.query_one("#val-export")
        if box.display:
            box.display = False
            return
        self.app.pop_screen()

    @on(Input.Submitted, "#val-path")
    def _export_submitted(self, event: Input.Submitted) -> None:
        if self.report is not None:
            self.export(event.value.strip(), self.report.to_markdown())

    @work(group="validate-export", exit_on_error=False, description="Export the validation report")
    async def export(self, raw: str, text: str) -> None:
        if not raw:
            self._say("Type a path for the Markdown file, then press enter.", error=True)
            return
        from ...ops.exports import prepare
        from ...ops.validate_report import write_report

        path = Path(raw)
        try:
            path = await asyncio.to_thread(prepare, self.context.exports_dir(), raw)
            await asyncio.to_thread(write_report, path, text)
        except (OSError, ValueError, RuntimeError) as exc:  # also a NUL in the name, an unknown ~user
            reason = getattr(exc, "strerror", None) or exc
            self._say(f"Nothing written: {path} cannot be written ({reason}). Choose another path.", error=True)
            return
        self.query_one("#val-export").display = False
        self._say(f"Report written to {path}.")
        self.notify(f"Report written to {path}.", title="Validation")

    def palette_commands(self) -> Iterable[PaletteCommand]:
        yield from key_commands(self, "validation", {"full": "run the full validation",
                                                     "export": "export report (Markdown)"})
