"""Launch against destroy, resume and a second window: a create still in flight, a name two launches
want, a session ended elsewhere. Each race is held open with the sim's `create_hold_s`."""

from __future__ import annotations

import asyncio

import pytest

from maider_tui import catalog
from maider_tui.clock import SystemClock
from maider_tui.deploy.compose import ComposeOptions
from maider_tui.ops.destroy import destroy_session
from maider_tui.ops.live import LiveSessions
from maider_tui.ops.provision import LaunchPlan, ProvisionFailed
from maider_tui.ops.session_files import client_key_path
from maider_tui.settings import Settings
from maider_tui.store import SessionRecord, open_store
from tests.integration.simfix import sim_limits

LIMITS = sim_limits(1000)
HOLD_S = 1.0  # how long the sim holds each create: the window the races below fall into


def _plan(name: str | None = None, *, auto_name: bool = False) -> LaunchPlan:
    gpu = catalog.gpu_type("g2-gpu-rtx4000a1-s")
    config = catalog.fit("Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", gpu).to_vllm_config()
    return LaunchPlan(region=gpu.regions[0], gpu_type=gpu, config=config, compose=ComposeOptions(),
                      name=name, auto_name=auto_name)


@pytest.fixture
def store(paths):
    with open_store(paths.database) as opened:
        yield opened


@pytest.fixture
async def live(sim_cloud, paths, store):
    sessions = LiveSessions(store=store, paths=paths, settings=Settings(), clock=SystemClock(),
                            provider=lambda: sim_cloud.provider(store=store), hf_token=lambda: None,
                            limits=LIMITS)
    yield sessions
    await sessions.close_all()


async def _until(done, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if done():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


def _live_vms(sim_cloud) -> list:
    return sim_cloud.world.list()


async def test_a_destroy_during_a_create_in_flight_waits_for_it_and_deletes_the_vm(sim_cloud, live, store):
    sim_cloud.faults.create_hold_s = HOLD_S
    task = live.run_in_background("held-create", live.launch(_plan("held-create")))
    await _until(lambda: (store.get_session("held-create") or SessionRecord("x")).stage == "create")
    await asyncio.sleep(0.2)  # the POST has reached the API and is held there
    assert _live_vms(sim_cloud) == []

    receipt = await live.destroy("held-create")

    record = store.get_session("held-create")
    assert task.done()
    assert record.state == "destroyed" and record.instance_id is not None
    assert _live_vms(sim_cloud) == [], "the VM the held create made must be deleted"
    assert sim_cloud.world.deletes == 1
    events = [e.message for e in store.events("held-create")]
    assert any(f"VM {record.instance_id} deleted" in m for m in events), events
    assert receipt.cost_usd >= 0


async def test_a_launched_vm_carries_the_tag_of_the_home_that_made_it(sim_cloud, live, store, paths):
    from maider_tui.cloud import home_tag

    session = await live.launch(_plan("tagged"))
    (vm,) = _live_vms(sim_cloud)
    assert home_tag(paths.data_dir) in vm.tags and "maider-session:tagged" in vm.tags
    await live.destroy(session.name)


async def test_a_session_destroyed_elsewhere_while_its_create_was_in_flight_loses_its_vm_too(
        sim_cloud, live, store, paths):
    """Another process's destroy found no VM yet (the create had not landed) and ended the session:
    the launch deletes what its create made, and the record stays destroyed."""
    sim_cloud.faults.create_hold_s = HOLD_S
    task = live.run_in_background("elsewhere", live.launch(_plan("elsewhere")))
    await _until(lambda: (store.get_session("elsewhere") or SessionRecord("x")).stage == "create")
    await asyncio.sleep(0.2)
    with open_store(paths.database) as other_window:
        await destroy_session("elsewhere", provider=sim_cloud.provider(store=other_window), store=other_window,
                              clock=SystemClock(), emit=lambda event: None)
    with pytest.raises(ProvisionFailed) as failed:
        await task
    record = store.get_session("elsewhere")
    assert record.state == "destroyed", "a terminal state is never overwritten"
    assert _live_vms(sim_cloud) == []
    assert "still running" not in failed.value.message
    assert "destroyed" in failed.value.message


async def test_two_windows_wanting_one_automatic_name_each_get_their_own(sim_cloud, live, store, paths):
    """Two windows (two connections to one database) pick the same automatic name in the same second."""
    with open_store(paths.database) as other_store:
        window = LiveSessions(store=other_store, paths=paths, settings=Settings(), clock=SystemClock(),
                              provider=lambda: sim_cloud.provider(store=other_store), hf_token=lambda: None,
                              limits=LIMITS)
        named: list[str] = []
        first = live.launch(_plan("qwen7b-20261207-101500", auto_name=True))
        second = window.launch(_plan("qwen7b-20261207-101500", auto_name=True), claim=named.append)
        results = await asyncio.gather(first, second)
        await window.close_all()
    names = sorted(session.name for session in results)
    assert names == ["qwen7b-20261207-101500", "qwen7b-20261207-101500-2"]
    assert named == [results[1].name]
    assert len(_live_vms(sim_cloud)) == 2
    assert {store.get_session(n).instance_id for n in names} == {vm.id for vm in _live_vms(sim_cloud)}


async def test_a_launch_whose_chosen_name_is_taken_claims_nothing_and_touches_nothing(sim_cloud, live, store):
    store.add_session(SessionRecord("mine-taken", state="ready", instance_id=4242, region="us-ord"))
    claimed: list[str] = []
    with pytest.raises(ProvisionFailed) as failed:
        await live.launch(_plan("mine-taken"), claim=claimed.append)
    assert claimed == []
    assert "already exists" in failed.value.message
    record = store.get_session("mine-taken")
    assert record.state == "ready" and record.instance_id == 4242, "the other session is untouched"


def test_the_store_never_overwrites_a_terminal_state(store):
    store.add_session(SessionRecord("ended-one", state="creating"))
    store.update_session("ended-one", state="destroyed", ended_at=100.0)
    after = store.update_session("ended-one", state="failed", stage="create", instance_id=7)
    assert after.state == "destroyed" and after.ended_at == 100.0
    assert after.instance_id == 7, "facts learnt later (the VM its create made) are still kept"


class _Killed(BaseException):
    """The process dies (SIGKILL): nothing of the launch runs any more, the record stays as it was."""


class _DyingProvider:
    """The real provider, except that the process dies while its create is in flight: the POST goes
    on and the sim makes the VM, but no line of the launch sees the answer."""

    def __init__(self, real) -> None:
        self.real = real
        self.in_flight: asyncio.Future | None = None

    def __getattr__(self, name: str):
        return getattr(self.real, name)

    async def create(self, spec):
        self.in_flight = asyncio.ensure_future(self.real.create(spec))
        await asyncio.sleep(0.2)  # the POST has reached the API, which holds it
        raise _Killed()


async def test_a_resume_while_the_dead_runs_create_is_in_flight_links_its_vm_with_the_same_keys(
        sim_cloud, live, store, paths):
    sim_cloud.faults.create_hold_s = HOLD_S
    dying = _DyingProvider(sim_cloud.provider(store=store))
    dead = LiveSessions(store=store, paths=paths, settings=Settings(), clock=SystemClock(),
                        provider=lambda: dying, hf_token=lambda: None, limits=LIMITS)
    with pytest.raises(_Killed):
        await dead.launch(_plan("resumed"))
    record = store.get_session("resumed")
    assert record.stage == "create" and record.instance_id is None and not dying.in_flight.done()
    key_before = client_key_path(paths, "resumed").read_text()

    session = await live.resume(record)  # its own create is held too, and lands second

    assert session.handle is not None and store.get_session("resumed").state == "ready"
    assert client_key_path(paths, "resumed").read_text() == key_before, "keys are made once per session"
    assert store.get_session("resumed").host_key == record.host_key
    assert len(_live_vms(sim_cloud)) == 1, "one VM: the resume linked the one the dead run made"
    assert store.get_session("resumed").instance_id == (await dying.in_flight).id


async def test_a_vm_the_database_cannot_record_is_deleted_again_and_the_message_says_so(
        sim_cloud, live, store, monkeypatch):
    from maider_tui.store import StoreError

    real_update = store.update_session

    def disk_full(name, **fields):
        if "instance_id" in fields:
            raise StoreError("the database failed (database or disk is full); if this happens again, "
                             "move the file aside")
        return real_update(name, **fields)

    monkeypatch.setattr(store, "update_session", disk_full)
    with pytest.raises(ProvisionFailed) as failed:
        await live.launch(_plan("disk-full"))
    message = failed.value.message
    assert sim_cloud.world.creates == 1 and _live_vms(sim_cloud) == [], "no VM bills unrecorded"
    assert "was created but the database could not record it" in message and "deleted again" in message
    assert "still running" not in message


async def test_a_vm_of_the_same_name_from_another_home_is_never_linked_nor_destroyed(sim_cloud, live, store):
    """Two machines on one account, each with a session called `shared-name`: this home's launch
    meets the label clash and stops; its destroy by label leaves the other machine's VM alone."""
    from maider_tui.cloud import CreateSpec, home_tag

    provider = sim_cloud.provider(store=store)
    gpu = catalog.gpu_type("g2-gpu-rtx4000a1-s")
    other = await provider.create(CreateSpec(
        label="shared-name", region=gpu.regions[0], type=gpu.id, image="linode/ubuntu24.04",
        authorized_keys=["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBu7nkV0rJ1S3ff2a1I4d0Wb7x6xHCnCx0jH3V7z2Jc1 x"],
        tags=[home_tag("/elsewhere", host="other-machine")]))
    with pytest.raises(ProvisionFailed) as failed:
        await live.launch(_plan("shared-name"))
    assert "labelled shared-name" in failed.value.message and "another session name" in failed.value.message
    assert store.get_session("shared-name").instance_id is None
    await live.destroy("shared-name")
    assert [vm.id for vm in _live_vms(sim_cloud)] == [other.id], "the other machine's VM is untouched"
    assert "no VM had been created" in store.events("shared-name")[-1].message
