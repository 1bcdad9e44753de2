"""A new VM in place of a session's lost worker: the session over several VMs serves again.

When a worker VM goes (deleted outside the app, a host failure), its pipeline stage goes with it and
vLLM's engine dies on the head. No flag brings it back, but the session's network, head and other
workers are still there: a VM of the same plan is rented with the lost one's label, joined to the
network at the lost one's address, made ready as the launch makes a worker (ops/cluster_launch.py:
cloud-init, its compose file and .env), and then every node's containers are made anew, so the Ray
cluster forms again from scratch and vLLM loads the model across it.

The new VM is recorded on its node the moment its create returns, like a launch's, so a crash or a
cancel at any step leaves nothing unaccounted for: destroy and recovery find it by its record, or by
its label and tags. A replacement that fails leaves the new VM in the session (it costs money and is
destroyed with it), and says where it stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING

from maider_tui.cloud import ProviderError
from maider_tui.cloud.vpcs import vpc_label
from maider_tui.ops.events import LogEvent
from maider_tui.ops.launch_plan import LaunchPlan, compose_options_of
from maider_tui.ops.provision import SessionEnded
from maider_tui.ops.readiness import StageFailed
from maider_tui.ops.vllm_care import CareError
from maider_tui.remote.ssh import SshError, SshSession

if TYPE_CHECKING:
    from maider_tui.ops.launch_plan import SessionHandle
    from maider_tui.ops.live import LiveSessions
    from maider_tui.store import NodeRecord, SessionRecord


async def lost_workers(live: LiveSessions, name: str) -> list[NodeRecord]:
    """The session's worker nodes to replace, each marked lost: those whose VM no longer exists, and
    those a replacement did not finish on (every worker of a session that served is "ready" until then).
    Empty for a session on one VM."""
    nodes = live.store.nodes(name)[1:]
    if not nodes:
        return []
    provider = await live.provider()
    lost = []
    for node in nodes:
        if node.state != "ready" or node.instance_id is None or await provider.get(node.instance_id) is None:
            lost.append(live.store.update_node(name, node.index, state="lost"))
    return lost


async def replace_lost_workers(live: LiveSessions, name: str, *, reform: bool = False) -> list[int]:
    """Rent a VM for every lost worker of `name`, and serve the model across the session again.

    Returns the indexes of the nodes replaced. With `reform`, a session that lost no VM (a worker's
    container stopped, say) has its cluster formed again on the VMs it has, and [] is returned.
    CareError with a sentence to show when nothing was to be done, the session is not connected, or a
    step failed (a new VM then stays in the session, and the next try makes it again).
    """
    session = live.get(name)
    record = live.store.get_session(name)
    if session is None or session.handle is None or record is None or record.ended:
        raise CareError(f"{name} is not connected")
    if record.nodes < 2:
        raise CareError(f"{name} runs on one VM: there is no worker to replace")
    try:
        return await _replace(live, name, record, session.handle, reform)
    except SessionEnded:
        raise CareError(f"{name} was destroyed while its lost VMs were being replaced") from None
    except ProviderError as exc:
        raise CareError(f"Replacing the lost VMs of {name} stopped: {exc}. Try again (h) or destroy the "
                        "session (d).") from exc


async def _replace(live: LiveSessions, name: str, record: SessionRecord, handle: SessionHandle,
                   reform: bool) -> list[int]:
    from maider_tui.ops.cluster_switch import bring_up, layout_of

    lost = await lost_workers(live, name)
    if not lost and not reform:
        raise CareError(f"every VM of {name} is there: nothing to replace")
    indexes = [node.index for node in lost]
    kept = _kept_workers(live, name, handle, indexes)
    said = ", ".join(f"node {i}" for i in indexes) or "no VM"
    layout = layout_of(live.store, name, record.gpu_count // record.nodes)
    fresh: dict[int, SshSession] = {}
    try:
        if lost:
            fresh = await _rent(live, name, record, handle, lost)
        workers = [fresh.get(n.index) or kept[n.index] for n in layout.nodes[1:]]
        live.emit(LogEvent(name, f"Starting Ray and vLLM again on all {len(layout.nodes)} VMs"))
        options = compose_options_of(record.options, live.settings)
        await bring_up(handle.config, [handle.ssh, *workers], layout, options, live.limits, live.clock,
                       live.emit, name, stage="replace", recreate=True)
    except (StageFailed, SshError, OSError) as exc:
        doing = f"Replacing {said}" if lost else "Forming the cluster again"
        message = (f"{doing} of {name} stopped: {exc}. Its VMs are still running and counted in the session: "
                   "try again (h) or destroy it (d).")
        live.store.add_event(name, "replace_failed", message, {"nodes": indexes})
        await _close(fresh.values())
        raise CareError(message) from exc
    except BaseException:
        await _close(fresh.values())
        raise
    gone = [ssh for ssh in handle.workers if ssh not in workers]
    handle.workers = workers
    await _close(gone)
    for index in range(len(layout.nodes)):
        live.store.update_node(name, index, state="ready")
    done = f"{said} replaced; " if lost else "Ray cluster formed again; "
    live.store.add_event(name, "replaced", f"{done}{handle.config.model} serves across {len(layout.nodes)} VMs "
                                           "again", {"nodes": indexes})
    return indexes


async def _rent(live: LiveSessions, name: str, record: SessionRecord, handle: SessionHandle,
                lost: list[NodeRecord]) -> dict[int, SshSession]:
    """A VM in place of each lost node, set up to join; each one's connection by node index."""
    from maider_tui.ops.cluster_launch import ClusterLaunch
    from maider_tui.ops.cluster_switch import layout_of

    provider = await live.provider()
    network = await provider.vpcs.find(vpc_label(name))
    if network is None:
        raise CareError(f"{name}'s private network is gone, so no VM can join it: destroy the session (d) "
                        "and launch it again")
    indexes = [node.index for node in lost]
    live.store.add_event(name, "replace", "Replacing the lost worker VMs: " + ", ".join(
        f"node {i}" for i in indexes), {"nodes": indexes})
    for node in lost:  # an unfinished replacement's VM holds the label and the address: it goes first
        if node.instance_id is not None and await provider.destroy(node.instance_id):
            live.store.add_event(name, "destroyed", f"VM {node.instance_id} of an unfinished replacement "
                                                    f"deleted (node {node.index})", {"node": node.index})
    plan = LaunchPlan.from_record(record)
    launch = ClusterLaunch(plan, provider, live.store, live.paths, live.clock, live.emit,
                           await asyncio.to_thread(live.hf_token_lookup), live.limits, record)
    launch.recorded, launch.config = True, handle.config  # the session's row exists; its flags are served
    return await launch.replace_workers(indexes, network, layout_of(live.store, name, plan.gpu_type.gpus))


def _kept_workers(live: LiveSessions, name: str, handle: SessionHandle, lost: list[int]) -> dict[int, SshSession]:
    """The connection of every worker that stays, by node index; CareError when one is not connected
    (asked before anything is rented)."""
    by_address = {(ssh.host, ssh.port): ssh for ssh in handle.workers}
    kept = {}
    for node in live.store.nodes(name)[1:]:
        if node.index in lost:
            continue
        ssh = by_address.get((node.ip or "", node.ssh_port or 22))
        if ssh is None:
            raise CareError(f"worker node {node.index} of {name} is not connected; reconnect (r) and try again")
        kept[node.index] = ssh
    return kept


async def _close(sessions: Iterable[SshSession]) -> None:
    for ssh in list(sessions):
        await asyncio.shield(ssh.close())
