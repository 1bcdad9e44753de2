"""Layout that a picture alone would not prove: the header's clock keeps time, its title never runs
into the clock, the sessions table shows the money columns first at 80 columns."""

from __future__ import annotations

import asyncio

import pytest
from textual.geometry import Region
from textual.widgets import DataTable, Static

from maider_tui.app import MaiderApp
from maider_tui.ui.widgets.top_bar import TopBar

from .sessions import add_sample_sessions
from .test_dashboard_snapshots import build, feed


def line_of(widget: Static) -> str:
    """The first line the widget draws, as plain text."""
    return widget.render_lines(Region(0, 0, widget.size.width, 1))[0].text


async def clock_shows(bar: TopBar, text: str, within_s: float = 2.0) -> bool:
    deadline = asyncio.get_running_loop().time() + within_s
    while asyncio.get_running_loop().time() < deadline:
        if line_of(bar.query_one("#top-right", Static)).rstrip().endswith(text):
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.mark.parametrize("opening", ["open_benchmarks", "open_recommend", "new_session"])
async def test_the_header_clock_turns_on_screens_that_never_redraw(sim_context, clock, opening):
    app = MaiderApp(sim_context())
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        if opening == "new_session":
            await app.run_action("new_session")  # the wizard
        else:
            getattr(app, opening)()
        await pilot.pause()
        await app.workers.wait_for_complete()
        screens = {"open_benchmarks": "BenchmarksScreen", "open_recommend": "RecommendScreen",
                   "new_session": "WizardScreen"}
        assert type(app.screen).__name__ == screens[opening]
        bar = app.screen.query_one(TopBar)
        assert await clock_shows(bar, "12:41")  # the frozen clock's minute
        clock.advance(17 * 60)
        assert await clock_shows(bar, "12:58"), line_of(bar.query_one("#top-right", Static))


async def test_a_long_title_ends_in_an_ellipsis_before_the_clock(make_context, clock):
    context = make_context()
    screen = build(context, clock, 2)  # name · ready · 32B model · 2x RTX 4000 Ada · region: 90 columns
    app = MaiderApp(context)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        app.push_screen(screen)
        await pilot.pause()
        feed(screen, 2)
        await pilot.pause()
        bar = screen.query_one(TopBar)
        left, right = bar.query_one("#top-left", Static), bar.query_one("#top-right", Static)
        assert right.region.x - left.region.right >= 2  # a gap, whatever the title
        assert line_of(left).rstrip().endswith("…")
        assert line_of(right).strip() == "12:41"


async def test_sessions_show_their_money_columns_at_80_columns(sim_context, sim_cloud, clock):
    context = sim_context()
    add_sample_sessions(context.store, clock.now(), sim_cloud)
    app = MaiderApp(context)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        shown = table.scrollable_content_region.width
        x = 0
        visible = []
        for column in table.ordered_columns:
            x += column.get_render_width(table)
            if x <= shown:
                visible.append(str(column.label))
        for label in ("NAME", "STATE", "$/H", "SO FAR", "IDLE LEFT"):
            assert label in visible, visible
        assert str(table.get_cell("qwen32b-20261122-093012", "so_far")) == "3.12"


async def footer_keys_fit(screen) -> list[str]:
    """The footer keys drawn under the palette key or past the screen's edge (none, when all fit)."""
    from textual.widgets import Footer

    footer = screen.query_one(Footer)
    keys = list(footer.query("FooterKey"))
    palette = [key for key in keys if key.has_class("-command-palette")]
    edge = palette[0].region.x if palette else footer.region.right
    return [str(key.region) for key in keys
            if not key.has_class("-command-palette") and key.region.right > edge]


async def test_every_footer_key_fits_at_80_columns(sim_context, sim_cloud, clock):
    context = sim_context()
    add_sample_sessions(context.store, clock.now(), sim_cloud)
    screen = build(context, clock, 2)
    app = MaiderApp(context)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert await footer_keys_fit(app.screen) == []  # the sessions screen
        app.push_screen(screen)
        await pilot.pause()
        feed(screen, 2)
        await pilot.pause()
        assert await footer_keys_fit(screen) == []  # the dashboard


def breaks_between_parts(command: str, shown: list[str]) -> bool:
    """True when the lines `shown` are `command` broken only at spaces or after a `/`."""
    at = 0
    for line in shown:
        assert command.startswith(line, at), (line, command[at:])
        at += len(line)
        if at < len(command) and command[at] == " ":
            at += 1
        elif at < len(command) and command[at - 1] != "/":
            return False
    return at == len(command)


@pytest.mark.parametrize("width", [80, 120, 160, 200])
async def test_the_endpoint_panel_breaks_paths_after_a_separator(tmp_path, clock, width):
    from maider_tui.context import build_context
    from maider_tui.paths import AppPaths
    from maider_tui.ui.widgets.endpoint_panel import EndpointPanel

    # Where the data lives on a usual Linux install: paths longer than the panel is wide.
    context = build_context(AppPaths.under(tmp_path / ".local" / "share" / "maider-tui"), clock=clock,
                            environ={})
    screen = build(context, clock, 2)
    app = MaiderApp(context)
    async with app.run_test(size=(width, 40)) as pilot:
        await app.workers.wait_for_complete()
        app.push_screen(screen)
        await pilot.pause()
        feed(screen, 2)
        await pilot.pause()
        await pilot.pause()
        panel = screen.query_one(EndpointPanel)
        command = screen.tools.shown_command
        assert command and "/" in command
        drawn = [panel.render_line(y).text.rstrip() for y in range(panel.content_size.height)]
        first = next(i for i, line in enumerate(drawn) if line and command.startswith(line))
        shown = [line for line in drawn[first:] if line]
        assert all(len(line) <= panel.content_size.width for line in shown)
        assert breaks_between_parts(command, shown), shown


LONG_ID = "a-research-lab-with-a-long-name/Qwen2.5-Coder-7B-Instruct-ft-v2"  # 60+ characters


async def open_long_custom_model(app, pilot, monkeypatch):
    """The wizard at its model step with a custom model whose name is longer than the name column."""
    from textual.widgets import Input

    from maider_tui.cloud import hf
    from maider_tui.ui.screens.wizard import WizardScreen

    from .test_wizard import QWEN_7B_CONFIG, open_wizard, press

    async def fetch(model_id, **_):
        return QWEN_7B_CONFIG

    monkeypatch.setattr(hf, "fetch_config", fetch)
    wizard: WizardScreen = await open_wizard(app, pilot)
    await press(app, pilot, "down", "down", "enter")
    wizard.query_one("#hf-id", Input).value = LONG_ID
    await press(app, pilot, "enter", "enter", "enter")
    return wizard


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_a_long_model_name_keeps_the_model_steps_columns_in_line(sim_context, monkeypatch, size):
    from textual.widgets import OptionList

    from maider_tui.ui.screens.wizard_steps import MODEL

    app = MaiderApp(sim_context())
    async with app.run_test(size=size) as pilot:
        wizard = await open_long_custom_model(app, pilot, monkeypatch)
        assert wizard.step == MODEL
        header = str(wizard.query_one("#columns", Static).render())
        row = wizard.query_one(OptionList).get_option_at_index(0).prompt
        plain = row.plain if hasattr(row, "plain") else str(row)
        assert plain.index("7.6B") == header.index("SIZE"), (header, plain)
        assert plain.index("TP ") == header.index("LAYOUT")
        assert "…" in plain[:header.index("SIZE")]  # the name is cut, not the columns pushed
        assert LONG_ID in str(wizard.query_one("#detail", Static).render())  # the full id, under the list


async def test_a_log_line_that_wrapped_before_the_scrollbar_showed_loses_no_character(make_context):
    """The launch log at 80x24: lines wrapped while the log did not scroll yet keep every character
    once it does (the scrollbar's column is kept from the start)."""
    from textual.widgets import RichLog

    from .test_wizard_snapshots import HEALED, provisioning_with

    app = MaiderApp(make_context())
    async with app.run_test(size=(80, 24)) as pilot:
        await provisioning_with(HEALED, 12)(pilot)
        await pilot.pause()
        log = app.screen.query_one("#log", RichLog)
        assert log.max_scroll_y > 0  # the log scrolls: its scrollbar shows
        shown = " ".join(log.render_line(y).text.strip() for y in range(log.scrollable_content_region.height))
        assert "is larger than the maximum number of tokens" in " ".join(shown.split()), shown
