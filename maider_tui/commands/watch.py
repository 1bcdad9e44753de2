"""`maider-tui watch`: the app's idle watchdog without the app.

Same ops code as the app: a Watchdog for each session, with the per-session lock, so the app and a
background watcher never both destroy. Tests pass their own context (a simulated cloud, a fast clock).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import TYPE_CHECKING, Any

from ..words import plural
from .common import Out, event_printer, provider_or_say

if TYPE_CHECKING:
    from maider_tui.store import Store
    from maider_tui.settings import Settings

WATCH_HELP = """\
Watch sessions without the app: the same idle watchdog, headless. For each session (every session
whose VM bills when none is named) that no other process watches, it reconnects over SSH (the
session's key and pinned host key), reads vLLM's metrics through the tunnel, warns (desktop
notification, ntfy, this terminal) and destroys the VM once it has been idle for the session's
watchdog minutes (watchdog.timeout_minutes unless set at launch). A VM with no model serving (a launch
interrupted or failed and kept, an unreachable or adopted VM) goes max(that, watchdog.inspect_minutes)
after it was kept; with no session named, orphan VMs (ours, no session) go that long after they were
first found. Sessions another process watches (the app, another `watch`) are skipped. It exits when
every watched VM is destroyed, or on Ctrl-C / SIGTERM; the VMs then keep running, unwatched. Opening
the app takes the sessions over. The log goes to the app's log file."""


def add_watch_parser(subparsers: Any) -> None:
    """Add `watch` to the `maider-tui` command line."""
    watch = subparsers.add_parser("watch", help="watch sessions in the background and destroy idle ones",
                                  description=WATCH_HELP,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    watch.add_argument("sessions", nargs="*", metavar="SESSION",
                       help="sessions to watch (default: every one whose VM bills, and the orphan VMs)")


def run_watch(args: argparse.Namespace, context: Any) -> int:
    """Watch the named (or all ready) sessions until they are destroyed or SIGTERM / Ctrl-C."""
    from ..log import setup_logging

    setup_logging(context.paths.log_file)  # a background watcher's only record of what it did
    names = list(getattr(args, "sessions", None) or [])
    return asyncio.run(watch_sessions(context, names, handle_signals=True))


async def watch_sessions(context: Any, names: list[str], *, out: Out = print,
                         stop: asyncio.Event | None = None, handle_signals: bool = False) -> int:
    """Run a Watchdog per watchable session; returns once none is left or `stop` is set."""
    from ..ops.live import LiveSessions
    from ..ops.notify import Notifier
    from ..ops.owner import owner_of, try_acquire
    from ..ops.readiness import ReadinessLimits

    store, settings = context.store, context.settings.settings
    if store is None:
        print(f"Cannot read the sessions: {context.store_error}", file=sys.stderr)
        return 1
    if not settings.watchdog.enabled:
        print("The watchdog is off in the settings (watchdog.enabled); nothing to watch for.",
              file=sys.stderr)
        return 1
    provider = await provider_or_say(context)
    if provider is None:
        return 1
    orphans = [] if names else await _orphans(context, provider, out)
    candidates = _watchable(store, names, out)
    if not candidates and not orphans:
        out("No VM bills: nothing to watch.")
        return 0
    stop = stop or asyncio.Event()
    if handle_signals:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    limits = ReadinessLimits()
    if getattr(context, "cloud_speed", 1.0) != 1.0:
        limits = limits.scaled(context.cloud_speed)
    live = LiveSessions(store=store, paths=context.paths, settings=settings, clock=context.clock,
                        provider=lambda: provider, hf_token=lambda: None, limits=limits)
    live.subscribe(event_printer(out))
    notifier = Notifier(settings.notifications, in_app=lambda title, message: out(f"{title}: {message}"))
    locks, dogs, tasks = [], [], []
    try:
        for name in candidates:
            lock = try_acquire(context.paths, name, store=store, background=True)
            if lock is None:
                holder = owner_of(context.paths, name) or "another process"
                out(f"{name} is already watched by {holder}; skipped.")
                continue
            locks.append(lock)
            dog = await _start_watchdog(live, name, settings, notifier, out)
            if dog is not None:
                dogs.append(dog)
                tasks.append(asyncio.create_task(dog.run(), name=f"watchdog {name}"))
        orphan_watch = live.watch_orphans(orphans, notifier)
        if orphans and orphan_watch is not None:
            dogs.append(orphan_watch)
            tasks.append(asyncio.create_task(orphan_watch.run(), name="orphan VMs"))
            out(f"Orphan VMs: {', '.join(f'{o.id} ({o.label})' for o in orphans)}; each is destroyed "
                f"{round(orphan_watch.timeout_s / 60)} min after it was first found unless adopted in the app.")
        if not tasks:
            out("Nothing left to watch.")
            return 0
        watched = len(tasks) - (1 if orphans and orphan_watch is not None else 0)
        out(f"Watching {plural(watched, 'session')}"
            + (f" and {plural(len(orphans), 'orphan VM')}" if orphans else "")
            + "; Ctrl-C stops watching (the VMs keep running).")
        stopper = asyncio.create_task(stop.wait())
        pending = set(tasks)
        while pending and not stop.is_set():
            await asyncio.wait(pending | {stopper}, return_when=asyncio.FIRST_COMPLETED)
            pending = {t for t in pending if not t.done()}
        stopper.cancel()
        if pending:
            out("Stopped watching; the VMs keep running.")
        for dog in dogs:
            dog.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        return 0
    finally:
        for task in tasks:
            task.cancel()
        await live.close_all()
        for lock in locks:
            lock.release()
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                asyncio.get_running_loop().remove_signal_handler(sig)


async def _orphans(context: Any, provider: Any, out: Out) -> list:
    """The orphan VMs, found as the app finds them at start-up; none when the API cannot say."""
    from ..ops.recover import recover

    try:
        report = await recover(provider=provider, store=context.store, clock=context.clock)
    except Exception as exc:  # noqa: BLE001 - the sessions can still be watched
        out(f"Could not list the VMs to find orphans ({exc}); watching the sessions only.")
        return []
    return report.orphans


def _watchable(store: Store, names: list[str], out: Out) -> list[str]:
    """The named sessions that still have a VM, or every session whose VM bills when none is named."""
    from ..ops.deadlines import is_kept

    if not names:
        return [r.name for r in store.list_sessions(include_ended=False) if r.state == "ready" or is_kept(r)]
    found = []
    for name in names:
        record = store.get_session(name)
        if record is None:
            out(f"There is no session named {name!r}; skipped.")
        elif record.ended:
            out(f"{name} is already destroyed; skipped.")
        else:
            found.append(name)
    return found


async def _start_watchdog(live: Any, name: str, settings: Settings, notifier: Any, out: Out):
    """Connect to the session and build its Watchdog; None when its VM is already gone. A kept VM
    (no model serving) has nothing to connect to: its watchdog counts from when it was kept."""
    from ..ops.watching import ATTACH_TIMEOUT_S
    from ..ops.deadlines import is_kept

    if is_kept(live.store.get_session(name)):
        return live.new_watchdog(name, notifier)
    try:
        async with asyncio.timeout(ATTACH_TIMEOUT_S):
            await live.attach(name)
    except LookupError as exc:
        out(f"{name}: {exc} Not watched; the app's clean-up (c) tidies it.")
        return None
    except Exception as exc:  # noqa: BLE001 - unreachable now: watch anyway, it counts as idle
        out(f"{name}: cannot connect yet ({exc}); watching anyway and retrying.")

    return live.new_watchdog(name, notifier)
