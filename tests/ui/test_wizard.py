"""The launch wizard on the simulated cloud: defaults, going back, filtering, dimmed rows, custom
models and the token dialog."""

from __future__ import annotations

import asyncio

import pytest
from textual.widgets import Input, OptionList, Static

from maider_tui.app import MaiderApp
from maider_tui.clock import SystemClock
from maider_tui.cloud import hf
from maider_tui.ui.screens.provisioning import ProvisioningScreen
from maider_tui.ui.screens.wizard import WizardScreen
from maider_tui.ui.screens.wizard_steps import CAPABILITY, GPU_TYPE, MODEL, REGION, REVIEW

from .toasts import toasts

QWEN_7B_CONFIG = {  # Qwen2.5-Coder-7B-Instruct's config.json, the keys the planner reads
    "architectures": ["Qwen2ForCausalLM"], "hidden_size": 3584, "intermediate_size": 18944,
    "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4,
    "max_position_embeddings": 32768, "vocab_size": 152064, "tie_word_embeddings": False,
}


async def open_wizard(app: MaiderApp, pilot, **kwargs) -> WizardScreen:
    await app.workers.wait_for_complete()
    wizard = WizardScreen(app.context, **kwargs)
    await app.push_screen(wizard)
    await settle(app, pilot)
    return wizard


async def settle(app: MaiderApp, pilot) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()


def highlighted_id(wizard: WizardScreen) -> str | None:
    row = wizard.highlighted()
    return row.id if row else None


def detail(wizard: WizardScreen) -> str:
    return str(wizard.query_one("#detail", Static).render())


async def press(app, pilot, *keys: str) -> None:
    for key in keys:
        await pilot.press(key)
        await settle(app, pilot)


async def test_enter_five_times_launches_the_default_plan_to_ready(sim_context, sim_cloud):
    context = sim_context()
    # The launch really runs on the sim: a real clock, and waits shrunk to the sim's speed.
    context.clock = SystemClock()
    context.cloud_speed = sim_cloud.speed
    app = MaiderApp(context)
    async with app.run_test(size=(120, 40)) as pilot:
        wizard = await open_wizard(app, pilot)
        expected = ["30B-32B", "us-ord", "g2-gpu-rtx4000a2-s", "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ"]
        for step, wanted in enumerate(expected):
            assert wizard.step == step and highlighted_id(wizard) == wanted
            await press(app, pilot, "enter")
        assert wizard.step == REVIEW
        name = wizard.query_one("#name", Input).value
        assert name.startswith("qwen32b-")
        launched = []
        app.start_launch = lambda plan, start=app.start_launch: (launched.append(plan), start(plan))
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, WizardScreen)
        # The sim is fast: the dashboard may already have replaced the provisioning screen.
        assert type(app.screen).__name__ in (ProvisioningScreen.__name__, "DashboardScreen")
        (plan,) = launched
        assert plan.name == name and plan.region == "us-ord" and plan.config.tensor_parallel_size == 2
        for _ in range(300):  # bounded: ~15 s at most, a launch at speed 1000 takes one or two
            record = context.store.get_session(name)
            if record is not None and record.state in ("ready", "failed"):
                break
            await asyncio.sleep(0.05)
        await pilot.pause()
        assert context.store.get_session(name).state == "ready"
        await app.live.destroy(name)


async def wait_for_end(context, name: str) -> str:
    for _ in range(300):  # bounded: ~15 s at most, a launch at speed 1000 takes one or two
        record = context.store.get_session(name)
        if record is not None and record.state in ("ready", "failed"):
            return record.state
        await asyncio.sleep(0.05)
    return context.store.get_session(name).state


async def test_a_custom_model_from_the_demos_hub_launches_to_ready(sim_context, sim_cloud):
    context = sim_context(demo=True)
    context.clock = SystemClock()
    context.cloud_speed = sim_cloud.speed
    app = MaiderApp(context)
    async with app.run_test(size=(120, 40)) as pilot:
        wizard = await open_wizard(app, pilot)
        await press(app, pilot, "down", "down", "enter")
        assert wizard.custom_open
        wizard.query_one("#hf-id", Input).value = "Qwen/Qwen2.5-Coder-1.5B-Instruct"
        await press(app, pilot, "enter")  # the sim's Hub answers with the real config.json's shape
        assert sim_cloud.world.hub.requests["GET config.json Qwen/Qwen2.5-Coder-1.5B-Instruct"] == 1
        assert wizard.step == REGION and wizard.custom.params_b == pytest.approx(1.54, abs=0.01)
        assert (wizard.custom.layers, wizard.custom.kv_heads, wizard.custom.hidden_size) == (28, 2, 1536)
        await press(app, pilot, "enter", "enter")
        assert wizard.step == MODEL and highlighted_id(wizard) == "Qwen/Qwen2.5-Coder-1.5B-Instruct"
        await press(app, pilot, "enter")
        assert wizard.step == REVIEW
        name = wizard.query_one("#name", Input).value
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, WizardScreen)
        assert await wait_for_end(context, name) == "ready"
        record = context.store.get_session(name)
        assert record.model == "Qwen/Qwen2.5-Coder-1.5B-Instruct"
        await app.live.destroy(name)


@pytest.mark.parametrize(("model_id", "said"), [
    ("meta-llama/Llama-3.2-3B-Instruct", ["is gated", "accept its licence", "HF_TOKEN"]),
    ("nobody/no-such-model", ["was not found on Hugging Face", "check the id"]),
])
async def test_a_gated_or_missing_id_on_the_demos_hub_says_what_to_do(sim_context, model_id, said):
    app = MaiderApp(sim_context(demo=True))
    async with app.run_test(size=(120, 40)) as pilot:
        wizard = await open_wizard(app, pilot)
        await press(app, pilot, "down", "down", "enter")
        wizard.query_one("#hf-id", Input).value = model_id
        await press(app, pilot, "enter")
        message = str(wizard.query_one("#custom-message", Static).render())
        assert "Could not reach" not in message
        assert all(part in message for part in said), message
        assert wizard.query_one("#manual").display  # the by-hand form is offered


async def test_a_moe_models_size_comes_from_the_demos_hub_without_asking(sim_context, sim_cloud):
    app = MaiderApp(sim_context(demo=True))
    async with app.run_test(size=(120, 40)) as pilot:
        wizard = await open_wizard(app, pilot)
        await press(app, pilot, "down", "down", "enter")
        wizard.query_one("#hf-id", Input).value = "Qwen/Qwen1.5-MoE-A2.7B-Chat"
        await press(app, pilot, "enter")
        assert sim_cloud.world.hub.requests["GET info Qwen/Qwen1.5-MoE-A2.7B-Chat"] == 1
        assert wizard.step == REGION and wizard.custom.params_b == pytest.approx(14.32, abs=0.01)


async def test_back_keeps_each_choice(sim_context):
    app = MaiderApp(sim_context())
    async with app.run_test(size=(120, 40)) as pilot:
        wizard = await open_wizard(app, pilot)
        await press(app, pilot, "down", "enter")  # 70B+ under the default 30B-32B
        assert wizard.cap.id == "70B+"
        await press(app, pilot, "down", "enter")  # the region after us-ord
        chosen_region = wizard.picked_region.id
        assert chosen_region != "us-ord"
        await press(app, pilot, "escape")
        assert wizard.step == REGION and highlighted_id(wizard) == chosen_region
        await press(app, pilot, "escape")
        assert wizard.step == CAPABILITY and highlighted_id(wizard) == "70B+"
        await press(app, pilot, "escape")
        assert not isinstance(app.screen, WizardScreen)


async def test_typing_filters_the_list(sim_context):
    app = MaiderApp(sim_context())
    async with app.run_test(size=(120, 40)) as pilot:
        wizard = await open_wizard(app, pilot)
        await press(app, pilot, "enter")
        assert wizard.step == REGION
        all_rows = wizard.query_one(OptionList).option_count
        await pilot.press(*"osaka")
        await settle(app, pilot)
        options = wizard.query_one(OptionList)
        assert options.option_count == 1 < all_rows
        assert highlighted_id(wizard) == "jp-osa"
        await press(app, pilot, "enter")
        assert wizard.picked_region.id == "jp-osa" and wizard.step == GPU_TYPE
        # Nothing matches: said, and enter does not move on.
        await pilot.press(*"zzz")
        await settle(app, pilot)
        assert "Nothing matches" in detail(wizard)
        await press(app, pilot, "enter")
        assert wizard.step == GPU_TYPE


async def test_a_type_that_cannot_hold_the_tier_is_dimmed_and_says_why(sim_context):
    app = MaiderApp(sim_context())
    async with app.run_test(size=(120, 40)) as pilot:
        wizard = await open_wizard(app, pilot)
        await press(app, pilot, "down", "enter", "enter")  # 70B+ in us-ord
        assert wizard.step == GPU_TYPE
        rows = {row.id: row for row in wizard.rows}
        # 72B-AWQ needs four RTX 4000 Ada: the one- and two-GPU plans are listed, dimmed.
        assert rows["g2-gpu-rtx4000a1-s"].dimmed and rows["g2-gpu-rtx4000a2-s"].dimmed
        assert not rows["g2-gpu-rtx4000a4-m"].dimmed
        assert highlighted_id(wizard) == "g2-gpu-rtx4000a4-m"  # the cheapest that fits
        await press(app, pilot, "up", "enter")
        assert wizard.step == GPU_TYPE
        said = detail(wizard)
        assert "g2-gpu-rtx4000a2-s cannot hold it" in said and "usable" in said
        await press(app, pilot, "down", "enter")
        assert wizard.step == MODEL and highlighted_id(wizard) == "Qwen/Qwen2.5-72B-Instruct-AWQ"


async def test_a_model_that_fits_only_a_larger_gpu_share_than_the_settings_give_is_dimmed(make_context, sim_cloud):
    """vllm.gpu_memory_utilization 0.3: the 32B models fit two RTX 4000 Ada at vLLM's usual 0.9 but not
    in 30% of them; the model step lists them dimmed and says which setting to raise."""
    context = make_context(environ={"MAIDER_VLLM__GPU_MEMORY_UTILIZATION": "0.3"})
    context.provider = sim_cloud.provider(store=context.store)
    app = MaiderApp(context)
    async with app.run_test(size=(120, 40)) as pilot:
        wizard = await open_wizard(app, pilot)
        await press(app, pilot, "enter", "enter", "enter")  # 30B-32B, us-ord, g2-gpu-rtx4000a2-s
        assert wizard.step == MODEL
        rows = {row.id: row for row in wizard.rows}
        awq = rows["Qwen/Qwen2.5-Coder-32B-Instruct-AWQ"]
        assert awq.dimmed and "30% of each GPU's memory" in awq.reason
        assert "raise vllm.gpu_memory_utilization" in awq.detail
        await press(app, pilot, "enter")
        assert wizard.step == MODEL and wizard.report is None


async def test_the_cheapest_type_that_holds_the_tier_is_highlighted(sim_context):
    """7B-14B in us-ord: the region row says "from $0.52/h"; the GPU step highlights that type, not
    the settings' two-GPU default, and says so on the settings' row."""
    app = MaiderApp(sim_context())
    async with app.run_test(size=(120, 40)) as pilot:
        wizard = await open_wizard(app, pilot)
        await press(app, pilot, "up", "enter")  # 7B-14B
        assert wizard.cap.id == "7B-14B" and highlighted_id(wizard) == "us-ord"
        assert "from $0.52/h (g2-gpu-rtx4000a1-s)" in detail(wizard)
        await press(app, pilot, "enter")
        assert wizard.step == GPU_TYPE and highlighted_id(wizard) == "g2-gpu-rtx4000a1-s"
        settings_row = next(row for row in wizard.rows if row.id == "g2-gpu-rtx4000a2-s")
        assert "g2-gpu-rtx4000a1-s is cheaper" in settings_row.detail


async def test_a_context_that_does_not_fit_cannot_continue(sim_context):
    app = MaiderApp(sim_context())
    async with app.run_test(size=(120, 40)) as pilot:
        wizard = await open_wizard(app, pilot)
        await press(app, pilot, "enter", "enter", "enter")
        assert wizard.step == MODEL
        context = wizard.query_one("#context", Input)
        assert context.value == "32768"
        context.value = "65536"
        await settle(app, pilot)
        assert "supports at most 32K" in detail(wizard)
        await press(app, pilot, "enter")
        assert wizard.step == MODEL
        context.value = "16k"
        await settle(app, pilot)
        assert "16K context fits" in detail(wizard)
        await press(app, pilot, "enter")
        assert wizard.step == REVIEW and wizard.report.max_model_len == 16384


async def test_invalid_review_fields_launch_nothing(sim_context):
    app = MaiderApp(sim_context())
    async with app.run_test(size=(120, 40)) as pilot:
        wizard = await open_wizard(app, pilot)
        await press(app, pilot, "enter", "enter", "enter", "enter")
        wizard.query_one("#name", Input).value = "bad name!"
        wizard.query_one("#gpu-mem", Input).value = "1.5"
        await press(app, pilot, "enter")
        assert app.screen is wizard
        assert "only letters" in str(wizard.query_one("#name-error", Static).render())
        assert "0.99" in str(wizard.query_one("#gpu-mem-error", Static).render())
        assert context_sessions(app) == []


def context_sessions(app) -> list:
    return app.context.store.list_sessions()


async def test_a_custom_model_from_the_hub(sim_context, monkeypatch):
    asked = {}

    async def fake_fetch(model_id, *, token=None, **_):
        asked["id"] = model_id
        return QWEN_7B_CONFIG

    monkeypatch.setattr(hf, "fetch_config", fake_fetch)
    app = MaiderApp(sim_context())
    async with app.run_test(size=(120, 40)) as pilot:
        wizard = await open_wizard(app, pilot)
        await press(app, pilot, "down", "down", "enter")
        assert wizard.custom_open
        wizard.query_one("#hf-id", Input).value = "someone/Coder-7B"
        await press(app, pilot, "enter")
        assert asked["id"] == "someone/Coder-7B"
        assert wizard.step == REGION and wizard.custom.params_b == pytest.approx(7.62, abs=0.01)
        await press(app, pilot, "enter", "enter")
        assert wizard.step == MODEL and highlighted_id(wizard) == "someone/Coder-7B"


async def test_a_custom_model_not_on_the_hub_is_entered_by_hand(sim_context, monkeypatch):
    async def not_found(model_id, **_):
        raise hf.HfError("not_found", f"{model_id} was not found on Hugging Face; check the id.")

    monkeypatch.setattr(hf, "fetch_config", not_found)
    app = MaiderApp(sim_context())
    async with app.run_test(size=(120, 40)) as pilot:
        wizard = await open_wizard(app, pilot)
        await press(app, pilot, "down", "down", "enter")
        wizard.query_one("#hf-id", Input).value = "nobody/huge-400b"
        await press(app, pilot, "enter")
        said = str(wizard.query_one("#custom-message", Static).render())
        assert "was not found" in said and "form below" in said
        assert wizard.query_one("#manual").display
        # A dense 400B model: no GPU plan holds it, so every region is listed dimmed with the reason.
        for field_id, value in {"m-layers": "126", "m-heads": "128", "m-kv-heads": "8", "m-head-dim": "128",
                                "m-hidden": "16384", "m-params": "405", "m-positions": "131072"}.items():
            wizard.query_one(f"#{field_id}", Input).value = value
        await press(app, pilot, "enter")
        assert wizard.step == REGION and wizard.custom.params_b == 405
        assert wizard.rows and all(row.dimmed for row in wizard.rows)
        assert "no GPU type here holds huge-400b" in wizard.rows[0].reason
        await press(app, pilot, "enter")
        assert wizard.step == REGION and "Choose another" in detail(wizard)


async def test_the_token_dialog_refuses_a_bad_token_and_stores_a_good_one(make_context, sim_cloud,
                                                                          memory_keyring):
    from maider_tui.cloud.linode import LinodeProvider
    from maider_tui.ui.dialogs.token import TokenDialog

    def factory(token: str):
        return LinodeProvider(token, base_url=sim_cloud.linode_base_url)

    app = MaiderApp(make_context())
    async with app.run_test(size=(120, 40)) as pilot:
        wizard = await open_wizard(app, pilot, provider_factory=factory)
        dialog = app.screen
        assert isinstance(dialog, TokenDialog)
        field = dialog.query_one("#token-input", Input)
        assert field.password
        field.value = "not-the-token"
        await press(app, pilot, "enter")
        said = str(dialog.query_one("#token-message", Static).render())
        assert "refused" in said and "Nothing was saved" in said and "not-the-token" not in said
        assert memory_keyring.get_password("maider-tui", "linode_token") is None
        field.value = sim_cloud.token
        await press(app, pilot, "enter")
        assert app.screen is wizard
        assert app.context.secrets.has("linode_token")
        assert app.context.secrets.get("linode_token").value.get_secret_value() == sim_cloud.token
        assert wizard.regions_data is not None and wizard.regions_data.source == "api"


async def test_a_moe_model_asks_for_its_parameter_count(sim_context, monkeypatch):
    moe = {**QWEN_7B_CONFIG, "num_experts": 64, "num_experts_per_tok": 8}

    async def fake_fetch(model_id, **_):
        return moe

    monkeypatch.setattr(hf, "fetch_config", fake_fetch)
    app = MaiderApp(sim_context())
    async with app.run_test(size=(120, 40)) as pilot:
        wizard = await open_wizard(app, pilot)
        await press(app, pilot, "down", "down", "enter")
        wizard.query_one("#hf-id", Input).value = "someone/Small-MoE"
        await press(app, pilot, "enter")
        assert wizard.custom_open and wizard.query_one("#params-row").display
        assert "parameter count" in str(wizard.query_one("#custom-message", Static).render())
        wizard.query_one("#hf-params", Input).value = "16"
        await press(app, pilot, "enter")
        assert wizard.step == REGION and wizard.custom.params_b == 16


async def test_ctrl_r_asks_the_api_again(sim_context):
    app = MaiderApp(sim_context())
    async with app.run_test(notifications=True, size=(120, 40)) as pilot:
        wizard = await open_wizard(app, pilot)
        await press(app, pilot, "enter")
        await press(app, pilot, "ctrl+r")
        assert wizard.regions_data.source == "api"
        assert any("GPU types in 12 regions (api)" in text for text in toasts(app))
        assert wizard.step == REGION and highlighted_id(wizard) == "us-ord"


async def test_without_a_keyring_the_token_dialog_says_to_use_the_env_var(make_context, sim_cloud):
    import keyring
    from keyring.backends import fail

    from maider_tui.cloud.linode import LinodeProvider
    from maider_tui.ui.dialogs.token import TokenDialog

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        app = MaiderApp(make_context())
        async with app.run_test(size=(120, 40)) as pilot:
            await open_wizard(app, pilot, provider_factory=lambda token: LinodeProvider(
                token, base_url=sim_cloud.linode_base_url))
            dialog = app.screen
            assert isinstance(dialog, TokenDialog)
            dialog.query_one("#token-input", Input).value = sim_cloud.token
            await press(app, pilot, "enter")
            said = str(dialog.query_one("#token-message", Static).render())
            assert app.screen is dialog
            assert "could not be saved" in said and "LINODE_TOKEN" in said and sim_cloud.token not in said
            await press(app, pilot, "escape")
            assert not isinstance(app.screen, (TokenDialog, WizardScreen))
    finally:
        keyring.set_keyring(previous)


async def test_n_on_the_sessions_screen_opens_the_wizard(sim_context):
    app = MaiderApp(sim_context(demo=True))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await press(app, pilot, "n")
        assert isinstance(app.screen, WizardScreen)
        assert app.screen.step == CAPABILITY and highlighted_id(app.screen) == "30B-32B"
