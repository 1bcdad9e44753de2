"""A session over two VMs launched on the simulated cloud: a private network, two VMs joined to it,
Ray forming, vLLM serving across both through the tunnel; and a crash at any stage leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from maider_tui import catalog
from maider_tui.clock import SystemClock
from maider_tui.deploy.launch import resolve
from maider_tui.ops.launch_plan import LaunchPlan
from maider_tui.settings import Settings
from maider_tui.sim import SimCloud
from maider_tui.store import Store, open_store
from tests.integration.simfix import module_sim
from tests.integration.test_destroy_recover import LIMITS, make_provider

sim, clean_faults = module_sim(seed=41)
LLAMA_70B = "meta-llama/Llama-3.1-70B-Instruct"
PLAN = "g1-gpu-rtx6000-4"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with open_store(tmp_path / "data" / "db.sqlite3") as db:
        yield db


def cluster_plan(nodes: int = 2) -> LaunchPlan:
    gpu, settings = catalog.gpu_type(PLAN), Settings()
    launch = resolve(catalog.model(LLAMA_70B), gpu, settings, context=32768, nodes=nodes)
    assert launch.report.fits
    return LaunchPlan(region="us-east", gpu_type=gpu, config=launch.config, compose=launch.compose, nodes=nodes)


def live_sessions(sim: SimCloud, store: Store, paths, events: list):
    from maider_tui.ops.live import LiveSessions

    live = LiveSessions(store=store, paths=paths, settings=Settings(), clock=SystemClock(),
                        provider=lambda: make_provider(sim, store), hf_token=lambda: None, limits=LIMITS)
    live.subscribe(events.append)
    return live


async def test_a_crash_at_every_stage_of_a_multi_vm_launch_leaves_nothing_unaccounted_for(sim, store, paths):
    """Cancel the launch at each stage in turn (the app dying there): recovery claims every VM it made
    (no worker is an orphan), and destroying the session removes every VM and its network."""
    import asyncio

    from maider_tui.ops.destroy import destroy_session
    from maider_tui.ops.events import EventRecorder, StageEvent
    from maider_tui.ops.provision import provision
    from maider_tui.ops.readiness import STAGE_NAMES
    from maider_tui.ops.recover import recover

    provider = make_provider(sim, store)
    crashed: list[str] = []
    for stage in [s for s in STAGE_NAMES if s not in ("token", "tunnel", "aider", "ready")]:
        name = f"crash-{stage.replace('_', '-')}"
        plan = cluster_plan()
        plan = LaunchPlan(region=plan.region, gpu_type=plan.gpu_type, config=plan.config, compose=plan.compose,
                          nodes=2, name=name)
        task: asyncio.Task | None = None

        def crash_at(event, stage=stage):
            if isinstance(event, StageEvent) and event.stage == stage:
                task.cancel()

        task = asyncio.create_task(provision(plan, provider=provider, store=store, paths=paths, settings=Settings(),
                                             clock=SystemClock(), emit=crash_at, hf_token=None, limits=LIMITS))
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.3)  # a create cancelled in flight may still land from its thread
        crashed.append(name)
    report = await recover(provider=provider, store=store, clock=SystemClock())
    assert not [o for o in report.orphans if o.label.startswith("crash-")]
    for name in crashed:
        await destroy_session(name, provider=provider, store=store, clock=SystemClock(), emit=EventRecorder())
    left = [vm for vm in await provider.list() if vm.label.startswith("crash-")]
    assert not left, f"VMs left after destroying every crashed session: {[vm.label for vm in left]}"
    assert not [n for n in await provider.vpcs.list() if n.label.startswith("maider-crash-")]
