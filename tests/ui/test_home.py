"""The home screen: first-run message, sessions, quitting, the palette."""

from __future__ import annotations

from maider_tui.app import MaiderApp
from maider_tui.ui.screens.home import HomeScreen
from textual.widgets import DataTable, Static

from .sessions import add_sample_sessions


async def test_first_run_says_how_to_add_a_token(make_context):
    app = MaiderApp(make_context())
    async with app.run_test() as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen)
        text = str(app.screen.query_one("#first-run", Static).render())
        assert "maider-tui token set linode" in text
        assert "--demo" in text
        assert not app.screen.query_one(DataTable).display


async def test_with_an_account_the_welcome_says_what_it_can_rent(sim_context):
    app = MaiderApp(sim_context())
    async with app.run_test() as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        text = str(app.screen.query_one("#first-run", Static).render())
        assert text.startswith("No sessions yet.")
        assert "Account sim-user: 7 GPU plans in 12 GPU regions (from the API)." in text


async def test_a_refused_token_is_said_on_screen(make_context, memory_keyring, sim_cloud):
    from maider_tui.cloud.linode import LinodeProvider

    context = make_context()
    context.provider = LinodeProvider("not-the-token", base_url=sim_cloud.linode_base_url, store=context.store)
    app = MaiderApp(context)
    async with app.run_test() as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        text = str(app.screen.query_one("#first-run", Static).render())
        assert "token was refused" in text
        assert any("token was refused" in n.message for n in app._notifications)


async def test_sessions_are_listed_with_cost_and_live_total(make_context, clock):
    context = make_context()
    add_sample_sessions(context.store, clock.now())
    app = MaiderApp(context)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        assert table.row_count == 3
        assert table.get_row("qwen32b-20261122-093012")[1] == "ready"
        # 3 hours at $1.04/h
        assert table.get_row("qwen32b-20261122-093012")[6] == "3.12"
        assert "2 live · $4.04/h" in app.screen.query_one("TopBar").status


async def test_q_quits(make_context):
    app = MaiderApp(make_context())
    async with app.run_test() as pilot:
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_palette_offers_namespaced_commands(make_context):
    app = MaiderApp(make_context())
    async with app.run_test() as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"where are")
        await pilot.pause(0.3)
        from textual.command import CommandPalette

        palette = app.screen
        assert isinstance(palette, CommandPalette)
        text = " ".join(str(opt.prompt) for opt in palette.query_one("CommandList").options)
        assert "help: where are my files" in text


async def test_broken_settings_file_is_reported_on_screen(make_context, paths):
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text("[vllm]\nport = 'abc'\n")
    app = MaiderApp(make_context())
    async with app.run_test() as pilot:
        await pilot.pause()
        messages = [n.message for n in app._notifications]
        assert any("port" in m and "config.toml" in m for m in messages), messages
        assert app.context.settings.settings.vllm.port == 8000
