"""A worker VM of a session over two VMs is lost after ready: a new VM takes its place at its address,
the cluster forms again, and the model serves through the same tunnel; a replacement cut at any step
leaves nothing unaccounted for, and the next one finishes it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from maider_tui.cloud import node_label
from maider_tui.ops.cluster_replace import lost_workers, replace_lost_workers
from maider_tui.ops.events import NodeEvent
from maider_tui.ops.readiness import container_state
from maider_tui.ops.vllm_care import CareError
from maider_tui.store import Store, open_store
from tests.integration.simfix import module_sim
from tests.integration.test_cluster_launch import LLAMA_70B, cluster_plan, live_sessions
from tests.integration.test_destroy_recover import LIMITS

sim, clean_faults = module_sim(seed=43)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with open_store(tmp_path / "data" / "db.sqlite3") as db:
        yield db


async def lose_worker(sim, session, store) -> int:
    """Delete the worker VM behind the app's back; the head's vLLM dies with its pipeline stage."""
    worker = store.nodes(session.name)[1]
    assert sim.world.vanish(worker.instance_id)
    for _ in range(300):
        if await container_state(session.handle.ssh, LIMITS) == "exited":
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the head's vLLM did not stop when its worker went")
    return worker.instance_id


async def serves(endpoint: str) -> bool:
    async with httpx.AsyncClient(timeout=30) as http:
        try:
            models = (await http.get(f"{endpoint}/models")).json()
            answer = await http.post(f"{endpoint}/chat/completions", json={
                "model": LLAMA_70B, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8})
        except httpx.HTTPError:
            return False
    return [m["id"] for m in models["data"]] == [LLAMA_70B] and answer.status_code == 200


async def test_a_lost_worker_is_replaced_and_the_model_serves_again_through_the_same_tunnel(sim, store, paths):
    events: list = []
    live = live_sessions(sim, store, paths, events)
    try:
        session = await live.launch(cluster_plan())
        name, endpoint = session.name, session.handle.endpoint
        with pytest.raises(CareError, match="nothing to replace"):
            await replace_lost_workers(live, name)
        old_id = await lose_worker(sim, session, store)
        assert not await serves(endpoint)
        assert [n.index for n in await lost_workers(live, name)] == [1]

        assert await replace_lost_workers(live, name) == [1]

        head, worker = store.nodes(name)
        assert worker.instance_id not in (None, old_id) and sim.world.get(worker.instance_id) is not None
        assert sim.world.get(worker.instance_id).label == node_label(name, 1)
        assert sim.world.vpcs.address_of(worker.instance_id) == worker.address == "10.42.0.3"
        assert (head.state, worker.state) == ("ready", "ready")
        assert [(ssh.host, ssh.port) for ssh in session.handle.workers] == [(worker.ip, worker.ssh_port)]
        assert await serves(endpoint)  # the same endpoint aider has
        assert {(e.node, e.step) for e in events if isinstance(e, NodeEvent) and e.node == 1} >= {
            (1, "running"), (1, "ssh"), (1, "cloud_init"), (1, "upload")}
        assert [e.kind for e in store.events(name)][-1] == "replaced"
        assert store.get_session(name).state == "ready"
        # The model switches on the new pair as on the first (every worker connected).
        record = store.get_session(name)
        await live.destroy(name)
        assert sim.world.get(worker.instance_id) is None and sim.world.get(head.instance_id) is None
        assert sim.world.vpcs.get(record.vpc_id) is None
    finally:
        await live.close_all()


async def test_a_replacement_cut_at_any_step_leaves_its_vm_recorded_and_the_next_one_finishes(sim, store, paths):
    """Cancel the replacement as its new VM reaches each step (the app dying there): whatever VM it made
    is on the node's record, none is left that the session does not hold, and the next replacement
    deletes the unfinished VM and serves again; then a destroy leaves nothing."""
    steps: list[str] = []
    live = live_sessions(sim, store, paths, steps)
    try:
        session = await live.launch(cluster_plan())
        name = session.name
        await lose_worker(sim, session, store)
        for step in ("create", "running", "ssh", "cloud_init", "upload"):
            task: asyncio.Task | None = None

            def cut(event, step=step):
                if isinstance(event, NodeEvent) and event.node == 1 and event.step == step and task is not None:
                    task.cancel()

            unsubscribe = live.subscribe(cut)
            task = asyncio.create_task(replace_lost_workers(live, name))
            with pytest.raises(asyncio.CancelledError):
                await task
            unsubscribe()
            await asyncio.sleep(0.2)  # a create cut in flight may still land from its thread
            held = {n.instance_id for n in store.nodes(name)}
            theirs = {vm.id for vm in sim.world.list() if vm.label.startswith(name)}
            assert theirs <= held, f"cut at {step}: VMs the session does not hold: {theirs - held}"
            assert store.nodes(name)[1].state != "ready"
        assert await replace_lost_workers(live, name) == [1]
        assert await serves(session.handle.endpoint)
        nodes = store.nodes(name)
        assert len({vm.id for vm in sim.world.list() if vm.label.startswith(name)}) == 2
        await live.destroy(name)
        assert all(sim.world.get(n.instance_id) is None for n in nodes)
        assert not [vm for vm in sim.world.list() if vm.label.startswith(name)]
    finally:
        await live.close_all()


async def test_a_worker_whose_container_stopped_has_the_cluster_formed_again_on_the_same_vms(sim, store, paths):
    from maider_tui.ops.readiness import COMPOSE_CMD

    live = live_sessions(sim, store, paths, [])
    try:
        session = await live.launch(cluster_plan())
        name, handle = session.name, session.handle
        vms = [n.instance_id for n in store.nodes(name)]
        await handle.workers[0].run(f"{COMPOSE_CMD} stop", timeout=30)  # the worker leaves; its VM stays
        for _ in range(300):
            if await container_state(handle.ssh, LIMITS) == "exited":
                break
            await asyncio.sleep(0.02)
        assert not await serves(handle.endpoint)
        with pytest.raises(CareError, match="nothing to replace"):
            await replace_lost_workers(live, name)
        assert await replace_lost_workers(live, name, reform=True) == []
        assert await serves(handle.endpoint)
        assert [n.instance_id for n in store.nodes(name)] == vms  # nothing rented
        assert "Ray cluster formed again" in store.events(name)[-1].message
        await live.destroy(name)
    finally:
        await live.close_all()


async def test_a_head_vm_deleted_outside_the_app_takes_the_workers_and_network_with_it(sim, store, paths):
    """No session serves without its head, and its workers still bill: once the head is found gone (the
    watchdog's poll asks the API), the rest of the session is destroyed, not left running unwatched."""
    from maider_tui.ops.events import WarningEvent

    events: list = []
    live = live_sessions(sim, store, paths, events)
    try:
        session = await live.launch(cluster_plan())
        name = session.name
        head, worker = store.nodes(name)
        vpc_id = store.get_session(name).vpc_id
        assert sim.world.vanish(head.instance_id)
        assert await live.vm_gone(name)
        assert sim.world.get(worker.instance_id) is None and sim.world.vpcs.get(vpc_id) is None
        record = store.get_session(name)
        assert record.ended and record.state == "destroyed", record.state
        assert any(isinstance(e, WarningEvent) and "head VM" in e.message and "workers and network go" in e.message
                   for e in events)
        assert live.get(name) is None
    finally:
        await live.close_all()
