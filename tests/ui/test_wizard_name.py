"""The review step's session name: a long name is seen whole as it is typed, not its last 23 characters."""

from __future__ import annotations

import html

import pytest
from textual.widgets import Input, Static

from maider_tui.app import MaiderApp

from .test_wizard import open_wizard, press

NAME_48 = "alice-qwen-coder-32b-awq-refactoring-the-payroll"  # 48: whole at 80 columns
NAME_64 = "alice-qwen-coder-32b-awq-refactoring-the-payroll-service-in-go-7"  # 64: the longest Linode takes


def on_screen(app: MaiderApp) -> str:
    """The screen's text as drawn (the SVG screenshot's text, spaces and entities undone)."""
    return html.unescape(app.export_screenshot()).replace("\xa0", " ")


@pytest.mark.parametrize(("size", "name"), [((80, 24), NAME_48), ((120, 40), NAME_64)])
async def test_a_long_name_is_seen_whole_while_typed(sim_context, size, name):
    assert len(NAME_64) == 64
    app = MaiderApp(sim_context())
    async with app.run_test(size=size) as pilot:
        wizard = await open_wizard(app, pilot)
        await press(app, pilot, "enter", "enter", "enter", "enter")
        field = wizard.query_one("#name", Input)
        field.value = ""
        field.focus()
        await pilot.press(*name)
        await pilot.pause()
        assert field.value == name
        assert name in on_screen(app)


async def test_a_name_longer_than_linode_takes_is_not_typed_past_64(sim_context):
    app = MaiderApp(sim_context())
    async with app.run_test(size=(120, 40)) as pilot:
        wizard = await open_wizard(app, pilot)
        await press(app, pilot, "enter", "enter", "enter", "enter")
        field = wizard.query_one("#name", Input)
        field.value = ""
        field.focus()
        await pilot.press(*(NAME_64 + "xyz"))
        await pilot.pause()
        assert field.value == NAME_64
        field.value = "bad name!"
        await press(app, pilot, "enter")
        error = wizard.query_one("#name-error", Static)
        assert "only letters" in str(error.render()) and error.region.height > 0
