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
