"""The wizard's one-line header: where the user is and what each done step chose."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static


@dataclass(frozen=True)
class StepMark:
    """One step as the header shows it: its title and, once done, what was chosen."""

    title: str
    chosen: str = ""


def render_steps(steps: list[StepMark], current: int, *, titles: bool = True) -> Text:
    """"✓ Capability 30B–32B › ✓ Region us-ord Chicago › ● GPU type › Model › Review";
    without `titles`, a done step that chose something shows only its choice: "✓ 30B–32B › …"."""
    text = Text()
    for index, step in enumerate(steps):
        if index:
            text.append(" › ", style="dim")
        if index < current:
            text.append("✓ ", style="bold")
            if titles or not step.chosen:
                text.append(step.title)
            if step.chosen:
                text.append(f" {step.chosen}" if titles else step.chosen, style="bold")
        elif index == current:
            text.append(f"● {step.title}", style="bold reverse")
        else:
            text.append(step.title, style="dim")
    return text


class StepsHeader(Static):
    """Shows the steps with done ✓, current ● and the ones still ahead dimmed."""

    DEFAULT_CSS = """
    StepsHeader {
        height: auto;
        padding: 0 1;
        color: $foreground;
    }
    """

    shown: tuple[list[StepMark], int] | None = None

    def show(self, steps: list[StepMark], current: int) -> None:
        """Redraw for `current` (0-based); done steps carry their choice, and their titles while the
        line fits the width (a narrow terminal keeps one line of choices rather than wrap mid-title)."""
        self.shown = (steps, current)
        text = render_steps(steps, current)
        width = self.content_size.width
        if width and text.cell_len > width:
            text = render_steps(steps, current, titles=False)
        self.update(text)

    def on_resize(self) -> None:
        if self.shown is not None:
            self.show(*self.shown)
