"""Every module of the app stays under 400 lines: past that, it holds more than one responsibility."""

from __future__ import annotations

from pathlib import Path

LIMIT = 400
PACKAGE = Path(__file__).resolve().parents[2] / "maider_tui"


def test_no_module_reaches_400_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) >= LIMIT}
    assert not long, f"split these by responsibility: {long}"
