"""Domain code never imports Textual: each module imported alone in a fresh interpreter."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import maider_tui

DOMAIN_PACKAGES = ("ops", "cloud", "remote", "deploy", "bench", "catalog", "store")
PLUMBING = ("maider_tui.models", "maider_tui.settings", "maider_tui.secrets", "maider_tui.clock",
            "maider_tui.paths", "maider_tui.log", "maider_tui.context")


def domain_modules() -> list[str]:
    root = Path(maider_tui.__file__).parent
    names = list(PLUMBING)
    for package in DOMAIN_PACKAGES:
        path = root / package
        if not (path / "__init__.py").exists():
            continue
        names.append(f"maider_tui.{package}")
        for info in pkgutil.walk_packages([str(path)], prefix=f"maider_tui.{package}."):
            names.append(info.name)
    return names


def test_domain_modules_do_not_import_textual():
    modules = domain_modules()
    assert "maider_tui.settings" in modules
    script = (
        "import importlib, sys\n"
        "bad = []\n"
        f"for name in {modules!r}:\n"
        "    for m in [k for k in sys.modules if k.startswith(('textual', 'maider_tui'))]:\n"
        "        del sys.modules[m]\n"
        "    importlib.import_module(name)\n"
        "    if 'textual' in sys.modules:\n"
        "        bad.append(name)\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"these import textual: {out.stdout.strip()}"


# The pure domain packages sit under ops/ and the commands: they know nothing of either, nor of the
# command line (the commands' argparse wiring lives in maider_tui/commands/).
LOWER_PACKAGES = ("bench", "deploy", "catalog")
ABOVE = ("argparse", "maider_tui.ops", "maider_tui.ui", "maider_tui.commands", "maider_tui.cli",
         "maider_tui.app", "maider_tui.context", "maider_tui.__main__", "textual")


def imported_names(path: Path, package: str) -> list[tuple[int, str]]:
    """(line, module) for every import in the file, at any depth (lazy ones too); relative imports
    resolved against `package`."""
    import ast

    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            # `from maider_tui import ops` imports maider_tui.ops: each name may be a module
            found += [(node.lineno, name) for name in [module, *(f"{module}.{a.name}" for a in node.names)]]
    return found


def test_bench_deploy_and_catalog_import_nothing_above_them():
    root = Path(maider_tui.__file__).parent
    bad = []
    files = [f for package in LOWER_PACKAGES for f in sorted((root / package).rglob("*.py"))]
    assert len(files) > 20
    for path in files:
        package = ".".join(("maider_tui", *path.parent.relative_to(root).parts))
        for line, name in imported_names(path, package):
            if any(name == above or name.startswith(above + ".") for above in ABOVE):
                bad.append(f"{path.relative_to(root)}:{line} imports {name}")
    assert bad == []


def test_the_commands_import_no_screen():
    """A command runs the app's ops without the full screen: nothing of ui/ or Textual."""
    root = Path(maider_tui.__file__).parent
    files = sorted((root / "commands").rglob("*.py"))
    assert len(files) > 5
    bad = [f"{path.name}:{line} imports {name}" for path in files
           for line, name in imported_names(path, "maider_tui.commands")
           if name.startswith(("maider_tui.ui", "maider_tui.app", "textual"))]
    assert bad == []


def test_the_import_scan_sees_lazy_and_relative_imports(tmp_path):
    source = tmp_path / "mod.py"
    source.write_text("def f():\n    import argparse\n    from ..ops import live\n    from .. import cli\n"
                      "from maider_tui import ui\nfrom .metrics import HIGH\n")
    names = [name for _, name in imported_names(source, "maider_tui.bench")]
    for name in ("argparse", "maider_tui.ops", "maider_tui.cli", "maider_tui.ui", "maider_tui.bench.metrics"):
        assert name in names
