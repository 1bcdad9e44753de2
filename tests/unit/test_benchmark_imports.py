"""The benchmarks run from a checkout without the test suite or pytest: they import nothing from `tests/`."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = sorted((ROOT / "benchmarks").glob("*.py"))


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_no_benchmark_imports_from_tests_or_pytest():
    assert BENCHMARKS
    found = {path.name: sorted(name for name in imported_modules(path)
                               if name.split(".")[0] in ("tests", "pytest", "conftest"))
             for path in BENCHMARKS}
    assert {name: modules for name, modules in found.items() if modules} == {}


def test_the_canned_dashboard_imports_without_the_test_suite(tmp_path):
    """Loaded with `tests` and `pytest` unimportable, as on a machine that installed only the app."""
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text(
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('tests', 'pytest', '_pytest'):\n"
        "            raise ImportError(f'{name} is not installed here')\n"
        "sys.meta_path.insert(0, Block())\n")
    code = ("import runpy, sys; sys.argv = ['x']; "
            f"runpy.run_path({str(ROOT / 'benchmarks' / '_canned_dashboard.py')!r}, run_name='canned')")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
