"""Destroying a session: the one workflow that stops the meter, so it must never lose a VM.

Order, and why (docs/sessions.md):
1. Check the token (`whoami`). A refused or unreachable API fails here, before anything changed.
2. Read vLLM's token counter through the session's SSH forward, best effort: afterwards it is gone.
3. Delete the VM (every VM, for a session over several). "Already gone" is success; any other
   failure leaves the session exactly as it was (state, ended_at, files), because a VM may still
   exist and still cost money. A session that crashed before recording an instance id is looked up
   by label and tag, since its create may have landed. Then the session's private network (VPC),
   which costs nothing: one that will not go yet is left to the next start's sweep.
4. Only then close the SSH connection (and with it the tunnel), remove the session's local files
   (client key, aider files, its ssh_config entry: useless without the VM) and mark the session
   destroyed, with its runtime, cost and tokens; the receipt goes out as a DestroyedEvent and a
   store event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from pathlib import Path

from maider_tui import catalog
from maider_tui.clock import Clock
from maider_tui.cloud import Provider, ProviderError, home_tag, session_vms
from maider_tui.cloud.vpcs import vpc_label
from maider_tui.ops.events import DestroyedEvent, EventSink, FailedEvent, LogEvent
from maider_tui.ops.receipt import Receipt, make_receipt
from maider_tui.ops.session_files import remove_ssh_entry, session_dir
from maider_tui.paths import AppPaths
from maider_tui.remote.ssh import SshSession
from maider_tui.remote.vllm import VllmClient
from maider_tui.store import NodeRecord, SessionRecord, Store

log = logging.getLogger(__name__)

DEFAULT_VLLM_PORT = 8000
NETWORK_TRIES, NETWORK_RETRY_S = 6, 5.0  # a deleted VM lets go of its VPC interface within seconds
METRICS_TIMEOUT_S = 5.0  # a hung tunnel must not hold up stopping the meter
# Said by the callers that hold ops.owner.destroying() while another process destroys the session.
WAIT_MESSAGE = "Another maider-tui process is destroying this session; waiting for it to finish."


class SessionNotFound(LookupError):
    """There is no session by that name in the store."""


async def destroy_session(name: str, *, provider: Provider, store: Store, clock: Clock, emit: EventSink,
                          ssh: SshSession | None = None, paths: AppPaths | None = None,
                          vllm_port: int = DEFAULT_VLLM_PORT) -> Receipt:
    """Delete the session's VM, then mark the session destroyed; returns its receipt.

    ssh: the session's SshSession, if one is open; its forward is used to read vLLM's generated-
    token counter first, and it is closed once the VM is gone. paths: when given, the session's
    local folder (client key, aider files) and its ssh_config entry are removed once the VM is
    gone. A provisioning task of this session must be cancelled first, or it may go on working
    on a VM that no longer exists. Raises ProviderError when the API refuses or fails (the
    session is left untouched, a FailedEvent and a store event say why) and SessionNotFound for
    an unknown name. A session already ended gets its stored receipt back without any API call.
    """
    record = store.get_session(name)
    if record is None:
        raise SessionNotFound(f"there is no session named {name!r}")
    if record.ended:
        return _stored_receipt(record, clock)

    try:
        await provider.whoami()
    except ProviderError as err:
        _failed(store, emit, name, "check token", err)
        raise

    tokens = await _generated_tokens(ssh, vllm_port, emit, name) if ssh is not None else None

    nodes = store.nodes(name)
    try:
        vm_ids = await _session_vms(provider, record, nodes, home_tag(Path(store.path).parent))
        deleted = [await provider.destroy(vm_id) for vm_id in vm_ids]
    except ProviderError as err:
        _failed(store, emit, name, "destroy VM", err)
        raise
    already_gone = bool(vm_ids) and not any(deleted)
    for node in nodes:
        store.update_node(name, node.index, state="destroyed")
    if record.nodes > 1 or record.vpc_id is not None:
        await remove_network(name, provider=provider, store=store, clock=clock, emit=emit)
    # The VM is gone: from here on nothing can leave one running, so local cleanup may proceed.
    if ssh is not None:
        with contextlib.suppress(Exception):  # a broken connection to a deleted VM is no news
            await ssh.close()
    if paths is not None:
        remove_ssh_entry(paths, name)
        shutil.rmtree(session_dir(paths, name), ignore_errors=True)

    ended_at = clock.now()
    if tokens is None:
        tokens = record.tokens_generated  # what the dashboard last saw, if it saw anything
    receipt = make_receipt(name, started_at=_started_at(record, ended_at), ended_at=ended_at,
                           hourly_usd=record.hourly_usd, tokens=tokens,
                           monthly_cap_usd=_monthly_cap(record.gpu_type))
    store.update_session(name, state="destroyed", ended_at=ended_at, cost_usd=receipt.cost_usd,
                         tokens_generated=tokens)
    how = ("the VM was already gone" if already_gone else "no VM had been created" if not vm_ids
           else f"VM {', '.join(map(str, vm_ids))} deleted")
    store.add_event(name, "destroyed", f"Session destroyed ({how}): {receipt.summary()}",
                    {"hours": receipt.hours, "billed_hours": receipt.billed_hours, "cost_usd": receipt.cost_usd,
                     "tokens": tokens, "instance_ids": vm_ids, "already_gone": already_gone})
    emit(DestroyedEvent(name, receipt.hours, receipt.cost_usd, tokens, receipt.usd_per_1k_tokens))
    return receipt


async def _session_vms(provider: Provider, record: SessionRecord, nodes: list[NodeRecord], home: str) -> list[int]:
    """Every VM of the session: the recorded ones, and those found by label and tag when one was not
    recorded (its create may have reached the API anyway). Never another home's VM of the same name."""
    recorded = {i for i in (record.instance_id, *(n.instance_id for n in nodes)) if i is not None}
    if len(recorded) >= max(1, record.nodes):  # node 0's VM is the session's own
        return sorted(recorded)
    found = {vm.id for vm in await session_vms(provider, record.name, home, nodes=record.nodes > 1)}
    return sorted(recorded | found)


async def remove_network(name: str, *, provider: Provider, store: Store, clock: Clock, emit: EventSink) -> bool:
    """Delete the session's VPC once its VMs are gone (Linode refuses while one is still attached, and
    a deleted VM may take a moment to let go). A VPC costs nothing, so one that will not go is left
    for the next start's sweep, with a line in the log: True when it is gone."""
    record = store.session(name)
    try:
        vpc_id = record.vpc_id
        if vpc_id is None:
            found = await provider.vpcs.find(vpc_label(name))
            if found is None:
                return True
            vpc_id = found.id
        for attempt in range(NETWORK_TRIES):
            try:
                await provider.vpcs.delete(vpc_id)
                break
            except ProviderError as err:
                if err.kind != "invalid" or attempt == NETWORK_TRIES - 1:
                    raise
                await clock.sleep(NETWORK_RETRY_S)
    except ProviderError as err:
        message = (f"The private network of {name} could not be removed yet ({err.message}); it costs nothing "
                   "and the next start removes it.")
        store.add_event(name, "warning", message)
        emit(LogEvent(name, message))
        return False
    store.add_event(name, "network_removed", f"Private network {vpc_id} removed", {"vpc_id": vpc_id})
    return True


def _failed(store: Store, emit: EventSink, name: str, stage: str, err: ProviderError) -> None:
    """Say why nothing happened; the session record itself is not touched."""
    message = f"Destroy did not happen ({err.message}); the VM may still be running, so the session is kept."
    store.add_event(name, "destroy_failed", message, {"kind": err.kind, "status": err.status, "stage": stage})
    emit(FailedEvent(name, stage, message))


async def _generated_tokens(ssh: SshSession, port: int, emit: EventSink, name: str) -> int | None:
    """vLLM's generation token counter through the session's forward, or None if it cannot be read."""
    try:
        async with asyncio.timeout(METRICS_TIMEOUT_S):
            local = await ssh.forward(port)
        async with VllmClient(f"http://127.0.0.1:{local}", timeout=METRICS_TIMEOUT_S) as vllm:
            async with asyncio.timeout(METRICS_TIMEOUT_S):
                metrics = await vllm.metrics()
    except Exception as exc:  # noqa: BLE001 - best effort: the receipt simply has no token count
        log.info("no token count for %s: %s", name, exc)
        emit(LogEvent(name, f"Could not read vLLM's token counter ({exc}); the receipt has no token count."))
        return None
    return int(metrics.generation_tokens_total) if metrics.reported else None


def _started_at(record: SessionRecord, fallback: float) -> float:
    # The record is written just before the create call, so this errs by seconds on the dear side.
    return record.created_at if record.created_at is not None else fallback


def _monthly_cap(gpu_type: str) -> float | None:
    try:
        return catalog.gpu_type(gpu_type).monthly_usd or None
    except catalog.UnknownGpuTypeError:
        return None


def _stored_receipt(record: SessionRecord, clock: Clock) -> Receipt:
    """The receipt of a session that ended earlier, rebuilt from what the store kept."""
    ended_at = record.ended_at if record.ended_at is not None else clock.now()
    return make_receipt(record.name, started_at=_started_at(record, ended_at), ended_at=ended_at,
                        hourly_usd=record.hourly_usd, tokens=record.tokens_generated,
                        monthly_cap_usd=_monthly_cap(record.gpu_type))
