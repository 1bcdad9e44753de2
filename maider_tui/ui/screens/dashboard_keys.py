"""The dashboard's key actions, as a mixin of DashboardScreen (kept apart so each file stays short).

Everything here reads the screen's state through its properties (`handle`, `record`, `watchdog`)
and reports back through messages (`SessionEvent`, `HealOffer`, `VllmLog`); what the app does
(destroy, a benchmark run, validation) it asks for with a request message.
"""

from __future__ import annotations

import asyncio
import shutil
from typing import TYPE_CHECKING

from textual import work

from ...ops import vllm_care
from ...ops.events import LogEvent
from ...ops.session_files import aider_command, ssh_argv
from ..dialogs.confirm import ConfirmDialog
from ..dialogs.model_picker import ModelPickerDialog
from ..messages import (BenchmarkRunRequested, DestroyRequested, HealOffer, SessionEvent, ValidationRequested,
                        VllmLog)
from ..widgets.cost_panel import format_countdown
from ..widgets.log_pane import LogPane

if TYPE_CHECKING:
    from ...models import VllmConfig
NEEDS_CONNECTION = frozenset({"extend", "switch_model", "heal", "aider", "shell", "copy_command"})


class DashboardKeys:
    """check_action and every action_* of the dashboard; mixed into DashboardScreen."""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """None greys a key out: not built yet, or no connected VM to act on."""
        if action in ("benchmark", "validate") and not self.connected:
            return None
        if action in NEEDS_CONNECTION and not self.connected:
            return None
        if action == "extend" and self.watchdog is None:
            return None
        if action in ("destroy", "reconnect"):
            record = self.record  # no connection needed: an unreachable VM still costs money
            return None if record is None or record.ended else True
        return True

    def _say(self, text: str) -> None:
        """A line in the log pane, through the same path as the ops events."""
        self.post_message(SessionEvent(LogEvent(self.session, text)))

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_benchmark(self) -> None:
        self.post_message(BenchmarkRunRequested(self.session))

    def action_validate(self) -> None:
        self.post_message(ValidationRequested(self.session))

    def action_extend(self) -> None:
        watchdog = self.watchdog
        if watchdog is None:
            return
        watchdog.extend()
        self._say(f"watchdog extended: destroys in {format_countdown(getattr(watchdog, 'remaining_s', None))}")
        self._set()

    def action_copy_command(self) -> None:
        self.app.copy_to_clipboard(aider_command(self.context.paths, self.session))
        self.notify("Copied the aider command: paste it in a terminal.", title="Aider")

    def action_toggle_log(self) -> None:
        if self.query_one(LogPane).toggle():
            self.fetch_vllm_log()

    @work(exclusive=True, exit_on_error=False, group="vllm-log", description="Read the vLLM log")
    async def fetch_vllm_log(self) -> None:
        if self.handle is None or self.live is None:
            self.post_message(VllmLog("Not connected: there is no vLLM log to read."))
            return
        try:
            self.post_message(VllmLog(await vllm_care.read_vllm_log(self.live, self.session)))
        except vllm_care.CareError as exc:
            self.post_message(VllmLog(f"{str(exc)[:1].upper()}{str(exc)[1:]}"))

    def on_vllm_log(self, message: VllmLog) -> None:
        self.query_one(LogPane).set_vllm_log(message.text)

    def action_reconnect(self) -> None:
        self.attach(reconnect=True)

    # model switch
    def action_switch_model(self) -> None:
        from ... import catalog
        from .home import gpu_label

        record = self.record
        try:
            reports = catalog.models_that_fit(record.gpu_type)
        except catalog.UnknownGpuTypeError:
            self.notify(f"{record.gpu_type} is not in the catalog: no fit plan to offer.", severity="warning")
            return

        def chosen(model_id: str | None) -> None:
            if model_id:
                self.switch_to(model_id)

        self.app.push_screen(ModelPickerDialog(reports, gpu_label=gpu_label(record), current=self._model()), chosen)

    @work(exclusive=True, exit_on_error=False, group="switch", description="Switch the model")
    async def switch_to(self, model_id: str) -> None:
        self._say(f"switching to {model_id} …")
        try:
            config = await self.live.switch_model(self.session, model_id)
        except Exception as exc:  # noqa: BLE001 - refused or rolled back: the log and a toast say why
            self._say(f"switch to {model_id} failed: {exc}")
            self.notify(str(exc), title="Switch model", severity="error", timeout=20)
            return
        self._say(f"now serving {config.model}")

    # destroy: the app's one destroy flow asks and destroys; the screen leaves on the receipt
    def action_destroy(self) -> None:
        self.post_message(DestroyRequested(self.session))

    # heal now
    @work(exclusive=True, exit_on_error=False, group="heal", description="Diagnose vLLM")
    async def action_heal(self) -> None:
        if self.handle is None or self.live is None:
            return
        try:
            proposal = await vllm_care.propose_heal(self.live, self.session)
        except vllm_care.CareError as exc:
            self._say(str(exc))
            return
        found, remedied = proposal.diagnosis, proposal.config
        if remedied is None and self._vllm_down():
            # A server that died after it was ready (a GPU fault) needs no new flags, only a restart.
            self.offer_restart(f"{found.summary}; no flag to change" if found else "its log names no cause")
            return
        if found is None:
            self._say("vLLM's log shows no failure: nothing to heal.")
            return
        if remedied is None:
            self._say(f"diagnosis: {found.summary}; no remedy is left to try.")
            return
        self.post_message(HealOffer(proposal))

    def _vllm_down(self) -> bool:
        """The last scrape failed: /metrics unreachable or /health not answering 200."""
        reading = self.state.vllm
        return reading is not None and reading.metrics is None

    def offer_restart(self, why: str) -> None:
        text = (f"vLLM is down ({why}).\n\nRestart its container with the same flags? "
                "Requests in flight are lost; the model loads again.")

        def answered(yes: bool | None) -> None:
            if yes:
                self.restart_vllm()

        self.app.push_screen(ConfirmDialog("Restart vLLM?", text, yes="Restart", no="Cancel"), answered)

    @work(exclusive=True, exit_on_error=False, group="heal", description="Restart vLLM")
    async def restart_vllm(self) -> None:
        if self.handle is None or self.live is None:
            return
        try:
            await vllm_care.restart_vllm(self.live, self.session)
        except vllm_care.CareError as exc:
            self._say(str(exc))
            return
        self._say("vLLM is restarting with the same flags")

    def on_heal_offer(self, message: HealOffer) -> None:
        proposal = message.proposal
        assert proposal.diagnosis is not None and proposal.config is not None
        config, change = proposal.config, proposal.change
        text = (f"Diagnosis: {proposal.diagnosis.summary}\nEvidence: {proposal.diagnosis.evidence[:160]}\n\n"
                f"Remedy: {change}\nvLLM restarts with these flags.")

        def answered(yes: bool | None) -> None:
            if yes:
                self.apply_heal(config, change)

        self.app.push_screen(ConfirmDialog("Heal vLLM?", text, yes="Apply", no="Cancel"), answered)

    @work(exclusive=True, exit_on_error=False, group="heal", description="Apply the remedy")
    async def apply_heal(self, config: VllmConfig, change: str) -> None:
        if self.handle is None or self.live is None:
            return
        try:
            await vllm_care.apply_heal(self.live, self.session, config, change)
        except vllm_care.CareError as exc:
            self._say(str(exc))
            return
        self._say(f"applied {change}; vLLM is restarting")

    # programs in this terminal
    def action_aider(self) -> None:
        if shutil.which("aider") is None:
            self.notify("aider is not installed: pipx install aider-chat", title="Aider", severity="error")
            return
        self.run_outside(["bash", "-c", aider_command(self.context.paths, self.session)], "aider")

    def action_shell(self) -> None:
        # ops wrote the session's ssh_config entry (pinned host key) when it got or reconnected its VM.
        argv = ssh_argv(self.context.paths, self.session) if self.handle is not None else None
        if argv is None or shutil.which("ssh") is None:
            self.notify("No ssh program or no pinned host key: cannot open a shell.", severity="error")
            return
        self.run_outside(argv, "ssh")

    @work(exclusive=True, exit_on_error=False, group="outside", description="Run a program in this terminal")
    async def run_outside(self, argv: list[str], what: str) -> None:
        """Suspend the app and run `argv` in the terminal; the loop (tunnel, watchdog) keeps running."""
        try:
            with self.app.suspend():
                process = await asyncio.create_subprocess_exec(*argv)
                code = await process.wait()
        except Exception as exc:  # noqa: BLE001 - SuspendNotSupported (web, tests) or no such program
            self.notify(f"Cannot run {what} here: {exc or type(exc).__name__}", severity="error")
            return
        self._say(f"{what} exited ({code})")
