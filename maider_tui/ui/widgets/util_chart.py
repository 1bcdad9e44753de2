"""Per-GPU utilisation as one row of blocks each, on a fixed 0–100% scale: 91% always draws near the top."""

from __future__ import annotations

from collections.abc import Sequence

from textual.widgets import Static

LEVELS = " ▁▂▃▄▅▆▇█"  # a blank cell is an idle GPU; any work at all draws at least the lowest block
IDLE_PCT = 10.0  # under this a GPU under load looks idle: drawn in the warning colour


def spark(values: Sequence[float], width: int, top: float = 100.0) -> str:
    """`values` as one block per cell scaled 0..`top`; more values than `width` share a cell (its max)."""
    if not values or width <= 0:
        return ""
    if len(values) > width:  # cell i takes values[i*n//width : (i+1)*n//width], never empty when n > width
        n = len(values)
        values = [max(values[i * n // width:(i + 1) * n // width]) for i in range(width)]
    cells = []
    for value in values:
        level = round(min(max(value, 0.0), top) / top * (len(LEVELS) - 1)) if top > 0 else 0
        cells.append(LEVELS[max(level, 1) if value > 0 else 0])
    return "".join(cells)


class UtilChart(Static):
    """`set_rows(rows)` with rows of (time, % per GPU): a `GPUn` label, the blocks, then min–max."""

    DEFAULT_CSS = """
    UtilChart {
        height: auto;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", id=id, classes=classes)
        self.rows: list[tuple[float, tuple[float, ...]]] = []

    def set_rows(self, rows: Sequence[tuple[float, tuple[float, ...]]]) -> None:
        self.rows = list(rows)
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        count = len(self.rows[0][1]) if self.rows else 0
        lines = []
        for i in range(count):
            values = [row[i] if i < len(row) else 0.0 for _, row in self.rows]
            label = f"{min(values):.0f}–{max(values):.0f}%"
            width = max(4, (self.content_region.width or 60) - 6 - len(label) - 2)
            colour = "$warning" if max(values) < IDLE_PCT else "$success"
            lines.append(f"GPU{i:<2} [{colour}]{spark(values, width)}[/]  [dim]{label}[/]")
        self.update("\n".join(lines))
