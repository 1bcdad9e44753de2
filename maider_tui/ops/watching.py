"""Watching live sessions: each VM that bills has one watchdog, run from the one process that holds
its watch lock (ops.owner). The idle watchdog for a serving VM, a deadline for a kept one, the
orphan countdown, taking over from a background watcher or another window, and the lock a launch
holds while it runs. Part of LiveSessions (`live.watching`), which it reads its sessions from.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Callable

from .events import LogEvent

if TYPE_CHECKING:
    from .live import LiveSession, LiveSessions
    from .orphan_watch import OrphanWatch
    from .owner import SessionLock
    from .recover import Orphan
    from .watchdog import Notify, Watchdog

log = logging.getLogger(__name__)

ATTACH_TIMEOUT_S = 60.0  # a VM that won't answer SSH must not stall its countdown
TAKE_OVER_POLL_S = 2.0  # how often a session another window watches is checked for being let go


class Watching:
    """The watchdogs and watch locks of a LiveSessions."""

    def __init__(self, live: LiveSessions) -> None:
        self.live = live
        self.launching: set[str] = set()  # launches running here: watched once they end
        self.orphan_watch: OrphanWatch | None = None  # once orphans were found
        self._orphan_task: asyncio.Task | None = None
        self.on_orphan_destroyed: Callable[[int], object] | None = None

    def new_watchdog(self, name: str, notify: Notify) -> Watchdog:
        """A Watchdog for `name` reading vLLM's metrics through the tunnel, reconnecting when it is down;
        for a VM with no model serving (see deadlines.is_kept), one counting from when it was kept."""
        from .deadlines import is_kept
        from .watchdog import Watchdog, metrics_from_tunnel

        if is_kept(self.live.store.get_session(name)):
            async def nothing():
                return None

            dog = Watchdog(name, metrics=nothing, destroy=lambda: self.live.destroy(name), store=self.live.store,
                           clock=self.live.clock, settings=self.live.settings.watchdog, notify=notify, emit=self.live.emit,
                           kept=True)
            self.live.entry(name).watchdog = dog
            return dog

        def port() -> int | None:
            current = self.live.get(name)
            return current.handle.local_port if current is not None and current.handle is not None else None

        tunnel = metrics_from_tunnel(port)

        async def metrics():
            current = self.live.get(name)
            ssh = current.ssh if current is not None else None
            if ssh is not None and ssh.state != "connected" and await self.live.vm_gone(name):
                return None  # deleted outside the app: marked gone, nothing left to watch
            if port() is None:  # not connected: try again, once per poll (it counts as idle meanwhile)
                try:
                    async with asyncio.timeout(ATTACH_TIMEOUT_S):
                        await self.live.attach(name)
                except Exception as exc:  # noqa: BLE001
                    log.info("reconnecting %s failed: %s", name, exc)
                    return None
            return await tunnel()

        dog = Watchdog(name, metrics=metrics, destroy=lambda: self.live.destroy(name), store=self.live.store,
                       clock=self.live.clock, settings=self.live.settings.watchdog, notify=notify, emit=self.live.emit)
        self.live.entry(name).watchdog = dog
        return dog

    def start(self, name: str, notify: Notify) -> Watchdog | None:
        """Watch `name` from this process: take its lock, then run its Watchdog. A background
        `maider-tui watch` holding the lock is asked to stop, and the lock taken once it lets go.
        None when the watchdog is off or another app holds the session."""
        from .deadlines import is_kept
        from .owner import stop_owner, try_acquire

        if not self.live.settings.watchdog.enabled or name in self.launching:
            return None  # off, or launching here: watched once the launch ends
        record = self.live.store.get_session(name)
        if record is None or record.ended or (record.state != "ready" and not is_kept(record)):
            return None  # no VM that bills: nothing to watch
        live = self.live.entry(name)
        if live.watchdog is not None and live.watchdog.kept != is_kept(record):
            self.drop(live)  # kept and now serving, or the reverse: the other kind of watch
        if live.watchdog_task is not None and not live.watchdog_task.done():
            return live.watchdog
        lock = live.lock or try_acquire(self.live.paths, name, store=self.live.store)
        if lock is None:
            if stop_owner(self.live.paths, name):  # a background watcher: it releases on SIGTERM
                live.watchdog_task = asyncio.ensure_future(self._take_over(name, notify))
                return None
            self.live.emit(LogEvent(name, "Another maider-tui process watches this session; not watched here."))
            # Another app window: watch from here once it lets go (quit or crashed), never both at once.
            live.watchdog_task = asyncio.ensure_future(self._take_over(name, notify, wait_s=None,
                                                                       poll_s=TAKE_OVER_POLL_S))
            return None
        return self._run_watchdog(live, lock, notify)

    async def _take_over(self, name: str, notify: Notify, wait_s: float | None = 10.0,
                         poll_s: float = 0.2) -> None:
        """Wait (real time: another process is exiting) for the watcher's lock, then watch here.
        `wait_s` None: for as long as the session lives."""
        from .owner import try_acquire

        loop = asyncio.get_running_loop()
        deadline = None if wait_s is None else loop.time() + wait_s
        while deadline is None or loop.time() < deadline:
            record = self.live.store.get_session(name)
            if record is None or record.ended:
                return  # destroyed by the other process: nothing left to watch
            lock = try_acquire(self.live.paths, name, store=self.live.store)
            if lock is not None:
                live = self.live.entry(name)
                live.watchdog_task = None
                self._run_watchdog(live, lock, notify)
                self.live.emit(LogEvent(name, "Took over the watchdog from the other maider-tui process."))
                return
            await asyncio.sleep(poll_s)
        self.live.emit(LogEvent(name, "The background watcher did not let go; it keeps watching this session."))

    def _run_watchdog(self, live: LiveSession, lock: SessionLock, notify: Notify) -> Watchdog:
        live.lock = lock
        dog = live.watchdog if live.watchdog is not None else self.new_watchdog(live.name, notify)
        live.watchdog_task = asyncio.ensure_future(dog.run())

        def finished(_task: asyncio.Task) -> None:
            if dog.now_serving and live.watchdog is dog:  # a kept VM now serves: watch it by use
                self.drop(live)
                self.start(live.name, notify)

        live.watchdog_task.add_done_callback(finished)
        return dog

    def auto(self, name: str) -> None:
        if self.live.notify is not None:
            self.start(name, self.live.notify)

    def watch_all(self) -> list[str]:
        """Watch every session whose VM bills (serving or kept), except launches running here; the
        names now watched from this process."""
        watched: list[str] = []
        if self.live.notify is None:
            return watched
        for record in self.live.store.list_sessions(include_ended=False):
            if self.start(record.name, self.live.notify) is not None:
                watched.append(record.name)
        return watched

    def watch_orphans(self, orphans: list[Orphan], notify: Notify | None = None) -> OrphanWatch | None:
        """Give every orphan VM its deadline (ops.orphan_watch) and count it down from this process."""
        from .orphan_watch import OrphanWatch

        notify = notify or self.live.notify
        if notify is None or not self.live.settings.watchdog.enabled:
            return None
        if self.orphan_watch is None:
            self.orphan_watch = OrphanWatch(store=self.live.store, clock=self.live.clock, settings=self.live.settings.watchdog,
                                            provider=self.live.provider, notify=notify, emit=self.live.emit,
                                            on_destroyed=self._orphan_destroyed)
        self.orphan_watch.set_orphans(orphans)
        if orphans and (self._orphan_task is None or self._orphan_task.done()):
            self._orphan_task = asyncio.ensure_future(self.orphan_watch.run())
        return self.orphan_watch

    def stop_orphans(self) -> None:
        if self.orphan_watch is not None:
            self.orphan_watch.stop()
        if self._orphan_task is not None and not self._orphan_task.done():
            self._orphan_task.cancel()

    def _orphan_destroyed(self, vm_id: int) -> None:
        if self.on_orphan_destroyed is not None:
            self.on_orphan_destroyed(vm_id)

    def hold_while_launching(self, live: LiveSession) -> None:
        """Take the session's watch lock for the launch: another process (a second window, a background
        watcher) then never counts it down as an interrupted launch while it runs here."""
        from .owner import try_acquire

        self.launching.add(live.name)
        if live.lock is None:
            live.lock = try_acquire(self.live.paths, live.name, store=self.live.store)

    def watch_or_let_go(self, name: str) -> None:
        """A launch ended: ready, or stopped with its VM kept (watched by a deadline), it is watched
        from here with the lock the launch held; with nothing to watch here, the lock goes."""
        self.launching.discard(name)
        self.auto(name)
        live = self.live.get(name)
        if live is not None and live.watchdog_task is None and live.lock is not None:
            live.lock.release()
            live.lock = None

    def drop(self, live: LiveSession) -> None:
        self.stop(live)
        live.watchdog, live.watchdog_task = None, None

    def unkeep(self, name: str) -> None:
        """The user acted on a kept session (resume, retry): its deadline is dropped until it is kept again."""
        live = self.live.get(name)
        if live is not None and live.watchdog is not None:
            self.drop(live)
        record = self.live.store.get_session(name)
        if record is not None and "kept_since" in record.extra:
            self.live.store.update_session(name, extra={k: v for k, v in record.extra.items() if k != "kept_since"})

    def stop(self, live: LiveSession | None) -> None:
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

