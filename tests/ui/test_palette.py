"""The command palette: every key a screen's footer shows is a palette command that runs the same action,
and the global commands (new session, benchmarks, recommend) are found from anywhere."""

from __future__ import annotations

import re

import pytest
from textual.actions import parse
from textual.command import CommandPalette
from textual.screen import Screen

from maider_tui.app import MaiderApp
from maider_tui.clock import SystemClock
from maider_tui.ui.commands import MaiderCommands, PaletteCommand
from maider_tui.ui.screens.bench_run import BenchRunScreen
from maider_tui.ui.screens.benchmarks import BenchmarksScreen
from maider_tui.ui.screens.provisioning import ProvisioningScreen
from maider_tui.ui.screens.recommend import RecommendScreen
from maider_tui.ui.screens.validation import ValidationScreen
from maider_tui.ui.screens.wizard import WizardScreen

from .sessions import add_sample_sessions
from .test_benchmarks import add_runs
from .test_dashboard import launch, until
from .test_provisioning_screen import CODER_7B_AWQ, plan_for
from .test_validation_screen import canned

TITLE = re.compile(r"^[a-z]+: \S")


@pytest.fixture
def clock():
    # The dashboard's session runs on the sim in real time (sped up): the app needs a clock that moves.
    return SystemClock()


def palette(screen: Screen) -> list[PaletteCommand]:
    return list(MaiderCommands(screen).offered())


async def footer_keys_are_commands(app: MaiderApp, pilot) -> list[str]:
    """For each key the current screen's footer shows enabled, the palette's command for it runs the
    same action (the action method is swapped for a recorder). Returns the titles checked."""
    screen = app.screen
    commands = palette(screen)
    titles = [c.title for c in commands]
    assert len(titles) == len(set(titles)), titles
    for command in commands:
        assert TITLE.match(command.title) and command.help, command
    checked = []
    for key, active in screen.active_bindings.items():
        binding = active.binding
        if not binding.show or not active.enabled or binding.action == "app.command_palette":
            continue
        if active.node is not screen and active.node is not app:
            continue  # a focused widget's own keys (the table's cursor) are not the screen's actions
        destination, name, parameters = parse(binding.action)
        owner = app if destination == "app" or active.node is app else screen
        matching = [c for c in commands if c.action in (binding.action, f"app.{name}")]
        assert matching, f"{type(screen).__name__}: key {key} ({binding.action}) has no palette command"
        ran: list[tuple[object, ...]] = []
        original = getattr(owner, f"action_{name}")
        setattr(owner, f"action_{name}", lambda *args, _ran=ran: _ran.append(args))
        try:
            result = matching[0].callback()
            if hasattr(result, "__await__"):
                await result
            await pilot.pause()
        finally:
            setattr(owner, f"action_{name}", original)
        assert ran == [parameters], f"{matching[0].title} did not run {binding.action}"
        checked.append(matching[0].title)
    return checked


async def test_every_footer_key_of_every_screen_is_a_palette_command(sim_context, clock):
    context = sim_context()
    add_sample_sessions(context.store, clock.now())
    add_runs(context.store, clock.now())
    app = MaiderApp(context)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        checked = await footer_keys_are_commands(app, pilot)
        assert {"session: new", "session: destroy", "bench: compare runs", "sessions: clean up"} <= set(checked)
        screens: list[Screen] = [
            WizardScreen(context),
            BenchmarksScreen(context),
            RecommendScreen(context),
            ProvisioningScreen(context, None, plan_for(CODER_7B_AWQ, "g2-gpu-rtx4000a1-s", "qwen7b-test"),
                               autostart=False),
            ValidationScreen(context, None, "qwen-20261122-093012", report=canned(clock)),
        ]
        for screen in screens:
            await app.push_screen(screen)
            await pilot.pause()
            assert app.screen is screen
            checked = await footer_keys_are_commands(app, pilot)
            assert checked, type(screen).__name__
            app.pop_screen()
            await pilot.pause()
        assert "bench: export table" in [c.title for c in palette(screens[1])]


async def test_the_dashboard_and_the_benchmark_run_keys_are_palette_commands(sim_context, sim_cloud):
    context = sim_context()
    context.cloud_speed = 1000.0
    app = MaiderApp(context)
    async with app.run_test(size=(120, 40)) as pilot:
        name, screen = await launch(app, pilot)
        try:
            await until(lambda: screen.check_action("extend", ()) is True)
            checked = await footer_keys_are_commands(app, pilot)
            for title in ("session: extend", "session: switch model", "session: destroy", "session: validate GPUs",
                          "session: run the benchmark", "session: open an SSH shell", "session: heal vLLM"):
                assert title in checked
            app.run_benchmark_on(name)
            await pilot.pause()
            assert isinstance(app.screen, BenchRunScreen)
            assert "bench: start the run" in await footer_keys_are_commands(app, pilot)
        finally:
            await app.live.destroy(name)


async def test_typing_bench_finds_the_benchmarks_and_enter_opens_them(sim_context):
    app = MaiderApp(sim_context())
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"bench")
        await pilot.pause(0.3)
        assert isinstance(app.screen, CommandPalette)
        shown = [str(option.prompt) for option in app.screen.query_one("CommandList").options]
        assert any("bench: compare runs" in text for text in shown), shown
        assert any("bench: recommend a GPU and model" in text for text in shown), shown
        await pilot.press(*" compare")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, BenchmarksScreen)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"session: new")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, WizardScreen)

