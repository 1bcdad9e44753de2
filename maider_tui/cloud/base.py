"""The Provider protocol and the plain types it hands the rest of the app."""

from __future__ import annotations

import hashlib
import os
import socket
from dataclasses import dataclass, field
from typing import Generic, Literal, Protocol, TypeVar, runtime_checkable

from maider_tui.models import GpuType, Region

T = TypeVar("T")
Source = Literal["api", "cache", "offline"]

SESSION_TAG = "maider"
"""Every VM we create carries this tag, so a crashed client can find what it left behind."""
SESSION_TAG_PREFIX = "maider-session:"


HOME_TAG_PREFIX = "maider-home:"


def home_tag(data_dir: str | os.PathLike[str], host: str | None = None) -> str:
    """The tag of the maider-tui home (machine and data folder) that made a VM: the same account may
    be used from two machines, and one must never count down the other's sessions as orphans."""
    where = f"{host if host is not None else socket.gethostname()}:{os.path.abspath(data_dir)}"
    return HOME_TAG_PREFIX + hashlib.sha256(where.encode()).hexdigest()[:12]


def made_elsewhere(tags: "list[str] | tuple[str, ...]", home: str) -> bool:
    """Whether a VM's tags name another home than `home` (a VM with no home tag was made by an
    older release, which had none: it counts as this home's)."""
    homes = [t for t in tags if t.startswith(HOME_TAG_PREFIX)]
    return bool(homes) and home not in homes


def is_session_vm(vm: "Vm", name: str, home: str) -> bool:
    """Whether `vm` is the VM of this home's session `name`: its label, its session tag, and not made
    by another home (where a session may bear the same name)."""
    return vm.label == name and session_tag(name) in vm.tags and not made_elsewhere(vm.tags, home)


def node_label(session: str, index: int) -> str:
    """The label of node `index` of a session over several VMs: the head keeps the session's name (so
    everything that finds a session's VM by its label finds the head), workers add "-w1", "-w2" ..."""
    return session if index == 0 else f"{session[:60]}-w{index}"


def is_session_node(vm: "Vm", name: str, home: str) -> bool:
    """Whether `vm` is one of the VMs (head or worker) of this home's session `name`."""
    labelled = vm.label == name or (vm.label.startswith(f"{name[:60]}-w") and vm.label.rsplit("-w", 1)[1].isdigit())
    return labelled and session_tag(name) in vm.tags and not made_elsewhere(vm.tags, home)


async def session_vms(provider: "Provider", name: str, home: str, *, nodes: bool = False) -> "list[Vm]":
    """The VMs of this home's session `name` found by label and tag (a create whose reply was lost,
    or made by a run that died before it recorded the id); never another home's. `nodes`: a session
    over several VMs, whose workers are labelled `<name>-w1` ... beside its head."""
    match = is_session_node if nodes else is_session_vm
    return [vm for vm in await provider.list(SESSION_TAG) if match(vm, name, home)]


def session_tag(label: str) -> str:
    """The per-session tag; Linode caps tags at 50 characters, so a long session name is cut."""
    return f"{SESSION_TAG_PREFIX}{label}"[:50]


@dataclass(frozen=True)
class Account:
    """Who the token belongs to."""

    username: str
    email: str | None = None


@dataclass(frozen=True)
class Catalogued(Generic[T]):
    """Catalog data and where it came from.

    `source` is "api" (just asked), "cache" (asked within the hour; `fetched_at` says when) or
    "offline" (the built-in catalog because the API could not be asked; `message` says why).
    """

    items: T
    source: Source
    message: str | None = None
    fetched_at: float | None = None

    def age_s(self, now: float) -> float | None:
        """Seconds since the data left the API, or None for built-in data."""
        return None if self.fetched_at is None else max(0.0, now - self.fetched_at)


@dataclass(frozen=True)
class CreateSpec:
    """What to rent. `label` is the session name; the provider adds the session tags."""

    label: str
    region: str
    type: str
    image: str
    authorized_keys: list[str] = field(default_factory=list)
    user_data: str | None = None
    tags: list[str] = field(default_factory=list)
    firewall_id: int | None = None
    vpc: VpcJoin | None = None  # a VPC interface beside the public one, at this address
    session: str | None = None  # the session it serves, when not its label (a worker of several VMs)


@dataclass(frozen=True)
class VpcJoin:
    """Where a VM joins a VPC: the subnet, and its fixed address there (Ray and NCCL are told it)."""

    subnet_id: int
    address: str


@dataclass(frozen=True)
class VpcNetwork:
    """A session's private network: one VPC with one subnet, in the region of its VMs."""

    id: int
    label: str
    region: str
    subnet_id: int
    cidr: str
    description: str = ""


@dataclass(frozen=True)
class Vm:
    """One rented VM as the provider last saw it."""

    id: int
    label: str
    region: str
    type: str
    status: str  # Linode's word: provisioning, booting, running, offline, deleting, ...
    ipv4: tuple[str, ...]
    tags: tuple[str, ...]
    created: float  # epoch seconds
    hourly_usd: float | None = None  # None when the plan's price is unknown

    @property
    def running(self) -> bool:
        return self.status == "running"


class VpcApi(Protocol):
    """The account's private networks (a session over several VMs has one)."""

    async def create(self, session: str, region: str, description: str) -> VpcNetwork:
        """The session's VPC with one subnet; one call never makes two."""
        ...

    async def find(self, label: str) -> VpcNetwork | None:
        ...

    async def list(self, prefix: str = ...) -> list[VpcNetwork]:  # noqa: A003 - as Provider.list
        ...

    async def delete(self, vpc_id: int) -> bool:
        """False when it was already gone; ProviderError while a VM is still attached."""
        ...


@runtime_checkable
class Provider(Protocol):
    """A cloud that rents GPU VMs. Every method but `ssh_endpoint` may talk to the network."""

    @property
    def vpcs(self) -> VpcApi:
        """The account's private networks."""
        ...

    async def whoami(self) -> Account:
        """Check the token; raises ProviderError (kind "auth") when it is refused."""
        ...

    async def regions(self, *, refresh: bool = False) -> Catalogued[list[Region]]:
        """Regions that offer GPU plans."""
        ...

    async def gpu_types(self, *, refresh: bool = False) -> Catalogued[list[GpuType]]:
        """GPU plans with prices and where each can be had."""
        ...

    async def create(self, spec: CreateSpec) -> Vm:
        """Rent a VM; one call never makes two."""
        ...

    async def get(self, vm_id: int) -> Vm | None:
        """The VM, or None when it no longer exists."""
        ...

    async def list(self, tag: str = SESSION_TAG) -> list[Vm]:
        """VMs carrying `tag`."""
        ...

    async def destroy(self, vm_id: int) -> bool:
        """Delete the VM; False when it was already gone."""
        ...

    def ssh_endpoint(self, vm: Vm) -> tuple[str, int]:
        """Where to SSH to: (host, port). Pure: no network."""
        ...
