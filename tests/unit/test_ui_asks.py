"""Screens and widgets ask the app through typed messages: no call to an app method that exists only
by convention (`self.app.start_launch(...)`, `getattr(self.app, ...)`), no mixin of MaiderApp."""

from __future__ import annotations

import ast
from pathlib import Path

from textual.app import App

from maider_tui.app import MaiderApp

UI = Path(__file__).parents[2] / "maider_tui" / "ui"


def _app_uses(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, what) for every `self.app.<name>` that is not Textual's App API, and every getattr on the app."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) \
                and node.value.attr == "app" and isinstance(node.value.value, ast.Name) \
                and node.value.value.id == "self" and not hasattr(App, node.attr):
            found.append((node.lineno, f"self.app.{node.attr}"))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr") \
                and node.args and isinstance(node.args[0], ast.Attribute) and node.args[0].attr == "app":
            found.append((node.lineno, f"{node.func.id}(self.app, ...)"))
    return found


def test_screens_and_widgets_use_only_textuals_app_api():
    offenders = []
    for path in sorted((UI / "screens").glob("*.py")) + sorted((UI / "widgets").glob("*.py")) \
            + sorted((UI / "dialogs").glob("*.py")):
        for line, what in _app_uses(ast.parse(path.read_text(encoding="utf-8"))):
            offenders.append(f"{path.relative_to(UI.parent)}:{line}: {what}")
    assert offenders == [], "post a request message (ui/messages.py) instead:\n" + "\n".join(offenders)


def test_the_app_mixes_nothing_in():
    assert MaiderApp.__bases__ == (App,)


def test_the_scan_sees_a_call_by_convention():
    tree = ast.parse("class S:\n    def f(self):\n        self.app.start_launch(1)\n        self.app.notify('x')\n"
                     "        getattr(self.app, 'live', None)\n")
    assert sorted(what for _, what in _app_uses(tree)) == ["getattr(self.app, ...)", "self.app.start_launch"]
