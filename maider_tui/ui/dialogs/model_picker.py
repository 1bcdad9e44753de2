"""Pick a model to switch a session to: only models that fit its GPUs, each with its planned context."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from ...catalog import context_label
from ...models import FitReport


def option_label(report: FitReport, current: str | None = None) -> str:
    """"Qwen/Qwen2.5-Coder-14B-Instruct-AWQ   TP 2 · 32K context" (and "(serving)" for the current)."""
    context = context_label(report.max_model_len) if report.max_model_len else "?"
    mark = "  (serving)" if report.model.id == current else ""
    return f"{report.model.id}   TP {report.tensor_parallel_size} · {context} context{mark}"


class ModelPickerDialog(ModalScreen[str | None]):
    """Returns the chosen model id, or None when cancelled."""

    DEFAULT_CSS = """
    ModelPickerDialog { align: center middle; }
    ModelPickerDialog > Vertical {
        width: 90; max-width: 95%; height: auto; max-height: 80%;
        border: thick $primary; background: $panel; padding: 1 2;
    }
    ModelPickerDialog #picker-title { text-style: bold; margin-bottom: 1; }
    ModelPickerDialog OptionList { height: auto; max-height: 20; }
    ModelPickerDialog #picker-help { color: $text-muted; margin-top: 1; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="picker.cancel", tooltip="Keep the current model"),
    ]

    def __init__(self, reports: Sequence[FitReport], *, gpu_label: str, current: str | None = None) -> None:
        super().__init__()
        self.reports = tuple(reports)
        self.gpu_label = gpu_label
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"Switch model · models that fit {self.gpu_label}", id="picker-title", markup=False)
            options = [Option(option_label(r, self.current), id=r.model.id) for r in self.reports]
            yield OptionList(*options, id="models")
            yield Static("enter switch · escape cancel · the old model comes back if the new one fails",
                         id="picker-help", markup=False)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
