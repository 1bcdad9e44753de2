"""A session's private network: VPCs on the simulated Linode API, through the app's provider."""

from __future__ import annotations

import pytest

from maider_tui.cloud.base import CreateSpec, VpcJoin
from maider_tui.cloud.errors import ProviderError
from maider_tui.cloud.vpcs import SUBNET_CIDR, node_address, vpc_label
from maider_tui.remote.ssh import generate_keypair
from maider_tui.sim import SimCloud
from tests.integration.simfix import module_sim
from tests.integration.test_destroy_recover import make_provider

sim, clean_faults = module_sim(seed=21)
KEY = generate_keypair("vpc-test").public_line
FOUR_GPUS = "g1-gpu-rtx6000-4"


def spec(label: str, region: str, join: VpcJoin | None) -> CreateSpec:
    return CreateSpec(label=label, region=region, type=FOUR_GPUS, image="linode/ubuntu22.04",
                      authorized_keys=[KEY], vpc=join)


def test_node_addresses_and_labels():
    assert [node_address(SUBNET_CIDR, i) for i in range(3)] == ["10.42.0.2", "10.42.0.3", "10.42.0.4"]
    with pytest.raises(ValueError):
        node_address("10.0.0.0/29", 6)
    assert vpc_label("Llama 70B_run") == "maider-llama-70b-run"
    assert len(vpc_label("x" * 90)) == 64


async def test_two_vms_join_the_sessions_vpc_at_their_fixed_addresses_and_the_vpc_goes_last(sim: SimCloud):
    provider = make_provider(sim)
    region = "us-east"
    network = await provider.vpcs.create("big-llama", region, "maider-tui session big-llama")
    assert network.label == "maider-big-llama" and network.cidr == SUBNET_CIDR and network.region == region
    assert await provider.vpcs.find("maider-big-llama") == network
    assert network in await provider.vpcs.list()

    head = await provider.create(spec("big-llama-0", region, VpcJoin(network.subnet_id, node_address(network.cidr, 0))))
    worker = await provider.create(spec("big-llama-1", region, VpcJoin(network.subnet_id, node_address(network.cidr, 1))))
    assert sim.world.vpcs.address_of(head.id) == "10.42.0.2"
    assert sim.world.vpcs.address_of(worker.id) == "10.42.0.3"

    with pytest.raises(ProviderError, match="already in use"):  # one address, one VM
        await provider.create(spec("big-llama-x", region, VpcJoin(network.subnet_id, "10.42.0.3")))
    with pytest.raises(ProviderError, match="another region"):
        await provider.create(spec("big-llama-y", "us-southeast", VpcJoin(network.subnet_id, "10.42.0.9")))

    with pytest.raises(ProviderError) as attached:  # Linode refuses while VMs are attached
        await provider.vpcs.delete(network.id)
    assert attached.value.kind == "invalid"
    assert await provider.destroy(head.id) and await provider.destroy(worker.id)
    assert sim.world.vpcs.address_of(head.id) is None
    assert await provider.vpcs.delete(network.id) is True
    assert await provider.vpcs.delete(network.id) is False  # already gone is not an error
    assert await provider.vpcs.find("maider-big-llama") is None


async def test_a_vpc_label_is_unique_and_a_subnet_must_be_private(sim: SimCloud):
    provider = make_provider(sim)
    network = await provider.vpcs.create("twice", "us-ord", "")
    try:
        with pytest.raises(ProviderError, match="unique"):
            await provider.vpcs.create("twice", "us-ord", "")
        with pytest.raises(ProviderError, match="private"):
            await provider.vpcs.create("public-range", "us-ord", "", cidr="8.8.8.0/24")
    finally:
        await provider.vpcs.delete(network.id)
