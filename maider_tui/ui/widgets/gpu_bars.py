"""The GPUs panel: per GPU a memory bar, utilisation with a sparkline, temperature and power.

Rows are made once per GPU and then patched in place for every sample: nothing is mounted or
removed per tick, so a 1 Hz stream costs two repaints per GPU.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Static

from ...remote.gpu import GpuSample, GpuSnapshot
from .patch import patch

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


class MemoryBar(Widget):
    """A horizontal bar that fills the width it is given; colour by how full the GPU is."""

    DEFAULT_CSS = """
    MemoryBar { height: 1; width: 1fr; min-width: 6; color: $success; }
    MemoryBar.-warning { color: $warning; }
    MemoryBar.-error { color: $error; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.pct: float | None = None

    def set_pct(self, pct: float | None) -> None:
        if pct == self.pct:
            return
        self.pct = pct
        level = memory_level(pct)
        self.set_class(level == "warning", "-warning")
        self.set_class(level == "error", "-error")
        self.refresh()

    def render(self) -> Text:
        filled, empty = bar_cells(self.pct, self.size.width)
        return Text.assemble(("█" * filled, ""), ("░" * empty, "dim"))


class UtilSpark(Widget):
    """The utilisation of the last minute, as many samples as the width shows, on a 0-100% scale."""

    DEFAULT_CSS = """
    UtilSpark { height: 1; width: 1fr; min-width: 4; color: $accent; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.values: tuple[float | None, ...] = ()

    def set_values(self, values: Sequence[float | None]) -> None:
        values = tuple(values)
        if values == self.values:
            return
        self.values = values
        self.refresh()

    def render(self) -> Text:
        return Text(spark(self.values, self.size.width))


class GpuRow(Vertical):
    """Two lines for one GPU: name, memory bar and numbers; utilisation, sparkline, temperature, power."""

    DEFAULT_CSS = """
    GpuRow { height: 2; }
    GpuRow > Horizontal { height: 1; }
    GpuRow .gpu-name { width: 18; }
    GpuRow .gpu-mem { width: auto; padding-left: 1; }
    GpuRow .gpu-util { width: 12; padding-left: 2; }
    GpuRow .gpu-heat { width: auto; padding-left: 1; }
    """

    def __init__(self, index: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.index = index
        self._sample: GpuSample | None = None
        self._history: Sequence[float | None] = ()

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Static(f"{self.index} …", classes="gpu-name", markup=False)
            yield MemoryBar()
            yield Static("", classes="gpu-mem", markup=False)
        with Horizontal():
            yield Static("util —", classes="gpu-util", markup=False)
            yield UtilSpark()
            yield Static("", classes="gpu-heat", markup=False)

    def on_mount(self) -> None:
        self._apply()

    def show(self, sample: GpuSample, history: Sequence[float | None]) -> None:
        """Patch this row with the newest sample and the utilisation history."""
        self._sample, self._history = sample, history
        if self.is_mounted and self.children:
            self._apply()

    def _apply(self) -> None:
        sample = self._sample
        if sample is None:
            return
        name = sample.name.replace("NVIDIA ", "").replace("Generation", "").strip()
        patch(self.query_one(".gpu-name", Static), f"{sample.index} {name}"[:18])
        self.query_one(MemoryBar).set_pct(sample.memory_pct)
        patch(self.query_one(".gpu-mem", Static), memory_text(sample))
        patch(self.query_one(".gpu-util", Static), f"util {_num(sample.utilization_pct, '3.0f', '%')}")
        self.query_one(UtilSpark).set_values(self._history)
        heat = f"{_num(sample.temperature_c, '.0f', '°C')}  {_num(sample.power_w, '.0f', ' W')}"
        patch(self.query_one(".gpu-heat", Static), heat)


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
