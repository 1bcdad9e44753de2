"""Switching models on a running session in the simulated cloud: success, healing, rollback, refusal."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path

import pytest

from maider_tui.clock import SystemClock
from maider_tui.deploy.compose import COMPOSE_PATH, ComposeOptions
from maider_tui.models import VllmConfig
from maider_tui.ops.destroy import destroy_session
from maider_tui.ops.events import EventRecorder, FailedEvent, HealEvent, ReadyEvent, RolledBackEvent
from maider_tui.ops.session_files import session_dir
from maider_tui.ops.switch_model import SWITCH_MARK, SwitchFailed, SwitchRefused, plan_config, switch_model
from maider_tui.remote.vllm import VllmClient
from maider_tui.settings import Settings
from maider_tui.sim import SimCloud
from maider_tui.store import SessionRecord, Store, open_store

from tests.integration.simfix import module_sim
from tests.integration.test_destroy_recover import LIMITS, launch, make_provider

TWO_GPUS = "g2-gpu-rtx4000a2-s"
BIG = "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ"
SMALLER = "Qwen/Qwen2.5-Coder-14B-Instruct-AWQ"
FAST = dict(limits=LIMITS)


sim, clean_faults = module_sim(seed=7)  # the module's cloud; faults reset around each test


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with open_store(tmp_path / "db.sqlite3") as db:
        yield db


async def served_models(ssh) -> set[str]:
    port = await ssh.forward(8000)
    async with VllmClient(f"http://127.0.0.1:{port}") as vllm:
        return {m.id for m in await vllm.models()}


async def test_switch_to_a_smaller_model(sim: SimCloud, store: Store, paths):
    provider = make_provider(sim, store)
    record, ssh = await launch(sim, provider, store, "switch-ok", gpu_type=TWO_GPUS, model=BIG)
    events = EventRecorder()
    config = await switch_model(record.name, SMALLER, ssh=ssh, store=store, provider=provider,
                                settings=Settings(), clock=SystemClock(), emit=events, options=ComposeOptions(),
                                paths=paths, **FAST)
    assert config.model == SMALLER and config.tensor_parallel_size == 2
    assert await served_models(ssh) == {SMALLER}
    after = store.get_session(record.name)
    assert after.model == SMALLER and VllmConfig.from_dict(after.vllm_config) == config
    assert after.state == "ready"
    [ready] = events.of(ReadyEvent)
    assert ready.max_model_len == config.max_model_len and ready.endpoint.endswith("/v1")
    assert SMALLER in sim.vm(record.instance_id).files.read(COMPOSE_PATH).decode()
    assert [e.kind for e in store.events(record.name)][-2:] == ["switch", "switched"]
    assert f"AIDER_MODEL=openai/{SMALLER}" in (session_dir(paths, record.name) / "aider-env").read_text()
    await destroy_session(record.name, provider=provider, store=store, clock=SystemClock(), emit=events, ssh=ssh)


async def test_a_switch_heals_like_provisioning(sim: SimCloud, store: Store):
    provider = make_provider(sim, store)
    record, ssh = await launch(sim, provider, store, "switch-heal", gpu_type=TWO_GPUS, model=BIG)
    events = EventRecorder()
    # Without compose's NCCL defaults a TP-2 start fails with an NCCL error, which healing fixes.
    config = await switch_model(record.name, SMALLER, ssh=ssh, store=store, clock=SystemClock(), emit=events,
                                options=ComposeOptions(enable_nccl_env=False), **FAST)
    [heal] = events.of(HealEvent)
    assert heal.kind == "nccl" and "NCCL_IB_DISABLE" in heal.change
    assert config.env.get("NCCL_IB_DISABLE") == "1"
    assert events.of(ReadyEvent)[0].heals == 1
    assert VllmConfig.from_dict(store.get_session(record.name).vllm_config) == config
    await destroy_session(record.name, provider=provider, store=store, clock=SystemClock(), emit=events, ssh=ssh)


async def test_a_failed_switch_rolls_back(sim: SimCloud, store: Store):
    provider = make_provider(sim, store)
    record, ssh = await launch(sim, provider, store, "switch-back", gpu_type=TWO_GPUS, model=BIG)
    sim.faults.unsupported_models.add(SMALLER)
    events = EventRecorder()
    with pytest.raises(SwitchFailed) as caught:
        await switch_model(record.name, SMALLER, ssh=ssh, store=store, clock=SystemClock(), emit=events,
                           options=ComposeOptions(), **FAST)
    assert caught.value.rolled_back and (caught.value.diagnosis or "").startswith("model_loading")
    assert "not supported" in str(caught.value)  # vLLM's own words, quoted
    assert await served_models(ssh) == {BIG}
    [rolled] = events.of(RolledBackEvent)
    assert rolled.model == BIG and "rolled back" in rolled.message
    assert not events.of(HealEvent)  # an unsupported architecture has no remedy
    after = store.get_session(record.name)
    assert after.model == BIG and after.vllm_config == record.vllm_config and after.state == "ready"
    assert store.events(record.name)[-1].kind == "rolled_back"
    await destroy_session(record.name, provider=provider, store=store, clock=SystemClock(), emit=events, ssh=ssh)


async def test_when_even_the_old_model_does_not_come_back_the_session_is_failed(sim: SimCloud, store: Store):
    provider = make_provider(sim, store)
    record, ssh = await launch(sim, provider, store, "switch-broken", gpu_type=TWO_GPUS, model=BIG)
    sim.faults.unsupported_models.update({SMALLER, BIG})  # as if the image changed under the old model
    events = EventRecorder()
    with pytest.raises(SwitchFailed) as caught:
        await switch_model(record.name, SMALLER, ssh=ssh, store=store, clock=SystemClock(), emit=events,
                           options=ComposeOptions(), **FAST)
    assert not caught.value.rolled_back and "still running" in str(caught.value)
    after = store.get_session(record.name)
    assert after.state == "failed" and after.model == BIG and after.ended_at is None
    assert events.of(FailedEvent) and not events.of(RolledBackEvent)
    await destroy_session(record.name, provider=provider, store=store, clock=SystemClock(), emit=events, ssh=ssh)


class Untouchable:
    """An SSH session that fails the test if the switch touches the VM at all."""

    def __getattr__(self, name: str):
        raise AssertionError(f"the switch touched the VM ({name}) before refusing")


@pytest.mark.parametrize("model, says", [
    ("Qwen/Qwen2.5-72B-Instruct", "does not fit"),
    ("Qwen/Qwen2.5-Coder-32B-Instruct", "does not fit"),
    ("acme/no-such-model", "unknown model"),
])
async def test_a_model_that_does_not_fit_is_refused_before_touching_the_vm(store: Store, model: str, says: str):
    config = VllmConfig(model=BIG, tensor_parallel_size=2, max_model_len=32768)
    store.add_session(SessionRecord(name="switch-refused", state="ready", stage="ready", instance_id=1,
                                    gpu_type=TWO_GPUS, gpu_count=2, model=BIG, hourly_usd=1.04,
                                    vllm_config=config.to_dict()))
    before = store.get_session("switch-refused")
    events = EventRecorder()
    with pytest.raises(SwitchRefused, match=says):
        await switch_model("switch-refused", model, ssh=Untouchable(), store=store, clock=SystemClock(),
                           emit=events, options=ComposeOptions())
    assert store.get_session("switch-refused") == before
    assert events.events == [] and store.events("switch-refused") == []


async def test_only_a_ready_session_switches(store: Store):
    store.add_session(SessionRecord(name="switch-booting", state="booting", gpu_type=TWO_GPUS, gpu_count=2,
                                    model=BIG, vllm_config={"model": BIG}))
    with pytest.raises(SwitchRefused, match="not ready"):
        await switch_model("switch-booting", SMALLER, ssh=Untouchable(), store=store, clock=SystemClock(),
                           emit=EventRecorder(), options=ComposeOptions())


def test_a_switch_keeps_the_compose_options_the_session_was_launched_with():
    from maider_tui.ops.launch_plan import compose_options_of

    stored = {"compose": {"enable_openwebui": True, "vllm_port": 8001, "retired_option": 1}}
    assert compose_options_of(stored, Settings()) == ComposeOptions(enable_openwebui=True, vllm_port=8001)
    assert compose_options_of({}, None) == ComposeOptions()


# --- a switch the app died in, settled by the next attach --------------------------------------------

ONE_GPU = "g2-gpu-rtx4000a1-s"
SEVEN_B = "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ"
FOURTEEN_B = "Qwen/Qwen2.5-Coder-14B-Instruct-AWQ"


class Gate:
    """Holds one step of the sim (which runs in its own thread) until released."""

    def __init__(self) -> None:
        self.closed, self.reached = threading.Event(), threading.Event()

    async def wait(self) -> bool:
        """True when the step was held (it then resumes once released)."""
        held = self.closed.is_set()
        while self.closed.is_set():
            self.reached.set()
            await asyncio.sleep(0.01)
        return held


def vllm_gate(monkeypatch) -> Gate:
    """A gate every vLLM the sim starts waits at (while closed) before it loads its model."""
    from maider_tui.sim import docker

    gate, run_vllm = Gate(), docker.DockerEngine._run_vllm

    async def held_vllm(engine, container):
        await gate.wait()
        return await run_vllm(engine, container)

    monkeypatch.setattr(docker.DockerEngine, "_run_vllm", held_vllm)
    return gate


async def until(check, timeout: float = 15.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


def live_sessions(sim: SimCloud, store: Store, paths, events: list | None = None):
    from maider_tui.ops.live import LiveSessions

    live = LiveSessions(store=store, paths=paths, settings=Settings(), clock=SystemClock(),
                        provider=lambda: make_provider(sim, store), hf_token=lambda: None, limits=LIMITS)
    if events is not None:
        live.subscribe(events.append)
    return live


async def killed_mid_switch(live, store: Store, name: str, model: str, gate: Gate) -> None:
    """Start a switch, wait until the sim holds it at `gate` with the record marked, then drop it the
    way a SIGKILL does: no rollback, no store write, the connection simply gone."""
    task = asyncio.ensure_future(live.switch_model(name, model))
    await until(lambda: gate.reached.is_set() and SWITCH_MARK in store.get_session(name).extra)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await live.close_all()


def one_gpu_plan(paths):
    from maider_tui import catalog
    from maider_tui.ops.provision import LaunchPlan
    from maider_tui.profiles import profile_for

    gpu = catalog.gpu_type(ONE_GPU)
    # Planned exactly as a switch plans it (settings, model profile): choosing it again is "already serves".
    config = plan_config(SEVEN_B, ONE_GPU, settings=Settings(), profile=profile_for(SEVEN_B, paths)[0])
    return LaunchPlan(region=gpu.regions[0], gpu_type=gpu, config=config, compose=ComposeOptions())


async def test_a_switch_cut_short_after_compose_up_settles_to_the_new_model(sim: SimCloud, store: Store, paths,
                                                                           monkeypatch):
    from maider_tui.ops.events import WarningEvent

    gate = vllm_gate(monkeypatch)
    first = live_sessions(sim, store, paths)
    name = (await first.launch(one_gpu_plan(paths))).name
    instance_id = store.get_session(name).instance_id
    gate.closed.set()  # compose goes up with the new model; its vLLM is held before it serves
    await killed_mid_switch(first, store, name, FOURTEEN_B, gate)
    assert store.get_session(name).model == SEVEN_B  # what the dead process left

    # vLLM still loading: the next attach cannot tell which model will serve, so the mark stays.
    events: list = []
    second = live_sessions(sim, store, paths, events)
    await second.attach(name)
    record = store.get_session(name)
    assert record.model == SEVEN_B and record.extra[SWITCH_MARK]["to"]["model"] == FOURTEEN_B
    assert any(isinstance(e, WarningEvent) and "not answering" in e.message for e in events)
    await second.close_all()

    gate.closed.clear()
    await until(lambda: sim.vm(instance_id).vllm is not None)
    third = live_sessions(sim, store, paths)
    try:
        live = await third.attach(name)
        record = store.get_session(name)
        assert record.model == FOURTEEN_B and SWITCH_MARK not in record.extra
        assert VllmConfig.from_dict(record.vllm_config).model == FOURTEEN_B == live.handle.config.model
        assert f"AIDER_MODEL=openai/{FOURTEEN_B}" in (session_dir(paths, name) / "aider-env").read_text()
        assert store.events(name)[-1].kind == "switched"
        # The old model is no longer "already served": switching back works.
        config = await third.switch_model(name, SEVEN_B)
        assert config.model == SEVEN_B and await served_models(live.handle.ssh) == {SEVEN_B}
        assert store.get_session(name).model == SEVEN_B
        await third.destroy(name)
    finally:
        await third.close_all()


async def test_a_switch_cut_short_before_compose_up_settles_to_the_old_model(sim: SimCloud, store: Store, paths,
                                                                            monkeypatch):
    from maider_tui.sim import shell

    gate, cmd_docker = Gate(), shell.Shell.cmd_docker

    async def held_docker(self, argv, io):
        if "compose" in argv and "up" in argv and await gate.wait():
            return 137  # the kill landed first: compose never ran
        return await cmd_docker(self, argv, io)

    monkeypatch.setattr(shell.Shell, "cmd_docker", held_docker)
    first = live_sessions(sim, store, paths)
    name = (await first.launch(one_gpu_plan(paths))).name
    gate.closed.set()
    await killed_mid_switch(first, store, name, FOURTEEN_B, gate)
    gate.closed.clear()

    second = live_sessions(sim, store, paths)
    try:
        live = await second.attach(name)
        record = store.get_session(name)
        assert record.model == SEVEN_B and SWITCH_MARK not in record.extra
        assert store.events(name)[-1].kind == "switch_abandoned"
        assert await served_models(live.handle.ssh) == {SEVEN_B}
        await second.destroy(name)
    finally:
        await second.close_all()


async def test_while_an_interrupted_switch_is_unsettled_the_old_model_can_be_chosen_again(
        sim: SimCloud, store: Store, paths, monkeypatch):

    gate = vllm_gate(monkeypatch)
    first = live_sessions(sim, store, paths)
    name = (await first.launch(one_gpu_plan(paths))).name
    gate.closed.set()
    await killed_mid_switch(first, store, name, FOURTEEN_B, gate)
    second = live_sessions(sim, store, paths)
    try:
        live = await second.attach(name)  # vLLM held loading: the mark stays, the VM may serve either
        assert SWITCH_MARK in store.get_session(name).extra
        switching_back = asyncio.ensure_future(second.switch_model(name, SEVEN_B))
        gate.closed.clear()
        config = await switching_back  # a real switch, not "already serves"
        assert config.model == SEVEN_B and await served_models(live.handle.ssh) == {SEVEN_B}
        record = store.get_session(name)
        assert record.model == SEVEN_B and SWITCH_MARK not in record.extra
        await second.destroy(name)
    finally:
        await second.close_all()
