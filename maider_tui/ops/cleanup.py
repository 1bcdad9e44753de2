"""The account's VMs against the sessions, for the app: reconcile, adopt an orphan, destroy one.

Each takes the app's LiveSessions, so the orphans' deadlines and the sessions' watchdogs follow what
happened: a VM the app learns of is watched from that moment; an orphan adopted or destroyed is not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from ..store import SessionRecord
    from .live import LiveSessions
    from .recover import Orphan, RecoveryReport


async def reconcile(live: LiveSessions, *, on_orphan_destroyed: Callable[[int], object] | None = None,
                    demo_ended: bool = False) -> RecoveryReport:
    """Reconcile the account's VMs with the sessions, then watch every VM that bills: serving sessions
    by use, kept ones (interrupted, failed, unreachable) and orphans by a deadline.
    `on_orphan_destroyed(vm_id)`: an orphan's deadline destroyed it. `demo_ended`: see `recover`."""
    from .recover import recover

    report = await recover(provider=await live.provider(), store=live.store, clock=live.clock, paths=live.paths,
                           demo_ended=demo_ended)
    live.watch_all()
    live.watching.on_orphan_destroyed = on_orphan_destroyed
    live.watch_orphans(report.orphans)
    return report


async def adopt(live: LiveSessions, orphan: Orphan) -> SessionRecord:
    """Make `orphan` a session (kept until resumed or destroyed, and watched as one)."""
    from .recover import adopt_orphan

    record = await adopt_orphan(orphan.vm, store=live.store, clock=live.clock)
    _forget(live, orphan.id)
    live.watch_all()
    return record


async def destroy_orphan(live: LiveSessions, orphan: Orphan) -> None:
    """Delete `orphan`'s VM (no session holds it) and drop its deadline."""
    from .recover import destroy_orphan as destroy

    await destroy(orphan.id, provider=await live.provider(), store=live.store)
    _forget(live, orphan.id)


def _forget(live: LiveSessions, vm_id: int) -> None:
    if live.orphan_watch is not None:
        live.orphan_watch.forget(vm_id)
