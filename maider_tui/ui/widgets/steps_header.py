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


def render_steps(steps: list[StepMark], current: int) -> Text:
    """"✓ Capability 30B–32B › ✓ Region us-ord Chicago › ● GPU type › Model › Review"."""
    text = Text()
    for index, step in enumerate(steps):
        if index:
            text.append(" › ", style="dim")
        if index < current:
            text.append("✓ ", style="bold")
            text.append(step.title)
            if step.chosen:
                text.append(f" {step.chosen}", style="bold")
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

    def show(self, steps: list[StepMark], current: int) -> None:
        """Redraw for `current` (0-based); done steps carry their choice."""
        self.update(render_steps(steps, current))
