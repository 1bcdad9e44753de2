"""Toasts about a session go when the session ends; the quit dialog's buttons are never under toasts."""

from __future__ import annotations

import pytest

from maider_tui.app import MaiderApp
from maider_tui.clock import SystemClock
from maider_tui.ui.dialogs.quit import QuitDialog
from textual.widgets import Button

from .test_dashboard import launch, until
from .test_home import _home_app, _watched
from .toasts import toasts


@pytest.fixture
def clock():
    return SystemClock()


async def test_a_destroyed_sessions_toasts_are_taken_down(sim_context, sim_cloud):
    context = sim_context()
    context.cloud_speed = 1000.0
    app = MaiderApp(context)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        name, screen = await launch(app, pilot)
        app.pop_screen()  # home: the toasts are the home screen's
        await pilot.pause()
        app.notify(f"ssh -F ssh_config maider-{name}\nThat entry holds the VM's key.", title=f"{name} kept",
                   timeout=60)
        app.notify("Saved /tmp/x.svg", title="Screenshot", timeout=60)
        app.notify(f"{name}-b is ready.", title="Session", timeout=60)  # another session whose name starts alike
        app.notify("Read and clicked away.", title="Note", timeout=60)
        await until(lambda: len(toasts(app)) >= 4)
        clicked = next(t for t in app.screen.query("Toast") if "clicked away" in str(t.render()))
        await settled(pilot, clicked)
        await pilot.click(clicked)
        await until(lambda: not any("clicked away" in t for t in toasts(app)))
        await app.live.destroy(name)
        await pilot.pause(0.2)
        shown = toasts(app)
        assert not any(f"{name} kept" in t or f"maider-{name}" in t for t in shown), shown
        assert any("Saved /tmp/x.svg" in t for t in shown), shown
        assert not any("clicked away" in t for t in shown), shown  # not raised again
        assert any(f"{name}-b is ready." in t for t in shown)


async def settled(pilot, widget) -> None:
    """Wait until `widget` has been laid out where it stays: a toast is queryable once mounted, a frame
    or more before the rack places it, and a click aimed before then lands on whatever was there."""
    last = None
    for _ in range(200):
        await pilot.pause(0.02)
        region = widget.region
        if region.area and region == last:
            return
        last = region
    raise AssertionError(f"{widget!r} never settled: {last}")


def visible(screen, widget) -> bool:
    """What a user sees at the middle of `widget` is `widget` (or a part of it), not something over it."""
    region = widget.region
    if region.width == 0 or region.height == 0:
        return False
    x, y = region.x + region.width // 2, region.y + region.height // 2
    under, _ = screen.get_widget_at(x, y)
    return under is widget or widget in under.ancestors_with_self


async def test_the_quit_dialogs_buttons_are_not_under_toasts(sim_context, sim_cloud, clock):
    context, app = await _home_app(sim_context, sim_cloud, clock)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await _watched(app, pilot, "qwen14b-20261122-101544", "qwen32b-20261122-093012")
        for i in range(5):
            app.notify(f"Something happened number {i}, said at some length so it takes two lines.",
                       title="Note", timeout=60)
        await until(lambda: len(toasts(app)) >= 5)
        await pilot.press("q")
        await pilot.pause(0.2)
        dialog = app.screen
        assert isinstance(dialog, QuitDialog)
        buttons = list(dialog.query(Button))
        assert len(buttons) >= 3
        for button in buttons:
            assert visible(dialog, button), f"{button.label} is covered"
