"""Horizontal bars, one per labelled value: where looking beats reading (tok/s or efficiency per config)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Static

# Eighth blocks give the bar's end sub-cell resolution, so close values still look different.
EIGHTHS = " ▏▎▍▌▋▊▉"


def bar(value: float, top: float, width: int) -> str:
    """A bar of `value` out of `top` drawn in `width` cells with eighth-block precision."""
    if top <= 0 or width <= 0 or value <= 0:
        return ""
    eighths = round(min(1.0, value / top) * width * 8)
    full, rest = divmod(eighths, 8)
    return "█" * full + (EIGHTHS[rest] if rest else "")


class BarChart(Static):
    """`set_bars([(label, value), ...])` draws one bar per label, scaled to the largest value."""

    DEFAULT_CSS = """
    BarChart {
        height: auto;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", id=id, classes=classes, markup=False)
        self.bars: list[tuple[str, float | None]] = []
        self.number_format = "{:.1f}"

    def set_bars(self, bars: Sequence[tuple[str, float | None]], number_format: str = "{:.1f}") -> None:
        """Replace the bars; a None value is drawn as "—" (no figure for that configuration)."""
        self.bars = list(bars)
        self.number_format = number_format
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        if not self.bars:
            self.update("")
            return
        label_w = min(max(len(label) for label, _ in self.bars), 28)
        numbers = [self.number_format.format(v) if v is not None else "—" for _, v in self.bars]
        number_w = max(len(n) for n in numbers)
        width = max(4, (self.content_region.width or 60) - label_w - number_w - 3)
        top = max((v for _, v in self.bars if v is not None), default=0.0)
        text = Text(no_wrap=True, overflow="ellipsis")
        for i, ((label, value), number) in enumerate(zip(self.bars, numbers)):
            if i:
                text.append("\n")
            text.append(label[:label_w].ljust(label_w) + " ")
            drawn = bar(value or 0.0, top, width)
            text.append(drawn, style="bold")
            text.append(" " + number)
        self.update(text)
