"""`maider-tui ls` and `maider-tui down`: the sessions as a table, and one session destroyed.

Same ops code as the app: `down` is the app's destroy (token checked first, the session kept when
the API fails). Tests pass their own context (a simulated cloud, a fast clock).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING, Any

from .common import Out, event_printer, provider_or_say

if TYPE_CHECKING:
    from maider_tui.store import SessionRecord


def add_session_parsers(subparsers: Any) -> None:
    """Add `ls` and `down` to the `maider-tui` command line."""
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

    from ..ops.owner import owner_of
    from ..ops.receipt import session_cost_so_far

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
    live_hourly = 0.0
    rows = []
    for record in records:
        if not record.ended:
            live_hourly += record.hourly_usd
        gpu = f"{record.gpu_count}x {record.gpu_type}" if record.gpu_count > 1 else record.gpu_type
        rows.append({"Session": record.name, "State": record.state, "GPU": gpu or "-", "Model": record.model or "-",
                     "$/h": f"{record.hourly_usd:.2f}", "Cost so far": f"${session_cost_so_far(record, now):.2f}",
                     "Goes in": _destroyed_in(record, context, now),
                     "Watched by": owner_of(context.paths, record.name) or "-"})
    titles, width = _ls_columns(rows, console.width)
    if width > console.width:
        console.width = width  # a name is never cut: the line runs on, the terminal wraps it
    table = Table(box=None, header_style="bold")
    for title in titles:
        wraps = title in WRAPPING
        table.add_column(title, justify="right" if title in ("$/h", "Cost so far", "Goes in") else "left",
                         no_wrap=not wraps, overflow="fold",
                         min_width=None if wraps else max(len(title), *(len(row[title]) for row in rows)))
    for row in rows:
        table.add_row(*(row[title] for title in titles))
    console.print(table)
    live = sum(1 for r in records if not r.ended)
    console.print(f"{live} live session{'s' if live != 1 else ''}: ${live_hourly:.2f}/h in total.")
    hidden = [title for title in rows[0] if title not in titles]
    if hidden:
        console.print(f"{', '.join(hidden)} not shown in {console.width} columns: a wider terminal shows them.")
    return 0


# Columns that wrap where the width is short; the others (the name, the state and the money) are shown
# whole. Where even that is too wide, these go first, in this order.
WRAPPING = ("Model", "GPU", "Watched by")
DROPPED_FIRST = ("Watched by", "GPU", "Model")
WRAP_MIN = 12


def _ls_columns(rows: list[dict[str, str]], width: int) -> tuple[list[str], int]:
    """The columns `ls` shows in `width` and the width they take: every column whole if they fit,
    else the fewest dropped (least needed first) for the rest to fit whole, else wrapped."""

    def needed(shown: list[str], wrap: bool) -> int:
        widths = [max(len(t), *(len(r[t]) for r in rows)) for t in shown]
        if wrap:
            widths = [min(w, WRAP_MIN) if t in WRAPPING else w for t, w in zip(shown, widths)]
        return sum(widths) + 2 * len(shown)  # a cell's padding: one space either side

    choices = [list(rows[0])]
    for title in DROPPED_FIRST:
        choices.append([t for t in choices[-1] if t != title])
    for wrap in (False, True):
        for shown in choices:
            if needed(shown, wrap) <= width:
                return shown, needed(shown, wrap)
    return choices[-1], needed(choices[-1], True)


def _destroyed_in(record: SessionRecord, context: Any, now: float) -> str:
    """The watchdog's countdown as the store has it (the session's own minutes): "29:12", "12:00 kept"
    (no model serving: it goes whatever its use) or "-" (not watched)."""
    from ..ops.deadlines import is_kept, stored_deadline

    settings = context.settings.settings.watchdog
    deadline = stored_deadline(record, settings)
    if deadline is None:
        return "-"
    left = max(0, int(deadline - now))
    return f"{left // 60:02d}:{left % 60:02d}" + (" kept" if is_kept(record) else "")


# --- down -----------------------------------------------------------------------------------------

def run_down(args: argparse.Namespace, context: Any) -> int:
    """Destroy one session; exit 1 (session kept) when there is no token or the API fails."""
    return asyncio.run(down_session(context, args.session))


async def down_session(context: Any, name: str, *, out: Out = print) -> int:
    from ..cloud import ProviderError
    from ..ops.destroy import destroy_session
    from ..ops.owner import destroying

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
    provider = await provider_or_say(context)
    if provider is None:
        return 1
    try:
        async with destroying(context.paths, name,
                              on_wait=lambda: out(f"Another maider-tui process is destroying {name}; waiting.")):
            receipt = await destroy_session(name, provider=provider, store=store, clock=context.clock,
                                            emit=event_printer(out, quiet=True), paths=context.paths)
    except RuntimeError as err:  # the other destroy never finished
        print(f"{name} was not destroyed: {err}", file=sys.stderr)
        return 1
    except ProviderError as err:
        print(f"{name} was not destroyed: {err.message} The session is kept; try again.", file=sys.stderr)
        return 1
    out(f"Destroyed {name}: {receipt.summary()}")
    return 0
