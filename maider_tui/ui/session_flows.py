"""The app's session flows: destroy (one flow, whichever screen asks), adopt, clean up, resume, quit.

MaiderApp owns one SessionFlows and hands it the requests screens post (DestroyRequested and the
like); the work runs in the app's workers through ops and reports on screen.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from typing import TYPE_CHECKING

from textual.worker import Worker

from .dialogs.confirm import ConfirmDialog
from .dialogs.quit import QuitDialog
from ..words import plural

if TYPE_CHECKING:
    from textual.screen import Screen

    from ..app import MaiderApp
    from ..context import AppContext
    from ..ops.live import LiveSessions
    from ..ops.recover import Orphan
    from ..ops.views import SessionRecord

log = logging.getLogger(__name__)


def destroy_question(record: SessionRecord, now: float) -> str:
    """What destroying `record`'s VM ends, and what it has cost: the text of every destroy dialog."""
    from ..ops.receipt import session_cost_so_far
    from .widgets.cost_panel import format_runtime

    started = record.created_at if record.created_at is not None else now
    return (f"Runtime {format_runtime(now - started)}, cost so far ${session_cost_so_far(record, now):.2f} "
            f"at ${record.hourly_usd:.2f}/h.\n\n"
            "The VM and its disk are deleted and the meter stops. This cannot be undone.")


class SessionFlows:
    """Destroy, adopt, clean up, resume and quit, for `app` (its context, its LiveSessions, its screens)."""

    def __init__(self, app: MaiderApp) -> None:
        self.app = app

    @property
    def context(self) -> AppContext:
        return self.app.context

    @property
    def live(self) -> LiveSessions | None:
        return self.app.live

    def _notify(self, message: str, **kwargs) -> None:
        self.app.notify(message, **kwargs)

    def _orphans(self) -> list[Orphan]:
        home = self.app.home()
        return list(home.orphans) if home is not None else []

    # destroy: every screen's d comes here
    def request_destroy(self, name: str, *, ask: bool = True, leave: Screen | None = None) -> None:
        """Destroy session `name` (or "orphan:<id>"); with `ask`, after a confirmation. `leave`: the
        screen to close once the VM is gone, if it is still the one shown."""
        if name.startswith("orphan:"):
            orphan = next((o for o in self._orphans() if f"orphan:{o.id}" == name), None)
            if orphan is not None:
                self._confirm_destroy_orphan(orphan)
            return
        self.app.run_worker(self._ask_destroy(name, ask, leave), group="destroy-ask", exit_on_error=False,
                            description="Destroy")

    async def _ask_destroy(self, name: str, ask: bool, leave: Screen | None) -> None:
        from ..ops.views import Views

        record = await Views(self.context).session(name)
        if record is None or record.ended:
            self._notify(f"{name} has no VM to destroy.")
            return
        if not ask:
            self.destroy([name], leave=leave)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.destroy([name], leave=leave)

        question = destroy_question(record, self.context.clock.now())
        self.app.push_screen(ConfirmDialog(f"Destroy {name}?", question, yes="Destroy", no="Cancel"), answered)

    def _confirm_destroy_orphan(self, orphan: Orphan) -> None:
        rate = f"${orphan.hourly_usd:.2f}/h" if orphan.hourly_usd is not None else "an unknown price"
        message = (f"VM {orphan.id} ({orphan.label}, {orphan.vm.type} in {orphan.vm.region}) costs {rate}."
                   f"\n\n{orphan.reason}")

        def answered(yes: bool | None) -> None:
            if yes:
                self.destroy([], [orphan])

        self.app.push_screen(ConfirmDialog("Destroy this orphan VM?", message, yes="Destroy", no="Cancel"),
                             answered)

    def destroy(self, names: list[str], orphans: list[Orphan] | None = None, *, then_quit: bool = False,
                leave: Screen | None = None) -> Worker:
        """Destroy the sessions `names` and the `orphans` in a worker; each says on screen how it went.
        With `then_quit`, the app exits once every one is gone (and stays open, saying why, if not);
        `leave` is closed once they are gone, if it is still the screen shown."""
        return self.app.run_worker(self._destroy(names, orphans or [], then_quit, leave), group="destroy",
                                   exit_on_error=False, description="Destroy")

    async def _destroy(self, names: list[str], orphans: list[Orphan], then_quit: bool,
                       leave: Screen | None = None) -> None:
        from ..cloud.errors import ProviderError
        from ..ops import cleanup

        failed = []
        live = self.live
        if live is None:
            self._notify("No database: cannot record the receipt, so nothing was destroyed.", severity="error")
            return
        for name in names:
            self._notify(f"Destroying {name}…", title="Destroy")

            def waiting(name: str = name) -> None:
                self._notify(f"Another maider-tui process is destroying {name}; waiting for it to finish.",
                             title="Destroy")

            try:
                receipt = await live.destroy(name, on_wait=waiting)
            except (ProviderError, RuntimeError, LookupError, ValueError) as exc:
                failed.append(f"{name} was not destroyed: {exc}. The VM may still be running; try again.")
                continue
            finally:
                self.app.refresh_home()
            self._notify(receipt.summary(), title=f"{name} destroyed", timeout=30)
        for orphan in orphans:
            try:
                await cleanup.destroy_orphan(live, orphan)
            except (ProviderError, RuntimeError, LookupError, ValueError) as exc:
                failed.append(f"VM {orphan.id} was not destroyed: {exc}")
                continue
            self.orphan_gone(orphan.id)
            self._notify(f"Orphan VM {orphan.id} destroyed.", title="Clean up")
        if failed and then_quit:
            self._notify("Not destroyed, so the app stays open:\n" + "\n".join(failed), severity="error", timeout=60)
        elif failed:
            self._notify("\n".join(failed), title="Destroy", severity="error", timeout=30)
        elif then_quit:
            self.app.exit()
        elif leave is not None and leave.is_current:
            self.app.pop_screen()

    def orphan_gone(self, vm_id: int) -> None:
        """An orphan adopted or destroyed (by the user or at its deadline): off the list."""
        home = self.app.home()
        if home is not None:
            home.set_orphans([o for o in home.orphans if o.id != vm_id])

    def request_resume(self, record: SessionRecord) -> None:
        """Carry on an interrupted or failed launch from its stage, on the provisioning screen."""
        from ..ops.launch_plan import LaunchPlan
        from .screens.provisioning import ProvisioningScreen

        where = f" from stage {record.stage}" if record.stage else ""

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            screen = ProvisioningScreen(self.context, self.live, LaunchPlan.from_record(record), autostart=False)
            self.app.push_screen(screen, wait_for_dismiss=False)
            screen.call_after_refresh(screen.run_launch, record)

        self.app.push_screen(ConfirmDialog(
            f"Resume {record.name}?",
            f"Its launch stopped{where} ({record.state}). Resume it? (To stop paying for it instead, "
            "press d on its row.)", yes="Resume", no="Cancel"), answered)

    # adopt and clean up
    def adopt(self, orphan: Orphan) -> Worker:
        return self.app.run_worker(self._adopt(orphan), group="recover", exit_on_error=False,
                                   description="Adopt an orphan VM")

    async def _adopt(self, orphan: Orphan) -> None:
        from ..ops import cleanup

        if self.live is None:
            return
        record = await cleanup.adopt(self.live, orphan)
        self.orphan_gone(orphan.id)
        self._notify(f"VM {orphan.id} is now session {record.name} ({record.state}).", title="Adopted")

    def recover(self, interactive: bool = False) -> Worker:
        """Reconcile the account's VMs with the sessions; with `interactive`, offer to destroy orphans."""
        return self.app.run_worker(self._recover(interactive), exclusive=True, group="recover",
                                   exit_on_error=False, description="Check VMs against sessions")

    async def _recover(self, interactive: bool) -> None:
        from ..cloud.errors import ProviderError
        from ..ops import cleanup

        if self.live is None:
            return
        try:
            # The demo's own simulated cloud starts empty with each run: what it lacks ended with the last.
            demo_ended = self.context.demo and not self.context.sim_url
            report = await cleanup.reconcile(self.live, on_orphan_destroyed=self.orphan_gone, demo_ended=demo_ended)
        except (ProviderError, RuntimeError) as exc:
            self._notify(f"Could not check the VMs: {exc}", title="Clean up", severity="error", timeout=30)
            return
        home = self.app.home()
        if home is not None:
            home.set_orphans(report.orphans)
        parts = []
        rate = sum(o.hourly_usd or 0 for o in report.orphans)
        if report.orphans:
            parts.append(f"{plural(len(report.orphans), 'orphan VM')} at ${rate:.2f}/h: select one, d destroys, a adopts")
        if report.gone:
            for name in report.gone:
                self.app.toasts.dismiss_about(name)
            if demo_ended:
                parts.append("The demo's simulated cloud lived inside the app and ended with it, so these "
                             f"sessions ended too: {', '.join(report.gone)}")
            else:
                parts.append(f"VM gone, session ended: {', '.join(report.gone)}")
        if report.resumable:
            parts.append("interrupted launches (enter resumes): "
                         + ", ".join(f"{r.name} (at {r.stage})" for r in report.resumable))
        if parts:
            self._notify(";\n".join(parts), title="Sessions and VMs", severity="warning", timeout=30)
        elif interactive:
            self._notify("Every VM belongs to a session; nothing to clean up.", title="Clean up")
        if interactive and report.orphans:
            def answered(yes: bool | None) -> None:
                if yes:
                    self.destroy([], report.orphans)

            self.app.push_screen(ConfirmDialog(
                "Destroy the orphan VMs?",
                "\n".join(f"VM {o.id} {o.label}: {o.vm.type} in {o.vm.region}" for o in report.orphans)
                + f"\n\nTogether ${rate:.2f}/h. Adopt one instead with a on its row.",
                yes="Destroy all", no="Keep"), answered)
        self.app.refresh_home()

    # quit
    async def running_sessions(self) -> list[tuple[str, float, str]]:
        """Every VM that bills, as (name, $/h, what becomes of it): sessions holding a VM (failed,
        interrupted and adopted ones cost money too), then the orphan VMs."""
        from ..ops.views import Views
        from .dialogs.quit import orphan_fate, session_fate

        views = Views(self.context)
        if not views.available:
            return []
        records = await views.sessions(include_ended=False)
        settings = self.context.settings.settings.watchdog
        live = self.live
        running = []
        for record in records:
            if record.instance_id is None:
                continue
            session = live.get(record.name) if live is not None else None
            running.append((record.name, record.hourly_usd,
                            session_fate(record, session.watchdog if session else None, settings)))
        watch = live.orphan_watch if live is not None else None
        for orphan in self._orphans():
            remaining = watch.remaining_s(orphan.id) if watch is not None else None
            fate = orphan_fate(remaining, settings, orphan.elsewhere)
            running.append((f"(orphan) {orphan.label}", orphan.hourly_usd or 0.0, fate))
        return running

    def _keep_note(self) -> str:
        """What "keep" does here, truthfully."""
        if self.context.demo and not self.context.sim_url:
            return ("The demo's simulated cloud ends with the app, and its VMs with it. Quit, destroy them "
                    "all first, or stay?")
        if not self.context.settings.settings.watchdog.enabled:
            return ("The watchdog is off in the settings: kept VMs run and bill until you destroy them. "
                    "Keep them, destroy them all, or stay?")
        return ("Keep them watched: a background `maider-tui watch` destroys each as shown unless it is "
                "used, resumed or adopted in the app. Or destroy them all, or stay?")

    def quit(self) -> None:
        """Quit at once when nothing bills; else ask: keep the VMs (watched), destroy them all, or stay."""
        self.app.run_worker(self._quit(), exclusive=True, group="quit", exit_on_error=False,
                            description="Quit")

    async def _quit(self) -> None:
        running = await self.running_sessions()
        if not running:
            self.app.exit()
            return
        # Another home's VM is listed, never destroyed from here: it may be a session in use there.
        orphans = [o for o in self._orphans() if not o.elsewhere]

        def answered(choice: str | None) -> None:
            if choice == "keep":
                self._start_background_watch()
                self.app.exit()
            elif choice == "destroy":
                names = [name for name, _, _ in running if not name.startswith("(orphan) ")]
                self.destroy(names, orphans, then_quit=True)

        self.app.toasts.clear()  # none may cover the dialog's buttons
        self.app.push_screen(QuitDialog(running, self._keep_note()), answered)

    def _start_background_watch(self) -> None:
        """`maider-tui watch` in its own process group, so it outlives this terminal session."""
        if self.context.demo and not self.context.sim_url:
            self._notify("The demo's simulated cloud ends with the app: nothing to watch.")
            return
        if not self.context.settings.settings.watchdog.enabled:
            return
        # Against `maider-tui sim` in another process (--sim-url) the cloud outlives the app: watch it.
        where = ["--sim-url", self.context.sim_url] if self.context.sim_url else []
        args = [sys.executable, "-m", "maider_tui", *where, "watch"]
        try:
            subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True, env=dict(os.environ))
            log.info("started the background watcher")
        except OSError as exc:
            log.error("could not start the background watcher: %s", exc)
