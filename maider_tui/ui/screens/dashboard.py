"""The dashboard of one live session: GPUs, cost, watchdog, vLLM, endpoint and log, with its keys.

Data flows one way: the session's feed (dashboard_feed.SessionFeed: attach, nvidia-smi stream,
/metrics poll) posts messages; each message becomes one frozen `DashboardState` assigned to `state`
inside `app.batch_update()`; `watch_state` patches the panels in place. What the keys change about
vLLM (heal, restart, switch) is dashboard_serving.ServingChanges; what the app does (destroy, a
benchmark, validation) is asked for with a request message.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Iterable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer

from ...paths import styles_dir
from ..commands import PaletteCommand, key_commands
from ...ops.events import LogEvent
from ...ops.telemetry import VllmReading
from ...remote.gpu import GpuSnapshot
from ..messages import (Attached, BenchmarkRunRequested, DestroyRequested, HealOffer, MetricsRead, SessionEvent,
                        Telemetry, TelemetryStatus, ValidationRequested, VllmLog)
from ..widgets.cost_panel import CostPanel, CostView, format_countdown
from ..widgets.endpoint_panel import EndpointPanel, EndpointView
from ..widgets.gpu_bars import GpuBars
from ..widgets.log_pane import LogPane, event_text
from ..widgets.top_bar import TopBar
from ..widgets.vllm_panel import VllmPanel
from ..widgets.watchdog_panel import WatchdogPanel, WatchdogView
from .dashboard_feed import SessionFeed
from .dashboard_serving import ServingChanges
from .dashboard_tools import ClientTools
from .dashboard_view import DashboardState, FramePacer, gpus_title, top_bar_title

if TYPE_CHECKING:
    from ...context import AppContext
    from ...ops.events import OpsEvent
    from ...ops.launch_plan import SessionHandle
    from ...ops.live import LiveSessions
    from ...ops.watchdog import Watchdog
    from ...ops.views import SessionRecord

# /metrics + /health scrape period: two requests through the tunnel each time, so not too often.
# Re-armed only after the previous scrape returned: scrapes never overlap.
METRICS_S = 5.0
NARROW = 100  # below this many columns the panels stack
NEEDS_CONNECTION = frozenset({"extend", "switch_model", "heal", "aider", "shell", "copy_command",
                              "benchmark", "validate"})
PALETTE_TITLES = {"switch_model": "switch model", "benchmark": "run the benchmark", "validate": "validate GPUs",
                  "heal": "heal vLLM", "aider": "run aider", "shell": "open an SSH shell", "back": "back to sessions",
                  "copy_command": "copy the aider command", "toggle_log": "switch log (events / vLLM)"}


class DashboardScreen(Screen[None]):
    """One session, live. `stream=False` shows only what is posted to it (snapshot tests)."""

    CSS_PATH = styles_dir() / "dashboard.tcss"

    BINDING_GROUP_TITLE = "Session"
    BINDINGS = [
        Binding("e", "extend", "Extend", id="session.extend", tooltip="Reset the watchdog's idle timer"),
        Binding("m", "switch_model", "Model", id="session.model",
                tooltip="Switch to another model that fits these GPUs"),
        Binding("d", "destroy", "Destroy", id="session.destroy", tooltip="Destroy the VM and stop the meter"),
        Binding("b", "benchmark", "Bench", id="session.benchmark",
                tooltip="Benchmark this session: the 12 prompts, tokens/s, TTFT, cost per 1K tokens"),
        Binding("v", "validate", "Validate", id="session.validate",
                tooltip="Check the GPUs: count, memory, tensor parallelism, one generation (f: full)"),
        Binding("h", "heal", "Heal", id="session.heal",
                tooltip="Read vLLM's log, diagnose, and offer the remedy"),
        Binding("a", "aider", "Aider", id="session.aider", tooltip="Run aider here against this session"),
        Binding("s", "shell", "Shell", id="session.shell", tooltip="Open an SSH shell on the VM"),
        # Not in the footer, which holds eight keys at 80 columns: the keys panel lists them.
        Binding("c", "copy_command", "Copy", id="session.copy", tooltip="Copy the aider command", show=False),
        Binding("l", "toggle_log", "Logs", id="session.logs", show=False,
                tooltip="Switch between session events and the vLLM container log"),
        Binding("r", "reconnect", "Reconnect", id="session.reconnect", show=False,
                tooltip="Close and reopen the SSH connection and tunnel"),
        Binding("escape", "back", "Back", id="session.back", tooltip="Back to the sessions list", show=False),
    ]

    # repaint=False: watch_state patches the panels; repainting the whole screen each tick would cost
    # a full redraw of every widget once or twice a second.
    state: reactive[DashboardState] = reactive(DashboardState(0.0), init=False, repaint=False)

    def __init__(self, context: AppContext, live: LiveSessions | None, name: str, *, stream: bool = True,
                 record: SessionRecord | None = None) -> None:
        """`record`: the session as read just before (else its live handle's, until the first read)."""
        super().__init__()
        self.context, self.live, self.session = context, live, name
        handle = live.get(name) if live is not None else None
        if record is None and handle is not None and handle.handle is not None:
            record = handle.handle.record
        self._record = record
        self.pacer = FramePacer(context.clock, stream=stream)  # one frame per GPU sample
        self.problem: str | None = None
        self.feed = SessionFeed(self)  # the connection, telemetry, metrics
        self.serving = ServingChanges(self)  # heal, restart, switch model
        self.tools = ClientTools(self)  # aider, a shell, the aider command
        self._unsubscribe: list[Callable[[], None]] = []
        self.set_reactive(DashboardScreen.state, DashboardState(context.clock.now(), model=self.model()))

    # --- what the screen knows -------------------------------------------------------------------

    @property
    def stream(self) -> bool:
        """Live data is streamed (False: only what is posted to the screen is shown)."""
        return self.pacer.stream

    @stream.setter
    def stream(self, value: bool) -> None:
        self.pacer.stream = value

    @property
    def record(self) -> "SessionRecord | None":
        """The session as last read (in a worker, every second, again only when the database changed)."""
        return self._record

    def record_read(self, record: SessionRecord | None) -> None:
        """The feed read the session again and it changed: the panels show it."""
        self._record = record
        if self._panels_ready:
            self.watch_state(self.state, self.state)

    @property
    def handle(self) -> SessionHandle | None:
        live = self.live.get(self.session) if self.live is not None else None
        return live.handle if live is not None else None

    @property
    def watchdog(self) -> Watchdog | None:
        live = self.live.get(self.session) if self.live is not None else None
        return live.watchdog if live is not None else None

    @property
    def connected(self) -> bool:
        return self.handle is not None

    def model(self) -> str:
        """The model served now (the connection's config), else the one recorded."""
        handle = self.handle
        if handle is not None:
            return handle.config.model
        record = self.record
        return record.model if record is not None else ""

    # --- layout ----------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        record = self.record
        # Kept: watch_state patches them every second, and a DOM query each time would cost more.
        self._top_bar = TopBar(self.context.clock)
        self._gpus = GpuBars(record.gpu_count if record else 1)
        self._vllm = VllmPanel(id="vllm", classes="panel")
        self._cost = CostPanel(id="cost", classes="panel")
        self._watchdog = WatchdogPanel(id="watchdog", classes="panel")
        self._endpoint = EndpointPanel(id="endpoint", classes="panel")
        yield self._top_bar
        with VerticalScroll(id="dash-body"):
            with Horizontal(id="dash-top"):
                with Vertical(id="dash-left"):
                    with Vertical(id="gpus-box", classes="panel"):
                        yield self._gpus
                    yield self._vllm
                with Vertical(id="dash-right"):
                    yield self._cost
                    yield self._watchdog
                    yield self._endpoint
            yield LogPane(id="log", classes="panel")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        for selector, title in (("#gpus-box", gpus_title(self.record)), ("#vllm", "vLLM"), ("#cost", "Cost"),
                                ("#watchdog", "Watchdog"), ("#endpoint", "Endpoint"), ("#log", "Log")):
            self.query_one(selector).border_title = title
        self.feed.read_history()
        self._panels_ready = True  # `is_mounted` turns true only after this handler: draw the panels now
        self.watch_state(self.state, self.state)
        self.set_interval(1.0, self._tick)
        if self.live is not None:
            self._unsubscribe.append(self.live.subscribe(self._on_ops_event))
        if not self.stream:
            return
        if self.connected:
            self._start_live()
        elif self.record is not None and not self.record.ended and self.live is not None:
            self.feed.attach()
        else:
            self._say_problem("This session has no VM running: nothing to show live.")

    def on_unmount(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        self.feed.close()

    def on_resize(self) -> None:
        self.set_class(self.size.width < NARROW, "-narrow")

    # --- keys ------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """None greys a key out: no connected VM to act on (or no watchdog to extend)."""
        if action in NEEDS_CONNECTION and not self.connected:
            return None
        if action == "extend" and self.watchdog is None:
            return None
        if action in ("destroy", "reconnect"):
            record = self.record  # no connection needed: an unreachable VM still costs money
            return None if record is None or record.ended else True
        return True

    def say(self, text: str) -> None:
        """A line in the log pane, through the same path as the ops events."""
        self.post_message(SessionEvent(LogEvent(self.session, text)))

    def vllm_down(self) -> bool:
        """The last scrape failed: /metrics unreachable or /health not answering 200."""
        reading = self.state.vllm
        return reading is not None and reading.metrics is None

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_benchmark(self) -> None:
        self.post_message(BenchmarkRunRequested(self.session))

    def action_validate(self) -> None:
        self.post_message(ValidationRequested(self.session))

    def action_destroy(self) -> None:
        # The app's one destroy flow asks and destroys; this screen closes once the VM is gone.
        self.post_message(DestroyRequested(self.session, leave=self))

    def action_reconnect(self) -> None:
        self.feed.attach(reconnect=True)

    def action_heal(self) -> None:
        self.serving.heal()

    def on_heal_offer(self, message: HealOffer) -> None:
        self.serving.ask_heal(message.proposal)

    def action_switch_model(self) -> None:
        self.serving.pick_model()

    def action_extend(self) -> None:
        watchdog = self.watchdog
        if watchdog is None:
            return
        watchdog.extend()
        self.say(f"watchdog extended: destroys in {format_countdown(watchdog.remaining_s)}")
        self._set()

    def action_copy_command(self) -> None:
        self.tools.copy_command()

    def action_aider(self) -> None:
        self.tools.aider()

    def action_shell(self) -> None:
        self.tools.shell()

    def action_toggle_log(self) -> None:
        if self.query_one(LogPane).toggle():
            self.feed.read_vllm_log()

    def on_vllm_log(self, message: VllmLog) -> None:
        self.query_one(LogPane).set_vllm_log(message.text)

    # --- live data: the feed's messages -----------------------------------------------------------

    def on_attached(self, message: Attached) -> None:
        from ...remote.ssh import HOST_KEY_CHANGED

        if message.error is not None and HOST_KEY_CHANGED in message.error:
            # Retrying cannot help, and must not be offered as if it could: say what the risk is.
            self._say_problem(f"Cannot connect: {message.error}. Do not reconnect until you know why; "
                              "d destroys the VM.")
        elif message.error is not None:
            self._say_problem(f"Cannot connect: {message.error}. Press r to try again, or d to destroy.")
        else:
            self.problem = None
            self._start_live()
        self.refresh_bindings()

    def _start_live(self) -> None:
        """Start (or restart after a reconnect) the telemetry stream and the metrics poll."""
        tunnel = self.feed.start()
        if tunnel is not None:
            self._set(tunnel=tunnel, model=self.model())
        self.refresh_bindings()

    @property
    def webui_url(self) -> str | None:
        return self.feed.webui_url

    _panels_ready = False  # set in on_mount: before it, the panels are not there to patch
    _tokens_at: float | None = None  # when the vLLM reading shown was first drawn

    def on_telemetry(self, message: Telemetry) -> None:
        self.show_telemetry(message.snapshot)

    def on_telemetry_status(self, message: TelemetryStatus) -> None:
        if message.status != self.state.tunnel:  # the same status again changes nothing on screen
            self._set(tunnel=message.status)

    def on_metrics_read(self, message: MetricsRead) -> None:
        self.show_metrics(message.reading)
        if self.stream and self.connected and self.is_attached:
            self.set_timer(METRICS_S, self.feed.poll_metrics)  # re-armed only now: scrapes never overlap

    def on_session_event(self, message: SessionEvent) -> None:
        self.query_one(LogPane).add(event_text(message.event), self.context.clock.now())
        self._set(model=self.model())

    def _on_ops_event(self, event: OpsEvent) -> None:
        if getattr(event, "session", None) == self.session:
            self.post_message(SessionEvent(event))

    def show_telemetry(self, snapshot: GpuSnapshot) -> None:
        """One nvidia-smi tick: update the histories, then one new state for every panel."""
        self._set(**self.pacer.sample(snapshot))

    def show_metrics(self, reading: VllmReading) -> None:
        changes = self.pacer.reading(reading)  # drawn now, or in the next sample's frame
        if changes is not None:
            self._set(**changes)
        tokens = reading.tokens_generated
        if tokens and self.live is not None:
            self.feed.remember_tokens(tokens)

    def _tick(self) -> None:
        self.feed.read_record()
        # The clock, cost and countdown move once a second, drawn with each GPU sample; the tick
        # draws only when no sample does (see FramePacer).
        changes = self.pacer.tick(self.state.now)
        if changes is not None:
            self._set(**changes)

    def _set(self, **changes: Any) -> None:
        """Assign one new frozen state (time and watchdog read now) inside one batch update."""
        changes.setdefault("now", self.context.clock.now())
        record = self.record
        changes.setdefault("watchdog", WatchdogView.of(self.watchdog, ended=record is not None and record.ended))
        with self.app.batch_update():
            self.state = dataclasses.replace(self.state, **changes)

    def watch_state(self, old: DashboardState, new: DashboardState) -> None:
        """Patch the panels in place from the new state; GPUs and vLLM only when they changed."""
        if not self._panels_ready:
            return
        record = self.record
        if new.gpu is not None and (new.gpu is not old.gpu or old is new):
            self._gpus.show(new.gpu, new.history)
        if new.vllm is not old.vllm or new.model != old.model or old is new:
            self._vllm.show(new.model or self.model(), new.vllm)
        if record is not None:
            started = record.created_at or new.now
            end = record.ended_at or new.now
            tokens = new.vllm.tokens_generated if new.vllm is not None else None
            if new.vllm is not old.vllm or old is new:
                self._tokens_at = new.now  # the reading's tokens are as of the frame that first shows them
            self._cost.show(CostView(record.hourly_usd, started, end, new.watchdog.remaining_s,
                                     tokens or record.tokens_generated, self._tokens_at if tokens else None))
        self._watchdog.show(new.watchdog)
        self._endpoint.show(self._endpoint_view(record, new))
        self._update_top_bar(record, new)

    def _endpoint_view(self, record: SessionRecord | None, state: DashboardState) -> EndpointView:
        handle = self.handle
        saved = record.extra.get("endpoint") if record is not None else None
        endpoint = (handle.endpoint if handle is not None else None) or saved
        tunnel = state.tunnel if handle is not None else "not connected"
        webui = self.webui_url if handle is not None and self.feed.webui_port(record) is not None else None
        return EndpointView(endpoint, tunnel, webui, self.tools.shown_command)

    def _update_top_bar(self, record: SessionRecord | None, state: DashboardState) -> None:
        bar = self._top_bar
        bar.title = top_bar_title(self.session, record, state)
        bar.badge = "demo" if self.context.demo else ""
        bar.status = self.problem or ""
        bar.set_time(state.now)

    def _say_problem(self, text: str) -> None:
        self.problem = text
        self.query_one(LogPane).add(text, self.context.clock.now())
        self.notify(text, title=self.session, severity="error", timeout=15)
        self._set()

    def palette_commands(self) -> Iterable[PaletteCommand]:
        yield from key_commands(self, "session", PALETTE_TITLES)
