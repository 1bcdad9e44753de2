"""The simulated cloud's state: lifecycle by sim time, events, faults, and the API's rules."""

from __future__ import annotations

import base64

import pytest

from maider_tui.sim.faults import SimFaults
from maider_tui.sim.api_lists import matches
from maider_tui.sim.linode_api import all_regions, all_types, availability
from maider_tui.sim.world import FIRST_ID, World, WorldError, decode_user_data


class Now:
    """A hand-moved time source for World(now=...)."""

    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def now() -> Now:
    return Now()


def make(world: World, label: str = "sess-a", **kw):
    region, type_ = kw.pop("region", "us-ord"), kw.pop("type", "g2-gpu-rtx4000a1-s")
    return world.create(label, region, type_, "linode/ubuntu22.04", **kw)


def test_status_follows_sim_time_times_speed(now):
    world = World(speed=10.0, now=now)
    vm = make(world)
    assert world.status(vm) == "provisioning"
    now.t += 1.9  # 19 sim s
    assert world.status(vm) == "provisioning"
    now.t += 0.2  # 21 sim s
    assert world.status(vm) == "booting"
    now.t += 3.8  # 59 sim s
    assert world.status(vm) == "booting"
    now.t += 0.2
    assert world.status(vm) == "running"
    assert world.running_at(vm) == pytest.approx(vm.created + 6.0)
    assert world.sim_seconds_since(vm.created) == pytest.approx(61.0)


def test_slow_boot_factor_stretches_booting(now):
    world = World(speed=1.0, faults=SimFaults(slow_boot_factor=3.0), now=now)
    vm = make(world)
    now.t += 100
    assert world.status(vm) == "booting"  # 20 + 120 s of boot
    now.t += 41
    assert world.status(vm) == "running"


def test_reboot_then_running_again(now):
    world = World(now=now)
    vm = make(world)
    now.t += 61
    assert world.reboot(vm.id)
    assert world.status(vm) == "rebooting"
    now.t += 31
    assert world.status(vm) == "running"


def test_subscribers_hear_created_deleted_and_rebooted(now):
    world = World(now=now)
    heard: list[tuple[str, int]] = []
    unsubscribe = world.subscribe(lambda event, vm: heard.append((event, vm.id)))
    world.subscribe(lambda event, vm: 1 / 0)  # a broken subscriber does not stop the others
    vm = make(world)
    world.reboot(vm.id)
    assert world.delete(vm.id) is True
    assert world.delete(vm.id) is False
    unsubscribe()
    make(world, "sess-b")
    assert heard == [("created", vm.id), ("rebooted", vm.id), ("deleted", vm.id)]


def test_vanish_deletes_behind_the_clients_back(now):
    world = World(now=now)
    vm = make(world)
    assert world.vanish(vm.id)
    assert world.get(vm.id) is None and world.list() == []
    assert world.status(vm) == "deleting" and world.vanished == 1


def test_vanish_after_running_fault_fires_when_status_is_read(now):
    world = World(speed=1.0, faults=SimFaults(vm_vanish_after_s=30), now=now)
    events: list[str] = []
    world.subscribe(lambda event, vm: events.append(event))
    vm = make(world)
    now.t += 60 + 29
    assert world.status(vm) == "running"
    now.t += 2
    assert world.get(vm.id) is None
    assert events == ["created", "deleted"] and world.vanished == 1


def test_ids_addresses_and_token(now):
    world = World(now=now)
    a, b = make(world, "sess-a"), make(world, "sess-b")
    assert (a.id, b.id) == (FIRST_ID, FIRST_ID + 1)
    assert a.ipv4 != b.ipv4 and all(ip.startswith("192.0.2.") for ip in a.ipv4 + b.ipv4)
    assert world.token.startswith("sim-") and world.token != World().token
    assert world.creates == 2


def test_create_follows_the_apis_rules(now):
    world = World(now=now)
    with pytest.raises(WorldError, match="not available in region us-east") as exc:
        make(world, region="us-east")
    assert exc.value.field == "type"
    with pytest.raises(WorldError, match="does not exist"):
        make(world, type="g9-gpu-h100")
    with pytest.raises(WorldError, match="Region mars-1 does not exist"):
        make(world, region="mars-1")
    for bad in ("ab", "-leading", "two--dashes", "space here", "x" * 65):
        with pytest.raises(WorldError) as exc:
            make(world, bad)
        assert exc.value.field == "label"
    make(world, "sess.ok_1")
    with pytest.raises(WorldError, match="unique"):
        make(world, "sess.ok_1")
    world.unavailable.add(("us-ord", "g2-gpu-rtx4000a2-s"))
    with pytest.raises(WorldError, match="not available"):
        make(world, "sess-c", type="g2-gpu-rtx4000a2-s")


def test_user_data_is_base64():
    text = "#cloud-config\nruncmd: [echo hi]\n"
    assert decode_user_data(base64.b64encode(text.encode()).decode()) == text
    with pytest.raises(WorldError):
        decode_user_data("not base64!")


def test_catalog_data_the_api_serves():
    regions = all_regions()
    gpu = [r for r in regions if "GPU Linodes" in r["capabilities"]]
    assert len(gpu) == 12 and len(regions) > 12
    chicago = next(r for r in regions if r["id"] == "us-ord")
    assert (chicago["label"], chicago["country"]) == ("Chicago, IL", "us")
    assert "Metadata" in chicago["capabilities"]
    types = all_types()
    assert len([t for t in types if t["class"] == "gpu"]) == 7
    assert {t["class"] for t in types} >= {"gpu", "standard", "dedicated"}
    rtx = next(t for t in types if t["id"] == "g1-gpu-rtx6000-1")
    assert rtx["price"] == {"hourly": 1.5, "monthly": 1000.0} and rtx["gpus"] == 1
    entries = availability(World())
    assert {"region": "us-east", "plan": "g1-gpu-rtx6000-1", "available": True} in entries
    assert {"region": "us-east", "plan": "g2-gpu-rtx4000a1-s", "available": False} in entries


def test_x_filter_matching():
    vm = {"label": "sess-a", "tags": ["maider", "maider-session:sess-a"], "class": "gpu"}
    assert matches(vm, {"tags": "maider"})
    assert not matches(vm, {"tags": "bench"})
    assert matches(vm, {"+and": [{"tags": "maider"}, {"label": "sess-a"}]})
    assert matches(vm, {"+or": [{"label": "x"}, {"label": "sess-a"}]})
    assert not matches(vm, {"+and": [{"label": "x"}, {"tags": "maider"}]})
    assert matches(vm, {"label": {"+contains": "sess"}}) and matches(vm, {"class": {"+neq": "standard"}})
