"""Benchmark a live session from the app: choose the prompts, watch each one finish, read the summary.

The run is an exclusive async worker calling ops.bench_run; it holds the session's watchdog while it
runs (a benchmark the user started must not count as idle time) and releases it however it ends.
`escape` while running cancels it, and a cancelled run stores nothing.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Iterable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Footer, Log, ProgressBar, RadioButton, RadioSet, Static

from ...paths import styles_dir
from ...bench.aggregate import run_peak
from ..commands import PaletteCommand, key_commands
from ...ops.bench_run import BenchError, BenchOutcome, BenchProgressEvent, BenchTarget
from ...ops.views import Views
from ..messages import BenchmarksChanged

if TYPE_CHECKING:
    from ...context import AppContext
    from ...ops.live import LiveSession

CATEGORIES = (("all", "All 12 prompts"), ("coding", "Coding"), ("context_heavy", "Context-heavy"),
              ("reasoning", "Reasoning"))


class BenchProgress(Message):
    """One prompt (or the warm-up, or a sweep level) finished."""

    def __init__(self, event: BenchProgressEvent) -> None:
        super().__init__()
        self.event = event


class BenchFinished(Message):
    """The run ended: `outcome` when stored, else `error` says why nothing was."""

    def __init__(self, outcome: BenchOutcome | None, error: str | None = None) -> None:
        super().__init__()
        self.outcome, self.error = outcome, error


def summary_text(outcome: BenchOutcome) -> str:
    """The run's headline figures in two lines."""
    s = outcome.run.summary
    tok = s.get("avg_tokens_per_sec")
    ttft = s.get("p50_ttft_s")
    cost = s.get("cost_per_1k_tokens")
    parts = [f"{tok:.1f} tok/s" if isinstance(tok, (int, float)) else "no speed",
             f"TTFT p50 {ttft * 1000:.0f} ms" if isinstance(ttft, (int, float)) else "TTFT —",
             f"${cost:.4f}/1K" if isinstance(cost, (int, float)) else "$—/1K",
             f"{s.get('tests_passed', 0)}/{s.get('tests_total', 0)} tests passed"]
    peak = run_peak(outcome.run)
    if peak is not None:
        parts.append(f"peak {peak[0]:.1f} tok/s with {peak[1]} in parallel")
    return "Done: " + " · ".join(parts) + ".\nStored: it is in the comparison table (b on the sessions screen)."


class FollowingLog(Log):
    """The run's log, its newest line in view even when it shrinks (the summary under it grows at the end)."""

    def on_resize(self) -> None:
        self.scroll_end(animate=False, x_axis=False)


class BenchRunScreen(ModalScreen[None]):
    """Run the suite on session `live` (an ops.live.LiveSession); `max_tokens_scale` shortens it (tests)."""

    CSS_PATH = styles_dir() / "bench_run.tcss"

    BINDING_GROUP_TITLE = "Benchmark"
    BINDINGS = [
        Binding("enter", "start", "Start", id="benchrun.start", priority=True,
                tooltip="Start the benchmark with the chosen prompts"),
        Binding("escape", "cancel", "Cancel / close", id="benchrun.cancel",
                tooltip="Cancel a running benchmark (nothing is stored), or close"),
    ]

    def __init__(self, context: "AppContext", live: LiveSession, *, max_tokens_scale: float = 1.0) -> None:
        super().__init__()
        self.context, self.live = context, live
        self.max_tokens_scale = max_tokens_scale
        self.category = CATEGORIES[0][0]
        self.running = False
        self.outcome: BenchOutcome | None = None
        self.lines: list[str] = []  # what the log shows, kept for tests and the summary

    def compose(self) -> ComposeResult:
        with Vertical(id="benchrun-box"):
            yield Static(f"Benchmark {self.live.name}", id="benchrun-title", markup=False)
            with Horizontal(id="benchrun-options"):
                with RadioSet(id="benchrun-category"):
                    for i, (value, label) in enumerate(CATEGORIES):
                        yield RadioButton(label, value=i == 0, name=value)
                with Vertical(id="benchrun-side"):
                    yield Checkbox("Concurrency sweep (1, 4, 8 at once)", id="benchrun-sweep")
                    yield Button("Start (enter)", id="benchrun-go", variant="primary")
            yield ProgressBar(id="benchrun-progress", show_eta=False)
            yield FollowingLog(id="benchrun-log", max_lines=200)
            yield Static("The watchdog is held while the benchmark runs; escape cancels it.",
                         id="benchrun-summary", markup=False)
        yield Footer()  # this dialog's keys, over the dashboard's

    def on_mount(self) -> None:
        self.query_one("#benchrun-box").border_title = "Run benchmark"
        self.query_one(RadioSet).focus()

    @on(RadioSet.Changed)
    def _category(self, event: RadioSet.Changed) -> None:
        if event.pressed.name:
            self.category = event.pressed.name

    @on(Button.Pressed, "#benchrun-go")
    def _go(self) -> None:
        self.action_start()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "start":
            return None if self.running or self.outcome is not None else True
        return True

    def _say(self, line: str) -> None:
        self.lines.append(line)
        self.query_one(Log).write_line(line, scroll_end=False)
        self._follow()

    def _follow(self) -> None:
        """The newest line in view; after the next layout, so a summary that grows and squeezes the log
        (or lines that arrive faster than a refresh) cannot leave it a line short."""
        self.query_one(Log).scroll_end(animate=False, x_axis=False)

    def action_start(self) -> None:
        if self.running or self.outcome is not None:
            return
        self.running = True
        self.query_one("#benchrun-options").disabled = True
        self.refresh_bindings()
        sweep = self.query_one("#benchrun-sweep", Checkbox).value
        self._say(f"Starting: {self.category.replace('_', '-')} prompts{' and the sweep' if sweep else ''}…")
        self.run_suite(self.category, sweep)

    @work(exclusive=True, exit_on_error=False, group="bench-run", description="Run the benchmark")
    async def run_suite(self, category: str, sweep: bool) -> None:
        watchdog = self.live.watchdog
        if watchdog is not None:
            watchdog.hold("benchmark")
        try:
            target = BenchTarget.from_live(self.live)
            outcome = await Views(self.context).run_benchmark(
                target, category=category, emit=lambda event: self.post_message(BenchProgress(event)),
                concurrency_sweep=sweep,
                max_tokens_scale=self.max_tokens_scale)
        except BenchError as exc:
            self.post_message(BenchFinished(None, str(exc)))
        except asyncio.CancelledError:
            raise  # escape: the screen already said so; nothing was stored
        except Exception as exc:  # noqa: BLE001 - the store or the network: say it, keep the app
            self.post_message(BenchFinished(None, f"{type(exc).__name__}: {exc}"))
        else:
            self.post_message(BenchFinished(outcome))
        finally:
            if watchdog is not None:
                watchdog.release()

    def on_bench_progress(self, message: BenchProgress) -> None:
        event = message.event
        bar = self.query_one(ProgressBar)
        if event.phase == "prompt":
            bar.update(total=event.total, progress=event.done)
            self._say(f"{event.done:>2}/{event.total} {event.message}")
        else:
            self._say(event.message)

    def on_bench_finished(self, message: BenchFinished) -> None:
        self.running = False
        summary = self.query_one("#benchrun-summary", Static)
        if message.outcome is None:
            summary.update(f"Nothing stored: {message.error}")
            self._say(f"failed: {message.error}")
        else:
            self.outcome = message.outcome
            summary.update(summary_text(message.outcome))
            self.post_message(BenchmarksChanged())
        self._follow()
        self.refresh_bindings()

    def action_cancel(self) -> None:
        if self.running:
            self.workers.cancel_group(self, "bench-run")
            self.running = False
            self.notify("Benchmark cancelled: nothing was stored.", title="Benchmark")
        self.dismiss(None)

    def palette_commands(self) -> Iterable[PaletteCommand]:
        yield from key_commands(self, "bench", {"start": "start the run", "cancel": "cancel or close the run"})
