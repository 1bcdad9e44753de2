"""Shared fixtures: every test runs in its own home, with an in-memory keyring and no real tokens."""

from __future__ import annotations

import os
from pathlib import Path

import keyring
import pytest

from maider_tui.clock import ManualClock
from maider_tui.paths import AppPaths

TOKEN_VARS = (
    "MAIDER_LINODE_TOKEN", "LINODE_TOKEN", "MAIDER_HF_TOKEN", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN",
    "MAIDER_CONFIG",
)
# 2026-11-22 12:41:00 local-independent: snapshots render the clock in local time, so pin TZ too.
FROZEN_NOW = 1_795_351_260.0


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("MAIDER_HOME", str(home))
    monkeypatch.setenv("TZ", "UTC")
    # Paths on screen are shown relative to ~, so pictures do not depend on the temporary dir's name.
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in TOKEN_VARS:
        monkeypatch.delenv(var, raising=False)
    for key in list(os.environ):
        if key.startswith("MAIDER_") and key != "MAIDER_HOME":
            monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    return home


@pytest.fixture(autouse=True)
def memory_keyring():
    from tests.keyrings import MemoryKeyring

    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def paths(isolated_home: Path) -> AppPaths:
    return AppPaths.under(isolated_home)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=FROZEN_NOW)


@pytest.fixture
def make_context(paths: AppPaths, clock: ManualClock):
    """Build an AppContext on the test's home and frozen clock."""
    from maider_tui.context import build_context

    def factory(*, demo: bool = False, environ: dict[str, str] | None = None, config_path=None):
        return build_context(paths, config_path=config_path, clock=clock, demo=demo, environ=environ or {})

    return factory


@pytest.fixture
def sim_cloud():
    """A fresh simulated cloud per test (it starts in milliseconds), so no test sees another's VMs."""
    from maider_tui.sim import SimCloud

    with SimCloud(speed=1000) as sim:
        yield sim


@pytest.fixture
def sim_context(make_context, sim_cloud):
    """An AppContext wired to the simulated cloud, as `--demo` builds it."""

    def factory(*, demo: bool = False):
        context = make_context(demo=demo)
        context.provider = sim_cloud.provider(store=context.store)
        context.hf_base_url = sim_cloud.hf_base_url
        return context

    return factory
