"""Recovery at start-up: reconcile the VMs the cloud says we have with the sessions the store knows.

Rules (docs/sessions.md):
- Every VM tagged `maider` must belong to a live session: by instance id, or, for a session that
  crashed before it could record its id, by label = session name plus the `maider-session:<name>`
  tag (the id is then recorded). Any other VM is an orphan: reported with its id and $/h, and left
  alone until the user chooses `adopt_orphan` or `destroy_orphan`.
- A live session whose VM no longer exists is marked "ended" (ended_at, cost to now, extra
  {"gone": true}, a store event), so its cost stops counting.
- A live session interrupted while provisioning (never ready) is reported resumable, with its stage.
- Every API call happens before anything is marked: an API failure raises ProviderError and
  changes nothing.
- A session over several VMs owns its workers (labelled `<name>-w1` ...) as it owns its head; a
  worker that no longer exists is reported (`degraded`): the model cannot serve without it. This
  home's session networks (VPCs) that no live session holds are deleted; they cost nothing, but
  they count against the account's limit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from maider_tui import catalog
from maider_tui.clock import Clock
from maider_tui.cloud import (SESSION_TAG, Provider, ProviderError, Vm, home_tag, is_session_node, is_session_vm,
                              made_elsewhere, node_label, session_tag)
from maider_tui.cloud.base import VpcNetwork
from maider_tui.cloud.vpcs import vpc_label
from maider_tui.ops.events import EventSink, WarningEvent
from maider_tui.ops.receipt import make_receipt
from maider_tui.ops.session_files import remove_ssh_entry
from maider_tui.paths import AppPaths
from maider_tui.store import SessionRecord, Store

# States a session settles in; any other live state without ready_at means provisioning stopped midway.
SETTLED_STATES = frozenset({"ready", "unreachable", "orphan", "failed"})


@dataclass(frozen=True)
class Orphan:
    """A VM of ours that no live session claims. It costs money until adopted or destroyed."""

    vm: Vm
    hourly_usd: float | None  # None when neither the API nor the catalog knows the plan's price
    reason: str
    elsewhere: bool = False  # made by maider-tui in another home (machine or data folder): it watches it

    @property
    def id(self) -> int:
        return self.vm.id

    @property
    def label(self) -> str:
        return self.vm.label


@dataclass
class RecoveryReport:
    """What recovery found. Names are session names; `resumable` holds the records (with their stage).

    healthy: live sessions whose VM exists and which need nothing. failed: sessions whose launch or
    switch stopped with the VM left for inspection (it still costs money). linked: sessions whose VM
    was found by label and whose instance id was recorded just now.
    """

    orphans: list[Orphan] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    resumable: list[SessionRecord] = field(default_factory=list)
    healthy: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    linked: list[str] = field(default_factory=list)
    degraded: list[str] = field(default_factory=list)  # sessions over several VMs that lost a worker
    networks_removed: list[str] = field(default_factory=list)  # stray session networks deleted

    @property
    def clean(self) -> bool:
        """Nothing for the user to decide."""
        return not (self.orphans or self.gone or self.resumable or self.failed or self.degraded)


async def recover(*, provider: Provider, store: Store, clock: Clock, emit: EventSink | None = None,
                  paths: AppPaths | None = None, demo_ended: bool = False) -> RecoveryReport:
    """Reconcile the provider's `maider` VMs with the store's live sessions (see the module docstring).

    paths: when given, a gone session's ssh_config entry is removed with it.
    demo_ended: the provider is a demo's simulated cloud that lived inside this app, started afresh:
    a session it lacks ended with the app that ran it (said so, and marked `demo_ended`).
    Raises ProviderError when the API fails; the store is then left exactly as it was.
    """
    vms = {vm.id: vm for vm in await provider.list(tag=SESSION_TAG)}
    live = store.list_sessions(include_ended=False)

    # 1. Ask everything first: a session whose VM is missing from the list gets one direct look.
    missing: list[SessionRecord] = []
    unclaimed = dict(vms)
    for record in live:
        if record.instance_id is None:
            continue
        vm = unclaimed.pop(record.instance_id, None) or vms.get(record.instance_id)
        if vm is None:
            vm = await provider.get(record.instance_id)  # may lack our tag, or the list may lag
        if vm is None:
            missing.append(record)
    home = home_tag(Path(store.path).parent)
    # A session over several VMs: its workers are its own too, recorded or found by label and tag.
    node_links: list[tuple[str, int, Vm]] = []
    lost_nodes: list[tuple[str, int, int]] = []
    headless = {r.name for r in missing}  # their workers still bill, and serve nothing: orphans to decide on
    for record in live:
        if record.nodes <= 1 or record.name in headless:
            continue
        for node in store.nodes(record.name):
            if node.index == 0:
                continue
            if node.instance_id is not None:
                vm = unclaimed.pop(node.instance_id, None) or vms.get(node.instance_id)
                if vm is None and await provider.get(node.instance_id) is None and node.state != "destroyed":
                    lost_nodes.append((record.name, node.index, node.instance_id))
                continue
            vm = next((v for v in unclaimed.values() if v.label == node_label(record.name, node.index)
                       and is_session_node(v, record.name, home)), None)
            if vm is not None:
                node_links.append((record.name, node.index, unclaimed.pop(vm.id)))
    by_label = {vm.label: vm for vm in unclaimed.values()}
    links: dict[str, Vm] = {}
    for record in live:
        vm = by_label.get(record.name) if record.instance_id is None else None
        if vm is not None and is_session_vm(vm, record.name, home):
            links[record.name] = unclaimed.pop(vm.id)
    networks = await _stray_networks(provider, live, home)

    # 2. Then mark: nothing above changed the store, so an API failure left it as it was.
    report = RecoveryReport()
    now = clock.now()
    gone_names = {r.name for r in missing}
    for record in live:
        if record.name in gone_names:
            mark_gone(store, record, now, paths, demo_ended=demo_ended)
            report.gone.append(record.name)
            if demo_ended:
                _say(emit, record.name, f"{record.name} ended with the last run of the demo: its simulated "
                                        "cloud lived inside that app.")
            else:
                _say(emit, record.name, f"{record.name}'s VM {record.instance_id} no longer exists; "
                                        "the session is marked ended and its cost stopped counting.")
            continue
        if record.name in links:
            vm = links[record.name]
            record = store.update_session(record.name, instance_id=vm.id)
            store.add_event(record.name, "recovered", f"Found VM {vm.id} by its label; recorded its id",
                            {"instance_id": vm.id})
            report.linked.append(record.name)
        if _interrupted(record):
            report.resumable.append(record)
        elif record.state == "failed":
            report.failed.append(record.name)
        else:
            report.healthy.append(record.name)
    for name, index, vm in node_links:
        store.update_node(name, index, instance_id=vm.id)
        store.add_event(name, "recovered", f"Found worker VM {vm.id} by its label; recorded its id",
                        {"instance_id": vm.id, "node": index})
    for name, index, vm_id in lost_nodes:
        store.update_node(name, index, state="lost")
        report.degraded.append(name)
        _say(emit, name, f"{name}'s worker VM {vm_id} (node {index}) no longer exists, so its model cannot "
                         "serve: h on its dashboard rents a VM in its place; d destroys the session (its other VMs "
                         "still cost money).")
    for network in networks:
        try:
            await provider.vpcs.delete(network.id)
        except ProviderError:
            continue  # a VM is still attached (an orphan the user decides on): tried again next start
        report.networks_removed.append(network.label)
    for vm in unclaimed.values():
        elsewhere = made_elsewhere(vm.tags, home_tag(Path(store.path).parent))
        reason = ("made by maider-tui on another machine or in another data folder, which watches it"
                  if elsewhere else _orphan_reason(vm, store))
        orphan = Orphan(vm, _hourly(vm), reason, elsewhere)
        report.orphans.append(orphan)
        price = f"${orphan.hourly_usd:.2f}/h" if orphan.hourly_usd is not None else "an unknown price"
        _say(emit, vm.label, f"VM {vm.id} ({vm.label}) is running at {price} with no session: "
                             "adopt it or destroy it.")
    return report


async def _stray_networks(provider: Provider, live: list[SessionRecord], home: str) -> list[VpcNetwork]:
    """This home's session networks that no live session holds: a destroy that could not remove one,
    or a launch that died between making it and its VMs. A live session's (by id, or by its label
    while the launch has not recorded the id yet) is never one of them."""
    held_ids = {r.vpc_id for r in live if r.vpc_id is not None}
    held_labels = {vpc_label(r.name) for r in live}
    return [n for n in await provider.vpcs.list()
            if home in n.description and n.id not in held_ids and n.label not in held_labels]


def _interrupted(record: SessionRecord) -> bool:
    return record.ready_at is None and record.state not in SETTLED_STATES


def mark_gone(store: Store, record: SessionRecord, now: float, paths: AppPaths | None = None, *,
              demo_ended: bool = False) -> None:
    """End a session whose VM no longer exists (deleted outside the app): its cost stops counting.
    With `paths`, its ssh_config entry goes too: the alias would reach whatever gets the address next.
    `demo_ended`: the VM was in a demo's simulated cloud, which ended with the app that ran it."""
    # We cannot know when it vanished; counting to now is the upper bound of what it cost.
    receipt = make_receipt(record.name, started_at=record.created_at or now, ended_at=now,
                           hourly_usd=record.hourly_usd, tokens=record.tokens_generated)
    extra = {**record.extra, "gone": True, **({"demo_ended": True} if demo_ended else {})}
    store.update_session(record.name, state="ended", ended_at=now, cost_usd=receipt.cost_usd, extra=extra)
    why = ("the demo's simulated cloud ended with the app that ran it" if demo_ended
           else f"VM {record.instance_id} no longer exists")
    store.add_event(record.name, "gone", f"{why[0].upper()}{why[1:]}; session ended ({receipt.summary()})",
                    {"instance_id": record.instance_id})
    if paths is not None:
        remove_ssh_entry(paths, record.name)


def _orphan_reason(vm: Vm, store: Store) -> str:
    owner = store.get_session(vm.label)
    head, _, index = vm.label.rpartition("-w")
    worker_of = store.get_session(head) if owner is None and index.isdigit() else None
    if worker_of is not None and worker_of.nodes > 1:
        return (f"it is worker VM {index} of session {head}, which is recorded as {worker_of.state}"
                + (" (its head VM is gone)" if worker_of.extra.get("gone") else ""))
    if owner is None:
        return f"no session is named {vm.label}"
    if owner.ended:
        return f"session {vm.label} is recorded as {owner.state}, but its VM still exists"
    if owner.instance_id is not None and owner.instance_id != vm.id:
        return f"session {vm.label} has VM {owner.instance_id}, not this one"
    return f"it lacks the tag {session_tag(vm.label)}"


def _hourly(vm: Vm) -> float | None:
    if vm.hourly_usd is not None:
        return vm.hourly_usd
    try:
        return catalog.gpu_type(vm.type).hourly_usd
    except catalog.UnknownCatalogIdError:
        return None


def _say(emit: EventSink | None, name: str, message: str) -> None:
    if emit is not None:
        emit(WarningEvent(name, message))


# --- what the user may choose for an orphan -------------------------------------------------------

Probe = Callable[[SessionRecord], Awaitable[bool]]


async def adopt_orphan(vm: Vm, *, store: Store, clock: Clock, emit: EventSink | None = None,
                       probe: Probe | None = None) -> SessionRecord:
    """Record a session for an orphan VM, so the app watches (and bills) it like any other.

    The session starts in state "orphan"; `probe(record)` (e.g. SSH with a known key, then vLLM's
    health) says whether it serves: "ready" if so, else "unreachable". Without a probe we cannot
    know, so it is "unreachable": destroyable, and counted by the watchdog.
    """
    name = _free_name(store, vm)
    try:
        plan = catalog.gpu_type(vm.type)
        gpu_count = plan.gpus
    except catalog.UnknownCatalogIdError:
        gpu_count = 1
    record = store.add_session(SessionRecord(
        name=name, state="orphan", stage=None, instance_id=vm.id, region=vm.region, gpu_type=vm.type,
        gpu_count=gpu_count, hourly_usd=_hourly(vm) or 0.0, created_at=vm.created,
        ip=vm.ipv4[0] if vm.ipv4 else None, extra={"adopted": True, "label": vm.label},
    ))
    store.add_event(name, "adopted", f"Adopted VM {vm.id} ({vm.label}), running since it was created",
                    {"instance_id": vm.id})
    serving = False
    if probe is not None:
        try:
            serving = await probe(record)
        except Exception as exc:  # noqa: BLE001 - a failed probe only means we cannot reach it
            store.add_event(name, "warning", f"Could not reach the adopted VM: {exc}")
    record = store.update_session(name, state="ready" if serving else "unreachable",
                                  ready_at=clock.now() if serving else None)
    _say(emit, name, f"VM {vm.id} adopted as session {name} ({record.state}).")
    return record


async def destroy_orphan(vm_id: int, *, provider: Provider, store: Store | None = None,
                         emit: EventSink | None = None) -> bool:
    """Delete an orphan VM; False when it was already gone. ProviderError when the API fails.

    A VM that a live session claims is refused (ValueError): destroy the session instead, so its
    record ends with a receipt rather than going stale.
    """
    if store is not None:
        owner = next((r for r in store.list_sessions(include_ended=False) if r.instance_id == vm_id), None)
        if owner is not None:
            raise ValueError(f"VM {vm_id} belongs to session {owner.name}: destroy the session instead")
    await provider.whoami()  # a refused token fails here, before the delete is tried
    deleted = await provider.destroy(vm_id)
    _say(emit, str(vm_id), f"Orphan VM {vm_id} {'destroyed' if deleted else 'was already gone'}.")
    return deleted


def _free_name(store: Store, vm: Vm) -> str:
    taken = store.session_names()
    for candidate in (vm.label, f"{vm.label}-{vm.id}"):
        if candidate not in taken:
            return candidate
    return f"adopted-{vm.id}-{int(vm.created)}"

