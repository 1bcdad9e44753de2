"""Provisioning: from a launch plan to a vLLM endpoint on the user's machine, healing vLLM on the way.

Stages (each a StageEvent with the job's progress and an ETA, the record's `stage`, a store event):
token -> record -> keys -> create -> running -> ssh -> cloud_init -> upload -> compose_up -> vllm
(with self-healing) -> tunnel -> aider -> ready. The session is recorded before anything is
created, and the instance id right after the create, so a crash always leaves a trace that
`resume_from` can pick up. On failure the VM is left running for the user to inspect or destroy:
this module never destroys anything. See docs/provisioning.md.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from maider_tui.clock import Clock
from maider_tui.cloud import CreateSpec, Provider, ProviderError, Vm, home_tag, label_taken, session_vms
from maider_tui.deploy import cloud_init, compose
from maider_tui.log import register_secret
from maider_tui.models import VllmConfig
from maider_tui.ops import heal
from maider_tui.ops.events import (EventSink, FailedEvent, HealEvent, LogEvent, ReadyEvent, StageEvent,
                                   WarningEvent)
from maider_tui.ops.readiness import (STAGE_NAMES, STAGES, TOTAL_S, ReadinessLimits, StageFailed, VllmAttempt,
                                      connect_ssh, wait_cloud_init, wait_running, wait_vllm_healing)
from maider_tui.ops.launch_plan import DEFAULT_IMAGE, LaunchPlan, SessionHandle
from maider_tui.ops.session_files import write_aider_files, write_ssh_files
from maider_tui.ops.reserve import choose_name, reserve
from maider_tui.ops.session_keys import session_keys
from maider_tui.ops.vm_compose import compose_up, put_compose, put_env
from maider_tui.paths import AppPaths
from maider_tui.remote.ssh import KeyPair, SshError, SshSession
from maider_tui.store import SessionRecord, Store, StoreError

if TYPE_CHECKING:
    from maider_tui.settings import Settings

__all__ = ["DEFAULT_IMAGE", "LaunchPlan", "ProvisionFailed", "SessionEnded", "SessionHandle", "provision"]

class SessionEnded(Exception):
    """The session was destroyed (by another window, `down`, a watchdog) while this launch ran."""


class ProvisionFailed(Exception):
    """Provisioning stopped (a FailedEvent was emitted); the VM, if any, is still there."""

    def __init__(self, session: str, stage: str, message: str, diagnosis: str | None = None,
                 instance_id: int | None = None) -> None:
        super().__init__(message)
        self.session, self.stage, self.message = session, stage, message
        self.diagnosis, self.instance_id = diagnosis, instance_id


async def provision(plan: LaunchPlan | None, *, provider: Provider, store: Store, paths: AppPaths,
                    settings: Settings, clock: Clock, emit: EventSink, hf_token: str | None,
                    limits: ReadinessLimits | None = None, resume_from: SessionRecord | None = None,
                    claim: Callable[[str], object] | None = None) -> SessionHandle:
    """Launch `plan` (or resume `resume_from`, whose plan is rebuilt when `plan` is None) to ready.

    Raises ProvisionFailed after a FailedEvent (session "failed", the VM left running). Cancelling
    the task leaves the record at the stage it reached, for `resume_from`; a create already sent is
    waited for first, and the VM it made recorded. `claim(name)` is called once the session's record
    is this launch's own (its name reserved), so a caller acts only on a session it created.
    `settings` is accepted for the callers' symmetry; the plan already carries what it says.
    """
    if plan is None:
        if resume_from is None:
            raise ValueError("provision() needs a plan or a session to resume")
        plan = LaunchPlan.from_record(resume_from)
    register_secret(hf_token)  # never in the log file, whatever quotes it
    launch_class: type[_Launch] = _Launch
    if plan.nodes > 1:
        from maider_tui.ops.cluster_launch import ClusterLaunch  # it builds on this module

        launch_class = ClusterLaunch
    return await launch_class(plan, provider, store, paths, clock, emit, hf_token,
                              limits or ReadinessLimits(), resume_from, claim).run()


class _Launch:
    """One provisioning run; holds what the stages share."""
    KEPT = " The VM {id} is still running: inspect it or destroy it."  # said after a failure

    def __init__(self, plan: LaunchPlan, provider: Provider, store: Store, paths: AppPaths, clock: Clock,
                 emit: EventSink, hf_token: str | None, limits: ReadinessLimits,
                 resume: SessionRecord | None, claim: Callable[[str], object] | None = None) -> None:
        self.plan, self.provider, self.store, self.paths, self.claim = plan, provider, store, paths, claim
        self.clock, self.emit, self.limits, self.resume, self.hf_token = clock, emit, limits, resume, hf_token
        self.name = resume.name if resume else (plan.name or "")
        self.config, self.recorded, self.current, self.heals = plan.config, False, "token", 0
        self.ssh: SshSession | None = None
        self.instance_id: int | None = resume.instance_id if resume else None
        self.started = clock.monotonic()
        # what happened before the session's row existed (the token check): stored with its time once it does
        self._before_record: list[tuple[str, str, dict[str, Any] | None, float]] = []

    # --- events -----------------------------------------------------------------------------------

    def stage(self, stage: str, message: str | None = None, **fields: Any) -> None:
        """Enter `stage`; `fields` are session fields written in the same transaction as the stage."""
        index = STAGE_NAMES.index(stage)
        done = sum(seconds for _, seconds, _ in STAGES[:index])
        text = message or STAGES[index][2]
        self.current = stage
        if self.recorded and self.store.update_session(self.name, stage=stage, **fields).ended:
            raise SessionEnded()
        self._history("stage", text, {"stage": stage})
        eta = (TOTAL_S - done) / self.limits.time_scale
        self.emit(StageEvent(self.name, stage, round(done / TOTAL_S, 4), round(eta, 1), text))

    def warn(self, message: str) -> None:
        self._history("warning", message)
        self.emit(WarningEvent(self.name, message))

    def _history(self, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
        """Into the session's history; before its row exists, held with its time (`_store_before_record`)."""
        if self.recorded:
            self.store.add_event(self.name, kind, message, data)
        else:
            self._before_record.append((kind, message, data, self.clock.now()))

    def log(self, text: str) -> None:
        self.emit(LogEvent(self.name, text, self.clock.now()))

    def _store_before_record(self) -> None:
        """The row exists now: the events before it join the session's history at the time they happened."""
        self.recorded = True
        for kind, message, data, ts in self._before_record:
            self.store.add_event(self.name, kind, message, data, ts=ts)
        self._before_record.clear()

    # --- the run ----------------------------------------------------------------------------------

    async def run(self) -> SessionHandle:
        try:
            return await self._stages()
        except SessionEnded:
            raise await self._fail(self.current, f"{self.name} was destroyed while it was launching; "
                                                 "the launch stopped.") from None
        except StageFailed as exc:
            raise await self._fail(exc.stage, exc.message, exc.diagnosis) from None
        except ProviderError as exc:
            raise await self._fail(self.current, exc.message) from None
        except SshError as exc:
            raise await self._fail(self.current, str(exc)) from None
        except BaseException:  # cancelled or a bug: the record keeps its stage for resume_from
            await self._close()
            raise

    async def _stages(self) -> SessionHandle:
        self._choose_name()
        self.stage("token")
        account = await self.provider.whoami()
        self.log(f"Linode account: {account.username}")
        self._record()
        existing = await self._existing_vm()
        self.stage("keys")
        client_pem, client_public, host = self._keys(existing is not None)
        vm = await self._create(existing, client_public, host)
        self.stage("running")
        vm = await wait_running(self.provider, vm.id, self.limits, self.clock)
        self.stage("ssh")
        address, port = self.provider.ssh_endpoint(vm)
        host_public = self.store.session(self.name).host_key or ""
        self.ssh = ssh = await connect_ssh(address, port, client_pem, host_public, self.limits, self.clock)
        self.store.update_session(self.name, ip=address, ssh_port=port)
        write_ssh_files(self.paths, self.name, host=address, port=port, host_key=host_public)
        self.stage("cloud_init")
        await wait_cloud_init(ssh, self.limits, self.clock, self.warn)
        await self._upload(ssh)
        self.stage("compose_up")
        await compose_up(ssh, self.limits, self.log)
        self.stage("vllm", f"Waiting for vLLM to load {self.config.model}")
        local_port = await ssh.forward(self.plan.compose.vllm_port)
        served = await self._vllm_with_healing(ssh, local_port)
        return self._finish(vm, ssh, local_port, served)

    def _choose_name(self) -> None:
        if self.resume is None:  # a resumed launch keeps its session's name
            self.name = choose_name(self.store, self.name, auto=self.plan.auto_name, model=self.plan.model,
                                    now=self.clock.now())

    def _record(self) -> None:
        if self.resume is not None:
            record = self.store.get_session(self.name) or self.store.add_session(self.resume)
            self.config = VllmConfig.from_dict(record.vllm_config) if record.vllm_config else self.config
            self._store_before_record()
            if self.store.update_session(self.name, state="creating").ended:
                raise StageFailed("record", f"{self.name} has ended; there is nothing to resume.")
            self._claimed()
            self.stage("record", f"Resuming {self.name} from stage {record.stage or 'record'}")
            return
        self.name = reserve(self.store, self.name, auto=self.plan.auto_name, make=self._new_record)
        self._store_before_record()
        self._claimed()
        self.stage("record")

    def _new_record(self, name: str) -> SessionRecord:
        plan = self.plan
        return SessionRecord(
            name=name, state="creating", stage="record", region=plan.region, gpu_type=plan.gpu_type.id,
            gpu_count=plan.gpu_type.gpus, model=plan.model, hourly_usd=plan.gpu_type.hourly_usd,
            created_at=self.clock.now(), vllm_config=self.config.to_dict(), options=plan.stored_options())

    def _claimed(self) -> None:
        if self.claim is not None:
            self.claim(self.name)

    async def _existing_vm(self) -> Vm | None:
        """On resume: the session's VM, by id, else by label (a crash during the create call)."""
        if self.resume is None:
            return None
        if self.instance_id is not None:
            vm = await self.provider.get(self.instance_id)
            if vm is None:
                self.warn(f"The VM {self.instance_id} of {self.name} is gone; renting a new one.")
            return vm
        found = await session_vms(self.provider, self.name, home_tag(self.paths.data_dir))
        return found[0] if found else None

    def _keys(self, vm_exists: bool) -> tuple[str, str, KeyPair | None]:
        """(client private PEM, client public line, host KeyPair or None when the VM already exists)."""
        try:
            return session_keys(self.paths, self.store, self.name, vm_exists=vm_exists,
                                resumed=self.resume is not None, warn=self.warn)
        except FileNotFoundError as exc:
            raise StageFailed("keys", str(exc)) from None

    async def _create(self, existing: Vm | None, client_public: str, host: Any) -> Vm:
        if existing is not None:
            self.stage("create", f"The VM {existing.id} already exists; carrying on with it")
            self.instance_id = existing.id
            self.store.update_session(self.name, instance_id=existing.id)
            return existing
        self.stage("create", f"Renting {self.plan.gpu_type.short_name} in {self.plan.region}")
        user_data = cloud_init.render(host_key_private=host.private_pem, host_key_public=host.public_line)
        spec = CreateSpec(label=self.name, region=self.plan.region, type=self.plan.gpu_type.id,
                          image=self.plan.image, authorized_keys=[client_public], user_data=user_data,
                          tags=[*self.plan.tags, home_tag(self.paths.data_dir)], firewall_id=self.plan.firewall_id)
        vm = await self._settled(self._create_or_link(spec))
        self.instance_id = vm.id  # saved before anything else may fail: the VM costs money from now on
        try:
            record = self.store.update_session(self.name, instance_id=vm.id,
                                               hourly_usd=vm.hourly_usd or self.plan.gpu_type.hourly_usd)
        except StoreError as exc:
            raise StageFailed("create", await self._unrecorded(vm, exc)) from None
        self.store.add_event(self.name, "created", f"VM {vm.id} created", {"instance_id": vm.id})
        if record.ended:  # destroyed by another window while the create was in flight
            await self._undo_create(vm)
            raise SessionEnded()
        return vm

    async def _create_or_link(self, spec: CreateSpec) -> Vm:
        """Create the VM; a label clash means a dead run's create of this session landed first: link
        that VM (it was made with this session's keys), never a second one."""
        try:
            return await self.provider.create(spec)
        except ProviderError as err:
            if not label_taken(err):
                raise
            found = await session_vms(self.provider, self.name, home_tag(self.paths.data_dir))
            if not found:  # another home's session, or not ours at all: never take it over
                raise StageFailed("create", f"Another VM of this Linode account is labelled {self.name} "
                                            "(made elsewhere); launch again under another session name.") from None
            self.log(f"The VM {found[0].id} already holds the label {self.name} (an earlier run's create "
                     "landed meanwhile); carrying on with it")
            return found[0]

    async def _settled(self, create: Awaitable[Vm], made: Callable[[Vm], Awaitable[None]] | None = None) -> Vm:
        """The create's answer, even when this launch is cancelled meanwhile (a destroy, a quit): the
        call runs on in its thread and may yet make a VM, which must be recorded before stopping."""
        call = asyncio.ensure_future(create)
        cancelled = False
        while True:
            try:
                vm = await asyncio.shield(call)
                break
            except asyncio.CancelledError:
                cancelled = True
                if call.done() and (call.cancelled() or call.exception() is not None):
                    raise
                if call.done():  # the answer came in the very step the cancel did: its VM is recorded too
                    vm = call.result()
                    break
                self.log("Waiting for the create call to return before stopping, so no VM is left unrecorded")
            except BaseException:
                if cancelled:
                    raise asyncio.CancelledError() from None
                raise
        if cancelled:
            await (made or self._made_while_cancelled)(vm)
            raise asyncio.CancelledError()
        return vm

    async def _made_while_cancelled(self, vm: Vm) -> None:
        """Record a VM whose create returned after this launch was cancelled."""
        self.instance_id = vm.id
        try:
            self.store.update_session(self.name, instance_id=vm.id)
            self.store.add_event(self.name, "created", f"VM {vm.id} created", {"instance_id": vm.id})
        except StoreError as exc:
            await self._unrecorded(vm, exc)

    async def _undo_create(self, vm: Vm) -> None:
        """Delete a VM this launch made for a session that has ended meanwhile."""
        try:
            await self.provider.destroy(vm.id)
        except ProviderError as err:
            self.warn(f"{self.name} was destroyed while its VM {vm.id} was being created, and deleting "
                      f"that VM failed ({err.message}): it shows as an orphan; destroy it from the home screen.")
            return
        self.store.add_event(self.name, "destroyed", f"VM {vm.id} deleted: the session was destroyed while "
                                                     "its create was in flight", {"instance_ids": [vm.id]})

    async def _unrecorded(self, vm: Vm, exc: StoreError) -> str:
        """The VM exists but the database would not take its id (disk full, say): delete it again,
        since a VM nobody records is a VM nobody stops. Returns what to tell the user."""
        try:
            await self.provider.destroy(vm.id)
        except ProviderError as err:
            return (f"VM {vm.id} was created but the database could not record it ({exc}), and deleting it "
                    f"failed too ({err.message}): it is running at ${self.plan.gpu_type.hourly_usd:.2f}/h and "
                    "shows as an orphan at the next start; destroy it there or in Linode's Cloud Manager.")
        self.instance_id = None
        return (f"VM {vm.id} was created but the database could not record it ({exc}), so it was deleted "
                "again; free some disk space (or move the database aside) and launch again.")

    async def _upload(self, ssh: SshSession) -> None:
        """The compose file always; `.env` always on a first launch (a stale token must not survive),
        and on resume only when a token was given (else the uploaded one stays)."""
        record = self.store.session(self.name)
        keep_env = self.resume is not None and self.hf_token is None and record.extra.get("env_uploaded")
        self.stage("upload", "Uploading the compose file" if keep_env else None)
        await ssh.run(f"mkdir -p {compose.LLM_DIR}", timeout=self.limits.command_timeout_s)
        if not keep_env:
            await put_env(ssh, self.hf_token, clock=self.clock, limits=self.limits, log=self.log)
            self.store.update_session(self.name, extra={**record.extra, "env_uploaded": True})
        await self._put_compose(ssh)

    async def _put_compose(self, ssh: SshSession) -> None:
        await put_compose(ssh, self.config, self.plan.compose, clock=self.clock, limits=self.limits, log=self.log)

    async def _vllm_with_healing(self, ssh: SshSession, local_port: int) -> VllmAttempt:
        """Wait for vLLM, healing a failed start: new flags, new compose, `up -d` again."""

        async def apply(attempt: int, found: heal.Diagnosis, new: VllmConfig) -> None:
            self._healed(attempt, found, new)
            await self._put_compose(ssh)
            await compose_up(ssh, self.limits, self.log)

        return await wait_vllm_healing(ssh, local_port, lambda: self.config,
                                       gpu_count=self.plan.gpu_type.gpus, options=self.plan.compose,
                                       limits=self.limits, clock=self.clock, apply=apply, log=self.log)

    def _healed(self, attempt: int, found: heal.Diagnosis, new: VllmConfig) -> None:
        """A healing attempt, said (event and history); `new` is the config from now on, in the record too."""
        change = heal.describe_change(self.config, new)
        self.heals += 1
        self.emit(HealEvent(self.name, attempt, found.kind, found.evidence, change))
        self.store.add_event(self.name, "heal", f"attempt {attempt}: {found.summary}; {change}",
                             {"attempt": attempt, "kind": found.kind, "evidence": found.evidence, "change": change})
        self.config = new
        self.store.update_session(self.name, vllm_config=new.to_dict())

    def _finish(self, vm: Vm, ssh: SshSession, local_port: int, served: VllmAttempt) -> SessionHandle:
        self.stage("tunnel", f"Tunnel open: 127.0.0.1:{local_port} -> the VM's vLLM")
        endpoint = f"http://127.0.0.1:{local_port}/v1"
        extra = {**self.store.session(self.name).extra, "local_port": local_port, "endpoint": endpoint}
        self.store.update_session(self.name, extra=extra)
        max_len = served.max_model_len or self.config.max_model_len or heal.DEFAULT_CONTEXT
        self.stage("aider")
        write_aider_files(self.paths, self.name, endpoint=endpoint, served_name=served.served_name,
                          max_model_len=max_len)
        # One write for stage and state: a kill between two would leave "creating" at stage "ready".
        self.stage("ready", f"Ready: {served.served_name} at {endpoint}", state="ready",
                   ready_at=self.clock.now(), vllm_config=self.config.to_dict())
        record = self.store.session(self.name)
        elapsed = self.clock.monotonic() - self.started
        self.store.add_event(self.name, "ready", f"ready at {endpoint} after {elapsed:.0f} s",
                             {"endpoint": endpoint, "max_model_len": max_len, "heals": self.heals})
        self.emit(ReadyEvent(self.name, endpoint, elapsed, max_len, self.heals))
        return SessionHandle(self.name, record, vm, ssh, local_port, endpoint, self.config, max_len, self.heals)

    async def _fail(self, stage: str, message: str, diagnosis: str | None = None) -> ProvisionFailed:
        """Record and report the failure; the VM stays (and stays in the record) for the user to decide."""
        await self._close()
        record = self.store.get_session(self.name) if self.recorded else None
        ended = record is not None and record.ended
        kept = self.KEPT.format(id=self.instance_id) if self.instance_id and not ended else ""
        if self.recorded:
            self.store.update_session(self.name, state="failed", stage=stage)
            self.store.add_event(self.name, "failed", message + kept, {"stage": stage, "diagnosis": diagnosis})
        self.emit(FailedEvent(self.name, stage, message + kept, diagnosis))
        return ProvisionFailed(self.name, stage, message + kept, diagnosis, self.instance_id)

    async def _close(self) -> None:
        ssh, self.ssh = self.ssh, None
        if ssh is not None:
            await asyncio.shield(ssh.close())
