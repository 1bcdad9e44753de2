"""The UI reads no store: screens, widgets and dialogs get the session database's records through
ops (ops.views, ops.database) from their workers, so SQLite never runs on the UI loop.

An AST scan of every module under `maider_tui/ui/` flags an import of `maider_tui.store` (absolute,
relative, or `store` imported from the package) and any `.store` attribute (`context.store`,
`self.app.context.store`, a live session service's `live.store`). Limits: a store reached at run
time (`getattr(x, "store")`) or handed in under another name is not seen.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UI = ROOT / "maider_tui" / "ui"


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _absolute(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The module an `from ... import` names, relative ones resolved against `module` (in `path`)."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _store_module(name: str) -> bool:
    return name == "maider_tui.store" or name.startswith("maider_tui.store.")


def store_uses(source: str, path: Path) -> list[str]:
    """Every place `source` (the module at `path`) imports the store or touches a `.store` attribute."""
    module = _module_of(path)
    found = []
    for node in ast.walk(ast.parse(source)):
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found += [f"{where} imports {a.name}" for a in node.names if _store_module(a.name)]
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(module, path, node)
            if _store_module(target):
                found.append(f"{where} imports from {target}")
            found += [f"{where} imports {target}.store" for a in node.names
                      if target == "maider_tui" and a.name == "store"]
        elif isinstance(node, ast.Attribute) and node.attr == "store":
            found.append(f"{where} touches .store ({ast.unparse(node)})")
    return found


def test_no_ui_module_imports_the_store_or_touches_a_store_attribute():
    files = sorted(UI.rglob("*.py"))
    assert len(files) > 30  # the scan sees the screens, widgets and dialogs
    found = [use for path in files for use in store_uses(path.read_text(encoding="utf-8"), path)]
    assert found == []


def test_the_scan_sees_each_way_in():
    """Each shape the rule is about is flagged: an absolute, a relative and a package import, and the
    attribute however it is reached; the records' twin in ops is not."""
    screen = UI / "screens" / "sample.py"
    samples = {
        "from maider_tui.store import SessionRecord": 1,
        "import maider_tui.store.records": 1,
        "from ...store import Store": 1,
        "from ...store.records import SessionRecord": 1,
        "from ... import store": 1,
        "x = self.context.store": 1,
        "self.app.context.store.get_session('a')": 1,
        "records = live.store.list_sessions()": 1,
        "from ...ops.views import SessionRecord, Views": 0,
        "stored = self.context.store_error": 0,
    }
    for source, count in samples.items():
        assert len(store_uses(source, screen)) == count, source
    assert store_uses("from ..store import Store", UI / "session_flows.py") != []
    assert store_uses("from .store import Store", UI / "__init__.py") == []  # maider_tui.ui.store: not it
