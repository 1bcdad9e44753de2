"""Destroy and recovery against the simulated cloud: real HTTP to the fake Linode API, real SSH to its VMs.

Most sessions are set up directly by `launch` (the steps provisioning takes: record, create with a
pinned host key, SSH, compose up, wait for vLLM), so a test can stop at any stage exactly; the
crash-at-every-stage test runs the real provision() and cancels it.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from maider_tui import catalog
from maider_tui.clock import SystemClock
from maider_tui.cloud import CreateSpec, LinodeProvider, ProviderError, Vm
from maider_tui.deploy import cloud_init
from maider_tui.deploy.compose import ENV_PATH, ComposeOptions, env_file_text
from maider_tui.ops.destroy import destroy_session
from maider_tui.ops.events import DestroyedEvent, EventRecorder, FailedEvent, StageEvent, WarningEvent
from maider_tui.ops.heal import diagnose
from maider_tui.ops.provision import STAGE_NAMES, LaunchPlan, provision
from maider_tui.ops.readiness import wait_vllm
from maider_tui.ops.recover import adopt_orphan, destroy_orphan, recover
from maider_tui.ops.session_files import client_key_path, session_dir, write_private
from maider_tui.ops.switch_model import deploy_compose, plan_config
from maider_tui.remote.ssh import SshSession, generate_keypair
from maider_tui.settings import Settings
from maider_tui.sim import SimCloud
from maider_tui.store import SessionRecord, Store, open_store

from tests.integration.simfix import module_sim, reset_faults, sim_limits, ssh_when_up

REGION = "us-ord"
ONE_GPU = "g2-gpu-rtx4000a1-s"
SMALL_MODEL = "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ"
CLIENT = generate_keypair("client")
# Real-time limits far above what the sim at speed 1000 needs; polls short.
LIMITS = sim_limits(1000)


sim, clean_faults = module_sim(seed=4)  # the module's cloud; faults reset around each test


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with open_store(tmp_path / "db.sqlite3") as db:
        yield db


def make_provider(sim: SimCloud, store: Store | None = None) -> LinodeProvider:
    """The app's provider on the sim, with retries short enough for a test (the real ones back off 15 s)."""
    return LinodeProvider(sim.token, base_url=sim.linode_base_url, store=store,
                          ssh_resolver=sim.ssh_address, retry_delays=(0.01, 0.02))


async def launch(sim: SimCloud, provider: LinodeProvider, store: Store, name: str, *, gpu_type: str = ONE_GPU,
                 model: str = SMALL_MODEL, until: str = "ready") -> tuple[SessionRecord, SshSession | None]:
    """Set a session up the way provisioning does, stopping after stage `until`.

    Stages: record (the store row only), create (the VM exists, its id not yet recorded), booting
    (id recorded), upload (SSH and cloud-init done, files uploaded, vLLM not started), ready.
    """
    host = generate_keypair("host")
    config = plan_config(model, gpu_type)
    record = store.add_session(SessionRecord(
        name=name, state="creating", stage="record", region=REGION, gpu_type=gpu_type,
        gpu_count=catalog.gpu_type(gpu_type).gpus, model=model,
        host_key=host.public_line, vllm_config=config.to_dict()))
    if until == "record":
        return record, None
    store.update_session(name, stage="create")
    user_data = cloud_init.render(host_key_private=host.private_pem, host_key_public=host.public_line)
    vm = await provider.create(CreateSpec(label=name, region=REGION, type=gpu_type, image="linode/ubuntu24.04",
                                          authorized_keys=[CLIENT.public_line], user_data=user_data))
    if until == "create":
        return store.get_session(name), None
    record = store.update_session(name, instance_id=vm.id, hourly_usd=vm.hourly_usd or 0.0, state="booting",
                                  stage="wait_running")
    if until == "booting":
        return record, None
    ssh = await connect(sim, vm.id, host.public_line)
    assert (await ssh.run("cloud-init status --wait", timeout=30)).ok
    options = ComposeOptions()
    await ssh.put(ENV_PATH, env_file_text(None).encode(), 0o600)
    store.update_session(name, stage="upload")
    if until == "upload":
        return store.get_session(name), ssh
    await deploy_compose(ssh, config, options, LIMITS)
    served = await wait_vllm(ssh, await ssh.forward(options.vllm_port), config, LIMITS, SystemClock(), diagnose)
    assert served.ready, served.reason
    record = store.update_session(name, state="ready", stage="ready", ready_at=time.time())
    return record, ssh


async def connect(sim: SimCloud, vm_id: int, host_key: str) -> SshSession:
    return await ssh_when_up(sim.ssh_address(vm_id), CLIENT.private_pem, host_key, timeout=15, backoff=(0.05,))


def bare_vm(label: str, gpu_type: str = ONE_GPU) -> CreateSpec:
    """A VM with our tags (the provider adds them) and no session: what a crashed client leaves."""
    return CreateSpec(label=label, region=REGION, type=gpu_type, image="linode/ubuntu24.04",
                      authorized_keys=[CLIENT.public_line])


def sim_ids(sim: SimCloud) -> set[int]:
    return {i.id for i in sim.world.list()}


# --- destroy --------------------------------------------------------------------------------------

async def test_destroy_a_live_session(sim: SimCloud, store: Store, paths):
    provider = make_provider(sim, store)
    record, ssh = await launch(sim, provider, store, "destroy-live")
    store.update_session(record.name, created_at=time.time() - 1800)  # half an hour of renting
    write_private(client_key_path(paths, record.name), CLIENT.private_pem)
    events = EventRecorder()
    receipt = await destroy_session(record.name, provider=provider, store=store, clock=SystemClock(),
                                    emit=events, ssh=ssh, paths=paths)
    assert record.instance_id not in sim_ids(sim)
    assert ssh.state == "closed"
    assert not session_dir(paths, record.name).exists()  # the key of a deleted VM is of no use
    after = store.get_session(record.name)
    assert after.state == "destroyed" and after.ended_at is not None and after.ended
    assert receipt.hours == pytest.approx(0.5, abs=0.01)
    assert after.cost_usd == pytest.approx(receipt.cost_usd) == pytest.approx(0.5 * record.hourly_usd, rel=0.02)
    assert receipt.billed_hours == 1
    assert receipt.tokens and receipt.tokens > 0  # the readiness test completion generated some
    assert after.tokens_generated == receipt.tokens
    [destroyed] = events.of(DestroyedEvent)
    assert destroyed.cost_usd == receipt.cost_usd and destroyed.usd_per_1k_tokens is not None
    assert any(e.kind == "destroyed" for e in store.events(record.name))
    # Destroying again is harmless: the stored receipt, no API call needed.
    again = await destroy_session(record.name, provider=provider, store=store, clock=SystemClock(), emit=events)
    assert again.cost_usd == pytest.approx(receipt.cost_usd)


async def test_destroy_when_the_vm_is_already_gone(sim: SimCloud, store: Store):
    provider = make_provider(sim, store)
    record, _ = await launch(sim, provider, store, "destroy-gone", until="booting")
    sim.world.vanish(record.instance_id)
    events = EventRecorder()
    await destroy_session(record.name, provider=provider, store=store, clock=SystemClock(), emit=events)
    assert store.get_session(record.name).state == "destroyed"
    assert "already gone" in store.events(record.name)[-1].message
    assert events.of(DestroyedEvent)


async def test_destroy_finds_the_vm_of_a_session_that_crashed_during_create(sim: SimCloud, store: Store):
    provider = make_provider(sim, store)
    record, _ = await launch(sim, provider, store, "destroy-mid-create", until="create")
    assert record.instance_id is None and (vm := await provider.find_label(record.name)) is not None
    await destroy_session(record.name, provider=provider, store=store, clock=SystemClock(), emit=EventRecorder())
    assert vm.id not in sim_ids(sim)
    assert store.get_session(record.name).state == "destroyed"


@pytest.mark.parametrize("fault", ["server_errors", "refused_token"])
async def test_destroy_failing_api_leaves_everything_as_it_was(sim: SimCloud, store: Store, fault: str, paths):
    provider = make_provider(sim, store)
    record, _ = await launch(sim, provider, store, f"destroy-{fault.replace('_', '-')}", until="booting")
    write_private(client_key_path(paths, record.name), CLIENT.private_pem)
    before = store.get_session(record.name)
    if fault == "server_errors":
        sim.faults.api_error_burst = 1000  # longer than any retry schedule
    else:
        provider = LinodeProvider("not-the-token", base_url=sim.linode_base_url, retry_delays=(0.01,))
    events = EventRecorder()
    with pytest.raises(ProviderError) as caught:
        await destroy_session(record.name, provider=provider, store=store, clock=SystemClock(), emit=events,
                              paths=paths)
    assert caught.value.kind == ("server" if fault == "server_errors" else "auth")
    assert client_key_path(paths, record.name).exists()  # the VM may still exist: its key stays
    reset_faults(sim.faults)
    assert store.get_session(record.name) == before  # state, ended_at, cost: untouched
    assert record.instance_id in sim_ids(sim)
    assert events.of(FailedEvent) and not events.of(DestroyedEvent)
    assert store.events(record.name)[-1].kind == "destroy_failed"
    await make_provider(sim).destroy(record.instance_id)


# --- recover --------------------------------------------------------------------------------------

async def test_orphan_is_reported_then_adopted_or_destroyed(sim: SimCloud, store: Store):
    provider = make_provider(sim, store)
    first = await provider.create(bare_vm("stray-one"))
    second = await provider.create(bare_vm("stray-two", "g2-gpu-rtx4000a2-s"))
    events = EventRecorder()
    report = await recover(provider=provider, store=store, clock=SystemClock(), emit=events)
    orphans = {o.id: o for o in report.orphans}
    assert {first.id, second.id} <= set(orphans)
    assert orphans[first.id].hourly_usd == pytest.approx(0.52)
    assert orphans[second.id].hourly_usd == pytest.approx(1.04)
    assert "no session" in orphans[first.id].reason
    assert store.list_sessions() == []  # nothing recorded without the user's choice
    assert len(events.of(WarningEvent)) >= 2

    adopted = await adopt_orphan(orphans[first.id].vm, store=store, clock=SystemClock())
    assert adopted.state == "unreachable" and adopted.instance_id == first.id and adopted.hourly_usd == 0.52
    assert store.get_session("stray-one").extra["adopted"] is True
    with pytest.raises(ValueError, match="destroy the session"):
        await destroy_orphan(first.id, provider=provider, store=store)

    assert await destroy_orphan(second.id, provider=provider, store=store) is True
    assert second.id not in sim_ids(sim)
    assert await destroy_orphan(second.id, provider=provider, store=store) is False
    report = await recover(provider=provider, store=store, clock=SystemClock())
    assert first.id not in {o.id for o in report.orphans} and "stray-one" in report.healthy
    await destroy_session("stray-one", provider=provider, store=store, clock=SystemClock(), emit=events)


async def test_a_vanished_vm_ends_its_session(sim: SimCloud, store: Store):
    provider = make_provider(sim, store)
    record, _ = await launch(sim, provider, store, "vanishing", until="booting")
    store.update_session(record.name, state="ready", stage="ready", ready_at=time.time(),
                         created_at=time.time() - 7200)
    sim.world.vanish(record.instance_id)
    report = await recover(provider=provider, store=store, clock=SystemClock())
    assert report.gone == ["vanishing"]
    after = store.get_session("vanishing")
    assert after.state == "ended" and after.ended and after.extra["gone"] is True
    assert after.cost_usd == pytest.approx(2 * record.hourly_usd, rel=0.01)
    assert store.events("vanishing")[-1].kind == "gone"
    # The cost stopped: a second recovery finds nothing to do and changes nothing.
    again = await recover(provider=provider, store=store, clock=SystemClock())
    assert "vanishing" not in again.gone and store.get_session("vanishing") == after


async def test_recover_with_the_api_failing_marks_nothing(sim: SimCloud, store: Store):
    provider = make_provider(sim, store)
    record, _ = await launch(sim, provider, store, "api-down", until="booting")
    sim.world.vanish(record.instance_id)
    before = store.get_session(record.name)
    sim.faults.api_error_burst = 1000
    with pytest.raises(ProviderError):
        await recover(provider=provider, store=store, clock=SystemClock())
    reset_faults(sim.faults)
    assert store.get_session(record.name) == before


@pytest.mark.parametrize("until", ["record", "create", "booting", "upload"])
async def test_a_launch_stopped_midway_is_resumable(sim: SimCloud, store: Store, until: str):
    provider = make_provider(sim, store)
    name = f"stuck-at-{until}"
    record, ssh = await launch(sim, provider, store, name, until=until)
    report = await recover(provider=provider, store=store, clock=SystemClock())
    [resumable] = [r for r in report.resumable if r.name == name]
    assert resumable.stage == record.stage
    assert name not in report.gone and name not in report.healthy
    vm = await provider.find_label(name)
    if until == "record":
        assert vm is None and resumable.instance_id is None
    else:  # a VM made before the crash recorded its id is found by its label and linked
        assert resumable.instance_id == vm.id
        assert vm.id not in {o.id for o in report.orphans}
        assert (name in report.linked) == (until == "create")
    if ssh is not None:
        await ssh.close()
    await destroy_session(name, provider=provider, store=store, clock=SystemClock(), emit=EventRecorder())


UNBROKEN = ("tunnel", "aider", "ready")


async def test_a_crash_at_every_stage_of_provisioning_leaves_no_vm_unaccounted_for(sim: SimCloud, store: Store,
                                                                                 paths):
    """Cancel provision() at each of its stages in turn (the app dying there), then recover.

    tunnel, aider and ready follow each other without a pause (no await between them), so a crash
    there is a crash after ready: those launches finish, and their connection is dropped.
    """
    provider = make_provider(sim, store)
    gpu = catalog.gpu_type(ONE_GPU)
    config = plan_config(SMALL_MODEL, ONE_GPU)
    names = {}
    for stage in STAGE_NAMES:
        name = names[stage] = f"crash-{stage.replace('_', '-')}"
        plan = LaunchPlan(region=REGION, gpu_type=gpu, config=config, name=name)
        task: asyncio.Task | None = None

        def crash_at(event, stage=stage):
            if isinstance(event, StageEvent) and event.stage == stage and stage not in UNBROKEN:
                task.cancel()

        task = asyncio.create_task(provision(plan, provider=provider, store=store, paths=paths,
                                             settings=Settings(), clock=SystemClock(), emit=crash_at,
                                             hf_token=None, limits=LIMITS))
        if stage in UNBROKEN:
            handle = await task
            await handle.close()  # crashing once ready: the VM serves on, nobody watches it
        else:
            with pytest.raises(asyncio.CancelledError):
                await task
        if STAGE_NAMES.index(stage) <= STAGE_NAMES.index("create"):
            # A create call cancelled in flight may still reach the API from its worker thread: let it land.
            await asyncio.sleep(0.3)
    stray = await provider.create(bare_vm("crash-stray"))
    report = await recover(provider=provider, store=store, clock=SystemClock())

    claimed = {r.instance_id for r in store.list_sessions(include_ended=False) if r.instance_id is not None}
    orphaned = {o.id for o in report.orphans}
    ours = {vm.id for vm in await provider.list()}
    assert ours == sim_ids(sim)
    assert ours <= claimed | orphaned, "a VM is neither a session's nor reported as an orphan"
    assert not claimed & orphaned and stray.id in orphaned
    assert store.get_session(names["token"]) is None  # stopped before anything was recorded
    interrupted = {r.name: r.stage for r in report.resumable}
    crashed = [s for s in STAGE_NAMES if s not in UNBROKEN and s != "token"]
    assert set(interrupted) == {names[s] for s in crashed}
    for stage in crashed:  # the record is at the stage of the crash, or a later one reached without a pause
        assert STAGE_NAMES.index(interrupted[names[stage]]) >= STAGE_NAMES.index(stage)
    assert sorted(report.healthy) == sorted(names[s] for s in UNBROKEN)
    # A create cancelled in flight may or may not have reached the API (the worker thread races the
    # cancel); either way, a VM made for a session is that session's, never an orphan.
    assert [o.label for o in report.orphans if o.label.startswith("crash-")] == ["crash-stray"]
    made = {vm.label: vm.id for vm in await provider.list()}
    for record in report.resumable:
        assert record.instance_id == made.get(record.name)
        if STAGE_NAMES.index(record.stage) > STAGE_NAMES.index("create"):
            assert record.instance_id is not None

    for name in names.values():
        if store.get_session(name) is not None:
            await destroy_session(name, provider=provider, store=store, clock=SystemClock(), emit=EventRecorder())
    await destroy_orphan(stray.id, provider=provider, store=store)
    final = await recover(provider=provider, store=store, clock=SystemClock())
    assert not final.resumable and not final.healthy and not final.gone
    assert not [o for o in final.orphans if o.label.startswith("crash-")]


async def test_adopting_a_vm_that_answers_makes_it_ready(store: Store):
    vm = Vm(id=42, label="found-again", region=REGION, type="g2-gpu-rtx4000a2-s", status="running",
            ipv4=("192.0.2.9",), tags=("maider",), created=time.time() - 600, hourly_usd=None)
    store.add_session(SessionRecord(name="found-again", state="destroyed", ended_at=time.time()))
    probed = []

    async def probe(record: SessionRecord) -> bool:
        probed.append(record.state)
        return True

    record = await adopt_orphan(vm, store=store, clock=SystemClock(), probe=probe)
    assert probed == ["orphan"]
    assert record.name == "found-again-42"  # the old, ended session keeps its own history
    assert record.state == "ready" and record.ready_at is not None
    assert record.hourly_usd == 1.04 and record.gpu_count == 2  # price from the catalog when the API has none
    assert record.created_at == vm.created  # billed since the VM was made, not since it was found
