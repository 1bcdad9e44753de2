"""The GPUs panel: per GPU a memory bar, utilisation with a sparkline, temperature and power.

Rows are made once per GPU and then patched in place for every sample: nothing is mounted or
removed per tick, and a row repaints only when what it shows changed.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Static

from ...remote.gpu import GpuSample, GpuSnapshot

WARN_PCT = 85.0  # vLLM preallocates ~90%: above 85 is normal under load, worth a glance
ERROR_PCT = 95.0  # above 95 the next long prompt may not find room for its KV cache
HISTORY = 60  # samples in the sparkline: one minute at 1 Hz
SPARK = "▁▂▃▄▅▆▇█"


def memory_level(pct: float | None) -> str:
    """"ok", "warning" or "error": the colour class of a memory bar at `pct` percent used."""
    if pct is None or pct <= WARN_PCT:
        return "ok"
    return "warning" if pct <= ERROR_PCT else "error"


def bar_cells(pct: float | None, width: int) -> tuple[int, int]:
    """(filled, empty) cells of a `width`-cell bar at `pct` percent; unknown draws empty."""
    width = max(0, width)
    if pct is None:
        return 0, width
    filled = round(width * min(100.0, max(0.0, pct)) / 100.0)
    return filled, width - filled


def spark(values: Sequence[float | None], width: int, top: float = 100.0) -> str:
    """The last `width` values as block characters on a fixed 0..top scale (None draws a space)."""
    shown = list(values)[-width:] if width > 0 else []
    out = []
    for value in shown:
        if value is None:
            out.append(" ")
            continue
        level = min(1.0, max(0.0, value / top)) if top else 0.0
        out.append(SPARK[min(len(SPARK) - 1, int(level * (len(SPARK) - 1) + 0.5))])
    return "".join(out)


def _num(value: float | None, fmt: str, unit: str = "") -> str:
    return "—" if value is None else f"{value:{fmt}}{unit}"


def memory_text(sample: GpuSample) -> str:
    """"17.9/20.0 GB  90%"."""
    used, total, pct = sample.memory_used_gb, sample.memory_total_gb, sample.memory_pct
    return f"{_num(used, '.1f')}/{_num(total, '.1f')} GB {_num(pct, '3.0f', '%')}"


class GpuRow(Widget):
    """Two lines for one GPU: name, memory bar and numbers; utilisation, sparkline, temperature, power.

    One widget drawing both lines (not a Static per number): a 1 Hz stream of 8 GPUs then repaints
    8 widgets a second, not 40 and their containers.
    """

    COMPONENT_CLASSES = {"gpu-row--ok", "gpu-row--warning", "gpu-row--error", "gpu-row--spark"}
    DEFAULT_CSS = """
    GpuRow { height: 2; }
    GpuRow > .gpu-row--ok { color: $success; }
    GpuRow > .gpu-row--warning { color: $warning; }
    GpuRow > .gpu-row--error { color: $error; }
    GpuRow > .gpu-row--spark { color: $accent; }
    """
    NAME_WIDTH = 18  # the name column; the utilisation column is as wide (2 of padding, then 10)
    UTIL_WIDTH = 12
    MIN_BAR, MIN_SPARK = 6, 4

    def __init__(self, index: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.index = index
        self._sample: GpuSample | None = None
        self._history: tuple[float | None, ...] = ()
        self._drawn: tuple | None = None  # what the last repaint showed, so equal samples cost nothing
        self._styles: dict[tuple[str, str], Style] = {}

    def show(self, sample: GpuSample, history: Sequence[float | None]) -> None:
        """Patch this row with the newest sample and the utilisation history."""
        self._sample, self._history = sample, tuple(history)
        shown = self._texts()
        if shown != self._drawn:
            self._drawn = shown
            self.refresh()

    def _texts(self) -> tuple[str, float | None, str, str, tuple[float | None, ...], str]:
        """(name, memory %, memory text, utilisation text, history, heat text) as drawn."""
        sample = self._sample
        if sample is None:
            return f"{self.index} …", None, "", "util —", (), ""
        name = sample.name.replace("NVIDIA ", "").replace("Generation", "").strip()
        heat = f"{_num(sample.temperature_c, '.0f', '°C')}  {_num(sample.power_w, '.0f', ' W')}"
        return (f"{sample.index} {name}"[:18], sample.memory_pct, memory_text(sample),
                f"util {_num(sample.utilization_pct, '3.0f', '%')}", self._history, heat)

    def _style(self, component: str) -> Style:
        # Textual forgets component styles at every repaint: keep them until the theme changes.
        key = (component, self.app.theme)
        if key not in self._styles:
            self._styles[key] = self.get_component_rich_style(component, partial=True)
        return self._styles[key]

    def render(self) -> Text:
        name, pct, mem, util, history, heat = self._texts()
        width = self.size.width
        mem, heat = f" {mem}", f" {heat}"  # each column keeps one cell of padding on its left
        bar = max(self.MIN_BAR, width - self.NAME_WIDTH - cell_len(mem))
        filled, empty = bar_cells(pct, bar)
        bar_style = self._style(f"gpu-row--{memory_level(pct)}")
        spark_width = max(self.MIN_SPARK, width - self.UTIL_WIDTH - cell_len(heat))
        first = Text.assemble(name.ljust(self.NAME_WIDTH)[:self.NAME_WIDTH], ("█" * filled, bar_style),
                              ("░" * empty, bar_style + Style(dim=True)), mem)
        second = Text.assemble(f"  {util}".ljust(self.UTIL_WIDTH)[:self.UTIL_WIDTH],
                               (spark(history, spark_width).ljust(spark_width),
                                self._style("gpu-row--spark")), heat)
        for line in (first, second):
            line.truncate(width)
        return Text("\n").join([first, second])


class GpuBars(Vertical):
    """One GpuRow per GPU; rows are added only when a snapshot shows more GPUs than before."""

    DEFAULT_CSS = """
    GpuBars { height: auto; }
    GpuBars > #gpu-waiting { color: $text-muted; }
    """

    def __init__(self, gpu_count: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.gpu_count = max(1, gpu_count)

    def compose(self) -> ComposeResult:
        yield Static("waiting for nvidia-smi …", id="gpu-waiting", markup=False)
        for index in range(self.gpu_count):
            yield GpuRow(index, id=f"gpu-{index}")

    def show(self, snapshot: GpuSnapshot, histories: Sequence[Sequence[float | None]]) -> None:
        """Patch every row from one snapshot; histories[i] is GPU i's utilisation history."""
        waiting = self.query_one("#gpu-waiting")
        if waiting.display:
            waiting.display = False
        rows = {row.index: row for row in self.query(GpuRow)}
        for position, sample in enumerate(snapshot.gpus):
            row = rows.get(sample.index)
            if row is None:  # more GPUs than the plan said: add a row once, then patch it like the rest
                row = GpuRow(sample.index, id=f"gpu-{sample.index}")
                rows[sample.index] = row
                self.mount(row)
            history = histories[position] if position < len(histories) else ()
            row.show(sample, history)
