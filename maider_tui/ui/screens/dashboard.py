"""The dashboard of one live session: GPUs, cost, watchdog, vLLM, endpoint and log, with its keys.

Data flows one way: workers (nvidia-smi stream, /metrics poll, attach) post messages; each message
becomes one frozen `DashboardState` assigned to `state` inside `app.batch_update()`; `watch_state`
patches the panels in place. The keys' actions are in dashboard_keys.py.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer

from ...paths import styles_dir
from ...ops.events import LogEvent
from ...ops.telemetry import MetricsPoller, VllmReading, gpu_snapshots
from ...remote.gpu import GpuSnapshot
from ..culling import CullingCompositor
from ..messages import Attached, MetricsRead, SessionEvent, Telemetry, TelemetryStatus
from ..widgets.cost_panel import CostPanel, CostView
from ..widgets.endpoint_panel import EndpointPanel, EndpointView
from ..widgets.gpu_bars import HISTORY, GpuBars
from ..widgets.log_pane import LogPane, event_text
from ..widgets.top_bar import TopBar
from ..widgets.vllm_panel import VllmPanel
from ..widgets.watchdog_panel import WatchdogPanel, WatchdogView
from .dashboard_keys import DashboardKeys

if TYPE_CHECKING:
    from ...context import AppContext
    from ...store import SessionRecord

# /metrics + /health scrape period: two requests through the tunnel each time, so not too often.
# Re-armed only after the previous scrape returned: scrapes never overlap.
METRICS_S = 5.0
NARROW = 100  # below this many columns the panels stack
# The stream samples every second: one that came less than this long ago means the next is on its way.
SAMPLE_DUE_S = 1.5


@dataclass(frozen=True)
class DashboardState:
    """Everything the panels show at one instant; a new one per tick, never mutated."""

    now: float
    gpu: GpuSnapshot | None = None
    history: tuple[tuple[float | None, ...], ...] = ()
    vllm: VllmReading | None = None
    tunnel: str = "not connected"
    watchdog: WatchdogView = WatchdogView()
    model: str = ""


class DashboardScreen(DashboardKeys, Screen[None]):
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
        Binding("c", "copy_command", "Copy", id="session.copy", tooltip="Copy the aider command"),
        Binding("l", "toggle_log", "Logs", id="session.logs",
                tooltip="Switch between session events and the vLLM container log"),
        Binding("r", "reconnect", "Reconnect", id="session.reconnect",
                tooltip="Close and reopen the SSH connection and tunnel"),
        Binding("escape", "back", "Back", id="session.back", tooltip="Back to the sessions list"),
    ]

    # repaint=False: watch_state patches the panels; repainting the whole screen each tick would cost
    # a full redraw of every widget once or twice a second.
    state: reactive[DashboardState] = reactive(DashboardState(0.0), init=False, repaint=False)

    def __init__(self, context: "AppContext", live: Any, name: str, *, stream: bool = True) -> None:
        super().__init__()
        # Renders, for each frame, only the widgets whose pixels it sends (see ui/culling.py).
        self._compositor = CullingCompositor()
        self.context, self.live, self.session = context, live, name
        self.stream = stream
        self.problem: str | None = None
        self._util: dict[int, deque] = {}
        self._poller: MetricsPoller | None = None
        self._vllm_client: Any = None
        self._unsubscribe: list[Any] = []
        self.set_reactive(DashboardScreen.state, DashboardState(context.clock.now(), model=self._model()))

    # --- what the screen knows -------------------------------------------------------------------

    @property
    def record(self) -> "SessionRecord | None":
        store = self.context.store
        if store is None:
            return None
        # Read every second for the panels: read again only when the database changed since.
        version = (store, store.version())
        if version != self._record_version:
            self._record, self._record_version = store.get_session(self.session), version
        return self._record

    @property
    def handle(self) -> Any | None:
        live = self.live.get(self.session) if self.live is not None else None
        return live.handle if live is not None else None

    @property
    def watchdog(self) -> Any | None:
        live = self.live.get(self.session) if self.live is not None else None
        return live.watchdog if live is not None else None

    @property
    def connected(self) -> bool:
        return self.handle is not None

    def _model(self) -> str:
        handle = self.handle
        if handle is not None:
            return handle.config.model
        record = self.record
        return record.model if record is not None else ""

    # --- layout ----------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        record = self.record
        # Kept: watch_state patches them every second, and a DOM query each time would cost more.
        self._top_bar = TopBar()
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
        for selector, title in (("#gpus-box", "GPUs"), ("#vllm", "vLLM"), ("#cost", "Cost"),
                                ("#watchdog", "Watchdog"), ("#endpoint", "Endpoint"), ("#log", "Log")):
            self.query_one(selector).border_title = title
        self._fill_log()
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
            self.attach()
        else:
            self._say_problem("This session has no VM running: nothing to show live.")

    def on_unmount(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        if self._unsubscribe_ssh is not None:
            self._unsubscribe_ssh()
        if self._vllm_client is not None:
            self.app.run_worker(self._vllm_client.aclose(), exit_on_error=False)

    def on_resize(self) -> None:
        self.set_class(self.size.width < NARROW, "-narrow")

    def _fill_log(self) -> None:
        """History from the store, then what this process saw that the store does not hold."""
        pane = self.query_one(LogPane)
        seen = set()
        if self.context.store is not None:
            for event in self.context.store.events(self.session, limit=100):
                pane.add(event.message, event.ts)
                seen.add(event.message)
        live = self.live.get(self.session) if self.live is not None else None
        for event in list(live.events) if live is not None else []:
            # Only log lines are never stored; every other ops event has its store twin above.
            if isinstance(event, LogEvent) and event.text not in seen:
                pane.add(event.text)

    # --- live data -------------------------------------------------------------------------------

    @work(exclusive=True, exit_on_error=False, group="attach", description="Reconnect to the session")
    async def attach(self, reconnect: bool = False) -> None:
        """Connect to the session's VM; with `reconnect`, close the current connection first."""
        live = self.live.get(self.session)
        if reconnect and live is not None and live.handle is not None:
            handle, live.handle = live.handle, None
            self.post_message(TelemetryStatus("reconnecting"))
            await handle.close()
        try:
            await self.live.attach(self.session)
        except Exception as exc:  # noqa: BLE001 - any failure is shown; the keys that need a VM grey out
            self.post_message(Attached(str(exc) or type(exc).__name__))
            return
        self.post_message(Attached())

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
        from ...remote.vllm import VllmClient

        handle = self.handle
        if handle is None:
            return
        if self._unsubscribe_ssh is not None:
            self._unsubscribe_ssh()
        self._unsubscribe_ssh = handle.ssh.on_state(self._on_ssh_state)
        if self._vllm_client is not None:  # a reconnect: the old tunnel's connection is of no more use
            self.app.run_worker(self._vllm_client.aclose(), exit_on_error=False)
        self._vllm_client = VllmClient(handle.endpoint, timeout=5.0)
        self._poller = MetricsPoller(self._vllm_client.metrics, self.context.clock, health=self._vllm_client.health)
        self._set(tunnel="ok" if handle.ssh.state == "connected" else handle.ssh.state, model=handle.config.model)
        self.stream_telemetry()
        self.poll_metrics()
        if self._webui_port() is not None:
            self.forward_webui()
        self.refresh_bindings()

    def _webui_port(self, record: "SessionRecord | None" = None) -> int | None:
        """The VM's Open WebUI port when the session was launched with it, else None."""
        from ...ops.launch_plan import compose_options_of

        record = record or self.record
        options = compose_options_of(record.options) if record is not None else None
        return options.webui_port if options is not None and options.enable_openwebui else None

    @work(exclusive=True, exit_on_error=False, group="webui", description="Forward Open WebUI")
    async def forward_webui(self) -> None:
        """Open WebUI listens on the VM's localhost only: forward it over the session's SSH, like vLLM."""
        from ...ops.vllm_care import forward_webui

        if self.handle is None or self.live is None:
            return
        self.webui_url = await forward_webui(self.live, self.session)
        if self.webui_url is not None:
            self._say(f"Open WebUI at {self.webui_url}")

    _unsubscribe_ssh: Any = None
    _panels_ready = False  # set in on_mount: before it, the panels are not there to patch
    _record: "SessionRecord | None" = None
    _tokens_at: float | None = None  # when the vLLM reading shown was first drawn
    _record_version: tuple | None = None  # the store and its version `_record` was read at
    webui_url: str | None = None
    _tokens_saved: int | None = None
    _sampled_at = float("-inf")  # the clock's time of the last GPU sample
    _pending_vllm: VllmReading | None = None  # a reading that rides the next sample's frame
    _aider_shown: str | None = None  # the aider command as the Endpoint panel shows it

    def _on_ssh_state(self, state: str) -> None:
        self.post_message(TelemetryStatus("ok" if state == "connected" else state))
        handle = self.handle
        if state == "refused" and handle is not None and handle.ssh.error is not None:
            # A reconnect after a drop met another host key (or our key refused): never retried, so say why.
            self.post_message(Attached(str(handle.ssh.error)))

    @work(exclusive=True, exit_on_error=False, group="telemetry", description="GPU telemetry")
    async def stream_telemetry(self) -> None:
        """The one long-lived nvidia-smi stream of this dashboard; resumes by itself after a drop."""
        handle = self.handle
        if handle is None:
            return
        async for snapshot in gpu_snapshots(handle.ssh, gpu_count=handle.record.gpu_count,
                                            clock=self.context.clock,
                                            on_status=lambda s: self.post_message(TelemetryStatus(s))):
            self.post_message(Telemetry(snapshot))

    @work(exclusive=True, exit_on_error=False, group="metrics", description="vLLM metrics")
    async def poll_metrics(self) -> None:
        if self._poller is not None:
            self.post_message(MetricsRead(await self._poller.poll()))

    def on_telemetry(self, message: Telemetry) -> None:
        self.show_telemetry(message.snapshot)

    def on_telemetry_status(self, message: TelemetryStatus) -> None:
        if message.status != self.state.tunnel:  # the same status again changes nothing on screen
            self._set(tunnel=message.status)

    def on_metrics_read(self, message: MetricsRead) -> None:
        self.show_metrics(message.reading)
        if self.stream and self.connected and self.is_attached:
            self.set_timer(METRICS_S, self.poll_metrics)  # re-armed only now: scrapes never overlap

    def on_session_event(self, message: SessionEvent) -> None:
        from ...ops.events import DestroyedEvent

        self.query_one(LogPane).add(event_text(message.event), self.context.clock.now())
        self._set(model=self._model())
        if isinstance(message.event, DestroyedEvent) and self.is_current:
            self.app.pop_screen()  # the VM is gone: the receipt is on screen, the list shows it

    def _on_ops_event(self, event: Any) -> None:
        if getattr(event, "session", None) == self.session:
            self.post_message(SessionEvent(event))

    def show_telemetry(self, snapshot: GpuSnapshot) -> None:
        """One nvidia-smi tick: update the histories, then one new state for every panel."""
        for sample in snapshot.gpus:
            self._util.setdefault(sample.index, deque(maxlen=HISTORY)).append(sample.utilization_pct)
        history = tuple(tuple(self._util.get(s.index, ())) for s in snapshot.gpus)
        self._sampled_at = self.context.clock.now()
        self._set(gpu=snapshot, history=history, tunnel="ok", **self._take_pending())

    def _sample_due(self) -> bool:
        """Whether the telemetry stream is delivering: a GPU sample came less than 1.5 s ago, so the
        next one, which redraws every panel, is due within the second."""
        return self.stream and self.context.clock.now() - self._sampled_at < SAMPLE_DUE_S

    def show_metrics(self, reading: VllmReading) -> None:
        if self._sample_due():
            # The reading is drawn in the next sample's frame rather than in one of its own (each
            # frame redraws every panel it crosses).
            self._pending_vllm = reading
        else:
            self._set(vllm=reading)
        tokens = reading.tokens_generated
        if tokens and tokens != self._tokens_saved and self.live is not None:
            from ...ops.vllm_care import remember_tokens

            if remember_tokens(self.live, self.session, tokens):
                self._tokens_saved = tokens

    def _take_pending(self) -> dict[str, Any]:
        """The vLLM reading waiting for the next frame, as a state change (or none)."""
        reading, self._pending_vllm = self._pending_vllm, None
        return {} if reading is None else {"vllm": reading}

    def _tick(self) -> None:
        # The clock, cost and countdown move once a second; the 1 Hz telemetry already redraws them
        # (and a waiting vLLM reading) with each sample, so while samples come the tick draws nothing:
        # it would add a frame between two samples. Without a stream, or once it stalls, the tick
        # draws when nothing was drawn for a second.
        if self._sample_due():
            return
        if self._pending_vllm is not None or self.context.clock.now() - self.state.now >= 1.0:
            self._set(**self._take_pending())

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
            self._vllm.show(new.model or self._model(), new.vllm)
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

    def _endpoint_view(self, record: "SessionRecord | None", state: DashboardState) -> EndpointView:
        from ...ops.session_files import aider_command
        from ...paths import display_path

        handle = self.handle
        endpoint = handle.endpoint if handle is not None else None
        if endpoint is None and record is not None:
            endpoint = record.extra.get("endpoint")
        tunnel = state.tunnel if handle is not None else "not connected"
        webui = self.webui_url if self._webui_port(record) is not None and handle is not None else None
        if self._aider_shown is None:  # depends only on the paths and the name: made once, not every tick
            aider = aider_command(self.context.paths, self.session)
            home = display_path(self.context.paths.sessions_dir)
            self._aider_shown = aider.replace(str(self.context.paths.sessions_dir), home)
        return EndpointView(endpoint, tunnel, webui, self._aider_shown)

    def _update_top_bar(self, record: "SessionRecord | None", state: DashboardState) -> None:
        from .home import gpu_label, model_label, state_label

        bar = self._top_bar
        if record is None:
            bar.title = f"{self.session} · unknown session"
        else:
            status = "reconnecting" if state.tunnel == "reconnecting" else state_label(record)
            if status == "ready" and state.vllm is not None and state.vllm.error is not None:
                status = "ready · vLLM down"  # the VM is there and paid for; its server is not serving
            bar.title = " · ".join([self.session, status, model_label(state.model or record.model),
                                    gpu_label(record), record.region])
        bar.badge = "demo" if self.context.demo else ""
        bar.status = self.problem or ""
        bar.set_time(state.now)

    def _say_problem(self, text: str) -> None:
        self.problem = text
        self.query_one(LogPane).add(text, self.context.clock.now())
        self.notify(text, title=self.session, severity="error", timeout=15)
        self._set()
