"""A session over two VMs launched on the simulated cloud: a private network, two VMs joined to it,
Ray forming, vLLM serving across both through the tunnel; and a crash at any stage leaves nothing behind."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from maider_tui import catalog
from maider_tui.clock import SystemClock
from maider_tui.deploy.launch import resolve
from maider_tui.ops.events import NodeEvent
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


def cluster_plan(nodes: int = 2, name: str | None = None) -> LaunchPlan:
    gpu, settings = catalog.gpu_type(PLAN), Settings()
    launch = resolve(catalog.model(LLAMA_70B), gpu, settings, context=32768, nodes=nodes)
    assert launch.report.fits
    return LaunchPlan(region="us-east", gpu_type=gpu, config=launch.config, compose=launch.compose, nodes=nodes,
                      name=name)


async def crashed_launch(provider, store: Store, paths, name: str, stage: str, hf_token: str | None = None) -> None:
    """Run the two-VM launch `name` until it reaches `stage`, and cancel it there (the app dying at that point)."""
    from maider_tui.ops.events import StageEvent
    from maider_tui.ops.provision import provision

    task: asyncio.Task | None = None

    def crash_at(event):
        if isinstance(event, StageEvent) and event.stage == stage and task is not None:
            task.cancel()

    task = asyncio.create_task(provision(cluster_plan(name=name), provider=provider, store=store, paths=paths,
                                         settings=Settings(), clock=SystemClock(), emit=crash_at, hf_token=hf_token,
                                         limits=LIMITS))
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.3)  # a create cancelled in flight may still land from its thread


def live_sessions(sim: SimCloud, store: Store, paths, events: list):
    from maider_tui.ops.live import LiveSessions

    live = LiveSessions(store=store, paths=paths, settings=Settings(), clock=SystemClock(),
                        provider=lambda: make_provider(sim, store), hf_token=lambda: None, limits=LIMITS)
    live.subscribe(events.append)
    return live


async def test_a_70b_over_two_vms_launches_serves_and_is_destroyed_whole(sim, store, paths):
    events: list = []
    live = live_sessions(sim, store, paths, events)
    try:
        session = await live.launch(cluster_plan())
        name = session.name
        record = store.get_session(name)
        assert record.state == "ready" and record.nodes == 2 and record.gpu_count == 8
        assert record.hourly_usd == pytest.approx(12.0) and record.vpc_id is not None
        nodes = store.nodes(name)
        assert [(n.role, n.state) for n in nodes] == [("head", "ready"), ("worker", "ready")]
        assert len({n.instance_id for n in nodes}) == 2 and all(sim.world.get(n.instance_id) for n in nodes)
        assert nodes[0].instance_id == record.instance_id
        assert sim.world.vpcs.address_of(nodes[1].instance_id) == nodes[1].address == "10.42.0.3"
        steps = {(e.node, e.step) for e in events if isinstance(e, NodeEvent)}
        assert {(0, "cloud_init"), (1, "cloud_init"), (0, "compose_up"), (1, "compose_up")} <= steps
        assert any("1 of 1 worker joined, 8 of 8 GPUs seen" in getattr(e, "text", "") for e in events)
        endpoint = session.handle.endpoint
        async with httpx.AsyncClient(timeout=30) as http:
            models = (await http.get(f"{endpoint}/models")).json()
            assert [m["id"] for m in models["data"]] == [LLAMA_70B]
            answer = await http.post(f"{endpoint}/chat/completions", json={
                "model": LLAMA_70B, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8})
            assert answer.status_code == 200
        from maider_tui.ops.validate import full_validation, head_view

        # Validation reads the head VM: its own share is one stage over its 4 GPUs, all busy under load.
        report = await full_validation(session.handle.ssh, local_port=session.handle.local_port,
                                       config=head_view(session.handle.config, 2), gpu_type=PLAN,
                                       clock=SystemClock(), duration_scale=0.001, prompt_sizes=(128,))
        assert not [f.title for f in report.findings if f.status == "fail"]
        # After a restart: the dashboard's stream covers both VMs' GPUs, through one SSH connection each.
        second = live_sessions(sim, store, paths, [])
        try:
            attached = await second.attach(name)
            assert len(attached.handle.workers) == 1
            from maider_tui.ops.telemetry import session_gpu_snapshots

            async for snapshot in session_gpu_snapshots(attached.handle, clock=SystemClock()):
                if all(g.memory_used_mib for g in snapshot.gpus):
                    break
            assert snapshot.per_node == 4 and [g.index for g in snapshot.gpus] == list(range(8))
        finally:
            await second.close_all()
        await live.destroy(name)
        assert all(sim.world.get(n.instance_id) is None for n in nodes)
        assert sim.world.vpcs.get(record.vpc_id) is None
        assert store.get_session(name).state == "destroyed"
    finally:
        await live.close_all()


async def test_a_worker_that_cannot_reach_the_head_stops_the_launch_saying_why(sim, store, paths):
    from maider_tui.ops.provision import ProvisionFailed

    sim.faults.vpc_blocked = True
    live = live_sessions(sim, store, paths, [])
    try:
        with pytest.raises(ProvisionFailed) as failed:
            await live.launch(cluster_plan())
        assert failed.value.stage == "vllm" and "Worker node 1 left the Ray cluster" in failed.value.message
        assert "GCS" in failed.value.message  # Ray's own words for why
        record = store.get_session(failed.value.session)
        assert record.state == "failed" and len(store.nodes(record.name)) == 2  # kept, for inspection or destroy
        await live.destroy(record.name)
        assert all(sim.world.get(n.instance_id) is None for n in store.nodes(record.name))
    finally:
        await live.close_all()


async def test_a_crash_at_every_stage_of_a_multi_vm_launch_leaves_nothing_unaccounted_for(sim, store, paths):
    """Cancel the launch at each stage in turn (the app dying there): recovery claims every VM it made
    (no worker is an orphan), and destroying the session removes every VM and its network."""
    from maider_tui.ops.destroy import destroy_session
    from maider_tui.ops.events import EventRecorder
    from maider_tui.ops.readiness import STAGE_NAMES
    from maider_tui.ops.recover import recover

    provider = make_provider(sim, store)
    crashed: list[str] = []
    for stage in [s for s in STAGE_NAMES if s not in ("token", "tunnel", "aider", "ready")]:
        name = f"crash-{stage.replace('_', '-')}"
        await crashed_launch(provider, store, paths, name, stage)
        crashed.append(name)
    report = await recover(provider=provider, store=store, clock=SystemClock())
    assert not [o for o in report.orphans if o.label.startswith("crash-")]
    for name in crashed:
        await destroy_session(name, provider=provider, store=store, clock=SystemClock(), emit=EventRecorder())
    left = [vm for vm in await provider.list() if vm.label.startswith("crash-")]
    assert not left, f"VMs left after destroying every crashed session: {[vm.label for vm in left]}"
    assert not [n for n in await provider.vpcs.list() if n.label.startswith("maider-crash-")]


async def test_the_idle_watchdog_destroys_a_session_over_two_vms_whole(sim, store, paths):
    import time

    from maider_tui.clock import ManualClock
    from maider_tui.ops.watchdog import Watchdog, metrics_from_tunnel
    from maider_tui.settings import WatchdogSettings

    live = live_sessions(sim, store, paths, [])
    try:
        session = await live.launch(cluster_plan())
        name, handle = session.name, session.handle
        nodes, vpc_id = store.nodes(name), store.get_session(name).vpc_id
        clock = ManualClock(start=time.time())
        dog = Watchdog(name, metrics=metrics_from_tunnel(handle.local_port), destroy=lambda: live.destroy(name),
                       store=store, clock=clock,
                       settings=WatchdogSettings(timeout_minutes=30, warning_minutes=5, poll_seconds=60),
                       notify=lambda title, message: None)
        await dog.check()
        assert dog.state == "watching"
        clock.advance(25 * 60)
        await dog.check()
        assert dog.state == "warning"
        clock.advance(5 * 60)
        await dog.check()
        assert dog.state == "destroyed"
        assert all(sim.world.get(n.instance_id) is None for n in nodes)  # the worker too, not just the head
        assert sim.world.vpcs.get(vpc_id) is None
        assert store.get_session(name).state == "destroyed"
    finally:
        await live.close_all()


async def test_a_worker_vm_lost_after_ready_is_diagnosed_as_a_lost_stage(sim, store, paths):
    from maider_tui.ops import heal
    from maider_tui.ops.readiness import container_logs, container_state

    live = live_sessions(sim, store, paths, [])
    try:
        session = await live.launch(cluster_plan())
        head, worker = store.nodes(session.name)
        sim.world.vanish(worker.instance_id)  # deleted behind the app's back: its stage is gone
        for _ in range(300):
            if await container_state(session.handle.ssh, LIMITS) == "exited":
                break
            await asyncio.sleep(0.02)
        found = heal.diagnose(await container_logs(session.handle.ssh, LIMITS))
        assert found is not None and found.kind == "node_lost", found
        assert heal.remedy(session.handle.config, found, 1, 4) is None  # no flag brings a VM back
        assert "a VM of the session is gone" in found.summary
        await live.destroy(session.name)
        assert sim.world.get(head.instance_id) is None
    finally:
        await live.close_all()


async def test_the_model_of_a_session_over_two_vms_switches_in_place(sim, store, paths):
    qwen_72b = "Qwen/Qwen2.5-72B-Instruct"
    live = live_sessions(sim, store, paths, [])
    try:
        session = await live.launch(cluster_plan())
        vms = {n.instance_id for n in store.nodes(session.name)}
        config = await live.switch_model(session.name, qwen_72b)
        assert config.model == qwen_72b and config.pipeline_parallel_size == 2
        assert "--distributed-executor-backend" in config.extra_args
        record = store.get_session(session.name)
        assert record.model == qwen_72b and record.state == "ready"
        assert {n.instance_id for n in store.nodes(session.name)} == vms  # the same VMs, no new rent
        async with httpx.AsyncClient(timeout=30) as http:
            models = (await http.get(f"{session.handle.endpoint}/models")).json()
        assert [m["id"] for m in models["data"]] == [qwen_72b]
        assert store.events(session.name)[-1].kind == "switched"
        from maider_tui.ops.switch_model import SwitchRefused

        with pytest.raises(SwitchRefused, match="already serves"):
            await live.switch_model(session.name, qwen_72b)
        await live.destroy(session.name)
    finally:
        await live.close_all()


async def test_a_failed_start_across_two_vms_is_healed_on_every_vm(sim, store, paths):
    from maider_tui.ops.events import HealEvent

    events: list = []
    plan = cluster_plan()
    too_long = LaunchPlan(region=plan.region, gpu_type=plan.gpu_type, compose=plan.compose, nodes=2,
                          config=plan.config.replace(max_model_len=131072))  # more than the KV cache holds
    live = live_sessions(sim, store, paths, events)
    try:
        session = await live.launch(too_long)
        heals = [e for e in events if isinstance(e, HealEvent)]
        assert heals and heals[0].kind == "kv_cache"
        record = store.get_session(session.name)
        served = record.vllm_config
        assert record.state == "ready" and served["max_model_len"] < 131072
        assert served["pipeline_parallel_size"] == 2 and "--distributed-executor-backend" in served["extra_args"]
        await live.destroy(session.name)
    finally:
        await live.close_all()


async def test_a_heal_from_the_dashboard_reaches_every_vms_file(sim, store, paths):
    from maider_tui.deploy.compose import COMPOSE_PATH
    from maider_tui.ops.vllm_care import apply_heal

    live = live_sessions(sim, store, paths, [])
    try:
        session = await live.launch(cluster_plan())
        handle = session.handle
        lower = handle.config.replace(gpu_memory_utilization=0.85)
        await apply_heal(live, session.name, lower, "memory use 0.9 -> 0.85")
        head_file = (await handle.ssh.run(f"cat {COMPOSE_PATH}")).stdout
        assert "--gpu-memory-utilization 0.85" in head_file and "--distributed-executor-backend ray" in head_file
        worker_file = (await handle.workers[0].run(f"cat {COMPOSE_PATH}")).stdout
        assert "ray start --block --address=10.42.0.2:6379" in worker_file  # a worker's file is still a worker's
        assert store.get_session(session.name).vllm_config["gpu_memory_utilization"] == 0.85
        assert "--distributed-executor-backend" in store.get_session(session.name).vllm_config["extra_args"]
        await live.destroy(session.name)
    finally:
        await live.close_all()


async def test_a_benchmark_runs_on_a_session_over_two_vms_at_the_price_of_both(sim, store, paths):
    from maider_tui.bench.prompts import prompts_for
    from maider_tui.ops.bench_run import BenchTarget, run_benchmark

    live = live_sessions(sim, store, paths, [])
    try:
        session = await live.launch(cluster_plan())
        record = store.get_session(session.name)
        target = BenchTarget.from_session(session.handle.endpoint, record, session.handle.config)
        assert target.gpu_count == 8 and target.hourly_usd == pytest.approx(12.0)
        outcome = await run_benchmark(target, prompts=prompts_for("coding")[:1], store=store, max_tokens_scale=0.1)
        summary = outcome.run.summary
        assert summary["tests_passed"] == 1 and summary["avg_tokens_per_sec"] > 0
        assert summary["cost_per_1k_tokens"] == pytest.approx(12.0 / 3600 / summary["avg_tokens_per_sec"] * 1000)
        await live.destroy(session.name)
    finally:
        await live.close_all()


async def test_three_vms_of_4x_rtx_4000_ada_serve_a_70b_over_uneven_stages(sim, store, paths):
    """The wizard's pick for a 70B on that plan (two would leave ~1K of context): PP 3 over 80 layers."""
    from maider_tui.catalog.cluster import fewest_nodes

    gpu = catalog.gpu_type("g2-gpu-rtx4000a4-m")
    nodes = fewest_nodes(LLAMA_70B, gpu, start=2).nodes
    assert nodes == 3
    launch = resolve(catalog.model(LLAMA_70B), gpu, Settings(), nodes=nodes)
    plan = LaunchPlan(region="us-ord", gpu_type=gpu, config=launch.config, compose=launch.compose, nodes=nodes)
    live = live_sessions(sim, store, paths, [])
    try:
        session = await live.launch(plan)
        assert session.handle.config.pipeline_parallel_size == 3 and len(session.handle.workers) == 2
        async with httpx.AsyncClient(timeout=30) as http:
            answer = await http.post(f"{session.handle.endpoint}/chat/completions", json={
                "model": LLAMA_70B, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8})
        assert answer.status_code == 200
        await live.destroy(session.name)
        assert all(sim.world.get(n.instance_id) is None for n in store.nodes(session.name))
    finally:
        await live.close_all()
