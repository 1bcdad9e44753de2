"""The idle watchdog: destroys a session's VM once nobody has used it for `timeout_minutes`.

UI-free and shared by the app (one per live session, at app level) and `maider-tui watch`. It polls
vLLM's `/metrics` through the tunnel; activity is a token counter that grew or a request running or
waiting. The idle start is stored with the session, so a restarted app (or a background watcher
taking over) resumes the countdown instead of granting a fresh one. See docs/watchdog.md.

A session's own "Watchdog minutes" (set in the wizard's review, kept in its options) wins over the
global `watchdog.timeout_minutes`. A VM that bills with no model to read (a launch interrupted or
failed and kept, an unreachable or adopted VM) is watched `kept`: it goes at the time it was kept
plus max(timeout, `inspect_minutes`), whatever vLLM says.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any, Awaitable, Callable

from maider_tui.clock import Clock, sleep_unless
from maider_tui.ops.deadlines import is_kept, kept_minutes, session_minutes  # noqa: F401 - is_kept: ui
from maider_tui.ops.events import EventSink, WatchdogEvent
from maider_tui.ops.notify import say
from maider_tui.remote.vllm import VllmClient, VllmMetrics
from maider_tui.settings import WatchdogSettings
from maider_tui.store import Store

log = logging.getLogger(__name__)

STATES = ("watching", "warning", "paused", "destroying", "destroyed", "stopped")
METRICS_TIMEOUT_S = 10.0  # a hung tunnel counts as unreachable, it must not stall the countdown

MetricsSource = Callable[[], Awaitable[VllmMetrics | None]]
Notify = Callable[[str, str], object]
"""Tells the user (title, message); what it returns is not used."""


def metrics_from_tunnel(local_port: int | Callable[[], int | None], *,
                        timeout: float = METRICS_TIMEOUT_S) -> MetricsSource:
    """A metrics source reading vLLM's `/metrics` on the local end of the session's tunnel.

    `local_port` may be a callable, so a reconnected tunnel (new port) is picked up. Any failure to
    reach vLLM (tunnel down, server restarting, timeout) gives None: "unreachable", not an error.
    """

    async def read() -> VllmMetrics | None:
        port = local_port() if callable(local_port) else local_port
        if not port:
            return None
        try:
            async with VllmClient(f"http://127.0.0.1:{port}", timeout=timeout) as vllm:
                async with asyncio.timeout(timeout):
                    return await vllm.metrics()
        except Exception as exc:  # noqa: BLE001 - every failure means the same thing: can't see the VM
            log.info("metrics on port %s unreachable: %s", port, exc)
            return None

    return read


class Watchdog:
    """Counts a session's idle time and destroys its VM at the deadline; one per session and process.

    Read by the dashboard: `state` (one of STATES), `remaining_s`, `idle_s`, `deadline`, `unreachable`,
    `holds`, `last_metrics`, `message`. Acted on by: `extend()`, `hold(reason)` / `release()`,
    `own_requests()` (the app's own traffic), `stop()`.
    """

    def __init__(self, name: str, *, metrics: MetricsSource, destroy: Callable[[], Awaitable[object]],
                 store: Store, clock: Clock, settings: WatchdogSettings, notify: Notify,
                 emit: EventSink | None = None, kept: bool = False) -> None:
        self.name, self.store, self.clock, self.settings = name, store, clock, settings
        self.kept = kept
        self.now_serving = False  # a kept VM found serving: its watcher swaps this for an idle watchdog
        self._since_key = "kept_since" if kept else "idle_since"
        record = store.get_session(name)
        self.timeout_minutes = (kept_minutes if kept else session_minutes)(record, settings)
        self._metrics, self._destroy, self._notify, self._emit = metrics, destroy, notify, emit
        self.state = "watching"
        self.message = ""
        self.unreachable = False
        self.last_metrics: VllmMetrics | None = None
        self.holds: list[str] = []
        self._baseline: VllmMetrics | None = None
        self._own = 0  # open own_requests() blocks
        self._rebaseline = False  # the app's own traffic ended: its counter growth is not the user's
        self._paused_since: float | None = None
        self._warned = False
        self._stopped = asyncio.Event()
        self.idle_since = self._stored_idle_since()

    # --- what the dashboard reads -----------------------------------------------------------------

    @property
    def timeout_s(self) -> float:
        return self.timeout_minutes * 60.0

    @property
    def warning_s(self) -> float:
        return min(self.settings.warning_minutes * 60.0, self.timeout_s)

    @property
    def idle_s(self) -> float:
        """Seconds of idle time counted so far (frozen while paused)."""
        until = self._paused_since if self._paused_since is not None else self.clock.now()
        return max(0.0, until - self.idle_since)

    @property
    def remaining_s(self) -> float:
        """Seconds until the idle deadline; 0 once it has passed."""
        return max(0.0, self.timeout_s - self.idle_s)

    @property
    def deadline(self) -> float:
        """When the VM will be destroyed if nothing happens (epoch seconds, by the clock)."""
        return self.clock.now() + self.remaining_s

    @property
    def _watching(self) -> str:
        if self.kept:
            return f"Kept with no model serving: destroyed {self.timeout_minutes} min after it was kept."
        return f"Watching: the VM is destroyed after {self.timeout_minutes} min idle."

    @property
    def paused(self) -> bool:
        return self._paused_since is not None

    # --- what the user and the app do -------------------------------------------------------------

    def extend(self) -> None:
        """Reset the idle timer, as if the user had just used the model (the `e` key)."""
        self._mark_active(self.clock.now())
        self._record("extended", f"Idle timer reset: {self.timeout_minutes} min from now.")
        self._set_state("paused" if self.paused else "watching", "Extended by the user.")

    def hold(self, reason: str) -> None:
        """Stop the countdown while `reason` runs (a benchmark the user started)."""
        self.holds.append(reason)
        self._pause(self.clock.now())
        self._set_state("paused", self._pause_reason())

    def release(self) -> None:
        """End the latest hold; the work it covered was the user's, so the idle timer starts afresh."""
        if self.holds:
            self.holds.pop()
        if not self.holds:
            self._rebaseline = True  # the held work's tokens are not news at the next poll
            self._resume(self.clock.now())
            self._mark_active(self.clock.now())
            self._set_state("watching", "Resumed.")

    @contextlib.contextmanager
    def own_requests(self) -> Iterator[None]:
        """Wrap the app's own traffic (readiness probes, test completions, validation) in this block.

        While any block is open, counter growth and running requests do not count as activity, and
        the counters are read afresh at the next poll after it, so its tokens never extend the VM's
        life. A request still running then counts again: the watchdog never destroys mid-stream.
        """
        self._own += 1
        try:
            yield
        finally:
            self._own -= 1
            self._rebaseline = True

    def stop(self) -> None:
        """Stop watching (the VM keeps running); safe to call from inside `destroy`."""
        self._stopped.set()
        if self.state not in ("destroying", "destroyed"):
            self._set_state("stopped", "Not watching.")

    # --- the loop -----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Poll every `poll_seconds` until destroyed or stopped; the timer re-arms after each poll.

        May be run again after `stop()` (say, after a destroy from the `d` key failed), never twice at once.
        """
        if not self.settings.enabled:
            self._set_state("stopped", "The watchdog is off in settings.")
            return
        if self.state == "destroyed":
            return
        self._stopped.clear()
        self._set_state("watching", self._watching)
        while not self._stopped.is_set():
            try:
                await self.check()
            except Exception:  # noqa: BLE001 - a bug in one poll must not leave the VM unwatched
                log.exception("watchdog poll for %s failed", self.name)
            if self.state == "destroyed" or self._stopped.is_set():
                break
            await self._sleep(self.settings.poll_seconds)

    async def _sleep(self, seconds: float) -> None:
        await sleep_unless(self.clock, seconds, self._stopped)  # stop() ends the wait at once

    async def check(self) -> None:
        """One poll: read the metrics, count activity, warn or destroy when due."""
        if self.state == "destroyed" or self._stopped.is_set():
            return
        if self._ended():
            return
        if self.kept:
            await self._check_kept()
            return
        try:
            metrics = await self._metrics()
        except Exception as exc:  # noqa: BLE001 - the source's failure is just "unreachable"
            log.info("metrics for %s failed: %s", self.name, exc)
            metrics = None
        if self._ended():  # found gone while reading (its VM deleted outside the app)
            return
        now = self.clock.now()
        self.unreachable = metrics is None
        if metrics is not None:
            self.last_metrics = metrics
        if self._is_activity(metrics):
            self._mark_active(now)
        if self.holds or (self.unreachable and not self.settings.unreachable_is_idle):
            self._pause(now)
            self._set_state("paused", self._pause_reason())
            return
        self._resume(now)
        await self._judge(metrics)

    async def _check_kept(self) -> None:
        record = self.store.get_session(self.name)
        if record is not None and record.state == "ready":
            # Resumed to ready (in another window, say): a serving VM is watched by use, not by this.
            self.now_serving = True
            self._stopped.set()
            self._set_state("stopped", "Now serving: watched by use from here on.")
            return
        now = self.clock.now()
        self.unreachable = True
        if self.holds:
            self._pause(now)
            self._set_state("paused", self._pause_reason())
            return
        self._resume(now)
        await self._judge(None)

    def _ended(self) -> bool:
        record = self.store.get_session(self.name)
        if record is None or record.ended:  # destroyed elsewhere (the app, `maider-tui down`), or gone
            self._set_state("destroyed", "The session has ended.")
            self._stopped.set()
            return True
        return False

    def _is_activity(self, metrics: VllmMetrics | None) -> bool:
        if metrics is None:
            return False
        previous, self._baseline = self._baseline, metrics
        if self._own or self.holds:
            return False
        if self._rebaseline:
            self._rebaseline = False
            return metrics.requests_running + metrics.requests_waiting > 0
        if metrics.requests_running > 0 or metrics.requests_waiting > 0:
            return True
        if previous is None:
            return False  # the first reading has nothing to compare with
        if (metrics.prompt_tokens_total < previous.prompt_tokens_total
                or metrics.generation_tokens_total < previous.generation_tokens_total):
            return False  # vLLM restarted (a model switch): counters began again from zero
        return (metrics.prompt_tokens_total > previous.prompt_tokens_total
                or metrics.generation_tokens_total > previous.generation_tokens_total)

    async def _judge(self, metrics: VllmMetrics | None) -> None:
        remaining = self.remaining_s
        if remaining <= 0 and not self._warned and self.warning_s > 0:
            # Never destroy unannounced: a deadline that passed while nobody watched (the app closed,
            # polls further apart than the warning) still gets its warning window, once.
            self.idle_since = self.clock.now() - (self.timeout_s - self.warning_s)
            self._store_idle_since()
            remaining = self.remaining_s
        if remaining <= 0:
            if metrics is not None and metrics.requests_running > 0:
                self._set_state("warning", "Past the deadline, but a request is streaming: waiting for it.")
                return
            await self._destroy_now()
        elif remaining <= self.warning_s:
            # A steady message (one event per change): the countdown itself is `remaining_s`.
            if self.kept:
                self._set_state("warning", "Kept with no model serving: destroying soon unless resumed.")
            else:
                self._set_state("warning", "Idle: destroying soon unless used or extended.")
            if not self._warned:
                self._warned = True
                minutes = max(1, round(remaining / 60))
                if self.kept:
                    await self._say(f"{self.name}: kept VM, destroying soon",
                                    f"{self.name} bills with no model serving; it will be destroyed in about "
                                    f"{minutes} min. Resume it in the app to keep it, or destroy it now.")
                else:
                    await self._say(f"{self.name}: idle, destroying soon",
                                    f"{self.name} has been idle; it will be destroyed in about {minutes} min. "
                                    "Use it, or extend it in the app, to keep it.")
        else:
            text = "Unreachable: counting as idle." if self.unreachable and not self.kept else self._watching
            self._set_state("watching", text)

    async def _destroy_now(self) -> None:
        idle_min = round(self.idle_s / 60)
        how = "kept" if self.kept else "idle"
        self._set_state("destroying", f"{how.capitalize()} for {idle_min} min: destroying.")
        try:
            result = await self._destroy()
        except Exception as exc:  # noqa: BLE001 - never lose the session: say so and try next poll
            log.warning("watchdog destroy of %s failed: %s", self.name, exc)
            self._stopped.clear()  # LiveSessions.destroy stops its watchdog first; the VM still runs
            self._set_state("warning", f"Destroy failed ({exc}); trying again at the next check.")
            await self._say(f"{self.name}: destroy failed",
                            f"The watchdog could not destroy {self.name} ({exc}); it will try again.")
            return
        cost = getattr(result, "cost_usd", None)
        if cost is None:
            record = self.store.get_session(self.name)
            cost = record.cost_usd if record is not None and record.cost_usd is not None else 0.0
        text = f"destroyed after {idle_min} min {how}, ${cost:.2f} total"
        self._record("watchdog", f"Watchdog: {text}.", {"idle_min": idle_min, "cost_usd": cost})
        self._stopped.set()
        self._set_state("destroyed", f"{text.capitalize()}.")
        await self._say(f"{self.name} destroyed", f"{self.name} was {text}.")

    # --- bookkeeping --------------------------------------------------------------------------------

    def _stored_idle_since(self) -> float:
        """The idle start kept with the session, so a restart resumes the countdown."""
        record = self.store.get_session(self.name)
        if record is not None and self.kept:
            # Kept from the first time it was seen kept (a failure, an interruption found, an adoption).
            value = record.extra.get("kept_since")
            if isinstance(value, (int, float)):
                return float(value)
            now = self.clock.now()
            self.store.update_session(self.name, extra={**record.extra, "kept_since": now})
            return now
        if record is not None:
            for value in (record.extra.get("idle_since"), record.last_activity, record.ready_at,
                          record.created_at):
                if isinstance(value, (int, float)):
                    return float(value)
        return self.clock.now()

    def _mark_active(self, now: float) -> None:
        self.idle_since = now
        self._warned = False
        if self._paused_since is not None:
            self._paused_since = now
        record = self.store.get_session(self.name)
        if record is not None and self.kept:
            self.store.update_session(self.name, extra={**record.extra, "kept_since": now})
        elif record is not None:
            self.store.update_session(self.name, last_activity=now, extra={**record.extra, "idle_since": now})

    def _pause(self, now: float) -> None:
        if self._paused_since is None:
            self._paused_since = now

    def _resume(self, now: float) -> None:
        """Move the idle start forward by the paused time, so a pause does not eat the countdown."""
        if self._paused_since is None:
            return
        self.idle_since += now - self._paused_since
        self._paused_since = None
        self._store_idle_since()

    def _store_idle_since(self) -> None:
        record = self.store.get_session(self.name)
        if record is not None:
            self.store.update_session(self.name, extra={**record.extra, self._since_key: self.idle_since})

    def _pause_reason(self) -> str:
        if self.holds:
            return f"Paused while the {self.holds[-1]} runs."
        return "Unreachable: the idle timer is paused (watchdog.unreachable_is_idle is off)."

    def _record(self, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
        try:
            self.store.add_event(self.name, kind, message, data)
        except Exception:  # noqa: BLE001 - history is nice to have; the countdown is not optional
            log.exception("could not record %s for %s", kind, self.name)

    def _set_state(self, state: str, message: str) -> None:
        changed = (state, message) != (self.state, self.message)
        self.state, self.message = state, message
        if changed:
            log.info("watchdog %s: %s (%s)", self.name, state, message)
            if self._emit is not None:
                self._emit(WatchdogEvent(self.name, state, self.remaining_s, message))

    async def _say(self, title: str, message: str) -> None:
        await say(self._notify, title, message, about=self.name)
