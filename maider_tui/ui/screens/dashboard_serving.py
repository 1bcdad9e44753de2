"""What the dashboard changes about what vLLM serves, each asked first: heal now (diagnose, offer the
remedy, apply it), restart a vLLM that died, switch the model.

The screen owns one ServingChanges; ops (ops.vllm_care, LiveSessions.switch_model) do the work in
the screen's workers, and every outcome is a line in the session's log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...ops import vllm_care
from ..dialogs.confirm import ConfirmDialog
from ..messages import Attached, HealOffer

if TYPE_CHECKING:
    from ...models import VllmConfig
    from .dashboard import DashboardScreen


class ServingChanges:
    def __init__(self, screen: DashboardScreen) -> None:
        self.screen = screen

    def _run(self, work, group: str, description: str, hold: str | None = None) -> None:
        """Run `work` in the screen's worker group; with `hold`, the session's idle watchdog is paused
        while it runs (vLLM is down meanwhile, which is not the user leaving), and counts afresh after."""
        if hold is not None:
            work = self._held(work, hold)
        self.screen.run_worker(work, exclusive=True, exit_on_error=False, group=group, description=description)

    async def _held(self, work, reason: str) -> None:
        live = self.screen.live.get(self.screen.session) if self.screen.live is not None else None
        watchdog = live.watchdog if live is not None else None
        if watchdog is not None:
            watchdog.hold(reason)
        try:
            await work
        finally:
            if watchdog is not None:
                watchdog.release()

    # heal now
    def heal(self) -> None:
        """Read vLLM's log and offer its remedy, or a restart of a server that died, or say why neither."""
        self._run(self._heal(), "heal", "Diagnose vLLM")

    async def _heal(self) -> None:
        screen = self.screen
        if screen.handle is None or screen.live is None:
            return
        if screen.record is not None and screen.record.nodes > 1 and await self._offer_replacement(
                "a VM of the session is gone, and with it a pipeline stage of the model", only_if_lost=True):
            return  # a lost VM first: its engine's death may not be in the log yet, or may have scrolled off
        try:
            proposal = await vllm_care.propose_heal(screen.live, screen.session)
        except vllm_care.CareError as exc:
            screen.say(str(exc))
            return
        found, remedied = proposal.diagnosis, proposal.config
        if found is not None and found.kind == "node_lost":  # no restart or flag brings a VM back: a new one
            await self._offer_replacement(found.summary)
            return
        if remedied is None and screen.vllm_down():
            # A server that died after it was ready (a GPU fault) needs no new flags, only a restart.
            self.offer_restart(f"{found.summary}; no flag to change" if found else "its log names no cause")
            return
        if found is None:
            screen.say("vLLM's log shows no failure: nothing to heal.")
            return
        if remedied is None:
            screen.say(f"diagnosis: {found.summary}; no remedy is left to try.")
            return
        screen.post_message(HealOffer(proposal))

    def ask_heal(self, proposal: vllm_care.HealProposal) -> None:
        """The diagnosis and the change in a dialog; yes deploys it."""
        if proposal.diagnosis is None or proposal.config is None:
            return
        config, change = proposal.config, proposal.change
        text = (f"Diagnosis: {proposal.diagnosis.summary}\nEvidence: {proposal.diagnosis.evidence[:160]}\n\n"
                f"Remedy: {change}\nvLLM restarts with these flags.")

        def answered(yes: bool | None) -> None:
            if yes:
                self._run(self._apply(config, change), "heal", "Apply the remedy", hold="heal")

        self.screen.app.push_screen(ConfirmDialog("Heal vLLM?", text, yes="Apply", no="Cancel"), answered)

    async def _apply(self, config: VllmConfig, change: str) -> None:
        screen = self.screen
        if screen.handle is None or screen.live is None:
            return
        try:
            await vllm_care.apply_heal(screen.live, screen.session, config, change)
        except vllm_care.CareError as exc:
            screen.say(str(exc))
            return
        screen.say(f"applied {change}; vLLM is restarting")

    # a lost worker VM
    async def _offer_replacement(self, why: str, *, only_if_lost: bool = False) -> bool:
        """Ask to rent a VM in place of each lost worker (no leaves the session for d to destroy), or, with
        every VM there, to form the cluster again; `only_if_lost`: ask only about lost VMs. Whether it asked."""
        from ...ops.cluster_replace import lost_workers

        screen = self.screen
        if screen.live is None:
            return False
        try:
            lost = await lost_workers(screen.live, screen.session)
        except Exception as exc:  # noqa: BLE001 - the API could not say: nothing is rented on a guess
            if only_if_lost:
                return False  # the log is read next, as on one VM
            screen.say(f"{why}, but the VMs could not be looked up ({exc}); try h again.")
            return True
        if not lost and only_if_lost:
            return False
        if not lost:  # every VM is there (a worker's container stopped): the cluster is what went
            text = (f"{why}, yet every VM of the session is there: a node left the Ray cluster.\n\nMake every "
                    "VM's containers anew, so the cluster forms again, and start vLLM? Requests in flight are "
                    "lost; nothing is rented.")

            def reform(yes: bool | None) -> None:
                if yes:
                    self._run(self._replace(reform=True), "heal", "Form the Ray cluster again", hold="cluster restart")

            screen.app.push_screen(ConfirmDialog("Form the cluster again?", text, yes="Form", no="Cancel"), reform)
            return True
        record = screen.record
        rate = f"${record.hourly_usd / max(record.nodes, 1):.2f}/h" if record is not None else "the same rate"
        gone = ", ".join(f"VM {n.instance_id} (node {n.index}, {n.address})" for n in lost)
        if len(lost) == 1:
            ask = (f"{gone} no longer exists, and the model cannot serve without it.\n\nRent a new VM of the same "
                   f"plan ({rate}, as the lost one cost), joined to the session's network at the lost one's address,")
        else:
            ask = (f"{gone} no longer exist, and the model cannot serve without them.\n\nRent {len(lost)} new VMs "
                   f"of the same plan ({rate} each, as the lost ones cost), joined to the session's network at the "
                   "lost ones' addresses,")
        text = (f"{why}: {ask} and start the cluster and vLLM again? Requests in flight are lost.\n\nNo: the "
                "session stays as it is; d destroys it (every VM and its network).")

        def answered(yes: bool | None) -> None:
            if yes:
                self._run(self._replace(), "heal", "Replace the lost VM", hold="replacement")
            else:
                self.screen.say("Not replaced: the model cannot serve until the lost VM is; d destroys the session.")

        screen.app.push_screen(ConfirmDialog("Replace the lost VM?", text, yes="Replace", no="No"), answered)
        return True

    async def _replace(self, reform: bool = False) -> None:
        from ...ops.cluster_replace import replace_lost_workers

        screen = self.screen
        if screen.handle is None or screen.live is None:
            return
        screen.say("Forming the Ray cluster again on every VM" if reform else
                   "Renting a VM in place of the lost one; the cluster forms again once it is up")
        try:
            replaced = await replace_lost_workers(screen.live, screen.session, reform=reform)
        except vllm_care.CareError as exc:
            screen.say(str(exc))
            return
        done = ", ".join(f"node {i}" for i in replaced) + " replaced" if replaced else "Ray cluster formed again"
        screen.say(f"{done}: vLLM serves across every VM again")
        screen.post_message(Attached())  # the telemetry stream starts again, over the new VM's connection too

    # restart
    def offer_restart(self, why: str) -> None:
        text = (f"vLLM is down ({why}).\n\nRestart its container with the same flags? "
                "Requests in flight are lost; the model loads again.")

        def answered(yes: bool | None) -> None:
            if yes:
                self._run(self._restart(), "heal", "Restart vLLM", hold="restart")

        self.screen.app.push_screen(ConfirmDialog("Restart vLLM?", text, yes="Restart", no="Cancel"), answered)

    async def _restart(self) -> None:
        screen = self.screen
        if screen.handle is None or screen.live is None:
            return
        try:
            await vllm_care.restart_vllm(screen.live, screen.session)
        except vllm_care.CareError as exc:
            screen.say(str(exc))
            return
        screen.say("vLLM is restarting with the same flags")

    # model switch
    def pick_model(self) -> None:
        """The models that fit these GPUs in a picker; the one chosen is switched to."""
        from ... import catalog
        from ..dialogs.model_picker import ModelPickerDialog
        from .home import gpu_label

        screen, record = self.screen, self.screen.record
        if record is None:
            return
        try:
            reports = catalog.models_that_fit(record.gpu_type)
        except catalog.UnknownGpuTypeError:
            screen.notify(f"{record.gpu_type} is not in the catalog: no fit plan to offer.", severity="warning")
            return

        def chosen(model_id: str | None) -> None:
            if model_id:
                self._run(self._switch(model_id), "switch", "Switch the model", hold="model switch")

        screen.app.push_screen(ModelPickerDialog(reports, gpu_label=gpu_label(record), current=screen.model()),
                               chosen)

    async def _switch(self, model_id: str) -> None:
        screen = self.screen
        if screen.live is None:
            return
        screen.say(f"switching to {model_id} …")
        try:
            config = await screen.live.switch_model(screen.session, model_id)
        except Exception as exc:  # noqa: BLE001 - refused or rolled back: the log and a toast say why
            screen.say(f"switch to {model_id} failed: {exc}")
            screen.notify(str(exc), title="Switch model", severity="error", timeout=20)
            return
        screen.say(f"now serving {config.model}")
