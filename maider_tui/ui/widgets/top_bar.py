"""The one-line bar at the top of every screen: where you are, what is live, what it costs, the time."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import Static

if TYPE_CHECKING:
    from ...clock import Clock


class TopBar(Horizontal):
    """Title on the left, a status summary and the clock on the right.

    Given the app's `Clock`, the bar keeps its own time: a screen that never redraws (the benchmark
    table, the recommend form) still shows the minute turn. A long title ends in an ellipsis two
    columns before the status, never running into it.
    """

    DEFAULT_CSS = """
    TopBar {
        dock: top;
        height: 1;
        background: $panel;
        color: $foreground;
        padding: 0 1;
    }
    TopBar > #top-left {
        width: 1fr;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    TopBar > #top-right {
        width: auto;
        margin-left: 2;
    }
    """

    title: reactive[str] = reactive("maider-tui")
    badge: reactive[str] = reactive("")
    status: reactive[str] = reactive("")
    clock_text: reactive[str] = reactive("")

    TICK_S = 1.0  # how often the bar reads the clock: the minute shows within a second of turning

    def __init__(self, clock: Clock | None = None) -> None:
        super().__init__()
        self.clock = clock

    def compose(self) -> ComposeResult:
        yield Static(id="top-left", markup=False)
        yield Static(id="top-right", markup=False)

    def on_mount(self) -> None:
        if self.clock is not None:
            self._tick()
            self.set_interval(self.TICK_S, self._tick)
        self._redraw()

    def _tick(self) -> None:
        if self.clock is not None:
            self.set_time(self.clock.now())

    def watch_title(self) -> None:
        self._redraw()

    def watch_badge(self) -> None:
        self._redraw()

    def watch_status(self) -> None:
        self._redraw()

    def watch_clock_text(self) -> None:
        self._redraw()

    def _redraw(self) -> None:
        if not self.is_mounted:
            return
        left = Text(self.title, style="bold")
        if self.badge:
            left.append("  ")
            left.append(f" {self.badge} ", style="reverse")
        right = Text(self.status)
        if self.clock_text:
            right.append(("   " if self.status else "") + self.clock_text)
        self._show("#top-left", left)
        self._show("#top-right", right)

    def _show(self, selector: str, text: Text) -> None:
        """Update one side when its text changed; lay the bar out again only when its width did.

        The clock turns every minute on every screen: an update that asks for layout re-arranges the
        whole screen, and here it would only ever be needed for a text of another width.
        """
        static = self.query_one(selector, Static)
        old = static.content
        if isinstance(old, Text) and old == text and old.style == text.style:
            return
        static.update(text, layout=not isinstance(old, Text) or old.cell_len != text.cell_len)

    def set_time(self, epoch: float) -> None:
        self.clock_text = datetime.fromtimestamp(epoch).strftime("%H:%M")
