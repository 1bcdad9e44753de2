"""Leaving with VMs still running: keep them watched in the background, destroy them all, or stay."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class QuitDialog(ModalScreen[str]):
    """Answers "keep", "destroy" or "cancel"."""

    DEFAULT_CSS = """
    QuitDialog {
        align: center middle;
    }
    QuitDialog > Vertical {
        width: 76;
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

    def __init__(self, live: list[tuple[str, float]]) -> None:
        super().__init__()
        self._live = live

    def compose(self) -> ComposeResult:
        total = sum(rate for _, rate in self._live)
        lines = "\n".join(f"  {name:<34} ${rate:.2f}/h" for name, rate in self._live)
        with Vertical():
            yield Static(f"{len(self._live)} VM(s) still running · ${total:.2f}/h", id="title", markup=False)
            yield Static(lines, id="live", markup=False)
            yield Static("Keep them watched in the background (the idle watchdog goes on destroying "
                         "forgotten VMs), destroy them all, or stay?", markup=False)
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
