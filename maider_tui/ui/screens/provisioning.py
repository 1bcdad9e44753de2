"""The provisioning screen: stages, progress and ETA, the log with each heal, and the cost ticking.

The launch itself is held by the app's LiveSessions (so "keep" on escape lets it carry on after
this screen closes); the screen's worker only waits for it. Events arrive on the app's loop, so
widgets are updated directly, in place.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import textwrap
from collections.abc import Callable
from typing import TYPE_CHECKING, Iterable

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, ProgressBar, RichLog, Static

from ...paths import styles_dir
from ...ops.events import FailedEvent, HealEvent, LogEvent, NodeEvent, ReadyEvent, StageEvent, WarningEvent
from ...ops.naming import session_name
from ...words import plural
from ...ops.readiness import CLUSTER_TITLES, STAGES
from ..commands import PaletteCommand, key_commands
from ..dialogs.confirm import ConfirmDialog
from ..messages import DashboardRequested, DestroyRequested
from ..widgets.top_bar import TopBar

if TYPE_CHECKING:
    from ...context import AppContext
    from ...ops.live import LiveSessions
    from ...ops.launch_plan import LaunchPlan
    from ...ops.events import OpsEvent
    from ...ops.views import SessionRecord

LAST_LINES = 6  # log lines repeated in the failure panel


def eta_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 90:
        return f"about {max(0, round(seconds))} s left"
    return f"about {round(seconds / 60)} min left"


class ProvisioningScreen(Screen[None]):
    """Follows one launch to ready (then the dashboard) or to a failure with retry/destroy/keep."""

    CSS_PATH = styles_dir() / "provisioning.tcss"

    BINDING_GROUP_TITLE = "Provisioning"
    BINDINGS = [
        Binding("escape", "leave", "Keep or destroy", id="provision.leave",
                tooltip="Leave this screen: keep the VM (the launch carries on) or destroy it"),
        Binding("ctrl+c", "leave", "Keep or destroy", show=False, id="provision.interrupt",
                tooltip="Leave this screen: keep the VM (the launch carries on) or destroy it"),
        Binding("r", "retry", "Retry", id="provision.retry",
                tooltip="Carry on the failed launch from the stage it reached"),
        Binding("d", "destroy", "Destroy", id="provision.destroy", tooltip="Destroy the VM (asks first)"),
        Binding("k", "keep", "Keep for inspection", id="provision.keep",
                tooltip="Go home and keep the VM running; shows the SSH command to reach it"),
    ]

    def __init__(self, context: "AppContext", live: "LiveSessions | None", plan: "LaunchPlan", *,
                 autostart: bool = True) -> None:
        super().__init__()
        self.context = context
        self.live = live
        if plan.name is None:  # named now, so every event of this launch can be recognised
            # Automatic: if the name turns out taken, the record's insert takes the next free one (claim).
            plan = dataclasses.replace(plan, name=session_name(plan.model, context.clock.now(), ()),
                                       auto_name=True)
        self.plan = plan
        self.session = plan.name or ""
        # A launch this screen starts owns the record under `session` only once it reserved the name:
        # until then destroy, retry and keep could reach another window's session. A screen that
        # starts nothing follows a session chosen elsewhere (a resume, from its record).
        self.owned = not autostart
        self.autostart = autostart
        self.current: str | None = None
        self.created_at: float | None = None  # when the VM began to cost money
        self.failed: FailedEvent | None = None
        self.ready = False
        self.lines: list[str] = []
        self.node_steps: dict[int, str] = {}  # a launch over several VMs: what each VM did last
        self._unsubscribe: Callable[[], None] | None = None

    # --- layout ---------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield TopBar(self.context.clock)
        with Horizontal(id="top"):
            yield Static("", id="stages")
            with Vertical(id="side"):
                yield Static("", id="plan-line", markup=False)
                yield ProgressBar(total=100, show_eta=False, id="progress")
                yield Static("", id="eta", markup=False)
                yield Static("", id="cost", markup=False)
                yield Static("", id="nodes", markup=False)
        yield Static("", id="failure")
        # min_width: lines wrap to the box, not to RichLog's default 78 columns.
        yield RichLog(id="log", wrap=True, markup=False, max_lines=2000, min_width=20)
        yield Footer()

    def on_mount(self) -> None:
        bar = self.query_one(TopBar)
        bar.title = f"Launching {self.session}"
        bar.badge = "demo" if self.context.demo else ""
        self.query_one("#top").border_title = "Stages"
        self.query_one("#log").border_title = "Log"
        self.query_one("#failure").border_title = "Launch failed"
        self.query_one("#failure").display = False
        gpu, nodes = self.plan.gpu_type, self.plan.nodes
        on = f"{gpu.gpus}x {gpu.family.short_name if gpu.family else gpu.id}"
        self.query_one("#plan-line", Static).update(
            f"{self.plan.model} on {on if nodes == 1 else f'{nodes} VMs of {on}'} in {self.plan.region} · "
            f"${gpu.hourly_usd * nodes:.2f}/h")
        self.query_one("#nodes", Static).display = nodes > 1
        self.draw_nodes()
        self.draw_stages()
        self.tick()
        self.set_interval(1.0, self.tick)
        if self.live is not None:
            self._unsubscribe = self.live.subscribe(self.on_ops_event)
        if self.autostart:
            self.run_launch()

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()

    # --- the launch -------------------------------------------------------------------------------

    def run_launch(self, record: SessionRecord | None = None) -> None:
        """Start (or, with a record, resume) the launch, held by LiveSessions so it can outlive the screen."""
        if self.live is None:
            self.show_failure(FailedEvent(self.session, "record", "The session database cannot be used, "
                                                                "so nothing can be launched."))
            return
        if record is not None:
            self.owned = True
            if record.instance_id is not None and record.created_at is not None:
                self.created_at = record.created_at  # it has billed since then, not since the resume
            work = self.live.resume(record, claim=self.claim)
        else:
            work = self.live.launch(self.plan, claim=self.claim)
        self.wait_for(self.live.run_in_background(self.session, work))

    def claim(self, name: str) -> None:
        """The launch reserved its record under `name` (another launch may have taken the first pick)."""
        self.session, self.owned = name, True
        if self.is_attached:
            self.query_one(TopBar).title = f"Launching {name}"

    @work(exclusive=True, exit_on_error=False, group="provision", description="Provision the session")
    async def wait_for(self, task: asyncio.Task) -> None:
        """Wait for the launch; shielded, so closing this screen never cancels it."""
        from ...ops.provision import ProvisionFailed

        try:
            await asyncio.shield(task)
        except ProvisionFailed:
            return  # its FailedEvent has drawn the failure
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - no token, a bug: said on screen, not a crash
            if self.failed is None:
                self.show_failure(FailedEvent(self.session, self.current or "token", str(exc)))

    # --- events -----------------------------------------------------------------------------------

    def on_ops_event(self, event: OpsEvent) -> None:
        """One event of any session: this screen's are shown, in place."""
        if getattr(event, "session", None) != self.session or not self.is_attached:
            return
        log = self.query_one("#log", RichLog)
        stamp = self.context.clock.now()
        if isinstance(event, StageEvent):
            self.current = event.stage
            if event.stage == "create" and self.created_at is None:
                self.created_at = stamp
            self.query_one("#progress", ProgressBar).update(progress=round(event.fraction * 100, 1))
            self.query_one("#eta", Static).update(eta_text(event.eta_s) if event.fraction < 1 else "done")
            self.draw_stages()
            self.write(log, f"» {event.message}", "bold")
        elif isinstance(event, LogEvent):
            self.write(log, event.text)
        elif isinstance(event, WarningEvent):
            self.write(log, f"! {event.message}", "italic")
        elif isinstance(event, HealEvent):
            line = Text(f"HEAL {event.attempt} ({event.kind}): {event.change}", style="reverse bold")
            log.write(line)
            self.write(log, f"    evidence: {event.evidence}", "italic")
            self.lines.append(line.plain)
        elif isinstance(event, ReadyEvent):
            self.ready = True
            self.write(log, f"Ready at {event.endpoint} in {event.elapsed_s:.0f} s"
                            + (f" after {plural(event.heals, 'heal')}" if event.heals else ""), "bold")
            self.call_later(self.open_dashboard)
        elif isinstance(event, NodeEvent):
            self.node_steps[event.node] = event.message
            self.draw_nodes()
        elif isinstance(event, FailedEvent) and self.failed is None:
            self.show_failure(event)

    def write(self, log: RichLog, text: str, style: str = "") -> None:
        self.lines.append(text)
        log.write(Text(text, style=style))

    def draw_stages(self) -> None:
        names = [name for name, _, _ in STAGES]
        at = names.index(self.current) if self.current in names else -1
        stages = self.query_one("#stages", Static)
        width = stages.content_size.width
        text = Text()
        for index, (name, _, title) in enumerate(STAGES):
            title = CLUSTER_TITLES.get(name, title) if self.plan.nodes > 1 else title
            if index < at or (self.ready and index == at):
                line, style = f"✓ {title}", "dim"
            elif index == at:
                line, style = f"{'✗' if self.failed else '●'} {title}", "bold"
            else:
                line, style = f"○ {title}", "dim"
            # A title too long for the column goes on under its words, not under the mark.
            text.append("\n".join(textwrap.wrap(line, width, subsequent_indent="  ")) if width > 2 else line,
                        style=style)
            if index < len(STAGES) - 1:
                text.append("\n")
        stages.update(text)

    def draw_nodes(self) -> None:
        """A launch over several VMs: one line a VM, what it did last, side by side as they go."""
        if self.plan.nodes <= 1:
            return
        lines = [f"VM {index} {'head  ' if index == 0 else 'worker'} {self.node_steps.get(index, 'waiting')}"
                 for index in range(self.plan.nodes)]
        self.query_one("#nodes", Static).update("\n".join(lines))

    def on_resize(self) -> None:
        self.draw_stages()  # the titles wrap to the column's new width

    def tick(self) -> None:
        """The cost so far, from the moment the VM was created (the clock's own time)."""
        now = self.context.clock.now()
        self.query_one(TopBar).set_time(now)
        from ...ops.receipt import cost_so_far

        rate = self.plan.gpu_type.hourly_usd * self.plan.nodes
        if self.created_at is None:
            self.query_one("#cost", Static).update(f"${rate:.2f}/h once the VM exists")
            return
        seconds = max(0.0, now - self.created_at)
        minutes, secs = divmod(int(seconds), 60)
        self.query_one("#cost", Static).update(
            f"${cost_so_far(rate, self.created_at, now):.2f} so far ({minutes}m {secs:02d}s at ${rate:.2f}/h)")

    def show_failure(self, event: FailedEvent) -> None:
        self.failed = event
        self.draw_stages()
        text = Text()
        text.append(f"Stage {event.stage}: {event.message}\n", style="bold")
        if event.diagnosis:
            text.append(f"Diagnosis: {event.diagnosis}\n")
        for line in self.lines[-LAST_LINES:]:
            text.append(f"  {line}\n", style="dim")
        if self.owned:
            text.append("r retry from this stage · d destroy the VM · k keep it for inspection")
        else:
            text.append("Nothing was rented. escape goes back; launch again from the wizard.")
        panel = self.query_one("#failure", Static)
        panel.update(text)
        panel.display = True
        self.query_one("#eta", Static).update("stopped")
        self.add_class("-failed")  # the stage list gives its room to the error and the log
        self.refresh_bindings()

    def open_dashboard(self) -> None:
        """Ready: the dashboard, or home when this build has no dashboard yet."""
        if not self.is_current:
            return  # the user left with "keep": the session shows up on the home screen
        if importlib.util.find_spec("maider_tui.ui.screens.dashboard") is not None:
            self.post_message(DashboardRequested(self.session))
            return
        self.app.pop_screen()
        self.app.notify(f"{self.session} is ready.", title="Session")

    # --- keys -------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("destroy", "keep"):
            return self.failed is not None and self.owned
        if action == "retry":
            return self.failed is not None
        return True

    def action_leave(self) -> None:
        if self.failed is not None or self.ready:
            self.app.pop_screen()
            return

        def answered(destroy: bool | None) -> None:
            if destroy:
                self.destroy_vm()
            else:
                self.app.pop_screen()  # the launch carries on in LiveSessions; home lists it
                self.app.notify(f"{self.session} keeps launching in the background.", title="Session")

        self.app.push_screen(ConfirmDialog(
            "Keep the VM or destroy it?",
            f"{self.session} is still launching. Keep it (the launch carries on in the background) "
            "or destroy the VM now?", yes="Destroy", no="Keep"), answered)

    def action_retry(self) -> None:
        self.retry()

    @work(exclusive=True, exit_on_error=False, group="provision-retry", description="Retry the launch")
    async def retry(self) -> None:
        from ...ops.views import Views

        record = await Views(self.context).session(self.session) if self.owned else None
        if record is None:
            self.notify("This launch never got as far as being recorded; start it again from the wizard.",
                        severity="warning")
            return
        self.failed = None
        self.query_one("#failure").display = False
        self.remove_class("-failed")
        self.refresh_bindings()
        self.write(self.query_one("#log", RichLog), f"Retrying from stage {record.stage or 'record'}…",
                   "bold")
        self.run_launch(record)

    def action_destroy(self) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self.destroy_vm()

        self.app.push_screen(ConfirmDialog("Destroy the VM?", f"Destroy the VM of {self.session}? "
                                           "It stops costing money; nothing on it is kept.",
                                           yes="Destroy", no="Keep"), answered)

    def destroy_vm(self) -> None:
        """Asked and answered here: the app's one destroy flow deletes the VM and closes this screen.
        Before the session was recorded nothing was rented: the launch is only stopped."""
        if self.owned:
            self.write(self.query_one("#log", RichLog), "Destroying the VM…", "bold")
            self.post_message(DestroyRequested(self.session, ask=False, leave=self))
            return
        live = self.live.get(self.session) if self.live is not None else None
        if live is not None and live.task is not None and not live.task.done():
            live.task.cancel()
        self.notify("The launch stopped before any VM was rented.", title="Session")
        if self.is_current:
            self.app.pop_screen()

    def action_keep(self) -> None:
        self.app.pop_screen()
        self.app.notify(self.ssh_hint(), title=f"{self.session} kept", timeout=30)

    def palette_commands(self) -> Iterable[PaletteCommand]:
        yield from key_commands(self, "session", {"leave": "keep or destroy", "retry": "retry launch",
                                                  "keep": "keep for inspection"})

    def ssh_hint(self) -> str:
        """How to reach the kept VM by hand: its ssh_config entry carries the key and the pinned host key."""
        from ...ops.session_files import ssh_command

        command = ssh_command(self.context.paths, self.session)
        if command is None:
            return "The VM was not reachable yet; destroy it from the home screen when done."
        return f"{command}\nThat entry holds the VM's key and pinned host key; destroy the VM from home when done."
