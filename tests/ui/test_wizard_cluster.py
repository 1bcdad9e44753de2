"""The wizard offers a model no single VM holds on the fewest VMs of the chosen plan that do, says
why, and launches it over those VMs on the simulated cloud."""

from __future__ import annotations

import asyncio

from textual.widgets import OptionList

from maider_tui.app import MaiderApp
from maider_tui.clock import SystemClock
from maider_tui.ui.screens.wizard import REVIEW, WizardScreen

from .test_wizard import detail, highlighted_id, open_wizard, press, settle

LLAMA_70B = "meta-llama/Llama-3.1-70B-Instruct"


async def highlight(app, pilot, wizard: WizardScreen, wanted: str) -> None:
    """Move the list's highlight to `wanted` with the arrow keys, as a user would."""
    for _ in range(len(wizard.query_one("#choices", OptionList).options) + 1):
        if highlighted_id(wizard) == wanted:
            return
        await press(app, pilot, "down")
    raise AssertionError(f"{wanted} is not in the list")


async def test_a_70b_at_16_bits_is_offered_on_two_vms_and_launches_over_them(sim_context, sim_cloud):
    context = sim_context()
    context.clock = SystemClock()
    context.cloud_speed = sim_cloud.speed
    app = MaiderApp(context)
    async with app.run_test(size=(120, 40)) as pilot:
        wizard = await open_wizard(app, pilot)
        await highlight(app, pilot, wizard, "70B+")
        await press(app, pilot, "enter")
        await highlight(app, pilot, wizard, "us-east")
        await press(app, pilot, "enter")
        await highlight(app, pilot, wizard, "g1-gpu-rtx6000-4")
        await press(app, pilot, "enter")
        await highlight(app, pilot, wizard, LLAMA_70B)
        row = wizard.highlighted()
        assert row.nodes == 2 and "2 VMs·TP4" in row.cells
        said = detail(wizard)
        assert "No single 4x Quadro RTX 6000 VM holds" in said and "2 VMs of it do, $12.00/h together" in said
        assert "link between VMs" in said
        await press(app, pilot, "enter")
        assert wizard.step == REVIEW and wizard.nodes == 2
        review = str(wizard.query_one("#plan-summary").render())
        assert "2 VMs of g1-gpu-rtx6000-4" in review and "$12.00/h" in review
        assert "TP 4 within each VM · PP 2 across VMs" in review and "private network" in review
        launched = []
        app.start_launch = lambda plan, start=app.start_launch: (launched.append(plan), start(plan))
        await pilot.press("enter")
        await settle(app, pilot)
        (plan,) = launched
        assert plan.nodes == 2 and plan.config.pipeline_parallel_size == 2 and plan.region == "us-east"
        name = plan.name
        for _ in range(400):  # bounded: a two-VM launch at the sim's speed takes a few seconds
            record = context.store.get_session(name)
            if record is not None and record.state in ("ready", "failed"):
                break
            await asyncio.sleep(0.05)
        record = context.store.get_session(name)
        assert record.state == "ready" and record.nodes == 2 and record.hourly_usd == 12.0
        await app.live.destroy(name)
        assert all(sim_cloud.world.get(n.instance_id) is None for n in context.store.nodes(name))
