"""The sessions home screen: every session with its state and cost, and how to start one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from ..widgets.top_bar import TopBar

if TYPE_CHECKING:
    from ...context import AppContext
    from ...store import SessionRecord

LIVE_STATES = {"creating", "booting", "healing", "ready", "unreachable", "orphan"}
COLUMNS = ("NAME", "STATE", "GPU", "MODEL", "REGION", "$/H", "SO FAR", "IDLE LEFT")


def cost_so_far(rec: "SessionRecord", now: float) -> float:
    """Dollars spent on a session: its final receipt once ended, else hourly rate x time alive."""
    if rec.cost_usd is not None:
        return rec.cost_usd
    end = rec.ended_at or now
    return max(0.0, end - rec.created_at) / 3600.0 * rec.hourly_usd


def gpu_label(rec: "SessionRecord") -> str:
    """"2x RTX 4000 Ada" for plans the catalog knows, else the count and the Linode type id."""
    from ... import catalog

    try:
        return catalog.gpu_type(rec.gpu_type).short_name
    except catalog.UnknownGpuTypeError:
        return f"{rec.gpu_count}x {rec.gpu_type}" if rec.gpu_count else rec.gpu_type


def model_label(model_id: str) -> str:
    """The model's repo name without the owner and the "-Instruct" that every chat model carries."""
    return model_id.split("/")[-1].replace("-Instruct", "")


def first_run_message(has_token: bool | None, demo: bool) -> str:
    if demo:
        return (
            "This is the demo: a simulated cloud with fake GPU VMs, no account and no cost.\n"
            "Nothing here touches a real Linode account."
        )
    if has_token:
        return "No sessions yet."
    return (
        "Welcome to maider-tui. No Linode token yet.\n\n"
        "  Add one (kept in your OS keyring):   maider-tui token set linode\n"
        "  or set it in the environment:        export LINODE_TOKEN=...\n"
        "  or try it first with no account:     maider-tui --demo\n\n"
        "The token needs read/write on Linodes; it never leaves this machine."
    )


class HomeScreen(Screen[None]):
    """Sessions, live and past, with a total cost per hour."""

    BINDING_GROUP_TITLE = "Sessions"
    BINDINGS = [
        Binding("q", "app.quit", "Quit", id="app.quit", tooltip="Quit maider-tui (live VMs keep running)"),
    ]

    def __init__(self, context: "AppContext") -> None:
        super().__init__()
        self.context = context
        self.has_token: bool | None = None
        self.account_line = ""
        self._composed = False

    def compose(self) -> ComposeResult:
        yield TopBar()
        with Vertical(id="sessions-box"):
            yield DataTable(id="sessions", cursor_type="row", zebra_stripes=False)
            yield Static("", id="first-run", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#sessions", DataTable)
        table.add_columns(*COLUMNS)
        self.query_one("#sessions-box").border_title = "Sessions"
        bar = self.query_one(TopBar)
        bar.badge = "demo" if self.context.demo else ""
        self._composed = True
        self.refresh_sessions()

    def set_has_token(self, has_token: bool) -> None:
        self.has_token = has_token
        self.refresh_sessions()

    def set_account_line(self, line: str) -> None:
        """What the account check found (or why it failed), shown under the welcome."""
        self.account_line = line
        self.refresh_sessions()

    def sessions(self) -> list["SessionRecord"]:
        store = self.context.store
        return store.list_sessions() if store is not None else []

    def refresh_sessions(self) -> None:
        if not self._composed:
            return  # on_mount draws whatever arrived before it
        now = self.context.clock.now()
        records = self.sessions()
        table = self.query_one("#sessions", DataTable)
        table.clear()
        live_rate = 0.0
        live = 0
        for rec in records:
            so_far = cost_so_far(rec, now)
            if rec.state in LIVE_STATES:
                live += 1
                live_rate += rec.hourly_usd
            table.add_row(
                rec.name,
                rec.state,
                gpu_label(rec),
                model_label(rec.model),
                rec.region,
                f"{rec.hourly_usd:.2f}",
                f"{so_far:.2f}",
                "—",
                key=rec.name,
            )
        table.display = bool(records)
        message = self.query_one("#first-run", Static)
        message.display = not records
        text = first_run_message(self.has_token, self.context.demo)
        message.update(f"{text}\n\n{self.account_line}" if self.account_line else text)
        bar = self.query_one(TopBar)
        bar.status = f"{live} live · ${live_rate:.2f}/h"
        bar.set_time(now)
