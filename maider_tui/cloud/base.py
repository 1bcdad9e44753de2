"""The Provider protocol and the plain types it hands the rest of the app."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, Literal, Protocol, TypeVar, runtime_checkable

from maider_tui.models import GpuType, Region

T = TypeVar("T")
Source = Literal["api", "cache", "offline"]

SESSION_TAG = "maider"
"""Every VM we create carries this tag, so a crashed client can find what it left behind."""
SESSION_TAG_PREFIX = "maider-session:"


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


@runtime_checkable
class Provider(Protocol):
    """A cloud that rents GPU VMs. Every method but `ssh_endpoint` may talk to the network."""

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
