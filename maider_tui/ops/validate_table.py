"""The utilisation table of a validation report: one line per sample, times precise enough to tell apart."""

from __future__ import annotations

import time
from collections.abc import Sequence

Rows = Sequence[tuple[float, tuple[float, ...]]]
_CELL = 5  # "100%" and "GPU0" fit, right-aligned


def sample_stamps(times: Sequence[float]) -> list[str]:
    """UTC `HH:MM:SS` per sample, with as many decimals (up to 3) as it takes to tell neighbours apart.

    The seed samples every 2 s; the demo's cloud runs faster than life, so its samples come tenths of a
    second apart and whole seconds would print one time for many samples.
    """
    for digits in range(4):
        stamps = [_stamp(t, digits) for t in times]
        if digits == 3 or all(a != b for a, b, s, u in zip(stamps, stamps[1:], times, times[1:]) if s != u):
            return stamps
    return []  # not reached: digits == 3 returns


def _stamp(t: float, digits: int) -> str:
    scale = 10 ** digits
    seconds, fraction = divmod(round(t * scale), scale)  # rounded once, so 0.3 s is .3, not .2999
    whole = time.strftime("%H:%M:%S", time.gmtime(seconds))
    return f"{whole}.{fraction:0{digits}d}" if digits else whole


def utilisation_table(utilisation: Rows, *, markdown: bool = False) -> list[str]:
    """The seed's `Time | GPU0 | GPU1 | Avg` table, one line per sample (times in UTC), columns aligned."""
    count = len(utilisation[0][1]) if utilisation else 0
    head = ["Time", *(f"GPU{i}" for i in range(count)), "Avg"]
    stamps = sample_stamps([at for at, _ in utilisation])
    rows = [[stamp, *(f"{v:.0f}%" for v in row), f"{sum(row) / len(row):.0f}%" if row else "-"]
            for stamp, (_, row) in zip(stamps, utilisation)]
    if markdown:
        return ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (count + 1),
                *("| " + " | ".join(cells) + " |" for cells in rows)]
    widths = [max(len("Time"), *(len(s) for s in stamps))] + [_CELL] * (count + 1)

    def line(cells: Sequence[str]) -> str:
        return " | ".join([cells[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(cells[1:], widths[1:]))])

    return [line(head), "-" * len(line(head)), *(line(cells) for cells in rows)]
