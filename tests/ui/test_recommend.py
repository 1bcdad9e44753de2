"""The recommend form: choices change the top 3, estimates are marked, `l` opens the wizard."""

from __future__ import annotations

import asyncio
import time

import pytest

from maider_tui.ui.screens.recommend import RecommendScreen
from maider_tui.ui.screens.wizard import WizardScreen

from .test_benchmarks import BenchApp, add_runs, run


@pytest.fixture
def context(sim_context, clock):
    context = sim_context()
    add_runs(context.store, clock.now())
    # Exactly $3.00/h: the "1-3" band includes both its ends.
    context.store.add_bench_run(run("d1", "g1-gpu-rtx6000-2", 2, 48.0, 3.00, "Qwen/Qwen2.5-Coder-14B-Instruct-AWQ",
                                    "14b", 60.0, 0.3, clock.now() - 86_400.0), [])
    return context


async def open_form(app, pilot) -> RecommendScreen:
    app.open_recommend()
    await pilot.pause()
    assert isinstance(app.screen, RecommendScreen)
    return app.screen


def top(screen: RecommendScreen) -> list[tuple[str, str]]:
    return [(r.gpu_type, r.model_id.split("/")[-1]) for r in screen.results]


async def test_choices_change_the_top_three(context):
    app = BenchApp(context)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_form(app, pilot)
        assert len(screen.results) == 3
        assert screen.results[0].gpu_type == "g2-gpu-rtx4000a2-s" and screen.results[0].confidence == "High"
        screen.choose(budget="1-3")
        await pilot.pause()
        assert screen.form["budget"] == "1-3"
        assert ("g1-gpu-rtx6000-2", "Qwen2.5-Coder-14B-Instruct-AWQ") in top(screen)  # $3.00: the edge is in
        assert all(1.0 <= r.hourly_usd <= 3.0 for r in screen.results)
        screen.choose(budget="over-3")
        await pilot.pause()
        assert all(r.hourly_usd > 3.0 for r in screen.results)
        assert ("g1-gpu-rtx6000-2", "Qwen2.5-Coder-14B-Instruct-AWQ") not in top(screen)
        screen.choose(budget="under-1")
        await pilot.pause()
        assert screen.results[0].confidence == "Low" and screen.results[0].warnings
        estimated = [r for r in screen.results if r.estimated]
        assert estimated
        shown = str(screen.query_one("#rec-results").get_option("2").prompt)
        assert "estimated" in shown and "⚠" in shown
        before = top(screen)
        screen.choose(size="largest")
        await pilot.pause()
        assert top(screen) != before
        screen.choose(task="context-heavy")
        await pilot.pause()
        assert screen.form["task"] == "context-heavy"


async def until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def test_enter_opens_the_wizard_prefilled(context):
    app = BenchApp(context)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_form(app, pilot)
        chosen = screen.results[0]
        await pilot.press("l")
        await pilot.pause()
        wizard = app.screen
        assert isinstance(wizard, WizardScreen)
        # Without a preset parameter, the wizard's remembered rows carry the choice: enter walks it through.
        await until(lambda: wizard.types_data is not None)
        for _ in range(4):
            await pilot.press("enter")
            await pilot.pause()
        assert wizard.gpu is not None and wizard.gpu.id == chosen.gpu_type
        assert wizard.report is not None and wizard.report.model.id == chosen.model_id


async def test_enter_on_a_radio_set_chooses_and_stays(context):
    """R, tab, down, enter: the budget's second option is chosen; the wizard does not open."""
    app = BenchApp(context)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("R")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RecommendScreen)
        await pilot.press("tab", "down", "enter")
        await pilot.pause()
        assert app.screen is screen
        assert screen.form["budget"] == "under-1"
        footer_keys = {b.binding.key: b.binding.description for b in screen.active_bindings.values()
                       if b.binding.show}
        assert footer_keys.get("l") == "Launch this" and "enter" not in footer_keys


async def test_the_launch_this_button_opens_the_wizard(context):
    app = BenchApp(context)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_form(app, pilot)
        button = screen.query_one("#rec-launch")
        assert str(button.label) == "Launch this" and button.region.width > 0
        await pilot.click("#rec-launch")
        await pilot.pause()
        assert isinstance(app.screen, WizardScreen)
        app.pop_screen()
        await pilot.pause()
        # enter on the results list still launches the highlighted one.
        screen.query_one("#rec-results").focus()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, WizardScreen)
