"""A launch over two VMs that died at any stage is resumed to ready: it carries on with the network and
the VMs the dead run made (by id, or by label when the id was never recorded), makes only what is
missing, and serves; nothing is made twice."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from maider_tui.clock import SystemClock
from maider_tui.ops.destroy import destroy_session
from maider_tui.ops.events import EventRecorder, NodeEvent, StageEvent
from maider_tui.ops.provision import provision
from maider_tui.ops.readiness import STAGE_NAMES
from maider_tui.settings import Settings
from maider_tui.store import Store, open_store
from tests.integration.simfix import module_sim
from tests.integration.test_cluster_launch import LLAMA_70B, cluster_plan, crashed_launch
from tests.integration.test_destroy_recover import LIMITS, make_provider

sim, clean_faults = module_sim(seed=47)
CRASH_STAGES = [s for s in STAGE_NAMES if s not in ("token", "tunnel", "aider", "ready")]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with open_store(tmp_path / "data" / "db.sqlite3") as db:
        yield db


def session_vms(sim, name: str) -> list:
    return [vm for vm in sim.world.list() if vm.label == name or vm.label.startswith(f"{name}-w")]


@pytest.mark.parametrize("stage", CRASH_STAGES)
async def test_a_launch_over_two_vms_that_died_at_any_stage_resumes_to_ready(sim, store, paths, stage):
    provider = make_provider(sim, store)
    name = f"resume-{stage.replace('_', '-')}"
    await crashed_launch(provider, store, paths, name, stage)
    before = {vm.id for vm in session_vms(sim, name)}
    if stage == "running" and len(store.nodes(name)) == 2:
        # As if the dead run had died between the worker's create and its record: found by its label.
        assert store.nodes(name)[1].instance_id in before
        store.update_node(name, 1, instance_id=None)
    events = EventRecorder()
    handle = await provision(None, resume_from=store.get_session(name), provider=provider, store=store,
                             paths=paths, settings=Settings(), clock=SystemClock(), emit=events, hf_token=None,
                             limits=LIMITS)
    try:
        record = store.get_session(name)
        assert record.state == "ready" and record.nodes == 2
        nodes = store.nodes(name)
        assert [(n.index, n.state) for n in nodes] == [(0, "ready"), (1, "ready")]
        vms = {vm.id for vm in session_vms(sim, name)}
        assert len(vms) == 2 and {n.instance_id for n in nodes} == vms  # one VM a node, each recorded
        assert before <= vms  # every VM the dead run made was carried on with, none made again
        assert nodes[0].instance_id == record.instance_id
        kept = [e for e in events.events if isinstance(e, NodeEvent) and "already exists" in e.message]
        assert len(kept) == len(before)
        assert [n.label for n in await provider.vpcs.list() if n.label.endswith(name)] == [f"maider-{name}"]
        async with httpx.AsyncClient(timeout=30) as http:
            models = (await http.get(f"{handle.endpoint}/models")).json()
        assert [m["id"] for m in models["data"]] == [LLAMA_70B]
    finally:
        await handle.close()
    await destroy_session(name, provider=provider, store=store, clock=SystemClock(), emit=EventRecorder())
    assert not session_vms(sim, name)
    assert not [n for n in await provider.vpcs.list() if n.label.endswith(name)]


async def test_a_resume_without_a_token_keeps_the_env_the_dead_run_uploaded_to_each_vm(sim, store, paths):
    """As on one VM: the first run uploaded the token to every VM; a resume given none must not
    replace it with an empty .env (the weights of a gated model could no longer be fetched)."""
    from maider_tui.deploy.compose import ENV_PATH

    provider = make_provider(sim, store)
    name = "resume-env"
    await crashed_launch(provider, store, paths, name, "compose_up", hf_token="hf_kept0token0for0gated")
    handle = await provision(None, resume_from=store.get_session(name), provider=provider, store=store,
                             paths=paths, settings=Settings(), clock=SystemClock(), emit=EventRecorder(),
                             hf_token=None, limits=LIMITS)
    try:
        for node in store.nodes(name):
            assert b"hf_kept0token0for0gated" in sim.vm(node.instance_id).files.read(ENV_PATH), node.index
    finally:
        await handle.close()
    await destroy_session(name, provider=provider, store=store, clock=SystemClock(), emit=EventRecorder())


async def test_a_worker_lost_while_vllm_loads_fails_the_launch_saying_so_and_a_resume_rents_its_vm_again(
        sim, store, paths):
    from maider_tui.ops.provision import ProvisionFailed

    provider = make_provider(sim, store)
    name = "resume-lost-loading"
    plan = cluster_plan(name=name)
    lost: list[int] = []

    def lose_worker_on_load(event):
        if isinstance(event, StageEvent) and event.message.startswith("Waiting for vLLM to load") and not lost:
            lost.append(store.nodes(name)[1].instance_id)
            sim.world.vanish(lost[0])

    with pytest.raises(ProvisionFailed) as failed:
        await provision(plan, provider=provider, store=store, paths=paths, settings=Settings(), clock=SystemClock(),
                        emit=lose_worker_on_load, hf_token=None, limits=LIMITS)
    assert failed.value.stage == "vllm" and failed.value.diagnosis.startswith("node_lost"), failed.value.message
    assert "resume the launch" in failed.value.message and "Its VMs are still running" in failed.value.message
    assert store.get_session(name).state == "failed"
    events = EventRecorder()
    handle = await provision(None, resume_from=store.get_session(name), provider=provider, store=store,
                             paths=paths, settings=Settings(), clock=SystemClock(), emit=events, hf_token=None,
                             limits=LIMITS)
    try:
        worker = store.nodes(name)[1]
        assert worker.instance_id != lost[0] and sim.world.get(worker.instance_id) is not None
        assert any(f"VM {lost[0]} (node 1)" in getattr(e, "message", "") and "renting a new one" in e.message
                   for e in events.events)
        assert store.get_session(name).state == "ready" and len(session_vms(sim, name)) == 2
    finally:
        await handle.close()
    await destroy_session(name, provider=provider, store=store, clock=SystemClock(), emit=EventRecorder())
    assert not session_vms(sim, name)
