"""The app's live sessions: one open SSH connection, tunnel and watchdog per running VM.

UI-free. Screens come and go; live sessions stay at app level (and in `maider-tui watch`), so a
dashboard closed and reopened finds the same connection, and the watchdog keeps counting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Awaitable, Callable

from ..clock import Clock
from ..paths import AppPaths
from ..store import SessionRecord, Store
from .events import EventSink, FailedEvent, LogEvent, OpsEvent, WarningEvent
from .limits import ReadinessLimits
from .watching import Watching

if TYPE_CHECKING:
    from ..cloud import Provider
    from ..settings import Settings
    from .launch_plan import LaunchPlan, SessionHandle
    from .orphan_watch import OrphanWatch
    from .owner import SessionLock
    from .receipt import Receipt
    from .recover import Orphan
    from .watchdog import Notify, Watchdog

log = logging.getLogger(__name__)

VLLM_PORT = 8000


@dataclass
class LiveSession:
    """A session this process holds a connection to."""

    name: str
    handle: SessionHandle | None = None  # once ready or attached
    task: asyncio.Task | None = None  # the running launch, switch or destroy
    events: deque = field(default_factory=lambda: deque(maxlen=500))
    watchdog: Watchdog | None = None
    watchdog_task: asyncio.Task | None = None
    lock: SessionLock | None = None  # this process watches the session

    @property
    def ssh(self):
        return self.handle.ssh if self.handle is not None else None

    @property
    def endpoint(self) -> str | None:
        return self.handle.endpoint if self.handle is not None else None


class LiveSessions:
    """Launches, attaches, switches and destroys sessions, and fans their events out to listeners."""

    def __init__(self, *, store: Store, paths: AppPaths, settings: Settings, clock: Clock,
                 provider: Callable[[], Provider | None], hf_token: Callable[[], str | None],
                 limits: ReadinessLimits | None = None, notify: Notify | None = None) -> None:
        # provider and hf_token are blocking look-ups (keyring, op read): called through to_thread.
        self.store, self.paths, self.settings, self.clock = store, paths, settings, clock
        self._provider_factory, self.hf_token_lookup = provider, hf_token
        self.limits = limits or ReadinessLimits()
        self._sessions: dict[str, LiveSession] = {}
        self._closing: set[asyncio.Task] = set()  # connections of sessions found gone, closing
        self._attaching: dict[str, asyncio.Lock] = {}  # one attach per session at a time
        self._listeners: list[EventSink] = []
        # With a notifier, every session that becomes ready or is attached is watched from here
        # (the app); without one (the headless `watch`), the caller starts the watchdogs itself.
        self.notify = notify
        self.watching = Watching(self)

    # events
    def subscribe(self, listener: EventSink) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def emit(self, event: OpsEvent) -> None:
        if isinstance(event, LogEvent) and event.ts is None:
            event = replace(event, ts=self.clock.now())  # the log places the line among stored events by time
        live = self._sessions.get(getattr(event, "session", ""))
        if live is not None:
            live.events.append(event)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - a broken listener must not stop a launch
                log.exception("event listener failed")

    # look-ups
    def get(self, name: str) -> LiveSession | None:
        return self._sessions.get(name)

    def entry(self, name: str) -> LiveSession:
        """The live session called `name`, made (empty) if this process holds none yet."""
        return self._sessions.setdefault(name, LiveSession(name))

    async def provider(self) -> Provider:
        provider = await asyncio.to_thread(self._provider_factory)
        if provider is None:
            raise RuntimeError("No Linode token: add one first (maider-tui token set linode, or LINODE_TOKEN).")
        return provider

    # workflows
    async def launch(self, plan: LaunchPlan, *, claim: Callable[[str], object] | None = None) -> LiveSession:
        """Provision `plan` to ready; the live session is registered from the first event on.

        `claim(name)` is called once the session's record is this launch's own: until then (the name
        may turn out taken) a caller must not destroy or retry anything under that name.
        """
        from .provision import provision

        provider = await self.provider()
        hf_token = await asyncio.to_thread(self.hf_token_lookup)
        running = asyncio.current_task()

        names: list[str] = []  # the sessions this launch reserved: only those are its own

        def emit(event: OpsEvent) -> None:
            self._sessions.setdefault(event.session, LiveSession(event.session))
            self.emit(event)

        def claimed(name: str) -> None:
            live = self._sessions.setdefault(name, LiveSession(name))
            names.append(name)
            self.watching.hold_while_launching(live)
            held = any(other.task is running for other in self._sessions.values())
            if held and (live.task is None or live.task.done()):
                live.task = running  # held under its reserved name too, so a destroy waits for it
            if claim is not None:
                claim(name)

        try:
            handle = await provision(plan, provider=provider, store=self.store, paths=self.paths,
                                     settings=self.settings, clock=self.clock, emit=emit, hf_token=hf_token,
                                     limits=self.limits, claim=claimed)
        except Exception:
            for name in names:  # a VM kept for inspection still bills: it gets its deadline
                self.watching.watch_or_let_go(name)
            raise
        finally:
            self.watching.launching.difference_update(names)
        live = self._sessions.setdefault(handle.name, LiveSession(handle.name))
        live.handle = handle
        log.info("session %s ready at %s", handle.name, handle.endpoint)
        self.watching.watch_or_let_go(handle.name)
        return live

    async def resume(self, record: SessionRecord, *,
                     claim: Callable[[str], object] | None = None) -> LiveSession:
        """Carry on a launch that was interrupted (the app quit or crashed mid-way)."""
        from .provision import provision

        provider = await self.provider()
        hf_token = await asyncio.to_thread(self.hf_token_lookup)
        self.watching.unkeep(record.name)  # the user carries it on: no deadline while it launches
        self.watching.hold_while_launching(self._sessions.setdefault(record.name, LiveSession(record.name)))
        try:
            handle = await provision(None, provider=provider, store=self.store, paths=self.paths,
                                     settings=self.settings, clock=self.clock, emit=self.emit,
                                     hf_token=hf_token, limits=self.limits, resume_from=record, claim=claim)
        except Exception:
            self.watching.watch_or_let_go(record.name)  # stopped again: kept afresh from now
            raise
        finally:
            self.watching.launching.discard(record.name)
        live = self._sessions[handle.name]
        live.handle = handle
        self.watching.watch_or_let_go(handle.name)
        return live

    async def attach(self, name: str) -> LiveSession:
        """Reconnect to a ready session's VM (after a restart): SSH with its key and pinned host key.

        The tunnel asks for the local port the session had (`extra["local_port"]`), so the endpoint
        aider and the copied command use stays valid; only a port taken meanwhile moves it. The
        aider files and the ssh_config entry are rewritten with the record in the same step, and a
        model switch the app died in is settled to what vLLM serves (`settle_switch`).
        """
        # The watchdog's poll and the dashboard both attach after a start: the second must find the
        # first's connection, not open its own and push the endpoint off the port the first holds.
        async with self._attaching.setdefault(name, asyncio.Lock()):
            live = self._sessions.get(name)
            if live is not None and live.handle is not None:
                return live
            return await self._attach(name)

    async def _attach(self, name: str) -> LiveSession:
        from ..remote.vllm import VllmClient
        from ..models import VllmConfig
        from .heal import DEFAULT_CONTEXT
        from .launch_plan import SessionHandle
        from .readiness import connect_ssh
        from .session_files import client_key_path, write_aider_files, write_ssh_files
        from .switch_model import settle_switch

        record = self.store.get_session(name)
        if record is None or record.instance_id is None or not record.host_key:
            raise LookupError(f"{name} has no VM to connect to.")
        host_key = record.host_key
        provider = await self.provider()
        vm = await provider.get(record.instance_id)
        if vm is None:
            await self._gone(name)
            raise LookupError(f"The VM of {name} no longer exists (deleted outside the app); the session "
                              "is marked gone and its cost stopped counting.")
        host, port = provider.ssh_endpoint(vm)
        key = await asyncio.to_thread(client_key_path(self.paths, name).read_text)
        ssh = await connect_ssh(host, port, key, host_key, self.limits, self.clock)
        try:
            wanted = record.extra.get("local_port")
            wanted = wanted if isinstance(wanted, int) and 0 < wanted < 65536 else None
            local_port = await ssh.forward(VLLM_PORT, wanted)
            endpoint = f"http://127.0.0.1:{local_port}/v1"
            models = None
            async with VllmClient(endpoint) as client:
                try:
                    models = await client.models()
                except Exception as exc:  # noqa: BLE001 - vLLM down: the dashboard will show it
                    self.emit(LogEvent(name, f"vLLM not answering yet: {exc}"))
            record = settle_switch(name, models, store=self.store, emit=self.emit) or record
            config = VllmConfig.from_dict(record.vllm_config) if record.vllm_config else VllmConfig(
                model=record.model)
            max_len = models[0].max_model_len if models else None
            served_name = models[0].id if models else (config.served_model_name or config.model)
            # The endpoint, the aider files and the ssh entry move together: aider must never be left
            # pointing at a port something else may listen on next.
            write_aider_files(self.paths, name, endpoint=endpoint, served_name=served_name,
                              max_model_len=max_len or config.max_model_len or DEFAULT_CONTEXT)
            write_ssh_files(self.paths, name, host=host, port=port, host_key=host_key)
            record = self.store.update_session(name, ip=host, ssh_port=port, extra={
                **record.extra, "local_port": local_port, "endpoint": endpoint})
            handle = SessionHandle(name, record, vm, ssh, local_port, endpoint, config,
                                   max_len or config.max_model_len or 0)
            if record.nodes > 1:  # a session over several VMs: the workers' GPUs are on the dashboard too
                from .cluster_status import connect_workers

                handle.workers = await connect_workers(name, store=self.store, provider=provider, client_key=key,
                                                       limits=self.limits, clock=self.clock, emit=self.emit)
        except BaseException:  # the connection is no one's yet: close it, or it lingers
            await asyncio.shield(ssh.close())
            raise
        live = self._sessions.setdefault(name, LiveSession(name))
        live.handle = handle
        if wanted is not None and wanted != local_port:
            self.emit(WarningEvent(name, f"Local port {wanted} is taken by another program: the endpoint is now "
                                         f"{endpoint}; aider-env and the aider command were updated, so "
                                         "restart aider with them."))
        self.emit(LogEvent(name, f"Reconnected: {endpoint}"))
        self.watching.auto(name)
        return live

    async def vm_gone(self, name: str) -> bool:
        """Whether the session's VM was deleted behind our back (it is then marked gone); False when
        it exists or the API cannot say."""
        record = self.store.get_session(name)
        if record is None or record.ended or record.instance_id is None:
            return False
        try:
            provider = await self.provider()
            if await provider.get(record.instance_id) is not None:
                return False
        except Exception as exc:  # noqa: BLE001 - an API failure proves nothing: keep the session
            log.info("could not look up the VM of %s: %s", name, exc)
            return False
        await self._gone(name)
        return True

    async def _gone(self, name: str) -> None:
        """Mark the session ended (its VM is gone), stop watching it and drop its connection. A session
        over several VMs whose head is gone is destroyed: nothing serves without it, its workers still bill."""
        from .recover import mark_gone

        record = self.store.get_session(name)
        if record is None or record.ended:
            return
        if record.nodes > 1:
            self.emit(WarningEvent(name, f"{name}'s head VM {record.instance_id} is gone: its workers and network go."))
            await self.destroy(name)
            return
        mark_gone(self.store, record, self.clock.now(), self.paths)
        self.emit(WarningEvent(name, f"{name}'s VM {record.instance_id} no longer exists (deleted outside the "
                                     "app): the session is marked gone and its cost stopped counting."))
        live = self._sessions.pop(name, None)
        self.watching.stop(live)
        if live is not None and live.handle is not None:
            self._closing.add(task := asyncio.ensure_future(live.handle.close()))
            task.add_done_callback(self._closing.discard)

    async def destroy(self, name: str, *, on_wait: Callable[[], object] | None = None) -> Receipt:
        """Destroy the session's VM (token checked first); the connection closes only once it is gone.

        When the destroy fails the session is as it was, its watchdog included. A destroy of the
        same session under way in another process (another window, another app's watchdog) is
        waited for (`on_wait()` says so), then this one finds the session ended: the VM is deleted once.
        """
        from .destroy import WAIT_MESSAGE, destroy_session
        from .owner import destroying

        provider = await self.provider()
        live = self._sessions.get(name)
        if live is not None and live.task is not None and not live.task.done() \
                and live.task is not asyncio.current_task():
            # Cancelled and waited for: a create it sent is answered first and its VM recorded, so
            # the destroy below deletes it instead of finding nothing and letting it bill.
            live.task.cancel()
            await asyncio.wait({live.task})

        def waiting() -> None:
            self.emit(LogEvent(name, WAIT_MESSAGE))
            if on_wait is not None:
                on_wait()

        self.emit(LogEvent(name, "destroying the VM …"))
        try:
            async with destroying(self.paths, name, on_wait=waiting):
                receipt = await destroy_session(name, provider=provider, store=self.store, clock=self.clock,
                                                emit=self.emit, ssh=live.ssh if live else None, paths=self.paths)
        except Exception as exc:
            self.emit(LogEvent(name, f"destroy failed: {exc}"))  # the session's log says it, as it said the start
            raise
        if live is not None and live.handle is not None:
            for worker in live.handle.workers:  # the head's went with the VM; a worker's is open still
                with contextlib.suppress(Exception):
                    await worker.close()
        self.watching.stop(live)
        self._sessions.pop(name, None)
        return receipt

    # watching: delegated to ops.watching, which holds the watchdogs and the watch locks
    def new_watchdog(self, name: str, notify: Notify) -> Watchdog:
        return self.watching.new_watchdog(name, notify)

    def start_watchdog(self, name: str, notify: Notify) -> Watchdog | None:
        return self.watching.start(name, notify)

    def watch_all(self) -> list[str]:
        return self.watching.watch_all()

    def watch_orphans(self, orphans: list[Orphan], notify: Notify | None = None) -> OrphanWatch | None:
        return self.watching.watch_orphans(orphans, notify)

    @property
    def orphan_watch(self) -> OrphanWatch | None:
        return self.watching.orphan_watch

    async def switch_model(self, name: str, model_id: str, *, max_model_len: int | None = None):
        from .switch_model import switch_model

        live = self._sessions.get(name)
        if live is None or live.handle is None:
            raise LookupError(f"{name} is not connected.")
        record = self.store.get_session(name)
        if record is not None and record.nodes > 1:  # every VM's files, and the cluster formed again
            from .cluster_switch import switch_cluster

            config = await switch_cluster(name, model_id, head=live.handle.ssh, workers=live.handle.workers,
                                          store=self.store, clock=self.clock, emit=self.emit,
                                          settings=self.settings, limits=self.limits, paths=self.paths,
                                          max_model_len=max_model_len)
            live.handle.config = config
            return config
        provider = await self.provider()
        config = await switch_model(name, model_id, ssh=live.handle.ssh, store=self.store, clock=self.clock,
                                    emit=self.emit, settings=self.settings, provider=provider,
                                    max_model_len=max_model_len, limits=self.limits, paths=self.paths)
        live.handle.config = config
        return config

    def run_in_background(self, name: str, work: Awaitable[object]) -> asyncio.Task[object]:
        """Keep a reference to a session's long task so it can be cancelled (destroy, quit)."""
        live = self._sessions.setdefault(name, LiveSession(name))
        live.task = asyncio.ensure_future(work)

        def done(task: asyncio.Task) -> None:
            if not task.cancelled() and task.exception() is not None:
                self.emit(FailedEvent(name, "background", str(task.exception())))

        live.task.add_done_callback(done)
        return live.task

    async def close_all(self) -> None:
        """Close every connection and stop every watchdog; the VMs keep running."""
        self.watching.stop_orphans()
        for live in list(self._sessions.values()):
            self.watching.stop(live)
            if live.task is not None and not live.task.done():
                live.task.cancel()
            if live.handle is not None:
                try:
                    await live.handle.close()
                except Exception:  # noqa: BLE001
                    log.exception("closing %s", live.name)
        self._sessions.clear()
