"""The app and its tests use Textual's public API only: no `textual._*` import, no private attribute
of a Textual object.

An AST scan of every `.py` file under `maider_tui/` and `tests/` flags:

- an import of a private Textual module (one whose name starts with `_`, imported as a module, from
  a module, or by name from `textual`);
- `self._name` or `cls._name` inside a class that is a Textual class (a `DOMNode`, `App`, `Timer`,
  `Message` ... subclass, found by importing the module and walking the class's MRO), when one of
  the Textual classes of that MRO uses `_name` (its members, or `self._name` in its source): reading
  it is private use, and writing it clobbers Textual's state;
- `x._name` where `_name` is a private name anywhere in Textual's source, and either a private
  name of the Textual classes the code holds most (`App`, `Screen`, `Widget`, `Pilot`, `DataTable`,
  `RichLog`, `Static`; a Timer's `_active`, the compositor's `_dirty_regions`) or one no class of
  this project defines itself (a method, a class attribute, `self._name = ...`), and `x` is named as
  Textual objects are in this project (`app`, `screen`, `pilot`, `table`, `widget`, `timer`,
  `self.app`, `home._ticker`, ... see `TEXTUAL_NAMES`).

Limits: a Textual object under another name (`obj._nodes`, `things[0]._x`) is not seen, nor a
private name reached at run time (`getattr(w, "_x")`). A name this project defines that Textual also
uses privately, outside those core classes (a Timer's `_tick` beside the screens' own `_tick`), is
not flagged on the holders; inside a Textual subclass the `self` rule still flags it where its MRO
uses it. A core class's private name that a project object held under one of those names defines
for itself is flagged though it is the project's own: rename it.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from functools import cache
from pathlib import Path

import textual

ROOT = Path(__file__).resolve().parents[2]
TEXTUAL_DIR = Path(textual.__file__).resolve().parent
# Variable and attribute names that hold Textual objects in this code base (a trailing digit or a
# leading underscore is ignored: `app2`, `self._ticker`).
TEXTUAL_NAMES = {
    "app", "screen", "pilot", "widget", "table", "panel", "panels", "compositor", "timer", "ticker",
    "driver", "node", "home", "dashboard", "wizard", "footer", "header", "toast", "static", "label",
    "log", "bars", "rack", "container", "body", "message_pump", "worker", "palette", "button",
    "dialog", "modal", "top_bar", "steps", "sessions",
}
_SELF_ATTR = re.compile(r"\bself\.(_[A-Za-z0-9]\w*)")


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@cache
def textual_private_names() -> frozenset[str]:
    """Every `_name` Textual's own source defines or reads as an attribute."""
    names: set[str] = set()
    for path in TEXTUAL_DIR.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                names.add(node.attr)
            elif isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and _private(item.name):
                        names.add(item.name)
    return frozenset(names)


@cache
def _names_of_textual_class(cls: type) -> frozenset[str]:
    names = {name for name in vars(cls) if _private(name)}
    try:
        names.update(_SELF_ATTR.findall(inspect.getsource(cls)))
    except (OSError, TypeError):
        pass
    return frozenset(names)


def textual_names_of(cls: type) -> frozenset[str]:
    """The private names the Textual classes in `cls`'s MRO use (empty: not a Textual class)."""
    names: set[str] = set()
    for base in cls.__mro__:
        if base.__module__.split(".")[0] == "textual":
            names |= _names_of_textual_class(base)
    return frozenset(names)


def project_defined_names(trees: list[ast.AST]) -> frozenset[str]:
    """The private names this project's own classes define: methods, class attributes, `self._x =`."""
    names: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        names.add(item.name)
                    elif isinstance(item, (ast.Assign, ast.AnnAssign)):
                        targets = item.targets if isinstance(item, ast.Assign) else [item.target]
                        names.update(t.id for t in targets if isinstance(t, ast.Name))
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names.update(t.attr for t in targets if isinstance(t, ast.Attribute)
                             and isinstance(t.value, ast.Name) and t.value.id == "self")
    return frozenset(name for name in names if _private(name))


def core_private_names() -> frozenset[str]:
    """The private names of the Textual classes the app and tests hold most: these stay flagged on
    the holders even where a project class defines the same name."""
    from textual.app import App
    from textual.pilot import Pilot
    from textual.screen import Screen
    from textual.widgets import DataTable, RichLog, Static

    classes = (App, Screen, Pilot, DataTable, RichLog, Static)
    # And a Timer's running flag and the compositor's state, whose classes' other names (a Timer's
    # `_tick`) are common method names here.
    return frozenset().union(*map(textual_names_of, classes), {"_active", "_dirty_regions"})


def _module_name(path: Path) -> str | None:
    relative = path.relative_to(ROOT).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts) if parts[0] in ("maider_tui", "tests") else None


def _holder_name(node: ast.expr) -> str | None:
    """The name the object is held under: `app` for `app`, `self.app`, `pilot.app`, `home._ticker`."""
    if isinstance(node, ast.Name):
        name = node.id
    elif isinstance(node, ast.Attribute):
        name = node.attr
    else:
        return None
    return name.lstrip("_").rstrip("0123456789").lower()


def _private_textual_imports(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names
                      if alias.name.startswith("textual.") and any(map(_private, alias.name.split(".")))]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] == "textual":
            if any(map(_private, node.module.split("."))):
                found.append((node.lineno, f"from {node.module} import ..."))
            found += [(node.lineno, f"from {node.module} import {alias.name}")
                      for alias in node.names if _private(alias.name)]
    return found


def _private_attributes(tree: ast.AST, module: object | None,
                        own_names: frozenset[str] = frozenset()) -> list[tuple[int, str]]:
    everywhere = textual_private_names() - own_names
    found = []

    def visit(node: ast.AST, own: frozenset[str], scope: object | None) -> None:
        if isinstance(node, ast.ClassDef):
            cls = getattr(scope, node.name, None) if scope is not None else None
            own = textual_names_of(cls) if isinstance(cls, type) else frozenset()
            scope = cls
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            scope = None  # classes defined in a function are not reachable by name
        if isinstance(node, ast.Attribute) and _private(node.attr):
            holder = node.value
            if isinstance(holder, ast.Name) and holder.id in ("self", "cls"):
                if node.attr in own:
                    found.append((node.lineno, f"{holder.id}.{node.attr}"))
            elif node.attr in everywhere and _holder_name(holder) in TEXTUAL_NAMES:
                found.append((node.lineno, f"{ast.unparse(holder)}.{node.attr}"))
        for child in ast.iter_child_nodes(node):
            visit(child, own, scope)

    visit(tree, frozenset(), module)
    return found


def scan(path: Path, tree: ast.AST, own_names: frozenset[str]) -> list[str]:
    module = None
    name = _module_name(path)
    if name is not None and any(isinstance(n, ast.ClassDef) for n in ast.walk(tree)):
        module = importlib.import_module(name)
    where = path.relative_to(ROOT)
    return [f"{where}:{line}: {what}"
            for line, what in _private_textual_imports(tree) + _private_attributes(tree, module, own_names)]


def test_no_private_textual_module_or_attribute_is_used():
    files = sorted(p for top in ("maider_tui", "tests") for p in (ROOT / top).rglob("*.py")
                   if "__snapshots__" not in p.parts)
    assert len(files) > 100
    trees = {path: ast.parse(path.read_text(encoding="utf-8"), filename=str(path)) for path in files}
    own_names = project_defined_names(list(trees.values())) - core_private_names()
    assert {"_notifications", "_compositor", "_styles_cache"}.isdisjoint(own_names)
    found = [hit for path, tree in trees.items() for hit in scan(path, tree, own_names)]
    assert found == [], "Textual's private API used (see this test's docstring):\n" + "\n".join(found)


PRIVATE = "textual." + "_"


def test_the_scan_sees_each_kind_of_private_use(tmp_path):
    """The rule itself: each form of private use is flagged, and the project's own privates are not."""
    from maider_tui.ui.widgets import sessions_table

    U = "_"

    source = (
        f"from {PRIVATE}compositor import Compositor\n"  # spelt in two, so no grep for the real thing
        f"import {PRIVATE}context\n"
        "from textual import _time\n"
        "from textual.widgets import DataTable\n"
        "class Table(DataTable):\n"
        "    def f(self):\n"
        "        self._data.clear()\n"          # DataTable's own private state
        "        self._mine = 1\n"              # the project's own: not flagged
        f"        return self.app.{U}notifications\n"  # `U` spells the underscore: no grep mistakes these
        "def g(app, pilot, screen, home, thing):\n"
        f"    app.{U}notifications; pilot.app.{U}driver; screen.{U}compositor; home.{U}ticker.{U}active\n"
        f"    thing.{U}notifications\n"        # not a name that holds Textual objects: not seen
    )
    tree = ast.parse(source)
    module = type("Module", (), {"Table": type("Table", (sessions_table.DataTable,), {})})
    hits = [what for _, what in _private_textual_imports(tree) + _private_attributes(tree, module)]
    assert hits == [f"from {PRIVATE}compositor import ...", f"{PRIVATE}context", "from textual import _time",
                    "self._data", f"self.app.{U}notifications", f"app.{U}notifications", f"pilot.app.{U}driver",
                    f"screen.{U}compositor", f"home.{U}ticker.{U}active"]
