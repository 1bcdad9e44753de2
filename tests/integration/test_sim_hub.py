"""The simulated Hugging Face Hub: its endpoints over real HTTP, the app's client against them, and the
sim's vLLM loading (or refusing) a custom model from the same Hub during a real launch."""

from __future__ import annotations

import httpx
import pytest

from maider_tui import catalog
from maider_tui.clock import SystemClock
from maider_tui.cloud import hf
from maider_tui.deploy.compose import ComposeOptions
from maider_tui.ops.events import EventRecorder, FailedEvent, ReadyEvent
from maider_tui.ops.provision import LaunchPlan, ProvisionFailed, provision
from maider_tui.settings import Settings
from maider_tui.sim import SimCloud
from maider_tui.sim.hub_models import REPOS
from maider_tui.sim.vllm_behaviour import decode_rate
from maider_tui.store import open_store
from tests.integration.simfix import sim_limits

SPEED = 1000
LIMITS = sim_limits(SPEED)
HF_TOKEN = "hf_simUserTokenAbcdefghijklmnopqrstu"
SMALL = "Qwen/Qwen2.5-Coder-1.5B-Instruct"
GATED = "meta-llama/Llama-3.2-3B-Instruct"
MOE = "Qwen/Qwen1.5-MoE-A2.7B-Chat"
ONE_GPU = "g2-gpu-rtx4000a1-s"


@pytest.fixture(scope="module")
def sim():
    with SimCloud(speed=SPEED, seed=5) as cloud:
        yield cloud


def get(sim: SimCloud, path: str, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(sim.hf_base_url + path, headers=headers, timeout=10)


# --- the endpoints ----------------------------------------------------------------------------------

def test_every_repo_serves_its_config_with_the_fields_the_planner_reads(sim):
    assert 6 <= len(REPOS) <= 10
    built_in = {m.id.lower() for m in catalog.models()}
    assert not any(repo.id.lower() in built_in for repo in REPOS)
    for repo in REPOS:
        answer = get(sim, f"/{repo.id}/resolve/main/config.json", HF_TOKEN)
        assert answer.status_code == 200 and answer.headers["X-Repo-Commit"] == repo.sha
        config = answer.json()
        assert config == repo.config
        for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size",
                    "max_position_embeddings", "torch_dtype", "architectures"):
            assert key in config, (repo.id, key)


def test_an_unknown_repo_answers_as_the_hub_does(sim):
    anonymous = get(sim, "/nobody/nothing/resolve/main/config.json")
    assert anonymous.status_code == 401  # the Hub hides whether a private repo exists
    assert anonymous.headers["X-Error-Code"] == "RepoNotFound"
    assert anonymous.json() == {"error": "Invalid username or password."}
    signed_in = get(sim, "/nobody/nothing/resolve/main/config.json", HF_TOKEN)
    assert signed_in.status_code == 404 and signed_in.headers["X-Error-Code"] == "RepoNotFound"
    assert signed_in.headers["X-Error-Message"] == "Repository not found"
    missing_file = get(sim, f"/{SMALL}/resolve/main/model.gguf")
    assert missing_file.status_code == 404 and missing_file.headers["X-Error-Code"] == "EntryNotFound"


def test_a_gated_repo_needs_a_token_for_its_files_but_not_its_info(sim):
    refused = get(sim, f"/{GATED}/resolve/main/config.json")
    assert refused.status_code == 401 and refused.headers["X-Error-Code"] == "GatedRepo"
    assert "You must have access to it and be authenticated" in refused.headers["X-Error-Message"]
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert get(sim, f"/{GATED}/resolve/main/config.json", HF_TOKEN).status_code == 200
    info = get(sim, f"/api/models/{GATED}")
    assert info.status_code == 200 and info.json()["gated"] == "manual"
    bad = get(sim, f"/{SMALL}/resolve/main/config.json", "not-a-token")
    assert bad.status_code == 401 and bad.json() == {"error": "Invalid credentials in Authorization header"}


def test_hub_traffic_is_not_linode_traffic(sim):
    before = sim.world.api_requests
    get(sim, f"/{SMALL}/resolve/main/config.json")
    assert sim.world.api_requests == before
    assert sim.world.hub.requests[f"GET config.json {SMALL}"] >= 1


# --- the app's client against it ----------------------------------------------------------------------

async def test_the_client_reads_a_config_and_the_planner_sizes_it(sim):
    config = await hf.fetch_config(SMALL, base_url=sim.hf_base_url)
    spec = catalog.custom_model(config, model_id=SMALL)
    assert (spec.layers, spec.kv_heads, spec.hidden_size) == (28, 2, 1536)
    assert spec.params_b == pytest.approx(1.54, abs=0.01)


async def test_the_client_says_a_missing_id_is_missing_and_a_gated_one_needs_a_token(sim):
    with pytest.raises(hf.HfError) as missing:
        await hf.fetch_config("nobody/nothing", base_url=sim.hf_base_url)
    assert missing.value.kind == "not_found" and "was not found" in missing.value.message
    with pytest.raises(hf.HfError) as gated:
        await hf.fetch_config(GATED, base_url=sim.hf_base_url)
    assert gated.value.kind == "gated" and "HF_TOKEN" in gated.value.message
    assert "licence" in gated.value.message
    assert (await hf.fetch_config(GATED, token=HF_TOKEN, base_url=sim.hf_base_url))["num_hidden_layers"] == 28


async def test_a_moe_models_parameter_count_comes_from_its_model_info(sim):
    assert await hf.fetch_params_b(MOE, base_url=sim.hf_base_url) == pytest.approx(14.32, abs=0.01)
    assert await hf.fetch_params_b("nobody/nothing", base_url=sim.hf_base_url) is None


# --- the sim's vLLM loads from the same Hub -------------------------------------------------------------

@pytest.fixture
async def launch(sim, paths):
    store = open_store(paths.database)
    provider = sim.provider(store)

    async def run(model_id: str, *, hf_token: str | None, emit: EventRecorder):
        config = await hf.fetch_config(model_id, token=HF_TOKEN, base_url=sim.hf_base_url)
        params = None if "quantization_config" in config else await hf.fetch_params_b(
            model_id, base_url=sim.hf_base_url)
        spec = catalog.custom_model(config, model_id=model_id, params_b=params)
        # The cheapest plan that holds it, as the wizard offers first.
        fit = next(f for gpu in sorted(catalog.gpu_types(), key=lambda g: g.hourly_usd)
                   if (f := catalog.fit(spec, gpu)).fits)
        gpu = fit.gpu_type
        plan = LaunchPlan(region=gpu.regions[0], gpu_type=gpu, config=fit.to_vllm_config(),
                          compose=ComposeOptions())
        handle = await provision(plan, store=store, paths=paths, settings=Settings(), clock=SystemClock(),
                                 hf_token=hf_token, limits=LIMITS, emit=emit, provider=provider)
        handles.append(handle)
        return handle

    handles: list = []
    yield run
    for handle in handles:
        await handle.close()
    for vm in await provider.list():
        await provider.destroy(vm.id)
    store.close()


async def test_a_custom_model_from_the_hub_launches_to_ready(sim, launch):
    events = EventRecorder()
    handle = await launch(SMALL, hf_token=None, emit=events)
    assert events.of(ReadyEvent)
    server = sim.vm(handle.record.instance_id).docker.containers
    vllm = next(c for c in server.values() if c.service.kind == "vllm")
    assert vllm.health == "healthy" and vllm.server is not None
    # Its speed comes from its shape: a 1.5B model decodes far faster than a 7B on the same GPU.
    seven = catalog.model("Qwen/Qwen2.5-Coder-7B-Instruct")
    assert vllm.server.outcome.decode_tok_s > 3 * decode_rate(seven, catalog.gpu_type(ONE_GPU), 1)


@pytest.mark.parametrize("model_id", ["microsoft/Phi-3-mini-4k-instruct",
                                      "deepseek-ai/deepseek-coder-6.7b-instruct",
                                      "Qwen/Qwen2.5-Coder-32B-Instruct-GPTQ-Int4", MOE])
async def test_each_kind_of_hub_model_loads(sim, launch, model_id):
    # trust_remote_code (Phi-3's auto_map), a Llama of another vocabulary, GPTQ 4-bit, mixture-of-experts.
    events = EventRecorder()
    await launch(model_id, hf_token=None, emit=events)
    assert events.of(ReadyEvent) and not events.of(FailedEvent)


async def test_a_gated_model_without_a_token_fails_as_vllm_does_and_loads_with_one(sim, launch):
    events = EventRecorder()
    with pytest.raises(ProvisionFailed):
        await launch(GATED, hf_token=None, emit=events)
    failure = events.of(FailedEvent)[0]
    assert failure.stage == "vllm" and failure.diagnosis.startswith("model_loading")
    assert "gated" in failure.diagnosis
    events = EventRecorder()
    await launch(GATED, hf_token=HF_TOKEN, emit=events)
    assert events.of(ReadyEvent)
