"""The simulated cloud's state: the account's instances, their lifecycle, and the plans and regions on offer.

The fake Linode API (`linode_api.py`) reads and changes this; the simulated VMs subscribe to it to
start and stop their SSH servers. Time is real time multiplied by `speed`, so a test at speed 200
sees a VM boot in a third of a second while the demo at speed 1 takes a realistic minute.
"""

from __future__ import annotations

import base64
import binascii
import logging
import random
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from maider_tui import catalog
from maider_tui.sim.faults import SimFaults
from maider_tui.sim.hub import SimHub

log = logging.getLogger(__name__)

FIRST_ID = 8_211_001
PROVISIONING_S = 20.0
"""Sim seconds an instance stays "provisioning"."""
BOOTING_S = 40.0
"""Sim seconds of "booting" after provisioning, before faults.slow_boot_factor."""
REBOOT_S = 30.0
"""Sim seconds of "rebooting" after a reboot, before faults.slow_boot_factor."""

# Plans without GPUs, so a client that forgets to filter on class "gpu" shows it.
# (id, label, class, memory MB, vCPUs, disk MB, transfer GB, $/h, $/month), as Linode lists them.
PLAIN_TYPES: tuple[tuple[str, str, str, int, int, int, int, float, float], ...] = (
    ("g6-nanode-1", "Nanode 1GB", "nanode", 1024, 1, 25600, 1000, 0.0075, 5.0),
    ("g6-standard-2", "Linode 4GB", "standard", 4096, 2, 81920, 4000, 0.036, 24.0),
    ("g6-dedicated-2", "Dedicated 4GB", "dedicated", 4096, 2, 81920, 4000, 0.054, 36.0),
)

# Regions without GPUs: (id, label, country). Every plain type is offered in every region.
PLAIN_REGIONS: tuple[tuple[str, str, str], ...] = (
    ("us-central", "Dallas, TX", "us"),
    ("us-west", "Fremont, CA", "us"),
    ("ca-central", "Toronto, CA", "ca"),
    ("gb-lon", "London 2, UK", "gb"),
)

# Linode's label rule: 3-64 characters, letters, digits, '-', '_', '.', starting with a letter or
# digit and ending with one, without two separators in a row.
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|[-_.](?=[A-Za-z0-9])){1,62}[A-Za-z0-9]$")


class WorldError(Exception):
    """A request the real API would refuse; the fake API turns it into `{"errors": [...]}`."""

    def __init__(self, reason: str, field: str | None = None, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field
        self.status = status


@dataclass(frozen=True)
class Exchange:
    """One Linode API request and the sim's answer, as JSON (None where a body was empty or not JSON)."""

    method: str
    path: str  # under /v4, e.g. "/linode/instances/123"
    query: dict[str, str]
    headers: dict[str, str]  # the request's, without Authorization
    request: Any
    status: int
    response: Any


@dataclass
class SimInstance:
    """One Linode instance as the sim holds it. Its addresses are for display only: nothing connects there."""

    id: int
    label: str
    region: str
    type: str
    image: str | None
    created: float  # epoch seconds (real time)
    ipv4: list[str]
    ipv6: str = ""
    tags: list[str] = field(default_factory=list)
    authorized_keys: list[str] = field(default_factory=list)
    user_data: str | None = None  # decoded from metadata.user_data
    firewall_id: int | None = None
    deleted: bool = False
    deleted_at: float | None = None
    updated: float = 0.0
    rebooted_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # the VM side keeps its own state here


Callback = Callable[[str, SimInstance], None]


class World:
    """The sim's account: instances and their lifecycle, plus counters tests read.

    Callbacks given to `subscribe` get ("created" | "deleted" | "rebooted", instance) on the loop
    that made the change; an unknown event should be ignored.
    """

    def __init__(
        self,
        speed: float = 1.0,
        seed: int = 0,
        faults: SimFaults | None = None,
        *,
        now: Callable[[], float] = time.time,
        big_plan_gpus: int | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.speed = speed
        self.seed = seed
        self.random = random.Random(seed)
        self.faults = faults or SimFaults()
        self.token = "sim-" + secrets.token_hex(16)
        self.username = "sim-user"
        self.email = "sim-user@example.com"
        self.instances: dict[int, SimInstance] = {}
        self.unavailable: set[tuple[str, str]] = set()
        """(region, type) pairs sold out right now: availability says false and creates are refused."""
        self.api_requests = 0
        self.creates = 0
        self.deletes = 0
        self.vanished = 0
        self.requests: Counter[str] = Counter()
        """Requests per "METHOD /path" (path after /v4, ids kept), for tests to count."""
        from maider_tui.sim.vpcs import SimVpcs  # it reports errors as WorldError, defined here

        self.vpcs = SimVpcs(self.now)
        """The account's VPCs (sim/vpcs.py); an instance joins one through its create call."""
        from maider_tui.sim.ray import RayClusters

        self.ray = RayClusters()
        """The Ray clusters the VMs' containers started (sim/ray.py)."""
        self.exchanges: list[Exchange] | None = None
        """When a list, every Linode API request and its answer is appended to it (`record_exchanges`)."""
        self.extra_gpu_types: tuple[catalog.GpuType, ...] = (
            (big_plan(big_plan_gpus),) if big_plan_gpus else ())
        """Sim-only plans offered beside the catalog's (Linode sells at most 4 GPUs a VM)."""
        self.hub = SimHub()
        """The simulated Hugging Face Hub: served under /hf, and what the VMs' vLLM downloads from."""
        self._now = now
        self._next_id = FIRST_ID
        self._subscribers: list[Callback] = []

    # --- time and status ------------------------------------------------------------------------

    def now(self) -> float:
        return self._now()

    def sim_seconds_since(self, t: float) -> float:
        """Simulated seconds since the epoch time `t`."""
        return max(0.0, (self._now() - t) * self.speed)

    def boot_seconds(self) -> float:
        """Sim seconds from create to running."""
        return PROVISIONING_S + BOOTING_S * self.faults.slow_boot_factor

    def running_at(self, instance: SimInstance) -> float:
        """The epoch time at which `instance` is (or was) first running."""
        return instance.created + self.boot_seconds() / self.speed

    def status(self, instance: SimInstance) -> str:
        """provisioning -> booting -> running (rebooting after a reboot); "deleting" once deleted."""
        if not instance.deleted:
            self._maybe_vanish(instance)
        if instance.deleted:
            return "deleting"
        age = self.sim_seconds_since(instance.created)
        if age < PROVISIONING_S:
            return "provisioning"
        if age < self.boot_seconds():
            return "booting"
        if instance.rebooted_at is not None:
            if self.sim_seconds_since(instance.rebooted_at) < REBOOT_S * self.faults.slow_boot_factor:
                return "rebooting"
        return "running"

    def _maybe_vanish(self, instance: SimInstance) -> None:
        after = self.faults.vm_vanish_after_s
        if after is None:
            return
        if self.sim_seconds_since(instance.created) >= self.boot_seconds() + after:
            log.info("fault: instance %s vanishes %.0f sim s after running", instance.id, after)
            self.vanish(instance.id)

    def record_exchanges(self) -> list[Exchange]:
        """Start keeping every Linode API request and answer (until the world ends); returns the list."""
        if self.exchanges is None:
            self.exchanges = []
        return self.exchanges

    # --- events -----------------------------------------------------------------------------------

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        """Call `callback(event, instance)` on every change; returns a function that unsubscribes."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    def _emit(self, event: str, instance: SimInstance) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event, instance)
            except Exception:  # a broken subscriber must not break the API answering
                log.exception("world subscriber failed on %s of %s", event, instance.id)

    # --- catalog ----------------------------------------------------------------------------------

    def gpu_types(self) -> tuple[catalog.GpuType, ...]:
        """The GPU plans on offer: the catalog's, then any sim-only one."""
        return (*catalog.gpu_types(), *self.extra_gpu_types)

    def gpu_type(self, type_id: str) -> catalog.GpuType | None:
        return next((t for t in self.gpu_types() if t.id == type_id), None)

    def type_ids(self) -> set[str]:
        return {t.id for t in self.gpu_types()} | {t[0] for t in PLAIN_TYPES}

    def region_ids(self) -> set[str]:
        return {r.id for r in catalog.regions()} | {r[0] for r in PLAIN_REGIONS}

    def offered(self, type_id: str, region: str) -> bool:
        """Whether the plan can be had in the region right now."""
        if (region, type_id) in self.unavailable:
            return False
        if any(t[0] == type_id for t in PLAIN_TYPES):
            return region in self.region_ids()
        gpu = self.gpu_type(type_id)
        return gpu is not None and region in gpu.regions

    # --- instances --------------------------------------------------------------------------------

    def get(self, instance_id: int) -> SimInstance | None:
        """The live instance with this id, or None once deleted (or never made)."""
        instance = self.instances.get(instance_id)
        if instance is None or instance.deleted:
            return None
        self._maybe_vanish(instance)
        return None if instance.deleted else instance

    def list(self) -> list[SimInstance]:
        """Live instances, oldest first."""
        for instance in list(self.instances.values()):
            if not instance.deleted:
                self._maybe_vanish(instance)
        return [i for i in self.instances.values() if not i.deleted]

    def find_label(self, label: str) -> SimInstance | None:
        return next((i for i in self.list() if i.label == label), None)

    def check_create(self, label: str | None, region: str, type_id: str) -> None:
        """Raise WorldError the way the real API refuses a create; pass quietly otherwise."""
        if type_id not in self.type_ids():
            raise WorldError(f"A Linode type with id {type_id} does not exist", "type")
        if region not in self.region_ids():
            raise WorldError(f"Region {region} does not exist", "region")
        if not self.offered(type_id, region):
            raise WorldError(f"Linode type {type_id} is not available in region {region}", "type")
        if label is not None:
            check_label(label)
            if self.find_label(label) is not None:
                raise WorldError("Label must be unique among your Linodes", "label")

    def create(
        self,
        label: str | None,
        region: str,
        type: str,  # noqa: A002 - the API's own field name
        image: str | None = None,
        *,
        authorized_keys: Iterable[str] = (),
        user_data: str | None = None,
        tags: Iterable[str] = (),
        firewall_id: int | None = None,
    ) -> SimInstance:
        """Make an instance (validated as the API would); emits "created"."""
        instance_id = self._next_id
        label = label or f"linode{instance_id}"
        self.check_create(label, region, type)
        self._next_id += 1
        n = instance_id - FIRST_ID
        now = self._now()
        instance = SimInstance(
            id=instance_id,
            label=label,
            region=region,
            type=type,
            image=image,
            created=now,
            updated=now,
            # Documentation ranges (RFC 5737 / RFC 3849): shown to the user, never connected to.
            ipv4=[f"192.0.2.{n % 254 + 1}"],
            ipv6=f"2001:db8::{n + 1:x}/128",
            tags=sorted(set(tags)),
            authorized_keys=list(authorized_keys),
            user_data=user_data,
            firewall_id=firewall_id,
        )
        self.instances[instance_id] = instance
        self.creates += 1
        self._emit("created", instance)
        return instance

    def delete(self, instance_id: int) -> bool:
        """Delete an instance; False when it was already gone. Emits "deleted"."""
        instance = self.instances.get(instance_id)
        if instance is None or instance.deleted:
            return False
        instance.deleted = True
        instance.deleted_at = instance.updated = self._now()
        self.vpcs.detach(instance_id)
        self.deletes += 1
        self._emit("deleted", instance)
        return True

    def vanish(self, instance_id: int) -> bool:
        """The fault: the instance is deleted behind the client's back (as by a colleague or Linode)."""
        if self.delete(instance_id):
            self.vanished += 1
            return True
        return False

    def reboot(self, instance_id: int) -> bool:
        """Start a reboot; False when the instance is gone. Emits "rebooted"."""
        instance = self.get(instance_id)
        if instance is None:
            return False
        instance.rebooted_at = instance.updated = self._now()
        self._emit("rebooted", instance)
        return True


def big_plan(gpus: int) -> catalog.GpuType:
    """A sim-only plan of `gpus` RTX 4000 Ada, priced like `gpus` x1 plans, in the x1 plan's regions.

    Linode sells at most 4 GPUs a VM; this one exists so the dashboard can be measured with 8
    (`maider-tui sim --big-plan 8`). The app sees it as any plan the API lists and its catalog lacks.
    """
    one = catalog.gpu_type("g2-gpu-rtx4000a1-s")
    return catalog.GpuType(f"g2-gpu-rtx4000a{gpus}-sim", f"RTX4000 Ada x{gpus} (sim only)", gpus, one.family,
                           round(one.hourly_usd * gpus, 2), round(one.monthly_usd * gpus, 2), one.regions,
                           memory_mb=(one.memory_mb or 16384) * gpus, vcpus=(one.vcpus or 4) * gpus,
                           disk_mb=one.disk_mb)


def check_label(label: str) -> None:
    """Raise WorldError unless `label` follows Linode's label rules."""
    if not 3 <= len(label) <= 64:
        raise WorldError("Label must be between 3 and 64 characters", "label")
    if not _LABEL.match(label):
        raise WorldError(
            "Label must begin and end with a letter or number, and may only contain letters, "
            "numbers, dashes, underscores and periods, without two in a row",
            "label",
        )


def decode_user_data(value: Any) -> str:
    """metadata.user_data as the API receives it (base64) -> text; WorldError when it is not base64."""
    if not isinstance(value, str):
        raise WorldError("user_data must be a base64-encoded string", "metadata.user_data")
    try:
        return base64.b64decode(value.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise WorldError("user_data must be a base64-encoded string", "metadata.user_data") from None
