"""A session over several VMs, as destroy and start-up recovery see it: every VM and the private
network go with the session; workers are never orphans; a lost worker is said; stray networks go."""

from __future__ import annotations

from pathlib import Path

import pytest

from maider_tui.clock import SystemClock
from maider_tui.cloud import home_tag, node_label, session_tag
from maider_tui.cloud.base import CreateSpec, VpcJoin
from maider_tui.cloud.vpcs import node_address, vpc_label
from maider_tui.ops.destroy import destroy_session
from maider_tui.ops.events import EventRecorder
from maider_tui.ops.recover import recover
from maider_tui.remote.ssh import generate_keypair
from maider_tui.sim import SimCloud
from maider_tui.store import NodeRecord, SessionRecord, Store, open_store
from tests.integration.simfix import module_sim
from tests.integration.test_destroy_recover import make_provider

sim, clean_faults = module_sim(seed=31)
PLAN, REGION = "g1-gpu-rtx6000-4", "us-east"
KEY = generate_keypair("cluster").public_line


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with open_store(tmp_path / "data" / "db.sqlite3") as db:
        yield db


async def cluster(sim: SimCloud, store: Store, name: str, *, record_worker: bool = True):
    """A two-VM session as a launch leaves it once its VMs exist: the record, its nodes, its network."""
    provider = make_provider(sim, store)
    home = home_tag(Path(store.path).parent)
    store.add_session(SessionRecord(name, state="ready", region=REGION, gpu_type=PLAN, gpu_count=8, nodes=2,
                                    hourly_usd=12.0, model="meta-llama/Llama-3.1-70B-Instruct"))
    network = await provider.vpcs.create(name, REGION, f"maider-tui session {name} ({home})")
    store.update_session(name, vpc_id=network.id)
    vms = []
    for index in range(2):
        address = node_address(network.cidr, index)
        vms.append(await provider.create(CreateSpec(
            label=node_label(name, index), region=REGION, type=PLAN, image="linode/ubuntu22.04",
            authorized_keys=[KEY], tags=[home], vpc=VpcJoin(network.subnet_id, address), session=name)))
    store.update_session(name, instance_id=vms[0].id)
    store.add_nodes([NodeRecord(name, 0, node_address(network.cidr, 0), "ready", vms[0].id),
                     NodeRecord(name, 1, node_address(network.cidr, 1), "ready",
                                vms[1].id if record_worker else None)])
    return provider, network, vms


def gone(sim: SimCloud, vm_id: int) -> bool:
    return sim.world.get(vm_id) is None


@pytest.mark.parametrize("record_worker", [True, False], ids=["recorded", "worker-id-never-recorded"])
async def test_destroy_takes_every_vm_and_then_the_network(sim, store, record_worker):
    provider, network, vms = await cluster(sim, store, f"big-{int(record_worker)}", record_worker=record_worker)
    name = f"big-{int(record_worker)}"
    assert session_tag(name) in vms[1].tags
    events = EventRecorder()
    receipt = await destroy_session(name, provider=provider, store=store, clock=SystemClock(), emit=events)
    assert all(gone(sim, vm.id) for vm in vms)
    assert sim.world.vpcs.get(network.id) is None
    assert store.get_session(name).state == "destroyed"
    assert [n.state for n in store.nodes(name)] == ["destroyed", "destroyed"]
    assert receipt.cost_usd >= 0 and any(e.kind == "network_removed" for e in store.events(name))
    [destroyed] = [e for e in store.events(name) if e.kind == "destroyed"]
    assert sorted(destroyed.data["instance_ids"]) == sorted(vm.id for vm in vms)


async def test_a_network_that_will_not_go_is_said_and_left_for_the_sweep(sim, store, monkeypatch):
    provider, network, vms = await cluster(sim, store, "sticky")

    async def refuse(vpc_id):
        from maider_tui.cloud.errors import ProviderError
        raise ProviderError("VPC has Linodes attached", "invalid", status=400)

    monkeypatch.setattr(provider.vpcs, "delete", refuse)
    monkeypatch.setattr("maider_tui.ops.destroy.NETWORK_RETRY_S", 0.0)
    events = EventRecorder()
    await destroy_session("sticky", provider=provider, store=store, clock=SystemClock(), emit=events)
    assert all(gone(sim, vm.id) for vm in vms)  # the VMs, which cost money, went regardless
    assert store.get_session("sticky").state == "destroyed"
    assert any("the next start removes it" in e.message for e in store.events("sticky"))
    monkeypatch.undo()
    report = await recover(provider=make_provider(sim, store), store=store, clock=SystemClock())
    assert vpc_label("sticky") in report.networks_removed and sim.world.vpcs.get(network.id) is None


async def test_recovery_claims_workers_links_an_unrecorded_one_and_says_when_one_is_lost(sim, store):
    provider, _, vms = await cluster(sim, store, "claims", record_worker=False)
    report = await recover(provider=provider, store=store, clock=SystemClock())
    assert not report.orphans  # the worker is the session's, not an orphan
    assert store.nodes("claims")[1].instance_id == vms[1].id
    assert any(e.kind == "recovered" and e.data.get("node") == 1 for e in store.events("claims"))

    sim.world.vanish(vms[1].id)
    report = await recover(provider=provider, store=store, clock=SystemClock())
    assert report.degraded == ["claims"] and not report.clean
    assert store.nodes("claims")[1].state == "lost"
    assert "claims" not in report.gone  # the head still bills: the session is not over by itself
    await destroy_session("claims", provider=provider, store=store, clock=SystemClock(), emit=EventRecorder())


async def test_stray_networks_of_this_home_go_and_others_stay(sim, store):
    provider = make_provider(sim, store)
    home = home_tag(Path(store.path).parent)
    stray = await provider.vpcs.create("left-behind", REGION, f"maider-tui session left-behind ({home})")
    theirs = await provider.vpcs.create("elsewhere", REGION, "maider-tui session elsewhere (maider-home:abc)")
    store.add_session(SessionRecord("launching", state="creating", region=REGION, gpu_type=PLAN, nodes=2))
    mine = await provider.vpcs.create("launching", REGION, f"maider-tui session launching ({home})")
    report = await recover(provider=provider, store=store, clock=SystemClock())
    assert report.networks_removed == [stray.label]
    assert sim.world.vpcs.get(theirs.id) is not None and sim.world.vpcs.get(mine.id) is not None
    for network in (theirs, mine):
        await provider.vpcs.delete(network.id)


async def test_a_switch_or_a_heal_without_every_vms_connection_is_refused(sim, store, paths):
    from maider_tui.models import VllmConfig
    from maider_tui.ops.switch_model import SwitchRefused, switch_model
    from maider_tui.ops.vllm_care import CareError, apply_heal

    provider, _, _ = await cluster(sim, store, "no-switch")
    with pytest.raises(SwitchRefused, match="spans 2 VMs"):  # the single-VM switch: it has no worker's connection
        await switch_model("no-switch", "Qwen/Qwen2.5-72B-Instruct", ssh=None, store=store, clock=SystemClock(),
                           emit=EventRecorder())

    class Live:  # what apply_heal reads of the live-session service
        def __init__(self) -> None:
            self.store, self.settings, self.limits = store, None, None

        def get(self, name):
            class Handle:
                workers: list = []  # the worker's connection is missing

            class Session:
                handle = Handle()
            return Session()

    with pytest.raises(CareError, match="not all connected"):
        await apply_heal(Live(), "no-switch", VllmConfig(model="m"), "a change")
    await destroy_session("no-switch", provider=provider, store=store, clock=SystemClock(), emit=EventRecorder())


async def test_a_session_whose_head_is_gone_at_start_leaves_its_workers_as_orphans_to_decide_on(sim, store):
    """The head deleted while the app was closed: the session is over (nothing serves without it), and
    its workers, which still bill, are not quietly kept as its own: they are orphans, offered for destroy
    and counted down, each saying whose worker it was."""
    provider, _, vms = await cluster(sim, store, "headless")
    sim.world.vanish(vms[0].id)
    report = await recover(provider=provider, store=store, clock=SystemClock())
    assert report.gone == ["headless"] and store.get_session("headless").ended
    (orphan,) = [o for o in report.orphans if o.label.startswith("headless")]
    assert orphan.id == vms[1].id
    assert "worker VM 1 of session headless" in orphan.reason and "head VM is gone" in orphan.reason
    await provider.destroy(orphan.id)
