"""GPU telemetry from `nvidia-smi --query-gpu=... --format=csv[,noheader][,nounits]`.

Parsing is pure and forgiving: telemetry is a gauge on a dashboard, so one odd line must never stop
the stream. `TelemetryReader` turns the line stream of `nvidia-smi -lms` into one snapshot per tick.
"""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass

from maider_tui.clock import Clock, SystemClock

QUERY_FIELDS: tuple[str, ...] = (
    "index", "name", "memory.used", "memory.total", "utilization.gpu", "temperature.gpu", "power.draw",
)

# nvidia-smi field name (or alias) -> GpuSample attribute. `gpu_name` is the documented alias of `name`.
_FIELD_TO_ATTR: dict[str, str] = {
    "index": "index",
    "name": "name",
    "gpu_name": "name",
    "memory.used": "memory_used_mib",
    "memory.total": "memory_total_mib",
    "utilization.gpu": "utilization_pct",
    "temperature.gpu": "temperature_c",
    "power.draw": "power_w",
}
# Some drivers report `[N/A]` for power.draw but still fill these in; used only as a fallback.
_POWER_FALLBACKS = ("power.draw.instant", "power.draw.average")

_HEADER_CELL = re.compile(r"^[A-Za-z_][\w.]*(?:\s*\[[^\]]*\])?$")
_NUMBER = re.compile(r"^([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)(?:\s*[A-Za-z%]+)?$")


@dataclass(frozen=True)
class GpuSample:
    """One GPU at one instant. Numeric fields are None where the GPU reports no value."""

    index: int
    name: str
    memory_used_mib: float | None = None
    memory_total_mib: float | None = None
    utilization_pct: float | None = None
    temperature_c: float | None = None
    power_w: float | None = None

    @property
    def memory_used_gb(self) -> float | None:
        """Used memory in GiB (MiB / 1024), the unit nvidia-smi and model cards mean by "GB"."""
        return None if self.memory_used_mib is None else self.memory_used_mib / 1024

    @property
    def memory_total_gb(self) -> float | None:
        """Total memory in GiB."""
        return None if self.memory_total_mib is None else self.memory_total_mib / 1024

    @property
    def memory_pct(self) -> float | None:
        """Used memory as a percentage of total, or None when either is unknown."""
        if self.memory_used_mib is None or not self.memory_total_mib:
            return None
        return 100.0 * self.memory_used_mib / self.memory_total_mib


@dataclass(frozen=True)
class GpuSnapshot:
    """Every GPU of the VM at one sampling tick; `timestamp` is the injected clock's `now()`."""

    timestamp: float
    gpus: tuple[GpuSample, ...]
    per_node: int | None = None  # a session over several VMs: GPUs a VM; GPU i is on VM i // per_node

    @property
    def memory_used_mib(self) -> float:
        """Memory used across all GPUs that report it."""
        return sum(g.memory_used_mib or 0.0 for g in self.gpus)

    @property
    def memory_total_mib(self) -> float:
        """Memory across all GPUs that report it."""
        return sum(g.memory_total_mib or 0.0 for g in self.gpus)


def nvidia_smi_command(interval_ms: int = 1000, fields: Sequence[str] = QUERY_FIELDS) -> str:
    """The remote command that streams one csv row per GPU every `interval_ms` milliseconds."""
    return f"nvidia-smi --query-gpu={','.join(fields)} --format=csv,noheader,nounits -lms {int(interval_ms)}"


def _field_key(cell: str) -> str:
    """`memory.used [MiB]` -> `memory.used`: header names map with or without their unit suffix."""
    return re.sub(r"\s*\[[^\]]*\]\s*$", "", cell.strip()).strip().lower()


def _number(cell: str) -> float | None:
    """`1234 MiB`, `45 %`, `70.12 W`, `37` -> float; `[N/A]`, `N/A`, `[Not Supported]`, `` -> None."""
    text = cell.strip()
    whole, dot, fraction = text.partition(".")
    if whole.isascii() and whole.isdigit() and (not dot or (fraction.isascii() and fraction.isdigit())):
        return float(text)  # plain digits (`nounits`, every cell of a streamed sample): no pattern to run
    match = _NUMBER.match(text)
    if not match:
        return None
    value = float(match.group(1))
    return value if math.isfinite(value) else None


def _is_header(cells: Sequence[str]) -> bool:
    # A header is all field-shaped words and names at least one field we know; a row of data always has
    # a number, a spaced GPU name or a bracketed [N/A] that a header cannot.
    if not all(_HEADER_CELL.match(c.strip()) for c in cells):
        return False
    keys = {_field_key(c) for c in cells}
    return bool(keys & (set(_FIELD_TO_ATTR) | set(_POWER_FALLBACKS)))


class GpuCsvParser:
    """Stateful line parser: remembers the latest header so a streamed csv keeps its columns."""

    def __init__(self, fields: Sequence[str] | None = None) -> None:
        self._columns = tuple(_field_key(f) for f in (fields or QUERY_FIELDS))
        self._row = 0  # position since the last header, the index when no `index` column exists

    def feed(self, line: str) -> GpuSample | None:
        """Parse one line; returns a sample, or None for blank, header and malformed lines."""
        text = line.strip().lstrip("\ufeff")
        if not text:
            return None
        cells = [c.strip() for c in text.split(",")]
        if _is_header(cells):
            self._columns = tuple(_field_key(c) for c in cells)
            self._row = 0
            return None
        if len(cells) != len(self._columns):
            return None
        sample = self._sample(dict(zip(self._columns, cells)))
        if sample is not None:
            self._row += 1
        return sample

    def _sample(self, row: dict[str, str]) -> GpuSample | None:
        if "index" in row:
            index_value = _number(row["index"])
            if index_value is None or index_value < 0 or index_value != int(index_value):
                return None
            index = int(index_value)
        else:
            index = self._row
        name = row.get("name", row.get("gpu_name", "")).strip()
        if name.startswith("[") and name.endswith("]"):
            name = ""
        values: dict[str, float | None] = {}
        for field, attr in _FIELD_TO_ATTR.items():
            if attr in ("index", "name") or field not in row:
                continue
            values[attr] = _number(row[field])
        if values.get("power_w") is None:
            for field in _POWER_FALLBACKS:
                if field in row and (power := _number(row[field])) is not None:
                    values["power_w"] = power
                    break
        if not values and "name" not in row and "gpu_name" not in row:
            return None  # nothing we display: a csv of unrelated columns is not a GPU sample
        return GpuSample(index=index, name=name, **values)


def parse_gpu_csv(text: str, fields: Sequence[str] | None = None) -> list[GpuSample]:
    """Parse any `nvidia-smi --query-gpu` csv output into samples, in the order printed.

    With a header (`--format=csv`) the columns come from it and unknown columns are ignored; without
    one, `fields` is the `--query-gpu` list (default `QUERY_FIELDS`). Blank lines, CRLF, repeated
    headers and `[N/A]`-style values are tolerated; malformed lines are skipped.
    """
    parser = GpuCsvParser(fields)
    return [s for line in text.splitlines() if (s := parser.feed(line)) is not None]


class TelemetryReader:
    """Groups the rows of a streaming `nvidia-smi -lms` into one `GpuSnapshot` per sampling tick.

    A tick ends when every expected GPU has reported (`gpu_count` known) or when the GPU index wraps
    back (the next tick has begun). The snapshot is stamped when its first row arrived.
    """

    def __init__(
        self,
        lines: AsyncIterable[str],
        *,
        gpu_count: int | None = None,
        clock: Clock | None = None,
        fields: Sequence[str] | None = None,
    ) -> None:
        self._lines = lines
        self._gpu_count = gpu_count if gpu_count and gpu_count > 0 else None
        self._clock = clock or SystemClock()
        self._parser = GpuCsvParser(fields)

    def __aiter__(self) -> AsyncIterator[GpuSnapshot]:
        return self._snapshots()

    async def _snapshots(self) -> AsyncIterator[GpuSnapshot]:
        pending: list[GpuSample] = []
        started = 0.0
        async for chunk in self._lines:
            # An SSH read may carry several lines, or one with its line ending still attached.
            for line in chunk.splitlines():
                sample = self._parser.feed(line)
                if sample is None:
                    continue
                if self._gpu_count is not None and sample.index >= self._gpu_count:
                    continue  # a GPU we were not told about (e.g. a MIG row): keep ticks well-formed
                if pending and sample.index <= pending[-1].index:
                    yield GpuSnapshot(started, tuple(pending))
                    pending = []
                if not pending:
                    started = self._clock.now()
                pending.append(sample)
                if self._gpu_count is not None and len(pending) >= self._gpu_count:
                    yield GpuSnapshot(started, tuple(pending))
                    pending = []
        if pending:
            yield GpuSnapshot(started, tuple(pending))
