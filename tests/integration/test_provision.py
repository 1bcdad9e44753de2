"""Provisioning end to end on the simulated cloud: real HTTP, real SSH, vLLM failures from the real flags.

SimCloud at speed 1000 and a real SystemClock: a launch takes about a second of real time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time

import pytest
import yaml

from maider_tui import catalog
from maider_tui.clock import SystemClock
from maider_tui.cloud import ProviderError
from maider_tui.deploy.compose import COMPOSE_PATH, ENV_PATH, ComposeOptions
from maider_tui.ops.events import EventRecorder, FailedEvent, HealEvent, ReadyEvent, StageEvent
from maider_tui.ops.provision import STAGE_NAMES, LaunchPlan, ProvisionFailed, provision
from maider_tui.ops.session_files import client_key_path, session_dir
from maider_tui.remote.vllm import VllmClient
from maider_tui.settings import Settings
from maider_tui.sim import SimCloud
from maider_tui.store import SessionRecord, open_store
from tests.integration.simfix import sim_limits

SPEED = 1000
# Real-time limits far above what the sim needs; polls short, since the sim runs 1000x faster.
LIMITS = sim_limits(SPEED)
HF_TOKEN = "hf_testTokenAbcdefghijklmnopqrstuvwx"
CODER_32B_AWQ = "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ"
CODER_7B_AWQ = "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ"


@pytest.fixture(scope="module")
def sim():
    with SimCloud(speed=SPEED, seed=11) as cloud:
        yield cloud


@pytest.fixture
async def env(sim, paths):
    """What provision() needs, and afterwards: handles closed, faults reset, every VM destroyed."""
    store = open_store(paths.database)
    provider = sim.provider(store)
    handles = []

    async def launch(plan, **kwargs):
        kwargs.setdefault("hf_token", HF_TOKEN)
        kwargs.setdefault("limits", LIMITS)
        kwargs.setdefault("emit", EventRecorder())
        kwargs.setdefault("provider", provider)
        handle = await provision(plan, store=store, paths=paths, settings=Settings(),
                                 clock=SystemClock(), **kwargs)
        handles.append(handle)
        return handle

    faults = dataclasses.replace(sim.faults, unsupported_models=set(sim.faults.unsupported_models))
    yield dataclasses.make_dataclass("Env", ["store", "provider", "launch", "paths"])(
        store, provider, launch, paths)
    for handle in handles:
        await handle.close()
    for name in ("slow_boot_factor", "unsupported_models"):
        setattr(sim.faults, name, getattr(faults, name))
    for vm in await provider.list():
        await provider.destroy(vm.id)
    store.close()


def plan_for(model: str, type_id: str, *, compose: ComposeOptions | None = None, **changes) -> LaunchPlan:
    gpu = catalog.gpu_type(type_id)
    config = catalog.fit(model, gpu).to_vllm_config().replace(**changes)
    return LaunchPlan(region=gpu.regions[0], gpu_type=gpu, config=config, compose=compose or ComposeOptions())


def remote_file(sim: SimCloud, vm_id: int, path: str):
    return sim.vm(vm_id).files.files[path]


async def test_full_launch_to_ready(sim, env):
    events = EventRecorder()
    writes: list[dict] = []
    update_session = env.store.update_session
    env.store.update_session = lambda name, **fields: writes.append(fields) or update_session(name, **fields)
    started = time.monotonic()
    handle = await env.launch(plan_for(CODER_32B_AWQ, "g2-gpu-rtx4000a2-s"), emit=events)
    elapsed = time.monotonic() - started
    assert elapsed < 10, f"a launch at speed {SPEED} took {elapsed:.1f} s of real time"

    stages = [e.stage for e in events.of(StageEvent)]
    assert stages == list(STAGE_NAMES)
    fractions = [e.fraction for e in events.of(StageEvent)]
    assert fractions == sorted(fractions) and fractions[0] == 0 and fractions[-1] == 1
    assert all(e.eta_s is not None and e.eta_s >= 0 for e in events.of(StageEvent))
    assert isinstance(events.events[-1], ReadyEvent) and not events.of(FailedEvent)
    assert handle.name.startswith("qwen32b-")

    record = env.store.get_session(handle.name)
    assert (record.state, record.stage, record.instance_id) == ("ready", "ready", handle.vm.id)
    # The ready stage and state land in one write: no moment where a crash finds "creating, stage ready".
    [ready] = [w for w in writes if w.get("stage") == "ready"]
    assert ready["state"] == "ready" and ready["ready_at"] is not None
    assert not [w for w in writes if "state" in w and w.get("stage") != "ready"]
    assert record.ready_at is not None and record.gpu_count == 2
    assert record.vllm_config["tensor_parallel_size"] == 2
    pinned = sim.vm(handle.vm.id).host_key.export_public_key("openssh").decode().split()[:2]
    assert record.host_key.split()[:2] == pinned
    history = env.store.events(handle.name)
    kinds = [e.kind for e in history]
    # Every stage is in the session's history, "token" too: it came before the record, stored once it existed.
    assert kinds.count("stage") == len(STAGE_NAMES) and kinds[-1] == "ready"
    assert history[0].data == {"stage": "token"} and history[0].ts <= history[1].ts
    assert client_key_path(env.paths, handle.name).stat().st_mode & 0o777 == 0o600

    meta = json.loads((session_dir(env.paths, handle.name) / ".aider.model.metadata.json").read_text())
    limits = meta[f"openai/{CODER_32B_AWQ}"]
    assert limits["max_input_tokens"] + limits["max_output_tokens"] == handle.max_model_len == 32768
    assert f"{handle.endpoint}" in (session_dir(env.paths, handle.name) / "aider-env").read_text()

    assert handle.endpoint == f"http://127.0.0.1:{handle.local_port}/v1"
    async with VllmClient(handle.endpoint) as vllm:
        answer = await vllm.complete_chat(CODER_32B_AWQ, [{"role": "user", "content": "hi"}], max_tokens=4)
    assert answer.completion_tokens

    compose_text = remote_file(sim, handle.vm.id, COMPOSE_PATH).data.decode()
    ports = [p for s in yaml.safe_load(compose_text)["services"].values() for p in s.get("ports", [])]
    assert ports and all(p.startswith("127.0.0.1:") for p in ports)
    dotenv = remote_file(sim, handle.vm.id, ENV_PATH)
    assert dotenv.mode & 0o777 == 0o600 and HF_TOKEN in dotenv.data.decode()
    user_data = sim.vm(handle.vm.id).instance.user_data
    assert user_data and "ssh_keys" in user_data
    for text in (compose_text, user_data, repr(events.events), repr(env.store.events(handle.name))):
        assert HF_TOKEN not in text


HEALS = {
    "oom": (CODER_7B_AWQ, "g2-gpu-rtx4000a1-s", {"gpu_memory_utilization": 0.99}, None,
            lambda c: c.gpu_memory_utilization < 0.99),
    "kv_cache": ("Qwen/Qwen2.5-72B-Instruct-AWQ", "g1-gpu-rtx6000-2", {"max_model_len": 32768}, None,
                 lambda c: c.max_model_len < 32768 and c.max_model_len % 1024 == 0),
    "nccl": ("Qwen/Qwen2.5-Coder-14B-Instruct-AWQ", "g2-gpu-rtx4000a2-s", {},
             ComposeOptions(enable_nccl_env=False),
             lambda c: c.tensor_parallel_size == 2 and c.env.get("NCCL_IB_DISABLE") == "1"),
    "tensor_parallel": (CODER_32B_AWQ, "g2-gpu-rtx4000a4-m", {"tensor_parallel_size": 3}, None,
                        lambda c: c.tensor_parallel_size == 4 and c.pipeline_parallel_size == 1),
    "model_loading": (CODER_7B_AWQ, "g1-gpu-rtx6000-1", {"dtype": "bfloat16"}, None,
                      lambda c: c.dtype == "half"),
}


@pytest.mark.parametrize("kind", list(HEALS))
async def test_heals_each_fault_class(sim, env, kind):
    model, type_id, changes, options, healed = HEALS[kind]
    events = EventRecorder()
    handle = await env.launch(plan_for(model, type_id, compose=options, **changes), emit=events)

    heals = events.of(HealEvent)
    assert heals and heals[0].kind == kind and heals[0].attempt == 1
    assert heals[0].evidence and heals[0].change != "no change"
    assert len(heals) <= 3 and handle.heals == len(heals)
    assert healed(handle.config), handle.config
    ready = events.of(ReadyEvent)[0]
    assert ready.heals == len(heals) and ready.max_model_len == handle.max_model_len
    record = env.store.get_session(handle.name)
    assert record.state == "ready" and record.vllm_config == handle.config.to_dict()
    assert [e.kind for e in env.store.events(handle.name)].count("heal") == len(heals)
    async with VllmClient(handle.endpoint) as vllm:
        served = await vllm.models()
    assert served[0].max_model_len == handle.max_model_len
    if handle.config.max_model_len:
        assert handle.max_model_len == handle.config.max_model_len


async def test_unhealable_failure_keeps_the_vm(sim, env):
    sim.faults.unsupported_models = {CODER_7B_AWQ}
    events = EventRecorder()
    with pytest.raises(ProvisionFailed) as failed:
        await env.launch(plan_for(CODER_7B_AWQ, "g2-gpu-rtx4000a1-s"), emit=events)

    failure = events.of(FailedEvent)[0]
    assert failure.stage == "vllm" and failure.diagnosis.startswith("model_loading")
    assert "not support" in failure.diagnosis and "still running" in failure.message
    assert not events.of(ReadyEvent)
    record = env.store.get_session(failed.value.session)
    assert (record.state, record.stage) == ("failed", "vllm")
    assert record.instance_id == failed.value.instance_id
    assert sim.vm(record.instance_id) is not None  # never destroyed silently
    assert (await env.provider.get(record.instance_id)) is not None


@pytest.mark.parametrize(("stage", "slow", "limit", "said"), [
    pytest.param("running", 10_000, {"running_s": 0.3}, "not running after 0.3 s; Linode last said: booting",
                 id="running"),
    pytest.param("cloud_init", 20, {"cloud_init_s": 0.3},
                 "did not finish within 0.3 s; the VM last said: status running", id="cloud_init"),
])
async def test_readiness_limit_names_the_stage_and_keeps_the_vm(sim, env, stage, slow, limit, said):
    sim.faults.slow_boot_factor = slow
    events = EventRecorder()
    limits = dataclasses.replace(LIMITS, **limit)
    with pytest.raises(ProvisionFailed) as failed:
        await env.launch(plan_for(CODER_7B_AWQ, "g2-gpu-rtx4000a1-s"), emit=events, limits=limits)

    failure = events.of(FailedEvent)[0]
    assert failure.stage == stage and failed.value.stage == stage
    assert said in failure.message, failure.message
    record = env.store.get_session(failure.session)
    assert record.state == "failed" and record.instance_id is not None
    assert (await env.provider.get(record.instance_id)) is not None


async def _interrupted(env, plan, at_stage: str):
    """Start a launch and cancel it as soon as it reaches `at_stage`, like a crash there."""
    events = EventRecorder()
    holder: dict[str, asyncio.Task] = {}

    def sink(event) -> None:
        events(event)
        if isinstance(event, StageEvent) and event.stage == at_stage:
            holder["task"].cancel()

    holder["task"] = asyncio.create_task(env.launch(plan, emit=sink))
    with pytest.raises(asyncio.CancelledError):
        await holder["task"]
    return events.of(StageEvent)[0].session


async def test_resume_after_create(sim, env):
    plan = plan_for(CODER_7B_AWQ, "g2-gpu-rtx4000a1-s")
    name = await _interrupted(env, plan, "running")  # the VM was just created
    record = env.store.get_session(name)
    assert record.instance_id is not None and record.stage == "running" and record.state == "creating"

    events = EventRecorder()
    handle = await env.launch(None, resume_from=record, emit=events)
    assert handle.name == name and handle.vm.id == record.instance_id
    assert env.store.get_session(name).state == "ready"
    assert [vm.id for vm in await env.provider.list() if vm.label == name] == [record.instance_id]
    assert "already exists" in next(e.message for e in events.of(StageEvent) if e.stage == "create")


async def test_resume_after_upload_keeps_the_token(sim, env):
    plan = plan_for(CODER_7B_AWQ, "g2-gpu-rtx4000a1-s")
    name = await _interrupted(env, plan, "compose_up")  # .env and compose are on the VM
    record = env.store.get_session(name)
    assert record.stage == "compose_up"

    handle = await env.launch(plan, resume_from=record, hf_token=None)
    assert env.store.get_session(name).state == "ready"
    assert HF_TOKEN in remote_file(sim, handle.vm.id, ENV_PATH).data.decode()
    assert len([vm for vm in await env.provider.list() if vm.label == name]) == 1


async def test_a_bad_session_name_fails_before_anything_is_created(sim, env):
    events = EventRecorder()
    plan = dataclasses.replace(plan_for(CODER_7B_AWQ, "g2-gpu-rtx4000a1-s"), name="-bad name")
    with pytest.raises(ProvisionFailed):
        await env.launch(plan, emit=events)
    assert events.of(FailedEvent)[0].stage == "record"
    assert env.store.session_names() == set() and await env.provider.list() == []


class _RefusedToken:
    """The sim's provider, with a token Linode refuses."""

    def __init__(self, inner) -> None:
        self._inner = inner

    async def whoami(self):
        raise ProviderError("Linode refused the API token; set a valid one in settings", "auth")

    def __getattr__(self, name):
        return getattr(self._inner, name)


async def test_a_refused_token_stops_before_the_record(sim, env):
    events = EventRecorder()
    with pytest.raises(ProvisionFailed) as failed:
        await env.launch(plan_for(CODER_7B_AWQ, "g2-gpu-rtx4000a1-s"), emit=events,
                         provider=_RefusedToken(env.provider))
    assert failed.value.stage == "token" and "refused the API token" in failed.value.message
    assert [type(e) for e in events.events] == [StageEvent, FailedEvent]
    assert env.store.session_names() == set() and await env.provider.list() == []


def test_plan_from_settings_and_back_from_the_record():
    plan = LaunchPlan.from_settings(Settings(), name="my-box")
    assert (plan.model, plan.gpu_type.id, plan.region) == (CODER_32B_AWQ, "g2-gpu-rtx4000a2-s", "us-ord")
    assert plan.config.tensor_parallel_size == 2 and plan.config.max_model_len == 32768
    assert plan.options["watchdog_minutes"] == 30
    record = SessionRecord(name="my-box", region=plan.region, gpu_type=plan.gpu_type.id, gpu_count=2,
                           model=plan.model, vllm_config=plan.config.to_dict(),
                           options=json.loads(json.dumps(plan.stored_options())))
    again = LaunchPlan.from_record(record)
    assert again == plan
