"""Switching the model of a running session, with healing, and rolling back when the new one fails.

The new model is fit-planned for the session's GPU type first: a model that cannot fit is refused
before the VM is touched. Then the new compose file goes up, `docker compose up -d` recreates the
container, and the switch waits for vLLM (health, the model listed, one test completion), healing
a failed start exactly as provisioning does (`readiness.wait_vllm_healing`: diagnose the log, remedy
the flags, up to heal.MAX_ATTEMPTS). If it never comes up, the previous compose goes back up and the
old model serves again. The store keeps the old model and config unless the switch succeeded.

Before compose goes up, the record is marked `extra["switching"]` (the config going up); the
success, the rollback or the failure clears it in the same write that records the outcome. A
process killed in between leaves the mark: the next attach asks vLLM what it serves and settles
the record to the truth (`settle_switch`).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from maider_tui import catalog
from maider_tui.clock import Clock
from maider_tui.cloud import Provider
from maider_tui.deploy.compose import COMPOSE_PATH, ComposeOptions, render
from maider_tui.models import VllmConfig
from maider_tui.ops import heal
from maider_tui.ops.events import (
    EventSink,
    FailedEvent,
    HealEvent,
    LogEvent,
    ReadyEvent,
    RolledBackEvent,
    StageEvent,
    WarningEvent,
)
from maider_tui.ops.launch_plan import compose_options_of
from maider_tui.ops.readiness import COMPOSE_CMD, ReadinessLimits, StageFailed, wait_vllm, wait_vllm_healing
from maider_tui.ops.session_files import write_aider_files
from maider_tui.paths import AppPaths
from maider_tui.remote.ssh import SshError, SshSession
from maider_tui.remote.vllm import ModelInfo
from maider_tui.store import SessionRecord, Store
from maider_tui.words import plural

if TYPE_CHECKING:
    from maider_tui.profiles import Profile
    from maider_tui.settings import Settings

SWITCH_MARK = "switching"  # record.extra: {"to": the VllmConfig going up, "from": the old model}


class SwitchRefused(ValueError):
    """The switch was not started: the model does not fit, is unknown, or the session cannot switch."""


class SwitchFailed(RuntimeError):
    """The new model did not come up. `rolled_back`: the old model serves again.

    diagnosis: "kind: summary" from the heal diagnosis when vLLM's log named a cause.
    """

    def __init__(self, message: str, *, rolled_back: bool, diagnosis: str | None = None) -> None:
        super().__init__(message)
        self.rolled_back = rolled_back
        self.diagnosis = diagnosis


async def switch_model(name: str, new_model_id: str, *, ssh: SshSession, store: Store, clock: Clock,
                       emit: EventSink, settings: Settings | None = None,
                       options: ComposeOptions | None = None,
                       provider: Provider | None = None, max_model_len: int | None = None,
                       limits: ReadinessLimits | None = None, paths: AppPaths | None = None) -> VllmConfig:
    """Serve `new_model_id` on the session's VM instead of its current model; returns the new config.

    ssh: the session's connected SshSession. options: the compose options (default: the session's own,
    as recorded at launch, else the settings'). settings: the app's Settings (vLLM memory share, KV-cache
    dtype, max_num_seqs, extra args and env are taken from it when given). provider: when given, the
    VM is checked to still exist first. limits: the readiness limits (vllm_s per start, poll_s).
    paths: when given, the session's aider files are rewritten for the new model and context.
    Raises SwitchRefused before touching the VM, and SwitchFailed when the new model did not come up
    (after a rollback, or with the session marked failed when even the old model would not come back).
    """
    record = store.get_session(name)
    if record is None:
        raise SwitchRefused(f"there is no session named {name!r}")
    if record.nodes > 1:
        raise SwitchRefused(f"{name} spans {record.nodes} VMs: its switch needs every VM's connection "
                            "(ops.cluster_switch, which the live-session service uses).")
    if record.ended or record.state != "ready":
        raise SwitchRefused(f"{name} is {record.state}, not ready: only a serving session can switch models")
    if not record.vllm_config:
        raise SwitchRefused(f"{name} has no recorded vLLM config to roll back to; relaunch instead")
    old = VllmConfig.from_dict(record.vllm_config)
    options = options or compose_options_of(record.options, settings)
    profile = None
    if paths is not None:
        from ..profiles import image_for, profile_for

        profile, problems = profile_for(new_model_id, paths)
        for problem in problems:
            emit(WarningEvent(name, f"Model profile skipped: {problem}"))
        options = dataclasses.replace(options, vllm_image=image_for(profile, options.vllm_image))
    # The served name is what the session's clients ask for: it stays, so they keep working.
    new = plan_config(new_model_id, record.gpu_type, settings=settings, max_model_len=max_model_len,
                      served_model_name=old.served_model_name, profile=profile)
    # An interrupted switch not settled yet: the VM may serve either model, so neither is refused.
    if new == old and SWITCH_MARK not in record.extra:
        raise SwitchRefused(f"{name} already serves {new_model_id} with these settings")
    if provider is not None and record.instance_id is not None and await provider.get(record.instance_id) is None:
        raise SwitchRefused(f"{name}'s VM no longer exists; recovery will mark the session ended")
    limits = limits or ReadinessLimits()

    started = clock.monotonic()
    store.add_event(name, "switch", f"Switching {old.model} -> {new.model}", {"from": old.model, "to": new.model})
    emit(StageEvent(name, "switch", 0.1, None, f"Uploading the compose file for {new.model}"))
    current, heals = new, 0

    async def apply(attempt: int, found: heal.Diagnosis, remedied: VllmConfig) -> None:
        # One healing attempt, as provisioning does it: say what changed, then restart with it.
        nonlocal current, heals
        change = heal.describe_change(current, remedied)
        heals += 1
        emit(HealEvent(name, attempt, found.kind, found.evidence, change))
        store.add_event(name, "heal", f"attempt {attempt}: {found.summary}; {change}",
                        {"attempt": attempt, "kind": found.kind, "evidence": found.evidence, "change": change})
        current = remedied
        _mark(store, name, old, remedied)
        await deploy_compose(ssh, remedied, options, limits)

    local_port = await ssh.forward(options.vllm_port)  # failing here leaves the VM untouched
    _mark(store, name, old, new)  # a kill from here on is settled by the next attach (settle_switch)
    try:
        await deploy_compose(ssh, new, options, limits)
        emit(StageEvent(name, "switch", 0.3, None, f"Waiting for vLLM to load {new.model}"))
        served = await wait_vllm_healing(ssh, local_port, lambda: current, gpu_count=record.gpu_count,
                                         options=options, limits=limits, clock=clock, apply=apply,
                                         log=lambda text: emit(LogEvent(name, text)))
    except (StageFailed, SshError) as exc:
        raise await _roll_back(name, old, current, exc, ssh=ssh, store=store, clock=clock, emit=emit,
                               options=options, limits=limits) from exc

    store.update_session(name, model=current.model, vllm_config=current.to_dict(), extra=_unmarked(store, name))
    store.add_event(name, "switched", f"Now serving {current.model}" + (f" after {plural(heals, 'heal')}" if heals else ""),
                    {"model": current.model, "heals": heals, "change": heal.describe_change(old, current)})
    endpoint = f"http://127.0.0.1:{local_port}/v1"
    max_len = served.max_model_len or current.max_model_len or heal.DEFAULT_CONTEXT
    if paths is not None:
        write_aider_files(paths, name, endpoint=endpoint, served_name=served.served_name, max_model_len=max_len)
    emit(ReadyEvent(name, endpoint, clock.monotonic() - started, max_len, heals))
    return current


def plan_config(model_id: str, gpu_type: str, *, settings: Settings | None = None,
                max_model_len: int | None = None, served_model_name: str | None = None,
                profile: Profile | None = None) -> VllmConfig:
    """The vLLM config `model_id` gets on `gpu_type`: the launch's own (`deploy.launch.resolve`: fit
    plan, profile, the user's settings); SwitchRefused when it cannot fit. `served_model_name` wins
    over the settings' (the session keeps the name aider already uses)."""
    from ..deploy.launch import resolve
    from ..settings import Settings

    settings = settings if settings is not None else Settings.defaults()
    try:
        spec, gpu = catalog.model(model_id), catalog.gpu_type(gpu_type)
    except catalog.UnknownCatalogIdError as exc:
        raise SwitchRefused(f"cannot plan {model_id} on {gpu_type or 'this GPU type'}: {exc}") from None
    launch = resolve(spec, gpu, settings, profile=profile, context=max_model_len)
    if not launch.report.fits:
        raise SwitchRefused(f"{model_id} does not fit {gpu.short_name}: {launch.report.reason}")
    return launch.config.replace(served_model_name=served_model_name)


async def _roll_back(name: str, old: VllmConfig, new: VllmConfig, cause: Exception, *, ssh: SshSession,
                     store: Store, clock: Clock, emit: EventSink, options: ComposeOptions,
                     limits: ReadinessLimits) -> SwitchFailed:
    """Put the previous config back and wait for it; returns the SwitchFailed to raise."""
    diagnosis = getattr(cause, "diagnosis", None)
    emit(WarningEvent(name, f"{new.model} did not come up ({cause}); going back to {old.model}."))
    emit(StageEvent(name, "rollback", 0.8, None, f"Restoring {old.model}"))
    try:
        await deploy_compose(ssh, old, options, limits)
        # The old config served before: no healing, one start.
        back = await wait_vllm(ssh, await ssh.forward(options.vllm_port), old, limits, clock, heal.diagnose)
        if not back.ready:
            raise StageFailed("vllm", back.reason)
    except (StageFailed, SshError) as exc:
        message = (f"Switching to {new.model} failed ({cause}) and {old.model} did not come back ({exc}); "
                   "the VM is still running: inspect it or destroy it.")
        store.update_session(name, state="failed", stage="switch", extra=_unmarked(store, name))
        store.add_event(name, "switch_failed", message, {"from": old.model, "to": new.model, "rolled_back": False})
        emit(FailedEvent(name, "rollback", message, diagnosis))
        return SwitchFailed(message, rolled_back=False, diagnosis=diagnosis)
    message = f"{new.model} did not come up ({cause}); rolled back, {old.model} serves again."
    store.update_session(name, extra=_unmarked(store, name))
    store.add_event(name, "rolled_back", message, {"from": old.model, "to": new.model, "diagnosis": diagnosis})
    emit(RolledBackEvent(name, old.model, message))
    return SwitchFailed(message, rolled_back=True, diagnosis=diagnosis)


# --- the switch mark, and settling it after a crash ----------------------------------------------

def _mark(store: Store, name: str, old: VllmConfig, going_up: VllmConfig) -> None:
    record = store.get_session(name)
    extra = record.extra if record is not None else {}
    store.update_session(name, extra={**extra, SWITCH_MARK: {"to": going_up.to_dict(), "from": old.model}})


def _unmarked(store: Store, name: str) -> dict[str, Any]:
    record = store.get_session(name)
    return {k: v for k, v in (record.extra if record is not None else {}).items() if k != SWITCH_MARK}


def settle_switch(name: str, models: list[ModelInfo] | None, *, store: Store, emit: EventSink) -> SessionRecord | None:
    """Settle a switch the app died in the middle of, from what vLLM serves (`models`, None when it
    did not answer); returns the record as now stored.

    The new model listed: the record takes the config that went up. The old one listed: the record
    keeps it and only loses the mark. vLLM not answering (still loading, say): the mark stays, to be
    settled at the next attach. Both ways the session can switch again, to either model.
    """
    record = store.get_session(name)
    mark = record.extra.get(SWITCH_MARK) if record is not None else None
    if record is None or not isinstance(mark, dict) or not isinstance(mark.get("to"), dict):
        return record
    target = VllmConfig.from_dict(mark["to"])
    if not models:
        emit(WarningEvent(name, f"A switch to {target.model} was interrupted and vLLM is not answering yet; "
                                "the model shown is the old one until the next reconnect (r) finds out."))
        return record
    serving = {m.root for m in models} | {m.id for m in models}
    extra = {k: v for k, v in record.extra.items() if k != SWITCH_MARK}
    if target.model in serving or (target.served_model_name or target.model) in serving:
        record = store.update_session(name, model=target.model, vllm_config=target.to_dict(), extra=extra)
        message = f"Now serving {target.model}: the switch the app was interrupted in had come up"
        store.add_event(name, "switched", message, {"model": target.model, "from": mark.get("from"),
                                                    "recovered": True})
    elif record.model in serving:
        record = store.update_session(name, extra=extra)
        message = f"The switch to {target.model} was interrupted before it came up; {record.model} still serves"
        store.add_event(name, "switch_abandoned", message, {"model": record.model, "to": target.model})
    else:
        emit(WarningEvent(name, f"vLLM serves {', '.join(sorted(m.root for m in models))}, neither "
                                f"{record.model} nor {target.model}: switch the model again (m) to settle it."))
        return record
    emit(LogEvent(name, message + "."))
    return record


# --- deploying ------------------------------------------------------------------------------------

async def deploy_compose(ssh: SshSession, config: VllmConfig, options: ComposeOptions,
                         limits: ReadinessLimits | None = None) -> None:
    """Upload the compose file for `config` and `up -d` (which recreates vLLM when the file changed)."""
    limits = limits or ReadinessLimits()
    await ssh.put(COMPOSE_PATH, render(config, options).encode(), 0o644)  # no secret in it: .env has those
    result = await ssh.run(f"{COMPOSE_CMD} up -d", timeout=limits.vllm_s)
    if not result.ok:
        said = (result.stderr or result.stdout).strip().splitlines()
        raise StageFailed("compose_up", "docker compose up failed on the VM: "
                                        + (said[-1] if said else f"exit {result.exit_status}"))
