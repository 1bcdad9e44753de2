"""`s` on the dashboard: the demo says why its simulated VM has no shell; a real VM's ssh failure is said in
the app with ssh's own error lines, not only on the terminal the app covers again when ssh ends."""

from __future__ import annotations

import contextlib
import os
import stat

import pytest

from maider_tui.app import MaiderApp
from maider_tui.clock import SystemClock

from .test_dashboard import launch, log_text, until
from .toasts import toasts

SSH_ERROR = "ssh: connect to host 192.0.2.7 port 22: Connection refused"


@pytest.fixture
def clock():
    return SystemClock()


@pytest.fixture
def fake_ssh(tmp_path, monkeypatch):
    """An `ssh` first on PATH that fails as ssh fails, and leaves a mark that it ran."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    mark = tmp_path / "ssh-ran"
    script = bin_dir / "ssh"
    script.write_text(f"#!/bin/sh\necho ran > {mark}\necho 'debug noise' >&2\necho '{SSH_ERROR}' >&2\nexit 255\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return mark


def app_for(sim_context, *, demo: bool) -> MaiderApp:
    context = sim_context(demo=demo)
    context.cloud_speed = 1000.0
    app = MaiderApp(context)
    # A headless test terminal cannot hand itself over; the program runs all the same.
    app.suspend = contextlib.nullcontext  # type: ignore[method-assign]
    return app


async def test_the_demo_says_why_there_is_no_shell(sim_context, sim_cloud, fake_ssh):
    app = app_for(sim_context, demo=True)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        name, screen = await launch(app, pilot)
        try:
            await until(lambda: screen.check_action("shell", ()) is True)
            await pilot.press("s")
            await until(lambda: any("simulated" in t for t in toasts(app)))
            said = next(t for t in toasts(app) if "simulated" in t)
            assert "not a login shell" in said and "nvidia-smi" in said
            assert "simulated" in log_text(screen)
            assert not fake_ssh.exists()  # nothing ran that could only fail
        finally:
            await app.live.destroy(name)


async def test_a_failing_ssh_says_its_own_error_in_the_app(sim_context, sim_cloud, fake_ssh):
    app = app_for(sim_context, demo=False)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        name, screen = await launch(app, pilot)
        try:
            await until(lambda: screen.check_action("shell", ()) is True)
            await pilot.press("s")
            await until(lambda: any(SSH_ERROR in t for t in toasts(app, "error")))
            assert fake_ssh.exists()
            said = next(t for t in toasts(app, "error") if SSH_ERROR in t)
            assert "exit status 255" in said
            assert f"ssh: {SSH_ERROR}" in log_text(screen)
        finally:
            await app.live.destroy(name)
