"""Tending a connected session's vLLM from the dashboard: read its log, restart it, heal it now;
forward Open WebUI; keep the token count.

The dashboard asks and shows; these do the SSH, the store writes and the healing decisions. Each takes
the app's LiveSessions and the session's name, and raises CareError with a sentence to show.
"""

from __future__ import annotations

import asyncio

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .readiness import COMPOSE_CMD

if TYPE_CHECKING:
    from ..models import VllmConfig
    from ..store import SessionRecord
    from .heal import Diagnosis
    from .launch_plan import SessionHandle
    from .live import LiveSessions

VLLM_LOG_CMD = f"{COMPOSE_CMD} logs --tail 200 vllm"


class CareError(Exception):
    """The operation did not happen; str() says why, for the log pane."""


@dataclass(frozen=True)
class HealProposal:
    """What the vLLM log shows: `diagnosis` None when it names no failure; `config` the remedy's
    config (None when no remedy is left) and `change` that remedy in words."""

    diagnosis: Diagnosis | None
    config: VllmConfig | None = None
    change: str = ""


def _handle(live: LiveSessions, name: str) -> SessionHandle:
    session = live.get(name)
    if session is None or session.handle is None:
        raise CareError(f"{name} is not connected")
    return session.handle


async def read_vllm_log(live: LiveSessions, name: str, *, timeout: float = 30) -> str:
    """The tail of the vLLM container's log (stdout and stderr)."""
    from ..remote.ssh import SshError

    handle = _handle(live, name)
    try:
        result = await handle.ssh.run(VLLM_LOG_CMD, timeout=timeout)
    except SshError as exc:
        raise CareError(f"could not read the vLLM log: {exc}") from exc
    return result.stdout + result.stderr


async def propose_heal(live: LiveSessions, name: str) -> HealProposal:
    """Read vLLM's log, diagnose it, and work out the next remedy for the session's config."""
    from . import heal

    handle = _handle(live, name)
    found = heal.diagnose(await read_vllm_log(live, name, timeout=60))
    if found is None:
        return HealProposal(None)
    remedied = heal.remedy(handle.config, found, handle.heals + 1, handle.record.gpu_count)
    if remedied is None:
        return HealProposal(found)
    return HealProposal(found, remedied, heal.describe_change(handle.config, remedied))


async def restart_vllm(live: LiveSessions, name: str, *, timeout: float = 120) -> None:
    """Restart the vLLM container with the same flags, and record it."""
    from ..remote.ssh import SshError

    handle = _handle(live, name)
    try:
        result = await handle.ssh.run(f"{COMPOSE_CMD} restart vllm", timeout=timeout)
    except SshError as exc:
        raise CareError(f"restart failed: {exc}") from exc
    if not result.ok:
        raise CareError(f"restart failed: {(result.stderr or result.stdout).strip()[-200:]}")
    live.store.add_event(name, "restart", "vLLM restarted from the dashboard")


async def apply_heal(live: LiveSessions, name: str, config: VllmConfig, change: str) -> None:
    """Deploy `config` with the compose options the session was launched with, and record it."""
    from .launch_plan import compose_options_of
    from .switch_model import deploy_compose

    handle = _handle(live, name)
    record = live.store.get_session(name)
    options = compose_options_of(record.options if record is not None else {}, live.settings)
    try:
        if record is not None and record.nodes > 1:  # the flags are in every VM's file
            from ..deploy.cluster import cluster_config
            from .cluster_switch import deploy_cluster, layout_of

            if len(handle.workers) != record.nodes - 1:
                raise CareError(f"{name}'s worker VMs are not all connected; reconnect (r) and try again")
            layout = layout_of(live.store, name, record.gpu_count // record.nodes)
            config = cluster_config(config, layout)
            await deploy_cluster(config, [handle.ssh, *handle.workers], layout, options, live.limits, live.emit,
                                 name)
        else:
            await deploy_compose(handle.ssh, config, options, live.limits)
    except CareError:
        raise
    except Exception as exc:  # noqa: BLE001 - the old flags keep running: say what failed
        raise CareError(f"heal failed: {exc}") from exc
    handle.config, handle.heals = config, handle.heals + 1
    live.store.update_session(name, vllm_config=config.to_dict())
    live.store.add_event(name, "heal", f"heal now: {change}", {"change": change})


async def remember_tokens(live: LiveSessions, name: str, tokens: int) -> SessionRecord | None:
    """Keep the tokens vLLM reports generated, so a receipt written without a reachable vLLM still
    has the last count seen; the record as it is now. None (nothing written) once the session has
    ended. In a thread: a database another program holds must not stop the caller's loop."""
    def remember() -> SessionRecord | None:
        record = live.store.get_session(name)
        if record is None or record.ended:
            return None
        return live.store.update_session(name, tokens_generated=tokens)

    return await asyncio.to_thread(remember)


async def forward_webui(live: LiveSessions, name: str) -> str | None:
    """Open WebUI listens on the VM's localhost only: forward it over the session's SSH, like vLLM.
    Its local URL, or None when the session was launched without it."""
    from .launch_plan import compose_options_of

    handle = _handle(live, name)
    record = live.store.get_session(name)
    options = compose_options_of(record.options if record is not None else {})
    if not options.enable_openwebui:
        return None
    return f"http://127.0.0.1:{await handle.ssh.forward(options.webui_port)}"
