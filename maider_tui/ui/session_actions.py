"""App-level session actions the home screen and the dashboard share: destroy, adopt, clean up, quit.

A mixin of MaiderApp, so each action lives once; the work runs in workers and reports on screen.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys

from textual import work

from .dialogs.confirm import ConfirmDialog
from .dialogs.quit import QuitDialog

log = logging.getLogger(__name__)


class SessionActions:
    """Needs `self.context` (AppContext) and `self.live` (LiveSessions or None)."""

    def _refresh_home(self) -> None:
        home = self._home()
        if home is not None:
            home.refresh_sessions()

    # destroy
    def confirm_destroy(self, name: str) -> None:
        if name.startswith("orphan:"):
            home = self._home()
            orphan = next((o for o in (home.orphans if home else []) if f"orphan:{o.id}" == name), None)
            if orphan is not None:
                self._confirm_destroy_orphan(orphan)
            return
        store = self.context.store
        record = store.get_session(name) if store is not None else None
        if record is None or record.ended:
            self.notify(f"{name} has no VM to destroy.")
            return
        from ..ops.receipt import session_cost_so_far

        now = self.context.clock.now()
        hours = max(0.0, now - (record.created_at or now)) / 3600
        message = (f"{record.gpu_type} in {record.region}, running {hours:.1f} h, "
                   f"about ${session_cost_so_far(record, now):.2f} so far (${record.hourly_usd:.2f}/h).\n\n"
                   "The VM and everything on it are deleted.")

        def answered(yes: bool | None) -> None:
            if yes:
                self.destroy_session(name)

        self.push_screen(ConfirmDialog(f"Destroy {name}?", message, yes="Destroy", no="Cancel"), answered)

    @work(group="destroy", exit_on_error=False, description="Destroy a session")
    async def destroy_session(self, name: str) -> None:
        from ..cloud.errors import ProviderError

        if self.live is None:
            self.notify("No database: cannot record the receipt, so nothing was destroyed.", severity="error")
            return
        self.notify(f"Destroying {name}…", title="Destroy")
        try:
            receipt = await self.live.destroy(name, on_wait=lambda: self.notify(
                f"Another maider-tui process is destroying {name}; waiting for it to finish.", title="Destroy"))
        except (ProviderError, RuntimeError, LookupError) as exc:
            self.notify(f"{name} was not destroyed: {exc}", title="Destroy", severity="error", timeout=30)
            return
        finally:
            self._refresh_home()
        self.notify(receipt.summary(), title=f"{name} destroyed", timeout=30)

    def _confirm_destroy_orphan(self, orphan) -> None:
        rate = f"${orphan.hourly_usd:.2f}/h" if orphan.hourly_usd is not None else "an unknown price"
        message = f"VM {orphan.id} ({orphan.label}, {orphan.vm.type} in {orphan.vm.region}) costs {rate}.\n\n{orphan.reason}"

        def answered(yes: bool | None) -> None:
            if yes:
                self.destroy_orphans([orphan])

        self.push_screen(ConfirmDialog("Destroy this orphan VM?", message, yes="Destroy", no="Cancel"), answered)

    @work(group="destroy", exit_on_error=False, description="Destroy orphan VMs")
    async def destroy_orphans(self, orphans: list) -> None:
        from ..cloud.errors import ProviderError
        from ..ops.recover import destroy_orphan

        provider = await self.live.provider() if self.live is not None else None
        if provider is None:
            return
        for orphan in orphans:
            try:
                await destroy_orphan(orphan.id, provider=provider, store=self.context.store)
            except (ProviderError, ValueError) as exc:
                self.notify(f"VM {orphan.id} was not destroyed: {exc}", severity="error", timeout=30)
                continue
            self._orphan_gone(orphan.id)
            self.notify(f"Orphan VM {orphan.id} destroyed.", title="Clean up")

    def _orphan_gone(self, vm_id: int) -> None:
        """An orphan adopted or destroyed (by the user or at its deadline): off the list, no deadline."""
        if self.live is not None and self.live.orphan_watch is not None:
            self.live.orphan_watch.forget(vm_id)
        home = self._home()
        if home is not None:
            home.set_orphans([o for o in home.orphans if o.id != vm_id])

    def resume_launch(self, record) -> None:
        """Carry on an interrupted or failed launch from its stage, on the provisioning screen."""
        from ..ops.launch_plan import LaunchPlan
        from .screens.provisioning import ProvisioningScreen

        where = f" from stage {record.stage}" if record.stage else ""

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            screen = ProvisioningScreen(self.context, self.live, LaunchPlan.from_record(record), autostart=False)
            self.push_screen(screen, wait_for_dismiss=False)
            screen.call_after_refresh(screen.run_launch, record)

        self.push_screen(ConfirmDialog(
            f"Resume {record.name}?",
            f"Its launch stopped{where} ({record.state}). Resume it? (To stop paying for it instead, "
            "press d on its row.)", yes="Resume", no="Cancel"), answered)

    # adopt and clean up
    @work(group="recover", exit_on_error=False, description="Adopt an orphan VM")
    async def adopt_orphan(self, orphan) -> None:
        from ..ops.recover import adopt_orphan

        record = await adopt_orphan(orphan.vm, store=self.context.store, clock=self.context.clock)
        self._orphan_gone(orphan.id)
        self.live.watch_all()  # adopted: a session now, kept until resumed or destroyed
        self.notify(f"VM {orphan.id} is now session {record.name} ({record.state}).", title="Adopted")

    @work(exclusive=True, group="recover", exit_on_error=False, description="Check VMs against sessions")
    async def run_recovery(self, interactive: bool = False) -> None:
        """Reconcile the account's VMs with the sessions; with `interactive`, offer to destroy orphans."""
        from ..cloud.errors import ProviderError
        from ..ops.recover import recover

        if self.live is None or self.context.store is None:
            return
        try:
            provider = await self.live.provider()
            report = await recover(provider=provider, store=self.context.store, clock=self.context.clock,
                                   paths=self.context.paths)
        except (ProviderError, RuntimeError) as exc:
            self.notify(f"Could not check the VMs: {exc}", title="Clean up", severity="error", timeout=30)
            return
        home = self._home()
        if home is not None:
            home.set_orphans(report.orphans)
        # Every VM that bills is watched from the moment the app knows of it, dashboard open or not:
        # serving ones by use, kept ones (interrupted, failed, unreachable) and orphans by a deadline.
        self.live.watch_all()
        self.live.watching.on_orphan_destroyed = self._orphan_gone
        self.live.watch_orphans(report.orphans)
        parts = []
        if report.orphans:
            rate = sum(o.hourly_usd or 0 for o in report.orphans)
            parts.append(f"{len(report.orphans)} orphan VM(s) at ${rate:.2f}/h: select one, d destroys, a adopts")
        if report.gone:
            parts.append(f"VM gone, session ended: {', '.join(report.gone)}")
        if report.resumable:
            parts.append("interrupted launches (enter resumes): "
                         + ", ".join(f"{r.name} (at {r.stage})" for r in report.resumable))
        if parts:
            self.notify(";\n".join(parts), title="Sessions and VMs", severity="warning", timeout=30)
        elif interactive:
            self.notify("Every VM belongs to a session; nothing to clean up.", title="Clean up")
        if interactive and report.orphans:
            rate = sum(o.hourly_usd or 0 for o in report.orphans)

            def answered(yes: bool | None) -> None:
                if yes:
                    self.destroy_orphans(report.orphans)

            self.push_screen(ConfirmDialog(
                "Destroy the orphan VMs?",
                "\n".join(f"VM {o.id} {o.label}: {o.vm.type} in {o.vm.region}" for o in report.orphans)
                + f"\n\nTogether ${rate:.2f}/h. Adopt one instead with a on its row.",
                yes="Destroy all", no="Keep"), answered)
        self._refresh_home()

    # quit
    def _running_sessions(self) -> list[tuple[str, float, str]]:
        """Every VM that bills, as (name, $/h, what becomes of it): sessions holding a VM (failed,
        interrupted and adopted ones cost money too), then the orphan VMs."""
        from .dialogs.quit import orphan_fate, session_fate

        store = self.context.store
        if store is None:
            return []
        settings = self.context.settings.settings.watchdog
        running = []
        for record in store.list_sessions(include_ended=False):
            if record.instance_id is None:
                continue
            live = self.live.get(record.name) if self.live is not None else None
            running.append((record.name, record.hourly_usd,
                            session_fate(record, live.watchdog if live else None, settings)))
        home = self._home()
        watch = self.live.orphan_watch if self.live is not None else None
        for orphan in home.orphans if home is not None else []:
            remaining = watch.remaining_s(orphan.id) if watch is not None else None
            running.append((f"(orphan) {orphan.label}", orphan.hourly_usd or 0.0,
                            orphan_fate(remaining, settings, orphan.elsewhere)))
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

    async def action_quit(self) -> None:
        running = self._running_sessions()
        if not running:
            self.exit()
            return
        home = self._home()
        # Another home's VM is listed, never destroyed from here: it may be a session in use there.
        orphans = [o for o in home.orphans if not o.elsewhere] if home is not None else []

        def answered(choice: str | None) -> None:
            if choice == "keep":
                self._start_background_watch()
                self.exit()
            elif choice == "destroy":
                names = [name for name, _, _ in running if not name.startswith("(orphan) ")]
                self.destroy_all_and_quit(names, orphans)

        self.push_screen(QuitDialog(running, self._keep_note()), answered)

    @work(group="destroy", exit_on_error=False, description="Destroy every live VM")
    async def destroy_all_and_quit(self, names: list[str], orphans: list | None = None) -> None:
        from ..cloud.errors import ProviderError
        from ..ops.recover import destroy_orphan

        failed = []
        for name in names:
            try:
                await self.live.destroy(name)
            except (ProviderError, RuntimeError, LookupError) as exc:
                failed.append(f"{name}: {exc}")
        for orphan in orphans or []:
            try:
                await destroy_orphan(orphan.id, provider=await self.live.provider(), store=self.context.store)
                self._orphan_gone(orphan.id)
            except (ProviderError, RuntimeError, ValueError) as exc:
                failed.append(f"VM {orphan.id}: {exc}")
        if failed:
            self.notify("Not destroyed, so the app stays open:\n" + "\n".join(failed), severity="error", timeout=60)
            self._refresh_home()
            return
        self.exit()

    def _start_background_watch(self) -> None:
        """`maider-tui watch` in its own process group, so it outlives this terminal session."""
        if self.context.demo and not self.context.sim_url:
            self.notify("The demo's simulated cloud ends with the app: nothing to watch.")
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
