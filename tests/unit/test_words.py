"""Counts and durations as the user reads them, and the messages that used to read wrong."""

from __future__ import annotations

import pytest

from maider_tui.commands.common import event_printer
from maider_tui.ops.events import WatchdogEvent
from maider_tui.ops.receipt import make_receipt
from maider_tui.ui.widgets.log_pane import event_text
from maider_tui.words import duration, plural


@pytest.mark.parametrize("count, expected", [(0, "0 runs"), (1, "1 run"), (2, "2 runs"), (-1, "-1 runs")])
def test_plural(count, expected):
    assert plural(count, "run") == expected


def test_plural_takes_an_irregular_form():
    assert plural(1, "box", "boxes") == "1 box" and plural(3, "box", "boxes") == "3 boxes"


@pytest.mark.parametrize("hours, expected", [
    (0.0, "0 s"), (10 / 3600, "10 s"), (59 / 3600, "59 s"), (60 / 3600, "1 min"), (0.03, "2 min"),
    (59 / 60, "59 min"), (59.6 / 60, "1 h"), (1.5, "1 h 30 min"), (3.0, "3 h"), (-1.0, "0 s"),
])
def test_duration_says_minutes_under_an_hour(hours, expected):
    assert duration(hours) == expected


def test_a_short_receipt_says_minutes():
    receipt = make_receipt("s", started_at=0.0, ended_at=108.0, hourly_usd=2.08, tokens=None)
    assert receipt.summary() == "2 min at $2.08/h = $0.06"


def test_a_watchdog_line_says_its_state_once():
    event = WatchdogEvent("s", "paused", None, "Paused while the benchmark runs.")
    assert event_text(event) == "watchdog: Paused while the benchmark runs."
    lines: list[str] = []
    event_printer(lines.append)(WatchdogEvent("s", "watching", 60.0, "Watching: the VM is destroyed after 30 min idle."))
    assert lines == ["s: Watching: the VM is destroyed after 30 min idle."]
