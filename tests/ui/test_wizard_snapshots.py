"""Pictures of the wizard's steps and the provisioning screen, on a frozen clock and fixed data.

The provisioning screen is fed a canned sequence of events instead of a live launch, so the
picture never depends on timing.
"""

from __future__ import annotations

import pytest
from textual.widgets import Input

from maider_tui import catalog
from maider_tui.app import MaiderApp
from maider_tui.ops.events import FailedEvent, HealEvent, LogEvent, NodeEvent, StageEvent, WarningEvent
from maider_tui.ops.provision import LaunchPlan
from maider_tui.ops.readiness import STAGES, TOTAL_S
from maider_tui.ui.screens.provisioning import ProvisioningScreen
from maider_tui.ui.screens.wizard import WizardScreen

SIZES = [(80, 24), (120, 40)]
NAME = "qwen32b-20261122-124100"


async def settle(pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    for screen in pilot.app.screen_stack:  # the screen under a dialog shows its inputs too
        for field in screen.query(Input):
            field.cursor_blink = False  # a blinking cursor would make the picture depend on timing
    await pilot.pause()


def wizard_at(*keys: str):
    """A run_before that opens the wizard and presses `keys` (each followed by a settle)."""

    async def run_before(pilot) -> None:
        await pilot.app.workers.wait_for_complete()
        await pilot.app.push_screen(WizardScreen(pilot.app.context))
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_wizard_capability(snap_compare, sim_context, size):
    assert snap_compare(MaiderApp(sim_context()), terminal_size=size, run_before=wizard_at())


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_wizard_region(snap_compare, sim_context, size):
    assert snap_compare(MaiderApp(sim_context()), terminal_size=size, run_before=wizard_at("enter"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_wizard_gpu_type(snap_compare, sim_context, size):
    # 70B+ in us-ord: the one- and two-GPU plans are dimmed with the reason.
    assert snap_compare(MaiderApp(sim_context()), terminal_size=size,
                        run_before=wizard_at("down", "enter", "enter"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_wizard_model(snap_compare, sim_context, size):
    assert snap_compare(MaiderApp(sim_context()), terminal_size=size,
                        run_before=wizard_at("enter", "enter", "enter"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_wizard_review(snap_compare, sim_context, size):
    assert snap_compare(MaiderApp(sim_context()), terminal_size=size,
                        run_before=wizard_at("enter", "enter", "enter", "enter"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_wizard_custom_model(snap_compare, sim_context, size):
    assert snap_compare(MaiderApp(sim_context()), terminal_size=size,
                        run_before=wizard_at("down", "down", "enter"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_wizard_model_with_a_long_custom_name(snap_compare, sim_context, monkeypatch, size):
    """A 60-character custom id: the name column is cut with an ellipsis, the columns stay in line."""
    from .test_layout import open_long_custom_model

    async def run_before(pilot) -> None:
        await open_long_custom_model(pilot.app, pilot, monkeypatch)
        pilot.app.clear_notifications()  # the "Custom model" toast would cover the detail line
        await settle(pilot)

    assert snap_compare(MaiderApp(sim_context()), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_token_dialog(snap_compare, make_context, size):
    assert snap_compare(MaiderApp(make_context()), terminal_size=size, run_before=wizard_at())


# --- provisioning, from canned events ---------------------------------------------------------------

def plan() -> LaunchPlan:
    gpu = catalog.gpu_type("g2-gpu-rtx4000a2-s")
    config = catalog.fit("Qwen/Qwen2.5-Coder-32B-Instruct-AWQ", gpu).to_vllm_config()
    return LaunchPlan(region="us-ord", gpu_type=gpu, config=config, name=NAME)


def stage(name: str, message: str | None = None) -> StageEvent:
    names = [s for s, _, _ in STAGES]
    index = names.index(name)
    done = sum(seconds for _, seconds, _ in STAGES[:index])
    return StageEvent(NAME, name, round(done / TOTAL_S, 4), TOTAL_S - done, message or STAGES[index][2])


MID_WAY = [
    stage("token"), LogEvent(NAME, "Linode account: sim-user"), stage("record"), stage("keys"),
    stage("create", "Renting RTX 4000 Ada x2 in us-ord"), stage("running"), stage("ssh"),
    stage("cloud_init"), WarningEvent(NAME, "cloud-init is slower than usual (6 min so far)"),
]
HEALED = MID_WAY + [
    stage("upload"), stage("compose_up"), LogEvent(NAME, "Container llm-vllm-1  Started"),
    stage("vllm", "Waiting for vLLM to load Qwen/Qwen2.5-Coder-32B-Instruct-AWQ"),
    HealEvent(NAME, 1, "kv_cache", "ValueError: The model's max seq len (32768) is larger than the maximum "
              "number of tokens that can be stored in KV cache (23552).", "max_model_len 32768 → 23552"),
    LogEvent(NAME, "Container llm-vllm-1  Started"),
]


def provisioning_with(events, minutes: float, launch_plan: LaunchPlan | None = None):
    async def run_before(pilot) -> None:
        app = pilot.app
        await app.workers.wait_for_complete()
        screen = ProvisioningScreen(app.context, None, launch_plan or plan(), autostart=False)
        await app.push_screen(screen)
        for event in events:
            screen.on_ops_event(event)
        app.context.clock.advance(minutes * 60)
        screen.tick()
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_provisioning_mid_way(snap_compare, make_context, size):
    assert snap_compare(MaiderApp(make_context()), terminal_size=size,
                        run_before=provisioning_with(MID_WAY, 7))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_provisioning_after_a_heal(snap_compare, make_context, size):
    assert snap_compare(MaiderApp(make_context()), terminal_size=size,
                        run_before=provisioning_with(HEALED, 12))


FAILED = MID_WAY + [
    stage("upload"), stage("compose_up"), stage("vllm", "Waiting for vLLM to load the model"),
    LogEvent(NAME, "ValueError: Model architectures ['Qwen2ForCausalLM'] are not supported for now."),
    FailedEvent(NAME, "vllm", "vLLM cannot load this model (unsupported architecture). The VM 1234 is "
                "still running: inspect it or destroy it.", "model_loading"),
]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_provisioning_failed(snap_compare, make_context, size):
    assert snap_compare(MaiderApp(make_context()), terminal_size=size,
                        run_before=provisioning_with(FAILED, 14))


def cluster_plan() -> LaunchPlan:
    from maider_tui.deploy.launch import resolve
    from maider_tui.settings import Settings

    gpu = catalog.gpu_type("g1-gpu-rtx6000-4")
    launch = resolve(catalog.model("meta-llama/Llama-3.1-70B-Instruct"), gpu, Settings(), context=32768, nodes=2)
    return LaunchPlan(region="us-east", gpu_type=gpu, config=launch.config, name=NAME, nodes=2)


OVER_TWO_VMS = [
    stage("token"), LogEvent(NAME, "Linode account: sim-user"), stage("record"), stage("keys"),
    stage("create", "Renting 2 VMs of 4x Quadro RTX 6000 in us-east"),
    NodeEvent(NAME, 0, "create", "VM 8211001 created"), NodeEvent(NAME, 1, "create", "VM 8211002 created"),
    stage("running"), NodeEvent(NAME, 1, "running", "booted"), NodeEvent(NAME, 0, "running", "booted"),
    stage("ssh"), NodeEvent(NAME, 0, "ssh", "SSH answered at 192.0.2.1"), stage("cloud_init"),
    NodeEvent(NAME, 1, "ssh", "SSH answered at 192.0.2.2"),
    NodeEvent(NAME, 0, "cloud_init", "driver and Docker installed"),
]


async def test_a_launch_over_two_vms_shows_each_vms_progress(make_context):
    app = MaiderApp(make_context())
    async with app.run_test(size=(120, 40)) as pilot:
        await provisioning_with(OVER_TWO_VMS, 7, cluster_plan())(pilot)
        screen = app.screen
        assert isinstance(screen, ProvisioningScreen)
        nodes = str(screen.query_one("#nodes").render())
        assert "VM 0 head   driver and Docker installed" in nodes and "VM 1 worker SSH answered" in nodes
        line = str(screen.query_one("#plan-line").render())
        assert "2 VMs of 4x Quadro RTX 6000" in line and "$12.00/h" in line


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_provisioning_over_two_vms(snap_compare, make_context, size):
    assert snap_compare(MaiderApp(make_context()), terminal_size=size,
                        run_before=provisioning_with(OVER_TWO_VMS, 7, cluster_plan()))
