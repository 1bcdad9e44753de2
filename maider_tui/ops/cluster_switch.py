"""Switching the model of a session over several VMs, in place: every VM's files, the cluster again.

The single-VM switch (ops/switch_model.py) rewrites one compose file; here each node's file changes
(the head serves the new model; every node fetches its weights), `up -d` recreates every container,
the Ray cluster forms again, and vLLM loads the new model across it. When it does not come up, the old
model's files go back and it is waited for in turn, as on one VM.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from maider_tui import catalog
from maider_tui.clock import Clock
from maider_tui.cloud.vpcs import SUBNET_CIDR
from maider_tui.deploy.cluster import ClusterLayout, Node, cluster_config, render_node
from maider_tui.deploy.compose import COMPOSE_PATH, ComposeOptions
from maider_tui.models import VllmConfig
from maider_tui.ops import heal
from maider_tui.ops.cluster_status import wait_cluster
from maider_tui.ops.events import EventSink, LogEvent, ReadyEvent, RolledBackEvent, StageEvent, WarningEvent
from maider_tui.ops.launch_plan import compose_options_of
from maider_tui.ops.readiness import ReadinessLimits, StageFailed, VllmAttempt, wait_vllm
from maider_tui.ops.session_files import write_aider_files
from maider_tui.ops.switch_model import SwitchFailed, SwitchRefused
from maider_tui.ops.vm_compose import compose_up
from maider_tui.paths import AppPaths
from maider_tui.remote.ssh import SshError, SshSession
from maider_tui.store import Store

if TYPE_CHECKING:
    from maider_tui.settings import Settings


async def switch_cluster(name: str, model_id: str, *, head: SshSession, workers: Sequence[SshSession],
                         store: Store, clock: Clock, emit: EventSink, settings: Settings,
                         limits: ReadinessLimits, paths: AppPaths | None = None,
                         max_model_len: int | None = None) -> VllmConfig:
    """Serve `model_id` on the session's VMs instead of its model; returns the new config.

    SwitchRefused before anything changes (not ready, does not fit the VMs, already served, a worker
    not connected); SwitchFailed when the new model did not come up (`rolled_back` says whether the old
    one serves again; if not, the session is marked failed).
    """
    from maider_tui.deploy.launch import resolve
    from maider_tui.profiles import profile_for

    record = store.get_session(name)
    if record is None or record.ended or record.state != "ready":
        raise SwitchRefused(f"{name} is not serving: only a ready session can switch models")
    nodes = store.nodes(name)
    if len(workers) != len(nodes) - 1:
        raise SwitchRefused(f"{name}'s worker VMs are not all connected; reconnect (r) and try again")
    old = VllmConfig.from_dict(record.vllm_config)
    gpu = catalog.gpu_type(record.gpu_type)
    try:
        spec = catalog.model(model_id)
    except catalog.UnknownCatalogIdError as exc:
        raise SwitchRefused(str(exc)) from None
    profile = profile_for(model_id, paths)[0] if paths is not None else None
    launch = resolve(spec, gpu, settings, profile=profile, context=max_model_len, nodes=record.nodes)
    if not launch.report.fits:
        raise SwitchRefused(f"{model_id} does not fit {record.nodes} VMs of {gpu.short_name}: "
                            f"{launch.report.reason}")
    layout = layout_of(store, name, gpu.gpus)
    new = cluster_config(launch.config.replace(served_model_name=old.served_model_name), layout)
    if new == old:
        raise SwitchRefused(f"{name} already serves {model_id} with these settings")
    options = compose_options_of(record.options, settings)
    sessions = [head, *workers]
    started = clock.monotonic()
    store.add_event(name, "switch", f"Switching {old.model} -> {new.model}", {"from": old.model, "to": new.model})
    emit(StageEvent(name, "switch", 0.1, None, f"Uploading every VM's files for {new.model}"))
    try:
        served = await bring_up(new, sessions, layout, options, limits, clock, emit, name)
    except (StageFailed, SshError) as exc:
        raise await _roll_back(name, old, new, exc, sessions, layout, options, limits, clock, emit, store) from exc
    store.update_session(name, model=new.model, vllm_config=new.to_dict())
    store.add_event(name, "switched", f"Now serving {new.model}", {"model": new.model, "heals": 0})
    local_port = await head.forward(options.vllm_port)
    endpoint = f"http://127.0.0.1:{local_port}/v1"
    max_len = served.max_model_len or new.max_model_len or heal.DEFAULT_CONTEXT
    if paths is not None:
        write_aider_files(paths, name, endpoint=endpoint, served_name=served.served_name, max_model_len=max_len)
    emit(ReadyEvent(name, endpoint, clock.monotonic() - started, max_len, 0))
    return new


def layout_of(store: Store, name: str, gpus_per_vm: int) -> ClusterLayout:
    """The session's nodes as its launch laid them out: the head first, each at its VPC address."""
    return ClusterLayout(tuple(Node(n.index, n.address, gpus_per_vm) for n in store.nodes(name)), SUBNET_CIDR)


async def deploy_cluster(config: VllmConfig, sessions: Sequence[SshSession], layout: ClusterLayout,
                         options: ComposeOptions, limits: ReadinessLimits, emit: EventSink, name: str) -> None:
    """Every node's file for `config` (with the cluster's own flags), then `up -d` on every node."""
    await _deploy(cluster_config(config, layout), sessions, layout, options, limits, emit, name)


async def _deploy(config: VllmConfig, sessions: Sequence[SshSession], layout: ClusterLayout,
                  options: ComposeOptions, limits: ReadinessLimits, emit: EventSink, name: str,
                  recreate: bool = False) -> None:
    """Every node's file for `config`, then `up -d` on every node at once (each recreates its container
    when its file changed, or always with `recreate`)."""
    def logger(index: int) -> Callable[[str], None]:
        return lambda line: emit(LogEvent(name, f"node {index}: {line}"))

    for ssh, node in zip(sessions, layout.nodes):
        await ssh.put(COMPOSE_PATH, render_node(config, node, layout, options).encode(), 0o644)
    await asyncio.gather(*(compose_up(ssh, limits, logger(i), recreate=recreate) for i, ssh in enumerate(sessions)))


async def bring_up(config: VllmConfig, sessions: Sequence[SshSession], layout: ClusterLayout,
                   options: ComposeOptions, limits: ReadinessLimits, clock: Clock, emit: EventSink,
                   name: str, *, stage: str = "switch", recreate: bool = False) -> VllmAttempt:
    """`config` on every node, the Ray cluster formed again, and vLLM waited for on the head;
    StageFailed (with its diagnosis) when vLLM does not come up. The StageEvents are `stage`'s."""
    await _deploy(config, sessions, layout, options, limits, emit, name, recreate)
    emit(StageEvent(name, stage, 0.3, None, f"Forming the Ray cluster again for {config.model}"))
    await wait_cluster(sessions[0], sessions[1:], nodes=len(layout.nodes), gpus=layout.total_gpus,
                       limits=limits, clock=clock, progress=lambda text: emit(LogEvent(name, text)))
    emit(StageEvent(name, stage, 0.6, None, f"Waiting for vLLM to load {config.model}"))
    attempt = await wait_vllm(sessions[0], await sessions[0].forward(options.vllm_port), config, limits, clock,
                              heal.diagnose)
    if not attempt.ready:
        found = heal.diagnose(attempt.log_text)
        raise StageFailed("vllm", attempt.reason + (f" ({found.summary})" if found else ""),
                          found.kind if found else None)
    return attempt


async def _roll_back(name: str, old: VllmConfig, new: VllmConfig, cause: Exception,
                     sessions: Sequence[SshSession], layout: ClusterLayout, options: ComposeOptions,
                     limits: ReadinessLimits, clock: Clock, emit: EventSink, store: Store) -> SwitchFailed:
    """Put the old model's files back on every VM and wait for it; returns the SwitchFailed to raise."""
    emit(WarningEvent(name, f"{new.model} did not come up ({cause}); going back to {old.model}."))
    try:
        await bring_up(old, sessions, layout, options, limits, clock, emit, name)
    except (StageFailed, SshError) as exc:
        message = (f"Switching to {new.model} failed ({cause}) and {old.model} did not come back ({exc}); "
                   "the VMs are still running: inspect them or destroy the session.")
        store.update_session(name, state="failed", stage="switch")
        store.add_event(name, "switch_failed", message, {"from": old.model, "to": new.model, "rolled_back": False})
        return SwitchFailed(message, rolled_back=False)
    message = f"{new.model} did not come up ({cause}); rolled back, {old.model} serves again."
    store.add_event(name, "rolled_back", message, {"from": old.model, "to": new.model})
    emit(RolledBackEvent(name, old.model, message))
    return SwitchFailed(message, rolled_back=True)
