"""Message classes the screens, workers and the app exchange; workers report only through these.

Requests (`...Requested`) are what a screen asks of the app: it posts one, the message bubbles to
MaiderApp, whose `on_...` handler opens the screen or starts the flow. No screen calls an app method.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from textual.screen import Screen

    from ..ops.events import OpsEvent
    from ..ops.launch_plan import LaunchPlan
    from ..ops.recover import Orphan
    from ..ops.telemetry import VllmReading
    from ..ops.vllm_care import HealProposal
    from ..remote.gpu import GpuSnapshot
    from ..ops.views import SessionRecord


class Telemetry(Message):
    """A GPU snapshot from the nvidia-smi stream."""

    def __init__(self, snapshot: GpuSnapshot) -> None:
        super().__init__()
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        # A slow terminal should show the newest sample, not work through a backlog of stale ones.
        return isinstance(message, Telemetry)


class TelemetryStatus(Message):
    """The telemetry stream's state: "ok", "reconnecting" or "closed"."""

    def __init__(self, status: str) -> None:
        super().__init__()
        self.status = status


class MetricsRead(Message):
    """One vLLM /metrics scrape (with tokens/s), or why it failed."""

    def __init__(self, reading: VllmReading) -> None:
        super().__init__()
        self.reading = reading

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, MetricsRead)


class SessionEvent(Message):
    """An ops event (launch, heal, switch, watchdog, destroy) for the session a screen shows."""

    def __init__(self, event: OpsEvent) -> None:
        super().__init__()
        self.event = event


class StoreLock(Message):
    """The database became locked by another program (`locked`), or writable again. Posted from any thread."""

    def __init__(self, locked: bool) -> None:
        super().__init__()
        self.locked = locked


class Attached(Message):
    """The dashboard's session is connected (or could not be: `error`)."""

    def __init__(self, error: str | None = None) -> None:
        super().__init__()
        self.error = error


class VllmLog(Message):
    """The tail of the vLLM container's log, fetched over SSH."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class HealOffer(Message):
    """vLLM's log named a failure and a remedy exists (`proposal.config`): ask before applying it."""

    def __init__(self, proposal: HealProposal) -> None:
        super().__init__()
        self.proposal = proposal


# --- requests: a screen asks, the app does ---------------------------------------------------------

class LaunchRequested(Message):
    """Launch `plan` on the provisioning screen."""

    def __init__(self, plan: LaunchPlan) -> None:
        super().__init__()
        self.plan = plan


class DashboardRequested(Message):
    """Show the dashboard of session `name`."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


class ResumeRequested(Message):
    """Offer to carry on the interrupted or failed launch of `record` from its stage."""

    def __init__(self, record: SessionRecord) -> None:
        super().__init__()
        self.record = record


class DestroyRequested(Message):
    """Destroy session `name` ("orphan:<id>" for an orphan VM); with `ask`, confirm first. `leave`:
    the screen that asked, closed once the VM is gone (if it is still the one shown)."""

    def __init__(self, name: str, *, ask: bool = True, leave: Screen | None = None) -> None:
        super().__init__()
        self.name, self.ask, self.leave = name, ask, leave


class AdoptRequested(Message):
    """Make `orphan` a session."""

    def __init__(self, orphan: Orphan) -> None:
        super().__init__()
        self.orphan = orphan


class CleanUpRequested(Message):
    """Check the account's VMs against the sessions and offer to destroy the orphans."""


class AccountCheckRequested(Message):
    """Check the Linode account again (a token was just entered)."""


class BenchmarksRequested(Message):
    """Show the comparison table of every benchmark run."""


class RecommendRequested(Message):
    """Show the recommend form."""


class BenchmarkRunRequested(Message):
    """Open the run-benchmark dialog for live session `name` (`options` go to BenchRunScreen)."""

    def __init__(self, name: str, **options: Any) -> None:
        super().__init__()
        self.name, self.options = name, options


class ValidationRequested(Message):
    """Show the validation screen of session `name` (see MaiderApp.open_validation)."""

    def __init__(self, name: str, *, full: bool = False,
                 run_options: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.name, self.full, self.run_options = name, full, run_options


class BenchmarksChanged(Message):
    """A benchmark run was stored: every open comparison screen reads the runs again."""
