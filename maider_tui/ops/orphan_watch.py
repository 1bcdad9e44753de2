"""The deadline of orphan VMs: one that nobody adopts or destroys goes at found + max(timeout, inspect).

UI-free and shared by the app and `maider-tui watch`. An orphan has no session record, so the time it
was first found is kept in the store's key-value table under `orphan-found:<instance id>` (for 30
days, far past any deadline): every process and every restart counts from the same moment. It is
warned about `warning_minutes` before, like an idle session, and destroyed through
`ops.recover.destroy_orphan`. Adopting it makes it a session, watched as a kept VM from then on.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Awaitable, Callable

from maider_tui.clock import Clock, sleep_unless
from maider_tui.ops.events import EventSink
from maider_tui.ops.notify import say
from maider_tui.ops.recover import Orphan, destroy_orphan
from maider_tui.settings import WatchdogSettings
from maider_tui.store import Store

if TYPE_CHECKING:
    from maider_tui.cloud import Provider

log = logging.getLogger(__name__)

FOUND_TTL_S = 30 * 86400.0

Notify = Callable[[str, str], object]


def found_key(vm_id: int) -> str:
    return f"orphan-found:{vm_id}"


class OrphanWatch:
    """Counts down every orphan it is given and destroys those still orphans at their deadline."""

    def __init__(self, *, store: Store, clock: Clock, settings: WatchdogSettings,
                 provider: Callable[[], Awaitable[Provider]], notify: Notify, emit: EventSink | None = None,
                 on_destroyed: Callable[[int], object] | None = None) -> None:
        self.store, self.clock, self.settings = store, clock, settings
        self._provider, self._notify, self._emit, self._on_destroyed = provider, notify, emit, on_destroyed
        self.orphans: dict[int, Orphan] = {}
        self._found: dict[int, float] = {}
        self._warned: set[int] = set()
        self._stopped = asyncio.Event()

    @property
    def timeout_s(self) -> float:
        return max(self.settings.timeout_minutes, self.settings.inspect_minutes) * 60.0

    @property
    def warning_s(self) -> float:
        return min(self.settings.warning_minutes * 60.0, self.timeout_s)

    def set_orphans(self, orphans: list[Orphan]) -> None:
        """The orphans as last found; a new one counts from now, a known one from when first found."""
        now = self.clock.now()
        # Another home's VM is its own to watch: counting it down here would destroy a live session.
        self.orphans = {o.id: o for o in orphans if not o.elsewhere}
        for vm_id in self.orphans:
            found = self.store.cache_get(found_key(vm_id))
            if not isinstance(found, (int, float)):
                found = now
                self.store.cache_put(found_key(vm_id), found, FOUND_TTL_S)
            self._found[vm_id] = float(found)

    def forget(self, vm_id: int) -> None:
        """The user adopted or destroyed it: no deadline any more."""
        self.orphans.pop(vm_id, None)
        self._found.pop(vm_id, None)
        self._warned.discard(vm_id)

    def remaining_s(self, vm_id: int) -> float | None:
        """Seconds until the orphan is destroyed; None for a VM this watch does not count."""
        found = self._found.get(vm_id) if vm_id in self.orphans else None
        if found is None:
            return None
        return max(0.0, found + self.timeout_s - self.clock.now())

    async def check(self) -> None:
        """Warn about the orphans due soon, destroy those due."""
        for vm_id in list(self.orphans):
            remaining = self.remaining_s(vm_id)
            if remaining is None:
                continue
            if remaining <= 0 and vm_id not in self._warned and self.warning_s > 0:
                # Never destroy unannounced: a deadline passed while nobody watched gets its warning.
                self._found[vm_id] = self.clock.now() - (self.timeout_s - self.warning_s)
                self.store.cache_put(found_key(vm_id), self._found[vm_id], FOUND_TTL_S)
                remaining = self.warning_s
            if remaining <= 0:
                await self._destroy(vm_id)
            elif remaining <= self.warning_s and vm_id not in self._warned:
                self._warned.add(vm_id)
                orphan = self.orphans[vm_id]
                minutes = max(1, round(remaining / 60))
                await self._say(f"Orphan VM {vm_id}: destroying soon",
                                f"VM {vm_id} ({orphan.label}) bills with no session; it will be destroyed in "
                                f"about {minutes} min. Adopt it in the app (a) to keep it.")

    async def _destroy(self, vm_id: int) -> None:
        orphan = self.orphans[vm_id]
        try:
            provider = await self._provider()
            await destroy_orphan(vm_id, provider=provider, store=self.store, emit=self._emit)
        except Exception as exc:  # noqa: BLE001 - say so and try again at the next check
            log.warning("destroying orphan VM %s failed: %s", vm_id, exc)
            await self._say(f"Orphan VM {vm_id}: destroy failed",
                            f"VM {vm_id} ({orphan.label}) could not be destroyed ({exc}); trying again.")
            return
        minutes = round((self.clock.now() - self._found.get(vm_id, self.clock.now())) / 60)
        self.forget(vm_id)
        await self._say(f"Orphan VM {vm_id} destroyed",
                        f"VM {vm_id} ({orphan.label}) had no session for {minutes} min and was destroyed.")
        if self._on_destroyed is not None:
            self._on_destroyed(vm_id)

    async def run(self) -> None:
        """Check every `poll_seconds` until no orphan is left or `stop()`."""
        self._stopped.clear()
        while self.orphans and not self._stopped.is_set():
            try:
                await self.check()
            except Exception:  # noqa: BLE001 - one bad check must not leave the VMs unwatched
                log.exception("orphan check failed")
            if not self.orphans:
                break
            await sleep_unless(self.clock, self.settings.poll_seconds, self._stopped)

    def stop(self) -> None:
        self._stopped.set()

    async def _say(self, title: str, message: str) -> None:
        await say(self._notify, title, message, about="an orphan VM")
