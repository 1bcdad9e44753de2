"""What a user sees on stderr: no library's deprecation warnings (asyncssh naming DSA keys with a newer
cryptography printed ten lines on `sim --help`, `down`, `watch`, `bench run` and after quitting the demo)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from maider_tui import catalog
from maider_tui.cloud import CreateSpec
from maider_tui.paths import AppPaths
from maider_tui.remote.ssh import generate_keypair
from maider_tui.sim import SimCloud
from tests.integration.test_command_line import store_with
from tests.proc import REPO_ROOT, app_env

pytestmark = pytest.mark.slow


def run_plain(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """The command as a user runs it: Python's default warning filters (no PYTHONWARNINGS)."""
    env = {k: v for k, v in env.items() if k != "PYTHONWARNINGS"}
    return subprocess.run([sys.executable, "-m", "maider_tui", *args], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)


def test_sim_help_prints_no_warning(tmp_path: Path):
    done = run_plain(["sim", "--help"], app_env(tmp_path / "home"))
    assert done.returncode == 0, done.stderr
    assert "--speed" in done.stdout or "speed" in done.stdout
    assert "Warning" not in done.stderr and "DSA" not in done.stderr, done.stderr


def test_down_prints_no_warning(tmp_path: Path):
    home = tmp_path / "home"
    gpu = catalog.gpu_type("g2-gpu-rtx4000a1-s")
    key = generate_keypair("client")
    with SimCloud(speed=1000) as cloud:
        async def create():
            spec = CreateSpec(label="demo-vm", region=gpu.regions[0], type=gpu.id,
                              image="linode/ubuntu24.04", authorized_keys=[key.public_line])
            return await cloud.provider().create(spec)

        vm = asyncio.run(create())
        store_with(AppPaths.under(AppPaths.under(home).data_dir / "demo"), "demo-vm",
                   instance_id=vm.id, gpu_type=gpu.id)
        done = run_plain(["down", "demo-vm", "--sim-url", cloud.linode_base_url],
                         app_env(home, MAIDER_SIM_TOKEN=cloud.token))
    assert done.returncode == 0, done.stderr
    assert "Destroyed demo-vm" in done.stdout
    assert "Warning" not in done.stderr and "DSA" not in done.stderr, done.stderr
