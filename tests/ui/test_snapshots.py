"""Pictures of every screen, at 80x24 and 120x40, on a frozen clock and fixed data."""

from __future__ import annotations

import pytest

from maider_tui.app import MaiderApp

from .sessions import add_sample_sessions

SIZES = [(80, 24), (120, 40)]


async def _settle(pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_home_first_run(snap_compare, make_context, size):
    assert snap_compare(MaiderApp(make_context()), terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_home_with_sessions(snap_compare, sim_context, sim_cloud, clock, size):
    context = sim_context()
    add_sample_sessions(context.store, clock.now(), sim_cloud)
    assert snap_compare(MaiderApp(context), terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_home_demo(snap_compare, sim_context, size):
    assert snap_compare(MaiderApp(sim_context(demo=True)), terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_confirm_dialog_for_a_broken_database(snap_compare, make_context, paths, size):
    paths.data_dir.mkdir(parents=True, exist_ok=True)
    paths.database.write_bytes(b"this is not a database at all" * 10)
    assert snap_compare(MaiderApp(make_context()), terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_quit_dialog_with_live_sessions(snap_compare, sim_context, sim_cloud, clock, size):
    context = sim_context()
    add_sample_sessions(context.store, clock.now(), sim_cloud)

    async def press_q(pilot) -> None:
        await _settle(pilot)
        await pilot.press("q")
        await pilot.pause()

    assert snap_compare(MaiderApp(context), terminal_size=size, run_before=press_q)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_files_dialog(snap_compare, sim_context, sim_cloud, clock, size):
    """"help: where are my files" from the palette: the config, database and log paths."""
    context = sim_context()
    add_sample_sessions(context.store, clock.now(), sim_cloud)

    async def show_paths(pilot) -> None:
        await _settle(pilot)
        pilot.app.clear_notifications()  # the start-up toasts have their own pictures
        pilot.app.action_show_paths()
        await pilot.pause()

    assert snap_compare(MaiderApp(context), terminal_size=size, run_before=show_paths)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_keys_panel(snap_compare, sim_context, sim_cloud, clock, size):
    """"keys" from the palette: every key of the screen, those the footer leaves out too."""
    context = sim_context()
    add_sample_sessions(context.store, clock.now(), sim_cloud)

    async def show_keys(pilot) -> None:
        await _settle(pilot)
        pilot.app.clear_notifications()
        pilot.app.action_show_help_panel()
        await pilot.pause()

    assert snap_compare(MaiderApp(context), terminal_size=size, run_before=show_keys)
