"""The sessions home screen: every session with its state and cost, and how to start one."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Iterable, cast

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from ..commands import PaletteCommand, key_commands
from ..messages import (AdoptRequested, BenchmarksRequested, CleanUpRequested, DashboardRequested,
                        DestroyRequested, RecommendRequested, ResumeRequested)
from ..widgets.patch import patch
from ..widgets.sessions_table import SessionsTable
from ..widgets.top_bar import TopBar

if TYPE_CHECKING:
    from ...app import MaiderApp
    from ...context import AppContext
    from ...ops.live import LiveSessions
    from ...ops.views import SessionRecord, Version

# (key, label): what costs money comes right after the name and state, so an 80-column terminal shows
# it; the plan's details follow (scroll right for them).
COLUMNS = (("name", "NAME"), ("state", "STATE"), ("hourly", "$/H"), ("so_far", "SO FAR"),
           ("idle_left", "IDLE LEFT"), ("gpu", "GPU"), ("model", "MODEL"), ("region", "REGION"))


def _cells(*values: str) -> list[Text]:
    """The table's cells as plain Text, as DataTable makes a one-line cell from a string, minus the
    markup parse: names and labels show as they are, and Rich's emoji table (about 1 MiB) is never
    loaded for them."""
    return [Text(value, no_wrap=True, end="") for value in values]


def state_label(rec: "SessionRecord") -> str:
    """The session's state as shown: "gone" for one whose VM was deleted outside the app, "demo ended"
    for one whose simulated cloud ended with the demo app that ran it."""
    if rec.ended and rec.extra.get("gone"):
        return "demo ended" if rec.extra.get("demo_ended") else "gone"
    return rec.state


def gpu_label(rec: "SessionRecord") -> str:
    """"2x RTX 4000 Ada" for plans the catalog knows, else the count and the Linode type id; a session
    over several VMs: "2 VMs of 4x Quadro RTX 6000"."""
    if rec.nodes > 1:
        return f"{rec.nodes} VMs of {_gpu_label(rec.gpu_type, rec.gpu_count // rec.nodes)}"
    return _gpu_label(rec.gpu_type, rec.gpu_count)


@lru_cache(maxsize=64)
def _gpu_label(gpu_type: str, gpu_count: int) -> str:
    # Cached: the table and the dashboard ask every second, and an unknown plan's error looks for
    # close matches among the catalog's ids.
    from ... import catalog

    try:
        return catalog.gpu_type(gpu_type).short_name
    except catalog.UnknownGpuTypeError:
        return f"{gpu_count}x {gpu_type}" if gpu_count else gpu_type


def model_label(model_id: str) -> str:
    """The model's repo name without the owner and the "-Instruct" that every chat model carries."""
    return model_id.split("/")[-1].replace("-Instruct", "")


def _countdown(seconds: float) -> str:
    remaining = max(0, int(seconds))
    return f"{remaining // 60:02d}:{remaining % 60:02d}"


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
        Binding("n", "app.new_session", "New", id="home.new",
                tooltip="Launch a new session: capability, region, GPU type, model"),
        # priority: the table's own enter would otherwise take the key (and hide it from the footer).
        Binding("enter", "open", "Open", id="home.open", tooltip="Open the session's dashboard", priority=True),
        Binding("d", "destroy", "Destroy", id="home.destroy", tooltip="Destroy the selected session's VM"),
        Binding("a", "adopt", "Adopt", id="home.adopt", show=False,
                tooltip="Record an orphan VM as a session, so it is watched and billed"),
        Binding("c", "clean_up", "Clean up", id="home.clean",
                tooltip="Check every VM against the sessions: orphans, VMs gone, interrupted launches"),
        Binding("b", "benchmarks", "Benchmarks", id="home.bench",
                tooltip="Compare benchmark runs: tokens/s, TTFT, cost per 1K tokens, efficiency"),
        Binding("R", "recommend", "Recommend", id="home.recommend",
                tooltip="Recommend a GPU and model for a task, budget and size"),
        Binding("q", "app.quit", "Quit", id="app.quit", tooltip="Quit maider-tui (asks first when VMs run)"),
    ]

    def __init__(self, context: "AppContext") -> None:
        super().__init__()
        self.context = context
        self.has_token: bool | None = None
        self.account_line = ""
        self._composed = False
        self.orphans: list = []  # ops.recover.Orphan, from the last recovery check
        self._bindings_for: str | None = None  # the selection the footer's keys were last checked for
        self._columns: list = []  # the table's column keys
        self._shown: dict[str, list[Text]] = {}  # row key -> its cells, as the table shows them now
        self.records: list[SessionRecord] = []  # the sessions as last read, in a worker
        self._version: Version | None = None  # the database's version `records` were read at
        self._loaded = False  # read once: until then neither the table nor the welcome shows
        self._reading = self._read_again = False
        self._read_failed = False  # the last read failed (said once, until one works again)

    def compose(self) -> ComposeResult:
        yield TopBar(self.context.clock)
        with Vertical(id="sessions-box"):
            yield SessionsTable(id="sessions", cursor_type="row", zebra_stripes=False)
            yield Static("", id="first-run", markup=False)
        yield Footer(compact=True)  # every key fits at 80 columns

    def on_mount(self) -> None:
        # Cost so far and idle time left tick; a second is as fine as a money figure needs.
        self._ticker = self.set_interval(1.0, self._tick)
        table = self.query_one("#sessions", DataTable)
        self._columns = [table.add_column(Text(label), key=key) for key, label in COLUMNS]
        self.query_one("#sessions-box").border_title = "Sessions"
        bar = self.query_one(TopBar)
        bar.badge = "demo" if self.context.demo else ""
        self._composed = True
        self.refresh_sessions()

    def _tick(self) -> None:
        # Under the dashboard (or any other screen) nobody sees the table: it is redrawn on return.
        # (Not `is_current`: Textual counts the screen just below the top one as visible.)
        if self.app.screen is self:
            self.refresh_sessions()

    def on_screen_suspend(self) -> None:
        self._ticker.pause()  # nor does it wake the app once a second for nothing

    def on_screen_resume(self) -> None:
        self._ticker.resume()
        self.refresh_sessions()

    def set_has_token(self, has_token: bool) -> None:
        self.has_token = has_token
        self.draw()

    def set_account_line(self, line: str) -> None:
        """What the account check found (or why it failed), shown under the welcome."""
        self.account_line = line
        self.draw()

    def _live(self) -> LiveSessions | None:
        return cast("MaiderApp", self.app).live  # this screen lives in MaiderApp only

    def _idle_left(self, rec: "SessionRecord") -> str:
        live = self._live()
        session = live.get(rec.name) if live is not None else None
        watchdog = session.watchdog if session is not None else None
        if rec.ended:
            return "—"
        if watchdog is None:
            # Another window or `maider-tui watch` holds the session's watch lock: its countdown is there.
            from ...ops.owner import owner_of

            return "elsewhere" if rec.owner and owner_of(self.context.paths, rec.name) else "—"
        return _countdown(watchdog.remaining_s)

    def _orphan_left(self, orphan) -> str:
        live = self._live()
        watch = live.orphan_watch if live is not None else None
        remaining = watch.remaining_s(orphan.id) if watch is not None else None
        if orphan.elsewhere:
            return "elsewhere"
        return "d / a" if remaining is None else _countdown(remaining)

    def set_orphans(self, orphans: list) -> None:
        self.orphans = list(orphans)
        self.refresh_sessions()

    def _selected(self) -> str | None:
        table = self.query_one("#sessions", DataTable)
        if not table.display or table.row_count == 0:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return row_key.value

    def _selected_orphan(self):
        key = self._selected()
        if key is None or not key.startswith("orphan:"):
            return None
        return next((o for o in self.orphans if f"orphan:{o.id}" == key), None)

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action in {"open", "destroy"}:
            return True if self._composed and self._selected() is not None else None
        if action == "adopt":
            return True if self._composed and self._selected_orphan() is not None else None
        return True

    def on_data_table_row_highlighted(self) -> None:
        # The table is rebuilt every second: the keys (and the footer) change only with the selection.
        key = self._selected()
        if key != self._bindings_for:
            self._bindings_for = key
            self.refresh_bindings()

    def action_open(self) -> None:
        key = self._selected()
        if key is None or key.startswith("orphan:"):
            self.notify("An orphan VM has no dashboard: press a to adopt it or d to destroy it.")
            return
        self._open(key)

    @work(exclusive=True, exit_on_error=False, group="home-open", description="Open a session")
    async def _open(self, key: str) -> None:
        from ...ops.views import Views

        record = await Views(self.context).session(key)
        if record is None:
            return
        if record.state in {"ready", "unreachable"}:
            self.post_message(DashboardRequested(key))
        elif record.state in {"creating", "booting", "healing", "failed"} and self._live() is not None:
            self.post_message(ResumeRequested(record))
        else:
            self.notify(f"{key} is {record.state}" + (f" (stopped at {record.stage})" if record.stage else "")
                        + ": nothing to open yet.")

    def action_destroy(self) -> None:
        key = self._selected()
        if key is not None:
            self.post_message(DestroyRequested(key))

    def action_adopt(self) -> None:
        orphan = self._selected_orphan()
        if orphan is not None:
            self.post_message(AdoptRequested(orphan))

    def action_benchmarks(self) -> None:
        self.post_message(BenchmarksRequested())

    def action_recommend(self) -> None:
        self.post_message(RecommendRequested())

    def action_clean_up(self) -> None:
        self.post_message(CleanUpRequested())

    def refresh_sessions(self) -> None:
        """Redraw from the sessions as last read (the cost, the countdowns move), and read them again."""
        if not self._composed:
            return  # on_mount draws whatever arrived before it
        self.draw()
        self._read_sessions()

    def _read_sessions(self) -> None:
        if self._reading:  # one read at a time; one more once it is back, as something asked since
            self._read_again = True
            return
        self._reading = True
        self.run_worker(self._read(), group="home-sessions", exit_on_error=False,
                        description="Read the sessions")

    async def _read(self) -> None:
        from ...ops.views import StoreError, Views

        try:
            while True:
                self._read_again = False
                try:
                    version, records = await Views(self.context).sessions_if_changed(self._version)
                except StoreError as exc:  # the rows read last stay; said once, not every second
                    if not self._read_failed:
                        self.notify(f"Could not read the sessions: {exc}. The list shows them as last read.",
                                    title="Database", severity="error", timeout=30)
                    self._read_failed = True
                    return
                self._read_failed = False
                if records is not None or not self._loaded:
                    self.records, self._version, self._loaded = records or [], version, True
                    self.draw()
                if not self._read_again:
                    break
        finally:
            self._reading = False

    def draw(self) -> None:
        """The table, the welcome and the top bar from `records` and the orphans, at the clock's now."""
        if not self._composed:
            return
        from ...ops.receipt import session_cost_so_far  # the sum of `maider-tui ls` and the receipts

        now = self.context.clock.now()
        records = self.records
        table = self.query_one("#sessions", DataTable)
        rows: dict[str, list[Text]] = {}
        live_rate = 0.0
        live = 0
        for rec in records:
            so_far = session_cost_so_far(rec, now)
            if not rec.ended and rec.instance_id is not None:  # a VM that bills, whatever its state
                live += 1
                live_rate += rec.hourly_usd
            rows[rec.name] = _cells(
                rec.name,
                state_label(rec),
                f"{rec.hourly_usd:.2f}",
                f"{so_far:.2f}",
                self._idle_left(rec),
                gpu_label(rec),
                model_label(rec.model),
                rec.region,
            )
        for orphan in self.orphans:
            rate = orphan.hourly_usd or 0.0
            live += 1
            live_rate += rate
            rows[f"orphan:{orphan.id}"] = _cells(f"(orphan) {orphan.label}", "orphan", f"{rate:.2f}", "?",
                                                 self._orphan_left(orphan), orphan.vm.type, "?", orphan.vm.region)
        self._show_rows(table, rows)
        table.display = bool(records or self.orphans)
        message = self.query_one("#first-run", Static)
        message.display = self._loaded and not table.display  # no welcome flashing before the rows
        text = first_run_message(self.has_token, self.context.demo)
        patch(message, f"{text}\n\n{self.account_line}" if self.account_line else text)
        bar = self.query_one(TopBar)
        orphans = f" · {len(self.orphans)} orphan" if self.orphans else ""
        bar.status = f"{live} live · ${live_rate:.2f}/h{orphans}"
        bar.set_time(now)

    def _show_rows(self, table: DataTable, rows: dict[str, list[Text]]) -> None:
        """The same rows as shown: only the cells that changed (the cost, the countdown) are updated.
        Rows added, removed or reordered: the table is rebuilt and keeps its selection."""
        if list(rows) == list(self._shown) and table.row_count == len(rows):
            for key, cells in rows.items():
                for column, new, old in zip(self._columns, cells, self._shown[key]):
                    if new != old:
                        table.update_cell(key, column, new, update_width=new.cell_len > old.cell_len)
        else:
            selected = self._selected() if table.row_count else None
            table.clear()
            for key, cells in rows.items():
                table.add_row(*cells, key=key)
            if selected is not None and selected in rows:
                table.move_cursor(row=table.get_row_index(selected))
        self._shown = rows

    def palette_commands(self) -> Iterable[PaletteCommand]:
        yield from key_commands(self, "sessions", {
            "app.new_session": "session: new", "open": "session: open dashboard", "destroy": "session: destroy",
            "adopt": "session: adopt orphan VM", "clean_up": "sessions: clean up",
            "benchmarks": "bench: compare runs", "recommend": "bench: recommend a GPU and model",
            "app.quit": "app: quit"})
