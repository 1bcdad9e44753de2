"""scripts/screenshots.py refuses a picture that shows a Python traceback or a bordered panel with
nothing in it, reading the text back out of the SVG the app exports."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.widgets import Static

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "screenshots.py"


@pytest.fixture(scope="module")
def shots():
    spec = importlib.util.spec_from_file_location("screenshots_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_panel_with_text_passes(shots):
    lines = ["┌─ Endpoint ─────┐", "│ localhost:8000 │", "└────────────────┘"]
    assert shots.problems(lines) == []


def test_an_empty_panel_is_named_by_its_title(shots):
    lines = ["╭─ Log ──────────╮", "│                │", "│   ▁▂           │", "╰────────────────╯"]
    assert shots.problems(lines) == ["an empty panel: 'Log'"]


def test_a_panel_beside_a_full_one_is_found(shots):
    lines = ["┌─ GPUs ─┐ ┌────────┐", "│ GPU0   │ │        │", "└────────┘ └────────┘"]
    assert shots.problems(lines) == ["an empty panel: 'the panel at row 1, column 12'"]


def test_a_traceback_is_found(shots):
    lines = ["Traceback (most recent call last):", '  File "maider_tui/app.py", line 3, in <module>',
             "KeyError: 'x'"]
    (said,) = shots.problems(lines)
    assert said.startswith("a Python traceback")


class Panels(App[None]):
    CSS = "Static { border: round $primary; height: 5; }"

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        full = Static("tokens per second", id="full")
        full.border_title = "Speed"
        yield full
        empty = Static(self.text, id="empty")
        empty.border_title = "Log"
        yield empty


@pytest.mark.parametrize("text, expected", [("", ["an empty panel: 'Log'"]), ("ready at 12:00", [])])
async def test_the_check_reads_an_svg_the_app_exports(shots, text, expected):
    app = Panels(text)
    async with app.run_test(size=(60, 14)) as pilot:
        await pilot.pause()
        svg = app.export_screenshot()
    lines = shots.svg_lines(svg)
    assert any("tokens per second" in line for line in lines)
    assert shots.problems(lines) == expected
