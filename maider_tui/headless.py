"""The commands that work without the full-screen app: `watch`, `ls` and `down`.

Same ops code as the app: `watch` runs the app's Watchdog for each session (with the per-session
lock, so the app and a background watcher never both destroy), `down` is the app's destroy (token
checked first, the session kept when the API fails). `cli.py` builds the context and calls
`run_watch`, `run_ls` or `run_down`; tests pass their own context (a simulated cloud, a fast clock).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any, Callable

from .ops.events import DestroyedEvent, FailedEvent, OpsEvent, WatchdogEvent

log = logging.getLogger(__name__)

Out = Callable[[str], None]

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


def add_headless_parsers(subparsers: Any) -> None:
    """Add `watch`, `ls` and `down` to the `maider-tui` command line."""
    watch = subparsers.add_parser("watch", help="watch sessions in the background and destroy idle ones",
                                  description=WATCH_HELP,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    watch.add_argument("sessions", nargs="*", metavar="SESSION",
                       help="sessions to watch (default: every one whose VM bills, and the orphan VMs)")
    ls = subparsers.add_parser("ls", help="list sessions with their state, GPU, model and cost",
                               description="List sessions with their state, GPU, model, $/h and cost so far, "
                                           "and the total $/h of the live ones.")
    ls.add_argument("--all", action="store_true", help="include destroyed sessions")
    down = subparsers.add_parser("down", help="destroy a session's VM and print its receipt",
                                 description="Destroy a session's VM (the token is checked first; if the "
                                             "API fails, nothing changes and the session is kept).")
    down.add_argument("session", metavar="SESSION", help="the session to destroy")


# --- ls -------------------------------------------------------------------------------------------

def run_ls(args: argparse.Namespace, context: Any) -> int:
    """Print the sessions as a table; exit 1 when the store cannot be opened."""
    from rich.console import Console
    from rich.table import Table

    from .ops.owner import owner_of

    store = context.store
    if store is None:
        print(f"Cannot read the sessions: {context.store_error}", file=sys.stderr)
        return 1
    records = store.list_sessions(include_ended=bool(getattr(args, "all", False)))
    now = context.clock.now()
    console = Console(file=sys.stdout, highlight=False, soft_wrap=False)
    if not records:
        console.print("No sessions. Start one with `maider-tui` (n).")
        return 0
    table = Table(box=None, header_style="bold")
    for title, justify in (("Session", "left"), ("State", "left"), ("GPU", "left"), ("Model", "left"),
                           ("$/h", "right"), ("Cost so far", "right"), ("Goes in", "right"),
                           ("Watched by", "left")):
        table.add_column(title, justify=justify, no_wrap=title != "Model", overflow="fold")
    live_hourly = 0.0
    for record in records:
        if not record.ended:
            live_hourly += record.hourly_usd
        gpu = f"{record.gpu_count}x {record.gpu_type}" if record.gpu_count > 1 else record.gpu_type
        table.add_row(record.name, record.state, gpu or "-", record.model or "-", f"{record.hourly_usd:.2f}",
                      f"${cost_so_far(record, now):.2f}", _destroyed_in(record, context, now),
                      owner_of(context.paths, record.name) or "-")
    console.print(table)
    live = sum(1 for r in records if not r.ended)
    console.print(f"{live} live session{'s' if live != 1 else ''}: ${live_hourly:.2f}/h in total.")
    return 0


def _destroyed_in(record: Any, context: Any, now: float) -> str:
    """The watchdog's countdown as the store has it (the session's own minutes): "29:12", "12:00 kept"
    (no model serving: it goes whatever its use) or "-" (not watched)."""
    from .ops.watchdog import is_kept, stored_deadline

    settings = context.settings.settings.watchdog
    deadline = stored_deadline(record, settings)
    if deadline is None:
        return "-"
    left = max(0, int(deadline - now))
    return f"{left // 60:02d}:{left % 60:02d}" + (" kept" if is_kept(record) else "")


def cost_so_far(record: Any, now: float) -> float:
    """What a session has cost so far (see ops.receipt.session_cost_so_far)."""
    from .ops.receipt import session_cost_so_far

    return session_cost_so_far(record, now)


# --- down -----------------------------------------------------------------------------------------

def run_down(args: argparse.Namespace, context: Any) -> int:
    """Destroy one session; exit 1 (session kept) when there is no token or the API fails."""
    return asyncio.run(down_session(context, args.session))


async def down_session(context: Any, name: str, *, out: Out = print) -> int:
    from .cloud import ProviderError
    from .ops.destroy import destroy_session

    store = context.store
    if store is None:
        print(f"Cannot read the sessions: {context.store_error}", file=sys.stderr)
        return 1
    record = store.get_session(name)
    if record is None:
        print(f"There is no session named {name!r}; `maider-tui ls` lists them.", file=sys.stderr)
        return 1
    if record.ended:
        out(f"{name} was already destroyed.")
        return 0
    provider = await _provider(context)
    if provider is None:
        return 1
    from .ops.owner import destroying

    try:
        async with destroying(context.paths, name,
                              on_wait=lambda: out(f"Another maider-tui process is destroying {name}; waiting.")):
            receipt = await destroy_session(name, provider=provider, store=store, clock=context.clock,
                                            emit=_printer(out, quiet=True), paths=context.paths)
    except RuntimeError as err:  # the other destroy never finished
        print(f"{name} was not destroyed: {err}", file=sys.stderr)
        return 1
    except ProviderError as err:
        print(f"{name} was not destroyed: {err.message} The session is kept; try again.", file=sys.stderr)
        return 1
    out(f"Destroyed {name}: {receipt.summary()}")
    return 0


# --- watch ----------------------------------------------------------------------------------------

def run_watch(args: argparse.Namespace, context: Any) -> int:
    """Watch the named (or all ready) sessions until they are destroyed or SIGTERM / Ctrl-C."""
    from .log import setup_logging

    setup_logging(context.paths.log_file)  # a background watcher's only record of what it did
    names = list(getattr(args, "sessions", None) or [])
    return asyncio.run(watch_sessions(context, names, handle_signals=True))


async def watch_sessions(context: Any, names: list[str], *, out: Out = print,
                         stop: asyncio.Event | None = None, handle_signals: bool = False) -> int:
    """Run a Watchdog per watchable session; returns once none is left or `stop` is set."""
    from .ops.live import LiveSessions
    from .ops.notify import Notifier
    from .ops.owner import owner_of, try_acquire
    from .ops.readiness import ReadinessLimits

    store, settings = context.store, context.settings.settings
    if store is None:
        print(f"Cannot read the sessions: {context.store_error}", file=sys.stderr)
        return 1
    if not settings.watchdog.enabled:
        print("The watchdog is off in the settings (watchdog.enabled); nothing to watch for.",
              file=sys.stderr)
        return 1
    provider = await _provider(context)
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
    live.subscribe(_printer(out))
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
        out(f"Watching {watched} session{'s' if watched != 1 else ''}"
            + (f" and {len(orphans)} orphan VM{'s' if len(orphans) != 1 else ''}" if orphans else "")
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
    from .ops.recover import recover

    try:
        report = await recover(provider=provider, store=context.store, clock=context.clock)
    except Exception as exc:  # noqa: BLE001 - the sessions can still be watched
        out(f"Could not list the VMs to find orphans ({exc}); watching the sessions only.")
        return []
    return report.orphans


def _watchable(store: Any, names: list[str], out: Out) -> list[str]:
    """The named sessions that still have a VM, or every session whose VM bills when none is named."""
    from .ops.watchdog import is_kept

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


async def _start_watchdog(live: Any, name: str, settings: Any, notifier: Any, out: Out):
    """Connect to the session and build its Watchdog; None when its VM is already gone. A kept VM
    (no model serving) has nothing to connect to: its watchdog counts from when it was kept."""
    from .ops.watching import ATTACH_TIMEOUT_S
    from .ops.watchdog import is_kept

    if is_kept(live.store.get_session(name)):
        return live.new_watchdog(name, notifier)
    try:
        await asyncio.wait_for(live.attach(name), ATTACH_TIMEOUT_S)
    except LookupError as exc:
        out(f"{name}: {exc} Not watched; the app's clean-up (c) tidies it.")
        return None
    except Exception as exc:  # noqa: BLE001 - unreachable now: watch anyway, it counts as idle
        out(f"{name}: cannot connect yet ({exc}); watching anyway and retrying.")

    return live.new_watchdog(name, notifier)


async def _provider(context: Any):
    """The cloud provider, or None after saying why there is none."""
    from .secrets import SecretError

    try:
        provider = await asyncio.to_thread(context.get_provider)
    except SecretError as exc:
        print(str(exc), file=sys.stderr)
        return None
    if provider is None:
        print("No Linode token: add one with `maider-tui token set linode` or set LINODE_TOKEN.",
              file=sys.stderr)
    return provider


def _printer(out: Out, *, quiet: bool = False) -> Callable[[OpsEvent], None]:
    """Events as lines on the terminal; `quiet` keeps only the ones a script needs."""

    def show(event: OpsEvent) -> None:
        if isinstance(event, WatchdogEvent):
            line = f"{event.session}: {event.state}: {event.message}"
        elif isinstance(event, DestroyedEvent):
            line = f"{event.session}: destroyed after {event.hours:.2f} h, ${event.cost_usd:.2f}"
        elif isinstance(event, FailedEvent):
            line = "" if quiet else f"{event.session}: {event.message}"
        else:
            text = getattr(event, "text", getattr(event, "message", ""))
            line = "" if quiet else f"{event.session}: {text}"
        if line:
            log.info("%s", line)
            out(line)

    return show
