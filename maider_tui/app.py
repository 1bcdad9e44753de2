"""The Textual App: global bindings, the command palette, start-up messages, the home screen."""

from __future__ import annotations

import asyncio
import gc
import logging
from pathlib import PurePath
from typing import TYPE_CHECKING, Iterable

from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.notifications import Notification, SeverityLevel
from textual.worker import Worker, WorkerState

from . import __version__
from .context import AppContext
from .paths import display_path, styles_dir
from .ui.commands import MaiderCommands, PaletteCommand
from .ui.screens.home import HomeScreen
from .ui.database_health import DatabaseHealth
from .ui.session_flows import SessionFlows
from .ui.toast_keeper import ToastKeeper

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from .ops.launch_plan import LaunchPlan
    from .ops.live import LiveSessions
    from .ui import messages as m

log = logging.getLogger(__name__)

STYLES = styles_dir()
# app.tcss (shared classes) and the home screen's file; every other screen brings its own file
# (its CSS_PATH), read the first time it opens, so start-up parses only what the first frame shows.
CSS_FILES: list[str | PurePath] = [STYLES / "app.tcss", STYLES / "home.tcss"]


_frozen = False


def freeze_start_up_objects() -> None:
    """Take what start-up made out of the garbage collector's reach, once per process.

    Modules, classes, the parsed CSS, the settings and the sessions screen live as long as the app;
    a full collection walked all of them (about 130,000 objects, 0.1 s) every minute or so while the
    dashboard drew, a good part of its CPU. Frozen (after one collection, so no garbage is kept),
    a full collection walks only what was made since.
    """
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()


class MaiderApp(App[None]):
    """maider-tui: sessions, dashboards, benchmarks; the data and the clock are injected."""

    TITLE = "maider-tui"
    SUB_TITLE = __version__
    CSS_PATH = CSS_FILES
    COMMANDS = App.COMMANDS | {MaiderCommands}
    BINDINGS = [
        Binding("f12", "save_screenshot", "Screenshot", show=False, id="app.screenshot",
                tooltip="Save an SVG of the screen in the current directory"),
    ]

    def __init__(self, context: AppContext) -> None:
        super().__init__()
        self.context = context
        self._live: LiveSessions | None = None
        self._live_made = False
        self.flows = SessionFlows(self)  # destroy, adopt, clean up, resume, quit
        self.database = DatabaseHealth(self)  # the store's lock and a broken file, said on screen
        self.toasts = ToastKeeper(self)  # a session's toasts go when it ends

    @property
    def live(self) -> LiveSessions | None:
        """The app-level LiveSessions (ops.live), made on first use: not before the first frame."""
        if not self._live_made:
            self._live, self._live_made = self._make_live(), True
            if self._live is not None:
                self._live.subscribe(self._on_live_event)
        return self._live

    @live.setter
    def live(self, value: LiveSessions | None) -> None:
        self._live, self._live_made = value, True

    def _make_live(self) -> LiveSessions | None:
        """The app-level live sessions (None while the database cannot be used: nothing to record to)."""
        if self.context.store is None:
            return None
        from .ops.live import LiveSessions
        from .ops.limits import ReadinessLimits

        limits = ReadinessLimits.from_settings(self.context.settings.settings.readiness)
        if self.context.cloud_speed != 1.0:
            limits = limits.scaled(self.context.cloud_speed)
        from .ops.notify import Notifier

        settings = self.context.settings.settings

        def in_app(title: str, message: str) -> None:
            self.notify(message, title=title, severity="warning", timeout=20)

        return LiveSessions(store=self.context.store, paths=self.context.paths, settings=settings,
                            clock=self.context.clock, provider=self.context.get_provider,
                            hf_token=self.context.hf_token, limits=limits,
                            notify=Notifier(settings.notifications, in_app=in_app))

    def get_default_screen(self) -> HomeScreen:
        # The sessions screen is the bottom of the stack: no blank screen is drawn before it.
        return HomeScreen(self.context)

    def on_mount(self) -> None:
        # The sessions screen draws at once (its rows follow from a worker's read); settings, the keyring
        # and the account check (the files, keyring backends, the cloud client) wait until it is on screen.
        self._first_frame = asyncio.Event()
        self.call_after_refresh(self._first_frame.set)
        self._start_up()

    @work(exit_on_error=False, group="start-up", description="Start up")
    async def _start_up(self) -> None:
        await self._first_frame.wait()
        await asyncio.to_thread(self.context.load_now)  # the files, the keyring: off the UI loop
        keymap = self.context.settings.settings.keymap
        if keymap:
            self.set_keymap(keymap)
        for problem in self.context.problems:
            self.notify(problem, title="Settings", severity="warning", timeout=20)
        for problem in await asyncio.to_thread(self.context.profile_problems):
            self.notify(f"Model profile skipped: {problem}", title="Model profiles", severity="warning", timeout=20)
        if self.context.store_error is not None:
            self.database.offer_recovery()
        self.database.watch_lock()
        self.live  # noqa: B018 - made now, so session events reach the sessions table from the start
        freeze_start_up_objects()
        await self._check_account()

    def _on_live_event(self, event) -> None:
        """Session changes the sessions table shows (state, idle time left) redraw it at once; a
        destroyed session's toasts go (its receipt is raised after)."""
        from .ops.events import DestroyedEvent, FailedEvent, ReadyEvent, WatchdogEvent

        if isinstance(event, DestroyedEvent):
            self.toasts.dismiss_about(event.session)
        if isinstance(event, (WatchdogEvent, DestroyedEvent, ReadyEvent, FailedEvent)):
            self.refresh_home()

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Textual's notify, kept by `toasts` so a session's toasts can be taken down when it ends."""
        timeout = self.NOTIFICATION_TIMEOUT if timeout is None else timeout
        self.toasts.raise_toast(Notification(message, title, severity, timeout, markup=markup))

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        """Any worker that dies of an unexpected error says so on screen (and in the log)."""
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        log.error("%s failed", event.worker.description or event.worker.name, exc_info=error)
        what = event.worker.description or event.worker.name or "A background task"
        self.notify(f"{what} failed: {error}", title="Error", severity="error", timeout=30)

    def home(self) -> HomeScreen | None:
        """The sessions screen (the bottom of the stack), if it is there."""
        for screen in self.screen_stack:
            if isinstance(screen, HomeScreen):
                return screen
        return None

    def refresh_home(self) -> None:
        home = self.home()
        if home is not None:
            home.refresh_sessions()

    @work(exclusive=True, exit_on_error=False, group="account", description="Check the Linode account")
    async def check_account(self) -> None:
        """Check the account again (after a token was entered)."""
        await self._check_account()

    async def _check_account(self) -> None:
        """Find a token, check it with the API and count what the account can rent."""
        # The keyring may talk to a desktop service (D-Bus), and op:// runs a program: not on the UI loop.
        present = self.context.provider is not None or await asyncio.to_thread(
            self.context.secrets.has, "linode_token")
        home = self.home()
        if home is not None:
            home.set_has_token(present)
        if not present:
            return
        from .cloud.errors import ProviderError  # the cloud client: not before there is a token

        try:
            provider = await asyncio.to_thread(self.context.get_provider)
            if provider is None:
                return
            account = await provider.whoami()
            types = await provider.gpu_types()
            regions = await provider.regions()
        except ProviderError as exc:
            log.warning("account check failed: %s", exc)
            self.notify(str(exc), title="Linode", severity="error", timeout=30)
            if home is not None:
                home.set_account_line(f"Linode: {exc}")
            return
        where = {"api": "from the API", "cache": "cached", "offline": "offline data"}[types.source]
        line = (f"Account {account.username}: {len(types.items)} GPU plans in "
                f"{len(regions.items)} GPU regions ({where}).")
        if types.message:
            line += f" {types.message}"
        if home is not None:
            home.set_account_line(line)
        self.flows.recover()

    def on_store_lock(self, message: m.StoreLock) -> None:
        self.database.lock_changed(message.locked)

    def database_reopened(self) -> None:
        """A new database was opened: the live sessions are made again on it, the list redrawn."""
        self._live_made = False
        screen = self.screen
        if isinstance(screen, HomeScreen):
            screen.refresh_sessions()

    # Requests the screens post (ui.messages), and the navigation they lead to. Screens are imported
    # when first used, so start-up stays fast.
    def action_new_session(self) -> None:
        """Open the launch wizard (it asks for a token first when there is none)."""
        from .ui.screens.wizard import WizardScreen

        self.push_screen(WizardScreen(self.context))

    def start_launch(self, plan: LaunchPlan) -> None:
        """Show the provisioning screen for `plan` and start it."""
        from .ui.screens.provisioning import ProvisioningScreen

        self.push_screen(ProvisioningScreen(self.context, self.live, plan))

    async def open_dashboard(self, name: str) -> None:
        """Show the dashboard of session `name`, on top of the sessions screen (its record read first,
        off the UI loop, so the panels open with it)."""
        from .ops.views import Views
        from .ui.screens.dashboard import DashboardScreen

        record = await Views(self.context).session(name)
        while len(self.screen_stack) > 1 and not isinstance(self.screen, HomeScreen):
            self.pop_screen()
        self.push_screen(DashboardScreen(self.context, self.live, name, record=record))

    def open_benchmarks(self) -> None:
        """Show the comparison table of every benchmark run."""
        from .ui.screens.benchmarks import BenchmarksScreen

        self.push_screen(BenchmarksScreen(self.context))

    def open_recommend(self) -> None:
        """Show the recommend form (task, budget, size -> the top 3)."""
        from .ui.screens.recommend import RecommendScreen

        self.push_screen(RecommendScreen(self.context))

    def run_benchmark_on(self, name: str, **options: Any) -> None:
        """Open the run-benchmark dialog for live session `name`; `options` go to BenchRunScreen."""
        from .ui.screens.bench_run import BenchRunScreen

        live = self.live.get(name) if self.live is not None else None
        if live is None or live.handle is None:
            self.notify(f"{name} is not connected: open its dashboard and reconnect (r) first.",
                        title="Benchmark", severity="warning")
            return
        self.push_screen(BenchRunScreen(self.context, live, **options))

    def open_validation(self, name: str, *, full: bool = False,
                        run_options: Mapping[str, Any] | None = None) -> None:
        """Show the validation screen of session `name` and start a quick check (or, with `full`, all
        of it). `run_options` ({"quick": {...}, "full": {...}}) pass keyword arguments to the ops, e.g.
        a `duration_scale` or fewer `max_tokens` in tests."""
        from .ui.screens.validation import ValidationScreen

        live = self.live.get(name) if self.live is not None else None
        if live is None or live.handle is None:
            self.notify(f"{name} is not connected: open its dashboard and reconnect first.", severity="warning")
            return
        self.push_screen(ValidationScreen(self.context, self.live, name, full=full, run_options=run_options))

    def on_launch_requested(self, message: m.LaunchRequested) -> None:
        self.start_launch(message.plan)

    def on_dashboard_requested(self, message: m.DashboardRequested) -> None:
        self.run_worker(self.open_dashboard(message.name), exclusive=True, group="open-dashboard",
                        exit_on_error=False, description="Open the dashboard")

    def on_resume_requested(self, message: m.ResumeRequested) -> None:
        self.flows.request_resume(message.record)

    def on_destroy_requested(self, message: m.DestroyRequested) -> None:
        self.flows.request_destroy(message.name, ask=message.ask, leave=message.leave)

    def on_adopt_requested(self, message: m.AdoptRequested) -> None:
        self.flows.adopt(message.orphan)

    def on_clean_up_requested(self, message: m.CleanUpRequested) -> None:
        self.flows.recover(interactive=True)

    def on_account_check_requested(self, message: m.AccountCheckRequested) -> None:
        self.check_account()

    def on_benchmarks_requested(self, message: m.BenchmarksRequested) -> None:
        self.open_benchmarks()

    def on_recommend_requested(self, message: m.RecommendRequested) -> None:
        self.open_recommend()

    def on_benchmark_run_requested(self, message: m.BenchmarkRunRequested) -> None:
        self.run_benchmark_on(message.name, **message.options)

    def on_validation_requested(self, message: m.ValidationRequested) -> None:
        self.open_validation(message.name, full=message.full, run_options=message.run_options)

    def on_benchmarks_changed(self, message: m.BenchmarksChanged) -> None:
        from .ui.screens.benchmarks import BenchmarksScreen

        for screen in self.screen_stack:
            if isinstance(screen, BenchmarksScreen):
                screen.refresh_data()

    async def action_quit(self) -> None:
        self.flows.quit()

    @work(exit_on_error=False, group="screenshot", description="Save a screenshot")
    async def action_save_screenshot(self) -> None:
        """The screen as SVG in the exports folder; drawn here, written by ops from a thread."""
        from datetime import datetime

        from .ops.exports import write_text

        svg = self.export_screenshot()
        stamp = datetime.fromtimestamp(self.context.clock.now()).strftime("%Y-%m-%dT%H_%M_%S")
        folder = self.context.exports_dir()
        try:
            path = await asyncio.to_thread(write_text, folder, f"maider-tui_{stamp}.svg", svg)
        except OSError as exc:
            self.notify(f"The screenshot was not saved: {folder} cannot be written ({exc.strerror or exc}). "
                        "Set files.exports_dir to a folder you can write to.", title="Screenshot",
                        severity="error")
            return
        self.notify(f"Saved the screen to {path}.", title="Screenshot")

    def get_system_commands(self, screen):
        # Ours carry namespaced titles ("app: quit", "view: save screenshot"): drop Textual's twins.
        for command in super().get_system_commands(screen):
            if command.title not in {"Quit", "Screenshot"}:
                yield command

    def palette_commands(self) -> Iterable[PaletteCommand]:
        # Everywhere; a screen's own command with the same title or action comes first.
        yield PaletteCommand("session: new", "Launch a new session: capability, region, GPU type, model",
                             self.action_new_session, action="app.new_session")
        yield PaletteCommand("bench: compare runs", "The benchmark table: tokens/s, TTFT, cost per 1K tokens",
                             self.open_benchmarks)
        yield PaletteCommand("bench: recommend a GPU and model", "Task, budget and size give the top three",
                             self.open_recommend)
        yield PaletteCommand("view: save screenshot", "Save an SVG of the screen", self.action_save_screenshot)
        yield PaletteCommand(
            "help: where are my files",
            "Show the config file, database, log and exports paths",
            self.action_show_paths,
        )
        yield PaletteCommand("app: quit", "Quit maider-tui (asks first when VMs run)", self.action_quit,
                             action="app.quit")

    def action_show_paths(self) -> None:
        p = self.context.paths
        self.notify(
            f"config {display_path(self.context.settings.config_path)}\ndatabase {display_path(p.database)}\n"
            f"log {display_path(p.log_file)}\nexports {display_path(self.context.exports_dir())}",
            title="Files",
            timeout=15,
        )

    async def on_unmount(self) -> None:
        if self.live is not None:
            await self.live.close_all()
        if self.context.store is not None:
            self.context.store.close()
