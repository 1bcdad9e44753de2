"""Leaving with VMs still running: keep them watched in the background, destroy them all, or stay."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from ...words import plural

if TYPE_CHECKING:
    from maider_tui.ops.views import SessionRecord
    from maider_tui.ops.watchdog import Watchdog
    from maider_tui.settings import WatchdogSettings


def _minutes(seconds: float) -> str:
    return f"{max(1, round(seconds / 60))} min"


def session_fate(record: SessionRecord, watchdog: Watchdog | None, settings: WatchdogSettings) -> str:
    """What becomes of a session's VM once the app is gone, in a few words."""
    from ...ops.watchdog import is_kept, kept_minutes, session_minutes

    if not settings.enabled:
        return "runs until you destroy it"
    if watchdog is not None and watchdog.state not in ("stopped", "destroyed"):
        if watchdog.kept:
            return f"destroyed in {_minutes(watchdog.remaining_s)} (kept)"
        return f"destroyed after {watchdog.timeout_minutes} min idle"
    if is_kept(record):
        return f"destroyed {kept_minutes(record, settings)} min after kept"
    return f"destroyed after {session_minutes(record, settings)} min idle"


def orphan_fate(remaining_s: float | None, settings: WatchdogSettings, elsewhere: bool = False) -> str:
    """What becomes of an orphan VM once the app is gone."""
    if elsewhere:
        return "left to the maider-tui that made it (another machine or data folder)"
    if not settings.enabled:
        return "runs until you destroy it"
    if remaining_s is None:
        return f"destroyed {max(settings.timeout_minutes, settings.inspect_minutes)} min after found"
    return f"destroyed in {_minutes(remaining_s)}"


class QuitDialog(ModalScreen[str]):
    """Answers "keep", "destroy" or "cancel"."""

    DEFAULT_CSS = """
    QuitDialog {
        align: center middle;
    }
    QuitDialog > Vertical {
        width: 100;
        max-width: 95%;
        height: auto;
        border: thick $warning;
        background: $panel;
        padding: 1 2;
    }
    QuitDialog #title {
        text-style: bold;
        margin-bottom: 1;
    }
    QuitDialog #live {
        color: $text;
        margin-bottom: 1;
    }
    QuitDialog Static {
        width: 100%;
    }
    QuitDialog Horizontal {
        height: auto;
        margin-top: 1;
        align-horizontal: right;
    }
    QuitDialog Button {
        margin-left: 1;
    }
    """

    BINDINGS = [
        Binding("k", "answer('keep')", "Keep watched", id="quit.keep",
                tooltip="Quit; a background watcher keeps the idle watchdog running"),
        Binding("D", "answer('destroy')", "Destroy all", id="quit.destroy",
                tooltip="Destroy every live VM, then quit"),
        Binding("escape", "answer('cancel')", "Cancel", id="quit.cancel", tooltip="Stay in the app"),
    ]

    def __init__(self, live: list[tuple[str, float, str]], note: str) -> None:
        """`live`: every VM that bills (sessions and orphans) as (name, $/h, what becomes of it);
        `note`: what keeping them means here, truthfully (watched in the background, or not)."""
        super().__init__()
        self._live = live
        self._note = note

    def compose(self) -> ComposeResult:
        total = sum(rate for _, rate, _ in self._live)
        lines = "\n".join(f"  {name[:24]:<24} {f'${rate:.2f}/h':>8}  {fate}" for name, rate, fate in self._live)
        with Vertical():
            yield Static(f"{plural(len(self._live), 'VM')} still running · ${total:.2f}/h", id="title", markup=False)
            yield Static(lines, id="live", markup=False)
            yield Static(self._note, id="note", markup=False)
            with Horizontal():
                yield Button("Cancel (esc)", id="cancel")
                yield Button("Destroy all (D)", id="destroy", variant="error")
                yield Button("Keep watched (k)", id="keep", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id or "cancel")

    def action_answer(self, answer: str) -> None:
        self.dismiss(answer)
