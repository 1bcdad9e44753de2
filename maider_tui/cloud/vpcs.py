"""A session's private network on Linode: one VPC with one subnet, through linode_api4.

A session that spans several VMs puts them in a VPC of its own, so Ray and NCCL talk over private
addresses and nothing new listens on a public one. Each VM gets a fixed address in the subnet (the
head .2, the workers .3 and up), known before the VMs exist, so every node's cloud-init can name them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from linode_api4 import VPC, LinodeClient

from maider_tui.cloud.base import VpcNetwork
from maider_tui.cloud.errors import ProviderError, create_once

SUBNET_CIDR = "10.42.0.0/24"
SUBNET_LABEL = "nodes"
VPC_PREFIX = "maider-"

Call = Callable[..., Awaitable[Any]]


def node_address(cidr: str, index: int) -> str:
    """The fixed address of node `index` (0 = the head) in the subnet: .2, .3, ... (.1 is the gateway)."""
    network = ipaddress.ip_network(cidr)
    if not 0 <= index < network.num_addresses - 3:
        raise ValueError(f"node {index} does not fit in {cidr}")
    return str(network.network_address + 2 + index)


def vpc_label(session: str) -> str:
    """The VPC's label for a session: Linode wants lowercase letters, digits and dashes, at most 64."""
    cleaned = "".join(c if c.isalnum() else "-" for c in session.lower()).strip("-")
    return (VPC_PREFIX + cleaned)[:64].rstrip("-")


class LinodeVpcs:
    """VPCs of the account, through the provider's client and its retrying `call`."""

    def __init__(self, client: LinodeClient, call: Call, delays: Sequence[float],
                 pause: Callable[[ProviderError, int], Awaitable[None]]) -> None:
        self._client, self._call, self._delays, self._pause = client, call, delays, pause

    def _network(self, vpc: Any) -> VpcNetwork | None:
        subnets = list(vpc.subnets)
        if not subnets:
            return None
        subnet = subnets[0]
        return VpcNetwork(int(vpc.id), str(vpc.label), str(getattr(vpc.region, "id", vpc.region)),
                          int(subnet.id), str(subnet.ipv4), str(vpc.description or ""))

    async def create(self, session: str, region: str, description: str, cidr: str = SUBNET_CIDR) -> VpcNetwork:
        """The session's VPC with its one subnet. A create that may have reached Linode is retried only
        after its label was looked up and not found; if found, that VPC is the answer."""
        label = vpc_label(session)

        def post() -> VpcNetwork:
            vpc = self._client.vpcs.create(label, region, description=description,
                                           subnets=[{"label": SUBNET_LABEL, "ipv4": cidr}])
            network = self._network(vpc)
            if network is None:
                raise ProviderError(f"Linode made VPC {label} without its subnet", "server")
            return network

        return await create_once(lambda: self._call(post, retry=False, region=region),
                                 lambda failure: self.find(label), self._delays, self._pause)

    async def find(self, label: str) -> VpcNetwork | None:
        """The VPC with this label, or None."""

        def fetch() -> VpcNetwork | None:
            for vpc in self._client.vpcs(VPC.label == label):
                if vpc.label == label:
                    return self._network(vpc)
            return None

        result: VpcNetwork | None = await self._call(fetch)
        return result

    async def list(self, prefix: str = VPC_PREFIX) -> list[VpcNetwork]:  # noqa: A003 - as Provider.list
        """The account's VPCs whose label starts with `prefix` (the app's own)."""

        def fetch() -> list[VpcNetwork]:
            found = (self._network(v) for v in self._client.vpcs() if str(v.label).startswith(prefix))
            return [n for n in found if n is not None]

        result: list[VpcNetwork] = await self._call(fetch)
        return result

    async def delete(self, vpc_id: int) -> bool:
        """Delete the VPC; False when it was already gone. Linode refuses while a VM is attached
        (ProviderError kind "invalid"): delete the VMs first."""

        def remove() -> None:
            VPC(self._client, vpc_id).delete()

        try:
            await self._call(remove)
            return True
        except ProviderError as err:
            if err.kind == "not_found":
                return False
            raise
