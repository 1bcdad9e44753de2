"""Tending a session's vLLM through ops (what the dashboard's keys ask for), on the simulated cloud."""

from __future__ import annotations

from pathlib import Path

import pytest

from maider_tui import catalog
from maider_tui.clock import SystemClock
from maider_tui.deploy.compose import COMPOSE_PATH, ComposeOptions
from maider_tui.models import VllmConfig
from maider_tui.ops import vllm_care
from maider_tui.ops.live import LiveSessions
from maider_tui.ops.provision import LaunchPlan
from maider_tui.remote.ssh import RunResult
from maider_tui.settings import Settings
from maider_tui.store import open_store
from tests.integration.simfix import sim_limits

LIMITS = sim_limits(1000)
TWO_GPUS = "g2-gpu-rtx4000a2-s"
SEVEN_B = "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ"
FOURTEEN_B = "Qwen/Qwen2.5-Coder-14B-Instruct-AWQ"
KV_LOG = Path(__file__).parents[1] / "fixtures" / "vllm_logs" / "kv_cache_v1_estimated_length.txt"


@pytest.fixture
async def live(sim_cloud, paths):
    store = open_store(paths.database)
    sessions = LiveSessions(store=store, paths=paths, settings=Settings(), clock=SystemClock(),
                            provider=lambda: sim_cloud.provider(store=store), hf_token=lambda: None,
                            limits=LIMITS)
    try:
        yield sessions
    finally:
        await sessions.close_all()
        store.close()


async def _launch(live: LiveSessions, compose: ComposeOptions | None = None) -> str:
    gpu = catalog.gpu_type(TWO_GPUS)
    config = catalog.fit(SEVEN_B, gpu).to_vllm_config()
    plan = LaunchPlan(region=gpu.regions[0], gpu_type=gpu, config=config, compose=compose or ComposeOptions())
    return (await live.launch(plan)).name


async def _compose_file(live: LiveSessions, name: str) -> str:
    return (await live.get(name).handle.ssh.run(f"cat {COMPOSE_PATH}")).stdout


async def test_the_vllm_log_is_read_and_a_healthy_one_proposes_nothing(live):
    name = await _launch(live)
    assert "vllm" in (await vllm_care.read_vllm_log(live, name)).lower()
    assert await vllm_care.propose_heal(live, name) == vllm_care.HealProposal(None)


async def test_a_log_that_names_a_failure_proposes_its_remedy(live):
    name = await _launch(live)
    handle = live.get(name).handle
    handle.config = handle.config.replace(max_model_len=32768)
    log = KV_LOG.read_text()

    async def run(cmd, timeout=None):
        return RunResult(0, log, "")

    handle.ssh.run = run
    proposal = await vllm_care.propose_heal(live, name)
    assert proposal.diagnosis is not None and proposal.diagnosis.kind == "kv_cache"
    assert proposal.config is not None and proposal.config.max_model_len < 32768
    assert "max_model_len 32768 ->" in proposal.change


async def test_restart_restarts_the_container_and_records_it(live):
    name = await _launch(live)
    await vllm_care.restart_vllm(live, name)
    events = [e.kind for e in live.store.events(name, limit=100)]
    assert "restart" in events


async def test_a_failed_restart_says_why_and_records_nothing(live):
    name = await _launch(live)
    handle = live.get(name).handle

    async def run(cmd, timeout=None):
        return RunResult(1, "", "no such service: vllm")

    handle.ssh.run = run
    with pytest.raises(vllm_care.CareError, match="no such service"):
        await vllm_care.restart_vllm(live, name)
    assert "restart" not in [e.kind for e in live.store.events(name, limit=100)]


async def test_a_heal_deploys_the_config_with_the_sessions_own_compose_options(live):
    name = await _launch(live, ComposeOptions(enable_openwebui=True))
    handle = live.get(name).handle
    healed = handle.config.replace(gpu_memory_utilization=0.8)
    await vllm_care.apply_heal(live, name, healed, "gpu_memory_utilization 0.9 -> 0.8")
    assert handle.config == healed and handle.heals == 1
    record = live.store.get_session(name)
    assert VllmConfig.from_dict(record.vllm_config).gpu_memory_utilization == 0.8
    assert any(e.kind == "heal" for e in live.store.events(name, limit=100))
    compose = await _compose_file(live, name)
    assert "gpu-memory-utilization" in compose and "open-webui" in compose


async def test_an_operation_on_a_session_not_connected_is_refused(live):
    with pytest.raises(vllm_care.CareError, match="not connected"):
        await vllm_care.restart_vllm(live, "nobody")


async def test_a_switch_keeps_open_webui_the_session_was_launched_with(live):
    name = await _launch(live, ComposeOptions(enable_openwebui=True))
    assert "open-webui" in await _compose_file(live, name)
    await live.switch_model(name, FOURTEEN_B)
    compose = await _compose_file(live, name)
    assert FOURTEEN_B in compose and "open-webui" in compose


async def test_open_webui_is_forwarded_only_for_a_session_launched_with_it(live):
    with_webui = await _launch(live, ComposeOptions(enable_openwebui=True))
    url = await vllm_care.forward_webui(live, with_webui)
    assert url is not None and url.startswith("http://127.0.0.1:")
    without = await _launch(live)
    assert await vllm_care.forward_webui(live, without) is None
