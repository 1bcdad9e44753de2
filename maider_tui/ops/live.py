"""The app's live sessions: one open SSH connection, tunnel and watchdog per running VM.

UI-free. Screens come and go; live sessions stay at app level (and in `maider-tui watch`), so a
dashboard closed and reopened finds the same connection, and the watchdog keeps counting.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from ..clock import Clock
from ..paths import AppPaths
from ..store import SessionRecord, Store
from .events import EventSink, FailedEvent, LogEvent, OpsEvent, WarningEvent
from .limits import ReadinessLimits

log = logging.getLogger(__name__)

VLLM_PORT = 8000
ATTACH_TIMEOUT_S = 60.0  # a VM that won't answer SSH must not stall its countdown
TAKE_OVER_POLL_S = 2.0  # how often a session another window watches is checked for being let go


@dataclass
class LiveSession:
    """A session this process holds a connection to."""

    name: str
    handle: Any | None = None  # ops.provision.SessionHandle once ready or attached
    task: asyncio.Task | None = None  # the running launch, switch or destroy
    events: deque = field(default_factory=lambda: deque(maxlen=500))
    watchdog: Any | None = None  # ops.watchdog.Watchdog
    watchdog_task: asyncio.Task | None = None
    lock: Any | None = None  # ops.owner.SessionLock: this process watches the session

    @property
    def ssh(self):
        return self.handle.ssh if self.handle is not None else None

    @property
    def endpoint(self) -> str | None:
        return self.handle.endpoint if self.handle is not None else None


class LiveSessions:
    """Launches, attaches, switches and destroys sessions, and fans their events out to listeners."""

    def __init__(self, *, store: Store, paths: AppPaths, settings: Any, clock: Clock,
                 provider: Callable[[], Any], hf_token: Callable[[], str | None],
                 limits: ReadinessLimits | None = None,
                 notify: Callable[[str, str], Any] | None = None) -> None:
        # provider and hf_token are blocking look-ups (keyring, op read): called through to_thread.
        self.store, self.paths, self.settings, self.clock = store, paths, settings, clock
        self._provider_factory, self._hf_token = provider, hf_token
        self.limits = limits or ReadinessLimits()
        self._sessions: dict[str, LiveSession] = {}
        self._closing: set[asyncio.Task] = set()  # connections of sessions found gone, closing
        self._attaching: dict[str, asyncio.Lock] = {}  # one attach per session at a time
        self._listeners: list[EventSink] = []
        # With a notifier, every session that becomes ready or is attached is watched from here
        # (the app); without one (the headless `watch`), the caller starts the watchdogs itself.
        self.notify = notify
        self.orphan_watch: Any | None = None  # ops.orphan_watch.OrphanWatch, once orphans were found
        self._orphan_task: asyncio.Task | None = None
        self.on_orphan_destroyed: Callable[[int], Any] | None = None
        self._launching: set[str] = set()  # launches running here: watched once they end

    # events
    def subscribe(self, listener: EventSink) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def emit(self, event: OpsEvent) -> None:
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

    def names(self) -> list[str]:
        return list(self._sessions)

    async def provider(self):
        provider = await asyncio.to_thread(self._provider_factory)
        if provider is None:
            raise RuntimeError("No Linode token: add one first (maider-tui token set linode, or LINODE_TOKEN).")
        return provider

    # workflows
    async def launch(self, plan: Any, *, claim: Callable[[str], Any] | None = None) -> LiveSession:
        """Provision `plan` to ready; the live session is registered from the first event on.

        `claim(name)` is called once the session's record is this launch's own: until then (the name
        may turn out taken) a caller must not destroy or retry anything under that name.
        """
        from .provision import provision

        provider = await self.provider()
        hf_token = await asyncio.to_thread(self._hf_token)
        running = asyncio.current_task()

        names: list[str] = []  # the sessions this launch reserved: only those are its own

        def emit(event: OpsEvent) -> None:
            self._sessions.setdefault(event.session, LiveSession(event.session))
            self.emit(event)

        def claimed(name: str) -> None:
            live = self._sessions.setdefault(name, LiveSession(name))
            names.append(name)
            self._hold_while_launching(live)
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
                self._watch_or_let_go(name)
            raise
        finally:
            self._launching.difference_update(names)
        live = self._sessions.setdefault(handle.name, LiveSession(handle.name))
        live.handle = handle
        log.info("session %s ready at %s", handle.name, handle.endpoint)
        self._watch_or_let_go(handle.name)
        return live

    async def resume(self, record: SessionRecord, *, claim: Callable[[str], Any] | None = None) -> LiveSession:
        """Carry on a launch that was interrupted (the app quit or crashed mid-way)."""
        from .provision import provision

        provider = await self.provider()
        hf_token = await asyncio.to_thread(self._hf_token)
        self._unkeep(record.name)  # the user carries it on: no deadline while it launches
        self._hold_while_launching(self._sessions.setdefault(record.name, LiveSession(record.name)))
        try:
            handle = await provision(None, provider=provider, store=self.store, paths=self.paths,
                                     settings=self.settings, clock=self.clock, emit=self.emit,
                                     hf_token=hf_token, limits=self.limits, resume_from=record, claim=claim)
        except Exception:
            self._watch_or_let_go(record.name)  # stopped again: kept afresh from now
            raise
        finally:
            self._launching.discard(record.name)
        live = self._sessions[handle.name]
        live.handle = handle
        self._watch_or_let_go(handle.name)
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
        provider = await self.provider()
        vm = await provider.get(record.instance_id)
        if vm is None:
            self._gone(name)
            raise LookupError(f"The VM of {name} no longer exists (deleted outside the app); the session "
                              "is marked gone and its cost stopped counting.")
        host, port = provider.ssh_endpoint(vm)
        key = await asyncio.to_thread(client_key_path(self.paths, name).read_text)
        ssh = await connect_ssh(host, port, key, record.host_key, self.limits, self.clock)
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
            write_ssh_files(self.paths, name, host=host, port=port, host_key=record.host_key)
            record = self.store.update_session(name, ip=host, ssh_port=port, extra={
                **record.extra, "local_port": local_port, "endpoint": endpoint})
            handle = SessionHandle(name, record, vm, ssh, local_port, endpoint, config,
                                   max_len or config.max_model_len or 0)
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
        self._auto_watch(name)
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
        self._gone(name)
        return True

    def _gone(self, name: str) -> None:
        """Mark the session ended (its VM is gone), stop watching it and drop its connection."""
        from .recover import mark_gone

        record = self.store.get_session(name)
        if record is None or record.ended:
            return
        mark_gone(self.store, record, self.clock.now(), self.paths)
        self.emit(WarningEvent(name, f"{name}'s VM {record.instance_id} no longer exists (deleted outside the "
                                     "app): the session is marked gone and its cost stopped counting."))
        live = self._sessions.pop(name, None)
        self._stop_watchdog(live)
        if live is not None and live.handle is not None:
            task = asyncio.ensure_future(live.handle.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def destroy(self, name: str, *, on_wait: Callable[[], Any] | None = None):
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

        async with destroying(self.paths, name, on_wait=waiting):
            receipt = await destroy_session(name, provider=provider, store=self.store, clock=self.clock,
                                            emit=self.emit, ssh=live.ssh if live else None, paths=self.paths)
        self._stop_watchdog(live)
        self._sessions.pop(name, None)
        return receipt

    # the idle watchdog
    def new_watchdog(self, name: str, notify: Callable[[str, str], Any]):
        """A Watchdog for `name` reading vLLM's metrics through the tunnel, reconnecting when it is down;
        for a VM with no model serving (see watchdog.is_kept), one counting from when it was kept."""
        from .watchdog import Watchdog, is_kept, metrics_from_tunnel

        if is_kept(self.store.get_session(name)):
            async def nothing():
                return None

            dog = Watchdog(name, metrics=nothing, destroy=lambda: self.destroy(name), store=self.store,
                           clock=self.clock, settings=self.settings.watchdog, notify=notify, emit=self.emit,
                           kept=True)
            self._sessions.setdefault(name, LiveSession(name)).watchdog = dog
            return dog

        def port() -> int | None:
            current = self._sessions.get(name)
            return current.handle.local_port if current is not None and current.handle is not None else None

        tunnel = metrics_from_tunnel(port)

        async def metrics():
            current = self._sessions.get(name)
            ssh = current.ssh if current is not None else None
            if ssh is not None and ssh.state != "connected" and await self.vm_gone(name):
                return None  # deleted outside the app: marked gone, nothing left to watch
            if port() is None:  # not connected: try again, once per poll (it counts as idle meanwhile)
                try:
                    await asyncio.wait_for(self.attach(name), ATTACH_TIMEOUT_S)
                except Exception as exc:  # noqa: BLE001
                    log.info("reconnecting %s failed: %s", name, exc)
                    return None
            return await tunnel()

        dog = Watchdog(name, metrics=metrics, destroy=lambda: self.destroy(name), store=self.store,
                       clock=self.clock, settings=self.settings.watchdog, notify=notify, emit=self.emit)
        self._sessions.setdefault(name, LiveSession(name)).watchdog = dog
        return dog

    def start_watchdog(self, name: str, notify: Callable[[str, str], Any]):
        """Watch `name` from this process: take its lock, then run its Watchdog. A background
        `maider-tui watch` holding the lock is asked to stop, and the lock taken once it lets go.
        None when the watchdog is off or another app holds the session."""
        from .owner import stop_owner, try_acquire

        from .watchdog import is_kept

        if not self.settings.watchdog.enabled or name in self._launching:
            return None  # off, or launching here: watched once the launch ends
        record = self.store.get_session(name)
        if record is None or record.ended or (record.state != "ready" and not is_kept(record)):
            return None  # no VM that bills: nothing to watch
        live = self._sessions.setdefault(name, LiveSession(name))
        if live.watchdog is not None and live.watchdog.kept != is_kept(record):
            self._drop_watchdog(live)  # kept and now serving, or the reverse: the other kind of watch
        if live.watchdog_task is not None and not live.watchdog_task.done():
            return live.watchdog
        lock = live.lock or try_acquire(self.paths, name, store=self.store)
        if lock is None:
            if stop_owner(self.paths, name):  # a background watcher: it releases on SIGTERM
                live.watchdog_task = asyncio.ensure_future(self._take_over(name, notify))
                return None
            self.emit(LogEvent(name, "Another maider-tui process watches this session; not watched here."))
            # Another app window: watch from here once it lets go (quit or crashed), never both at once.
            live.watchdog_task = asyncio.ensure_future(self._take_over(name, notify, wait_s=None,
                                                                       poll_s=TAKE_OVER_POLL_S))
            return None
        return self._run_watchdog(live, lock, notify)

    async def _take_over(self, name: str, notify: Callable[[str, str], Any], wait_s: float | None = 10.0,
                         poll_s: float = 0.2) -> None:
        """Wait (real time: another process is exiting) for the watcher's lock, then watch here.
        `wait_s` None: for as long as the session lives."""
        from .owner import try_acquire

        loop = asyncio.get_running_loop()
        deadline = None if wait_s is None else loop.time() + wait_s
        while deadline is None or loop.time() < deadline:
            record = self.store.get_session(name)
            if record is None or record.ended:
                return  # destroyed by the other process: nothing left to watch
            lock = try_acquire(self.paths, name, store=self.store)
            if lock is not None:
                live = self._sessions.setdefault(name, LiveSession(name))
                live.watchdog_task = None
                self._run_watchdog(live, lock, notify)
                self.emit(LogEvent(name, "Took over the watchdog from the other maider-tui process."))
                return
            await asyncio.sleep(poll_s)
        self.emit(LogEvent(name, "The background watcher did not let go; it keeps watching this session."))

    def _run_watchdog(self, live: LiveSession, lock: Any, notify: Callable[[str, str], Any]):
        live.lock = lock
        dog = live.watchdog if live.watchdog is not None else self.new_watchdog(live.name, notify)
        live.watchdog_task = asyncio.ensure_future(dog.run())

        def finished(_task: asyncio.Task) -> None:
            if dog.now_serving and live.watchdog is dog:  # a kept VM now serves: watch it by use
                self._drop_watchdog(live)
                self.start_watchdog(live.name, notify)

        live.watchdog_task.add_done_callback(finished)
        return dog

    def _auto_watch(self, name: str) -> None:
        if self.notify is not None:
            self.start_watchdog(name, self.notify)

    def watch_all(self) -> list[str]:
        """Watch every session whose VM bills (serving or kept), except launches running here; the
        names now watched from this process."""
        watched = []
        if self.notify is None:
            return watched
        for record in self.store.list_sessions(include_ended=False):
            if self.start_watchdog(record.name, self.notify) is not None:
                watched.append(record.name)
        return watched

    def watch_orphans(self, orphans: list, notify: Callable[[str, str], Any] | None = None):
        """Give every orphan VM its deadline (ops.orphan_watch) and count it down from this process."""
        from .orphan_watch import OrphanWatch

        notify = notify or self.notify
        if notify is None or not self.settings.watchdog.enabled:
            return None
        if self.orphan_watch is None:
            self.orphan_watch = OrphanWatch(store=self.store, clock=self.clock, settings=self.settings.watchdog,
                                            provider=self.provider, notify=notify, emit=self.emit,
                                            on_destroyed=self._orphan_destroyed)
        self.orphan_watch.set_orphans(orphans)
        if orphans and (self._orphan_task is None or self._orphan_task.done()):
            self._orphan_task = asyncio.ensure_future(self.orphan_watch.run())
        return self.orphan_watch

    def _orphan_destroyed(self, vm_id: int) -> None:
        if self.on_orphan_destroyed is not None:
            self.on_orphan_destroyed(vm_id)

    def _hold_while_launching(self, live: LiveSession) -> None:
        """Take the session's watch lock for the launch: another process (a second window, a background
        watcher) then never counts it down as an interrupted launch while it runs here."""
        from .owner import try_acquire

        self._launching.add(live.name)
        if live.lock is None:
            live.lock = try_acquire(self.paths, live.name, store=self.store)

    def _watch_or_let_go(self, name: str) -> None:
        """A launch ended: ready, or stopped with its VM kept (watched by a deadline), it is watched
        from here with the lock the launch held; with nothing to watch here, the lock goes."""
        self._launching.discard(name)
        self._auto_watch(name)
        live = self._sessions.get(name)
        if live is not None and live.watchdog_task is None and live.lock is not None:
            live.lock.release()
            live.lock = None

    def _drop_watchdog(self, live: LiveSession) -> None:
        self._stop_watchdog(live)
        live.watchdog, live.watchdog_task = None, None

    def _unkeep(self, name: str) -> None:
        """The user acted on a kept session (resume, retry): its deadline is dropped until it is kept again."""
        live = self._sessions.get(name)
        if live is not None and live.watchdog is not None:
            self._drop_watchdog(live)
        record = self.store.get_session(name)
        if record is not None and "kept_since" in record.extra:
            self.store.update_session(name, extra={k: v for k, v in record.extra.items() if k != "kept_since"})

    def _stop_watchdog(self, live: LiveSession | None) -> None:
        if live is None:
            return
        if live.watchdog is not None:
            live.watchdog.stop()
        if live.watchdog_task is not None and not live.watchdog_task.done() \
                and live.watchdog_task is not asyncio.current_task():
            live.watchdog_task.cancel()
        if live.lock is not None:
            live.lock.release()
            live.lock = None

    async def switch_model(self, name: str, model_id: str, *, max_model_len: int | None = None):
        from ..deploy.compose import ComposeOptions
        from .switch_model import switch_model

        live = self._sessions.get(name)
        if live is None or live.handle is None:
            raise LookupError(f"{name} is not connected.")
        provider = await self.provider()
        config = await switch_model(name, model_id, ssh=live.handle.ssh, store=self.store, clock=self.clock,
                                    emit=self.emit, settings=self.settings,
                                    options=ComposeOptions.from_settings(self.settings), provider=provider,
                                    max_model_len=max_model_len, limits=self.limits, paths=self.paths)
        live.handle.config = config
        return config

    def run_in_background(self, name: str, work: Awaitable[Any]) -> asyncio.Task:
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
        if self.orphan_watch is not None:
            self.orphan_watch.stop()
        if self._orphan_task is not None and not self._orphan_task.done():
            self._orphan_task.cancel()
        for live in list(self._sessions.values()):
            self._stop_watchdog(live)
            if live.task is not None and not live.task.done():
                live.task.cancel()
            if live.handle is not None:
                try:
                    await live.handle.close()
                except Exception:  # noqa: BLE001
                    log.exception("closing %s", live.name)
        self._sessions.clear()
