"""The GPUs panel: per GPU a memory bar, utilisation with a sparkline, temperature and power.

Rows are made once per GPU and then patched in place for every sample: nothing is mounted or
removed per tick, and only the lines whose text changed repaint.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.widget import Widget

from ...remote.gpu import GpuSample, GpuSnapshot

WARN_PCT = 85.0  # vLLM preallocates ~90%: above 85 is normal under load, worth a glance
ERROR_PCT = 95.0  # above 95 the next long prompt may not find room for its KV cache
HISTORY = 60  # samples in the sparkline: one minute at 1 Hz
SPARK = "▁▂▃▄▅▆▇█"
DIM = Style(dim=True)


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


@lru_cache(maxsize=4096)
def _spark_char(value: float | None, top: float) -> str:
    if value is None:
        return " "
    level = min(1.0, max(0.0, value / top)) if top else 0.0
    return SPARK[min(len(SPARK) - 1, int(level * (len(SPARK) - 1) + 0.5))]


def spark(values: Sequence[float | None], width: int, top: float = 100.0) -> str:
    """The last `width` values as block characters on a fixed 0..top scale (None draws a space)."""
    shown = list(values)[-width:] if width > 0 else []
    # Utilisation takes few distinct values (whole percents): each one's character is worked out once.
    return "".join([_spark_char(value, top) for value in shown])


def _num(value: float | None, fmt: str, unit: str = "") -> str:
    return "—" if value is None else f"{value:{fmt}}{unit}"


def memory_text(sample: GpuSample) -> str:
    """"17.9/20.0 GB  90%"."""
    used, total, pct = sample.memory_used_gb, sample.memory_total_gb, sample.memory_pct
    return f"{_num(used, '.1f')}/{_num(total, '.1f')} GB {_num(pct, '3.0f', '%')}"


# (name, memory %, memory text, utilisation text, utilisation history, heat text) as one row draws them
RowTexts = tuple[str, float | None, str, str, tuple[float | None, ...], str]


def placeholder(index: int) -> RowTexts:
    """What a GPU's row shows before its first sample."""
    return f"{index} …", None, "", "util —", (), ""


def row_texts(sample: GpuSample, history: Sequence[float | None], per_node: int | None = None) -> RowTexts:
    """What a GPU's row shows for `sample`; equal texts draw the same lines. `per_node`: a session over
    several VMs, whose rows read "vm1 0 …" (VM 1's GPU 0), grouped VM by VM."""
    name = sample.name.replace("NVIDIA ", "").replace("Generation", "").strip()
    heat = f"{_num(sample.temperature_c, '.0f', '°C')}  {_num(sample.power_w, '.0f', ' W')}"
    where = (f"vm{sample.index // per_node} {sample.index % per_node}" if per_node else str(sample.index))
    return (f"{where} {name or '(no reading)'}"[:18], sample.memory_pct, memory_text(sample),
            f"util {_num(sample.utilization_pct, '3.0f', '%')}", tuple(history), heat)


class GpuBars(Widget):
    """The GPUs panel's content: two lines per GPU, drawn through Textual's line API.

    One widget for every GPU, with no markup to parse: a sample builds each changed line from plain
    segments, and only the lines that changed are repainted. A 1 Hz stream of 8 GPUs then costs about
    what one small label redrawn each second costs, where a widget per row cost several times that.
    Rows are made once per GPU; a snapshot with more GPUs than the plan said adds rows.
    """

    COMPONENT_CLASSES = {"gpu-bars--waiting", "gpu-bars--ok", "gpu-bars--warning", "gpu-bars--error",
                         "gpu-bars--spark"}
    DEFAULT_CSS = """
    GpuBars { height: auto; }
    GpuBars > .gpu-bars--waiting { color: $text-muted; }
    GpuBars > .gpu-bars--ok { color: $success; }
    GpuBars > .gpu-bars--warning { color: $warning; }
    GpuBars > .gpu-bars--error { color: $error; }
    GpuBars > .gpu-bars--spark { color: $accent; }
    """
    WAITING = "waiting for nvidia-smi …"
    NAME_WIDTH = 18  # the name column; the utilisation column is as wide (2 of padding, then 10)
    UTIL_WIDTH = 12
    MIN_BAR, MIN_SPARK = 6, 4

    def __init__(self, gpu_count: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.waiting = True
        # What each row shows, by GPU index, in the order drawn; a row waiting for its first sample
        # shows only its index.
        self.rows: dict[int, RowTexts] = {index: placeholder(index) for index in range(max(1, gpu_count))}
        self._lines: dict[int, Strip] = {}  # drawn lines by y, for this width and theme
        self._drawn_for: tuple[int, str] | None = None
        self._styles: dict[str, Style] = {}

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return int(self.waiting) + 2 * len(self.rows)

    def show(self, snapshot: GpuSnapshot, histories: Sequence[Sequence[float | None]]) -> None:
        """Patch the rows from one snapshot; histories[i] is GPU i's utilisation history."""
        layout = self.waiting
        self.waiting = False
        changed: list[tuple[int, RowTexts | None]] = []  # (GPU index, what its row showed before)
        for position, sample in enumerate(snapshot.gpus):
            history = histories[position] if position < len(histories) else ()
            texts = row_texts(sample, history, snapshot.per_node)
            layout = layout or sample.index not in self.rows
            before = self.rows.get(sample.index)
            if before != texts:
                self.rows[sample.index] = texts
                changed.append((sample.index, before))
        if layout:  # another number of lines: lay out again and draw everything anew
            self._lines.clear()
            self.refresh(layout=True)
            return
        order = list(self.rows)
        width = self.size.width
        regions = []
        for index, before in changed:
            top = 2 * order.index(index)
            after = self.rows[index]
            # The memory line (name, memory %, memory text) rarely changes; the utilisation line
            # (utilisation, its history, heat) changes with every sample: repaint only what differs.
            for y, line in ((top, slice(0, 3)), (top + 1, slice(3, 6))):
                if before is None or before[line] != after[line]:
                    self._lines.pop(y, None)
                    regions.append(Region(0, y, width, 1))
        if regions:
            self.refresh(*regions)  # one refresh for all: each costs about as much as a line's region

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if self._drawn_for != (width, self.app.theme):
            self._drawn_for = (width, self.app.theme)
            self._lines.clear()
            self._styles.clear()
        strip = self._lines.get(y)
        if strip is None:
            strip = self._lines[y] = self._draw(y, width)
        return strip

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._drawn_for = None  # the colours may have changed: every line is drawn anew

    def _style(self, component: str = "") -> Style:
        """The widget's style, with `component`'s on top; looked up once per width, theme and CSS."""
        if component not in self._styles:
            base = self.rich_style
            self._styles[component] = base + self.get_component_rich_style(component, partial=True) if component else base
        return self._styles[component]

    def _draw(self, y: int, width: int) -> Strip:
        base = self._style()
        if self.waiting:
            if y == 0:
                waiting = Segment(self.WAITING, self._style("gpu-bars--waiting"))
                return Strip([waiting]).crop_extend(0, width, base)
            y -= 1
        rows = list(self.rows.values())
        if y // 2 >= len(rows):
            return Strip.blank(width, base)
        name, pct, mem, util, history, heat = rows[y // 2]
        if y % 2 == 0:
            mem = f" {mem}"  # each column keeps one cell of padding on its left
            bar = max(self.MIN_BAR, width - self.NAME_WIDTH - cell_len(mem))
            filled, empty = bar_cells(pct, bar)
            bar_style = self._style(f"gpu-bars--{memory_level(pct)}")
            segments = [Segment(name.ljust(self.NAME_WIDTH)[:self.NAME_WIDTH], base),
                        Segment("█" * filled, bar_style), Segment("░" * empty, bar_style + DIM), Segment(mem, base)]
        else:
            heat = f" {heat}"
            spark_width = max(self.MIN_SPARK, width - self.UTIL_WIDTH - cell_len(heat))
            segments = [Segment(f"  {util}".ljust(self.UTIL_WIDTH)[:self.UTIL_WIDTH], base),
                        Segment(spark(history, spark_width).ljust(spark_width), self._style("gpu-bars--spark")),
                        Segment(heat, base)]
        return Strip(segments).crop_extend(0, width, base)
