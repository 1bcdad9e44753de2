"""The simulated Linode VPCs: `/vpcs`, their subnets, and instances joined to them at create time.

What Linode documents, as far as the app uses it: `POST /vpcs` with a label, a region and subnets
(`ipv4` a private CIDR); an instance joins through `interfaces` (a `public` one and a `vpc` one with
`subnet_id`, and optionally `ipv4.vpc`, its address in the subnet); a VPC cannot be deleted while an
instance is attached; traffic inside it is private. Each VM's VPC address is what Ray and NCCL use.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from maider_tui.sim.world import WorldError

FIRST_VPC_ID = 7000
LABEL = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}[a-z0-9]$|^[a-z0-9]$")


@dataclass
class SimSubnet:
    id: int
    label: str
    ipv4: str  # a CIDR, e.g. "10.0.0.0/24"
    created: float
    addresses: dict[int, str] = field(default_factory=dict)  # instance id -> its address here

    def next_free(self) -> str:
        network = ipaddress.ip_network(self.ipv4)
        used = set(self.addresses.values())
        # .1 is the gateway, as on Linode: hosts start at .2.
        for host in list(network.hosts())[1:]:
            if str(host) not in used:
                return str(host)
        raise WorldError(f"Subnet {self.label} has no free address", "interfaces")


@dataclass
class SimVpc:
    id: int
    label: str
    region: str
    description: str
    created: float
    subnets: list[SimSubnet] = field(default_factory=list)


@dataclass(frozen=True)
class Attachment:
    """An instance's VPC interface, as the create call asked for it and the sim settled it."""

    vpc_id: int
    subnet_id: int
    address: str


class SimVpcs:
    """Every VPC of the simulated account."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self.vpcs: dict[int, SimVpc] = {}
        self._next_id = FIRST_VPC_ID
        self.deleted = 0

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def create(self, body: dict[str, Any], regions: set[str]) -> SimVpc:
        label, region = body.get("label"), body.get("region")
        if not isinstance(label, str) or not LABEL.match(label):
            raise WorldError("Label must be 1-64 lowercase letters, digits and dashes", "label")
        if any(v.label == label for v in self.vpcs.values()):
            raise WorldError("Label must be unique among your VPCs", "label")
        if region not in regions:
            raise WorldError("Region does not support VPCs", "region")
        vpc = SimVpc(self._new_id(), label, str(region), str(body.get("description") or ""), self._now())
        for index, subnet in enumerate(body.get("subnets") or []):
            vpc.subnets.append(self._subnet(vpc, subnet, f"subnets[{index}]"))
        self.vpcs[vpc.id] = vpc
        return vpc

    def _subnet(self, vpc: SimVpc, body: Any, where: str) -> SimSubnet:
        if not isinstance(body, dict) or not isinstance(body.get("label"), str) or not body.get("ipv4"):
            raise WorldError("A subnet needs a label and an ipv4 range", where)
        try:
            network = ipaddress.ip_network(str(body["ipv4"]))
        except ValueError:
            raise WorldError("ipv4 must be an IPv4 range in CIDR notation", f"{where}.ipv4") from None
        if not network.is_private or network.prefixlen > 29:
            raise WorldError("ipv4 must be a private range of at least /29", f"{where}.ipv4")
        if any(s.label == body["label"] for s in vpc.subnets):
            raise WorldError("Subnet labels must be unique in a VPC", f"{where}.label")
        return SimSubnet(self._new_id(), body["label"], str(network), self._now())

    def get(self, vpc_id: int) -> SimVpc | None:
        return self.vpcs.get(vpc_id)

    def delete(self, vpc_id: int) -> None:
        vpc = self.vpcs.get(vpc_id)
        if vpc is None:
            raise WorldError("Not found", status=404)
        if any(s.addresses for s in vpc.subnets):
            raise WorldError("VPC has Linodes attached: delete or detach them first", status=400)
        del self.vpcs[vpc_id]
        self.deleted += 1

    def plan_attachment(self, interfaces: Any, region: str) -> Attachment | None:
        """Check a create call's `interfaces` and choose the VPC address; nothing is attached yet."""
        if interfaces is None:
            return None
        if not isinstance(interfaces, list) or not 1 <= len(interfaces) <= 3:
            raise WorldError("interfaces must be a list of 1 to 3 interfaces", "interfaces")
        purposes = [i.get("purpose") if isinstance(i, dict) else None for i in interfaces]
        if any(p not in ("public", "vlan", "vpc") for p in purposes):
            raise WorldError("Each interface needs a purpose: public, vlan or vpc", "interfaces")
        if purposes.count("public") > 1 or purposes.count("vpc") > 1:
            raise WorldError("At most one public and one vpc interface", "interfaces")
        wanted = next((i for i in interfaces if i["purpose"] == "vpc"), None)
        if wanted is None:
            return None
        subnet, vpc = self._find_subnet(wanted.get("subnet_id"))
        if vpc.region != region:
            raise WorldError("The subnet's VPC is in another region than the Linode", "interfaces.subnet_id")
        address = ((wanted.get("ipv4") or {}).get("vpc")) or subnet.next_free()
        if ipaddress.ip_address(address) not in ipaddress.ip_network(subnet.ipv4):
            raise WorldError(f"{address} is not in subnet {subnet.ipv4}", "interfaces.ipv4.vpc")
        if address in subnet.addresses.values():
            raise WorldError(f"{address} is already in use in the subnet", "interfaces.ipv4.vpc")
        return Attachment(vpc.id, subnet.id, address)

    def _find_subnet(self, subnet_id: Any) -> tuple[SimSubnet, SimVpc]:
        for vpc in self.vpcs.values():
            for subnet in vpc.subnets:
                if subnet.id == subnet_id:
                    return subnet, vpc
        raise WorldError("Subnet not found", "interfaces.subnet_id")

    def attach(self, instance_id: int, attachment: Attachment) -> None:
        subnet, _ = self._find_subnet(attachment.subnet_id)
        subnet.addresses[instance_id] = attachment.address

    def detach(self, instance_id: int) -> None:
        """An instance was deleted: it leaves every subnet."""
        for vpc in self.vpcs.values():
            for subnet in vpc.subnets:
                subnet.addresses.pop(instance_id, None)

    def vpc_of(self, instance_id: int) -> int | None:
        """The id of the VPC the instance joined, or None."""
        for vpc in self.vpcs.values():
            if any(instance_id in subnet.addresses for subnet in vpc.subnets):
                return vpc.id
        return None

    def address_of(self, instance_id: int) -> str | None:
        for vpc in self.vpcs.values():
            for subnet in vpc.subnets:
                if instance_id in subnet.addresses:
                    return subnet.addresses[instance_id]
        return None
