"""A multi-VM session's Ray cluster forming, read from the head: `ray status` inside its container.

`ray status` prints the autoscaler's view (Ray 2.x): under "Node status", an "Active:" list with one
` 1 node_<id>` line per node, then "Pending:" and "Recent failures:"; under "Resources", "Usage:" lines
such as ` 0.0/8.0 GPU` (used/total). Before the head is up it fails with "Could not find any running Ray
instance". The wait below reads it until every node has joined and Ray counts every GPU, and says how
far it got as it goes (the provisioning screen shows "head up", "1 of 1 workers joined", "8 GPUs seen").
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from maider_tui.clock import Clock
from maider_tui.cloud import Provider
from maider_tui.deploy.cluster import HEAD_SERVICE, WORKER_SERVICE
from maider_tui.ops.events import EventSink, WarningEvent
from maider_tui.ops.readiness import (COMPOSE_CMD, ReadinessLimits, StageFailed, connect_ssh, container_state,
                                      last_line)
from maider_tui.remote.ssh import SshError, SshSession
from maider_tui.store import Store

_NODE_LINE = re.compile(r"^\s*(\d+)\s+node_\S+")
_GPU_LINE = re.compile(r"^\s*([\d.]+)/([\d.]+)\s+GPU\b")


@dataclass(frozen=True)
class ClusterStatus:
    nodes: int  # active nodes, the head included
    gpus: float  # GPUs Ray counts across them

    def describe(self, expected_nodes: int, expected_gpus: int) -> str:
        workers = max(0, self.nodes - 1)
        return (f"Ray: head up, {workers} of {expected_nodes - 1} worker{'s' if expected_nodes > 2 else ''} "
                f"joined, {self.gpus:g} of {expected_gpus} GPUs seen")


def parse_ray_status(text: str) -> ClusterStatus | None:
    """The node and GPU counts in `ray status` output; None when it is not such output."""
    if "Node status" not in text:
        return None
    nodes, gpus, section = 0, 0.0, ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.endswith(":") and not stripped.startswith("("):
            section = stripped[:-1]
            continue
        if section == "Active" and (match := _NODE_LINE.match(line)):
            nodes += int(match.group(1))
        elif section == "Usage" and (match := _GPU_LINE.match(line)):
            gpus = float(match.group(2))
    return ClusterStatus(nodes, gpus)


async def ray_status(head: SshSession, limits: ReadinessLimits) -> ClusterStatus | None:
    """The cluster as the head's Ray sees it; None while Ray is not up there yet."""
    result = await head.run(f"{COMPOSE_CMD} exec -T {HEAD_SERVICE} ray status", timeout=limits.command_timeout_s)
    return parse_ray_status(result.stdout) if result.ok else None


async def wait_cluster(head: SshSession, workers: Sequence[SshSession], *, nodes: int, gpus: int,
                       limits: ReadinessLimits, clock: Clock, progress: Callable[[str], None]) -> ClusterStatus:
    """Wait until every node has joined the head's Ray cluster and Ray counts `gpus` GPUs.

    Raises StageFailed("vllm") when a worker's container has stopped (with its last log line: a wrong
    interface name, an unreachable head) or when the limit passes, saying how far the cluster got.
    """
    end, said, status = clock.monotonic() + limits.vllm_s, "", None
    while True:
        try:
            status = await ray_status(head, limits)
            for index, worker in enumerate(workers, start=1):
                await _worker_alive(worker, index, limits)
        except SshError as exc:
            progress(f"SSH: {exc}")
        if status is not None:
            text = status.describe(nodes, gpus)
            if text != said:
                progress(text)
                said = text
            if status.nodes >= nodes and status.gpus >= gpus:
                return status
        if clock.monotonic() >= end:
            where = said or "Ray had not started on the head"
            raise StageFailed("vllm", f"The Ray cluster did not form within {limits.vllm_s:.0f} s ({where}).")
        await clock.sleep(limits.poll_s)


async def _worker_alive(worker: SshSession, index: int, limits: ReadinessLimits) -> None:
    state = await container_state(worker, limits, WORKER_SERVICE)
    if state in ("exited", "dead"):
        logs = await worker.run(f"{COMPOSE_CMD} logs --no-color --tail 50 {WORKER_SERVICE} 2>&1",
                                timeout=limits.command_timeout_s)
        said = last_line(logs.stdout) or f"its container {state}"
        raise StageFailed("vllm", f"Worker node {index} left the Ray cluster: {said}")


async def connect_workers(name: str, *, store: Store, provider: Provider, client_key: str, limits: ReadinessLimits,
                          clock: Clock, emit: EventSink) -> list[SshSession]:
    """SSH to each worker VM of a session over several (after a restart), each with its pinned host key.

    A worker whose VM is gone is marked lost and said (the model cannot serve without it); one that does
    not answer is said and left out (the dashboard shows its GPUs without values). Never raises but on
    a cancel, which closes what was opened.
    """
    sessions: list[SshSession] = []
    try:
        for node in store.nodes(name)[1:]:
            if node.instance_id is None or not node.host_key:
                continue
            vm = await provider.get(node.instance_id)
            if vm is None:
                store.update_node(name, node.index, state="lost")
                emit(WarningEvent(name, f"Worker VM {node.instance_id} of {name} no longer exists, so its model "
                                        "cannot serve: h rents a VM in its place; d destroys the session."))
                continue
            host, port = provider.ssh_endpoint(vm)
            try:
                sessions.append(await connect_ssh(host, port, client_key, node.host_key, limits, clock))
            except (StageFailed, SshError) as exc:
                emit(WarningEvent(name, f"Worker VM {node.instance_id} of {name} does not answer SSH ({exc}); "
                                        "its GPUs show no values until it does."))
    except BaseException:
        for ssh in sessions:
            await asyncio.shield(ssh.close())
        raise
    return sessions
