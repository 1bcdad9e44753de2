"""`pip install .` gives a working `maider-tui` with its styles inside the wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(out)],
        check=True, capture_output=True, timeout=300,
    )
    (built,) = out.glob("maider_tui-*.whl")
    return built


def test_wheel_ships_the_styles_and_the_command(wheel: Path):
    names = zipfile.ZipFile(wheel).namelist()
    styles = sorted(n for n in names if n.endswith(".tcss"))
    source_styles = sorted(p.name for p in (ROOT / "styles").glob("*.tcss"))
    assert [Path(n).name for n in styles] == source_styles
    assert all(n.startswith("maider_tui/styles/") for n in styles)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "maider-tui = maider_tui.cli:main" in text


def test_installed_app_finds_its_styles(wheel: Path, tmp_path: Path):
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(site), str(wheel)],
        check=True, capture_output=True, timeout=300,
    )
    probe = (
        "import maider_tui, maider_tui.app as a\n"
        "print(maider_tui.__file__)\n"
        "print(all(p.is_file() for p in a.MaiderApp.CSS_PATH))\n"
        "print(a.MaiderApp.CSS_PATH[0])\n"
    )
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    module_file, all_found, first_css = out.stdout.split()
    assert module_file.startswith(str(site))
    assert all_found == "True"
    assert first_css.startswith(str(site))
    version = subprocess.run([sys.executable, "-m", "maider_tui", "--version"], capture_output=True, text=True,
                             cwd=tmp_path, env=env, timeout=120)
    assert version.stdout.strip().startswith("maider-tui ")
