"""The dashboard's live data for one session: the connection (attach, reconnect, its state), the GPU
telemetry stream, the vLLM metrics poll, Open WebUI's forward, and the session's record and
history in the database (read through ops.views, in threads).

The screen owns one SessionFeed; its work runs in the screen's workers (so it ends with the screen)
and reports as messages posted to the screen: Attached, Telemetry, TelemetryStatus, MetricsRead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ...ops.telemetry import MetricsPoller, session_gpu_snapshots
from ..messages import Attached, MetricsRead, Telemetry, TelemetryStatus, VllmLog
from ..widgets.log_pane import LogPane

if TYPE_CHECKING:
    from ...remote.vllm import VllmClient
    from ...ops.events import OpsEvent
    from ...ops.views import SessionRecord, Version
    from .dashboard import DashboardScreen


class SessionFeed:
    def __init__(self, screen: DashboardScreen) -> None:
        self.screen = screen
        self.webui_url: str | None = None  # Open WebUI's local address once forwarded
        self._poller: MetricsPoller | None = None
        self._vllm_client: VllmClient | None = None
        self._unsubscribe_ssh: Callable[[], None] | None = None
        self._version: Version | None = None  # the database's version the screen's record was read at
        self._reading = False
        self._tokens_saved: int | None = None

    def attach(self, reconnect: bool = False) -> None:
        """Connect to the session's VM; with `reconnect`, close the current connection first."""
        self.screen.run_worker(self._attach(reconnect), exclusive=True, exit_on_error=False, group="attach",
                               description="Reconnect to the session")

    async def _attach(self, reconnect: bool) -> None:
        screen, live = self.screen, self.screen.live
        if live is None:
            return
        session = live.get(screen.session)
        if reconnect and session is not None and session.handle is not None:
            handle, session.handle = session.handle, None
            screen.post_message(TelemetryStatus("reconnecting"))
            await handle.close()
        try:
            await live.attach(screen.session)
        except Exception as exc:  # noqa: BLE001 - any failure is shown; the keys that need a VM grey out
            screen.post_message(Attached(str(exc) or type(exc).__name__))
            return
        screen.post_message(Attached())

    def start(self) -> str | None:
        """Start (or restart after a reconnect) the telemetry stream and the metrics poll, and Open
        WebUI's forward when the session has it. The connection's state now, or None when not connected."""
        from ...remote.vllm import VllmClient

        screen, handle = self.screen, self.screen.handle
        if handle is None:
            return None
        if self._unsubscribe_ssh is not None:
            self._unsubscribe_ssh()
        self._unsubscribe_ssh = handle.ssh.on_state(self._on_ssh_state)
        if self._vllm_client is not None:  # a reconnect: the old tunnel's connection is of no more use
            screen.app.run_worker(self._vllm_client.aclose(), exit_on_error=False)
        self._vllm_client = VllmClient(handle.endpoint, timeout=5.0)
        self._poller = MetricsPoller(self._vllm_client.metrics, screen.context.clock,
                                     health=self._vllm_client.health)
        screen.run_worker(self._stream_telemetry(), exclusive=True, exit_on_error=False, group="telemetry",
                          description="GPU telemetry")
        self.poll_metrics()
        if self.webui_port(screen.record) is not None:
            screen.run_worker(self._forward_webui(), exclusive=True, exit_on_error=False, group="webui",
                              description="Forward Open WebUI")
        return "ok" if handle.ssh.state == "connected" else handle.ssh.state

    def close(self) -> None:
        """The screen is going: stop listening to the connection, close the vLLM client."""
        if self._unsubscribe_ssh is not None:
            self._unsubscribe_ssh()
            self._unsubscribe_ssh = None
        if self._vllm_client is not None:
            self.screen.app.run_worker(self._vllm_client.aclose(), exit_on_error=False)
            self._vllm_client = None

    def _on_ssh_state(self, state: str) -> None:
        self.screen.post_message(TelemetryStatus("ok" if state == "connected" else state))
        handle = self.screen.handle
        if state == "refused" and handle is not None and handle.ssh.error is not None:
            # A reconnect after a drop met another host key (or our key refused): never retried, so say why.
            self.screen.post_message(Attached(str(handle.ssh.error)))

    async def _forward_webui(self) -> None:
        """Open WebUI listens on the VM's localhost only: forwarded over the session's SSH, like vLLM."""
        from ...ops.vllm_care import forward_webui

        screen = self.screen
        if screen.handle is None or screen.live is None:
            return
        self.webui_url = await forward_webui(screen.live, screen.session)
        if self.webui_url is not None:
            screen.say(f"Open WebUI at {self.webui_url}")

    async def _stream_telemetry(self) -> None:
        """The one long-lived nvidia-smi stream of this dashboard; resumes by itself after a drop."""
        screen, handle = self.screen, self.screen.handle
        if handle is None:
            return
        def status(state: str) -> None:
            screen.post_message(TelemetryStatus(state))

        async for snapshot in session_gpu_snapshots(handle, clock=screen.context.clock, on_status=status):
            screen.post_message(Telemetry(snapshot))

    def poll_metrics(self) -> None:
        """One /metrics and /health scrape; the screen re-arms the next once this one is drawn."""
        if self._poller is not None:
            self.screen.run_worker(self._poll(self._poller), exclusive=True, exit_on_error=False,
                                   group="metrics", description="vLLM metrics")

    async def _poll(self, poller: MetricsPoller) -> None:
        self.screen.post_message(MetricsRead(await poller.poll()))

    @staticmethod
    def webui_port(record: SessionRecord | None) -> int | None:
        """The VM's Open WebUI port when the session was launched with it, else None."""
        from ...ops.launch_plan import compose_options_of

        options = compose_options_of(record.options) if record is not None else None
        return options.webui_port if options is not None and options.enable_openwebui else None

    def read_vllm_log(self) -> None:
        """The tail of the vLLM container's log, posted as VllmLog (or why it could not be read)."""
        self.screen.run_worker(self._read_vllm_log(), exclusive=True, exit_on_error=False, group="vllm-log",
                               description="Read the vLLM log")

    async def _read_vllm_log(self) -> None:
        from ...ops import vllm_care

        screen = self.screen
        if screen.handle is None or screen.live is None:
            screen.post_message(VllmLog("Not connected: there is no vLLM log to read."))
            return
        try:
            screen.post_message(VllmLog(await vllm_care.read_vllm_log(screen.live, screen.session)))
        except vllm_care.CareError as exc:
            screen.post_message(VllmLog(f"{str(exc)[:1].upper()}{str(exc)[1:]}"))

    # the database
    def read_record(self) -> None:
        """Read the session again if the database changed since (once a second: one read at a time);
        a change goes to the screen's `record_read`."""
        if not self._reading:
            self._reading = True
            self.screen.run_worker(self._read_record(), group="dashboard-record", exit_on_error=False,
                                   description="Read the session")

    async def _read_record(self) -> None:
        from ...ops.views import StoreError, Views

        screen = self.screen
        try:
            version, record, changed = await Views(screen.context).session_if_changed(screen.session,
                                                                                      self._version)
        except StoreError:  # the record read last stays on screen; the next tick tries again
            return
        finally:
            self._reading = False
        self._version = version
        if changed and record != screen.record:
            screen.record_read(record)

    def read_history(self) -> None:
        """The session's stored events, then what this process saw that the database does not hold,
        into the screen's log; lines the screen adds meanwhile follow them."""
        screen = self.screen
        live = screen.live.get(screen.session) if screen.live is not None else None
        recent = list(live.events) if live else []  # now: what comes later reaches the screen itself
        screen.query_one(LogPane).hold_for_history()
        screen.run_worker(self._read_history(recent), exit_on_error=False, group="dashboard-history",
                          description="Read the session's history")

    async def _read_history(self, recent: list[OpsEvent]) -> None:
        from ...ops.views import Views

        lines: list[tuple[str, float | None]] = []
        try:
            lines = await Views(self.screen.context).history(self.screen.session, recent)
        finally:
            for pane in self.screen.query(LogPane):  # none once the screen has gone
                pane.add_history(lines)

    def remember_tokens(self, tokens: int) -> None:
        """Keep the count vLLM reports generated in the session's record, when it moved."""
        if tokens != self._tokens_saved:
            self.screen.run_worker(self._remember_tokens(tokens), exclusive=True, exit_on_error=False,
                                   group="dashboard-tokens", description="Keep the token count")

    async def _remember_tokens(self, tokens: int) -> None:
        from ...ops.vllm_care import remember_tokens

        screen = self.screen
        if screen.live is None:
            return
        record = await remember_tokens(screen.live, screen.session, tokens)
        if record is not None:
            self._tokens_saved = tokens
            screen.record_read(record)  # the count a receipt (and the cost panel, vLLM down) falls back on
