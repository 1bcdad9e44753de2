"""The baseline the benchmarks measure the app against: the smallest Textual app that draws a screen.

    python benchmarks/_baseline_app.py static   # one Static, then idle
    python benchmarks/_baseline_app.py clock    # a Static redrawn with the time once a second
"""

from __future__ import annotations

import sys
import time

from textual.app import App, ComposeResult
from textual.widgets import Static


class Baseline(App[None]):
    def __init__(self, clock: bool) -> None:
        super().__init__()
        self.clock = clock

    def compose(self) -> ComposeResult:
        yield Static("baseline-ready", id="marker")
        yield Static("", id="clock")

    def on_mount(self) -> None:
        if self.clock:
            self.set_interval(1.0, self.tick)

    def tick(self) -> None:
        self.query_one("#clock", Static).update(time.strftime("%H:%M:%S"))


if __name__ == "__main__":
    Baseline(clock=sys.argv[1:] == ["clock"]).run()
