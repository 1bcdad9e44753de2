"""Benchmark metrics: pure formulas, no I/O.

The seed's formulas are the contract. Its example tables do not follow them (e.g. 45.3 tok/s at $3.00/h
is $0.0184 per 1K tokens by its own formula, not the $0.0242 it prints); the formulas win.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# A test passes when it returns at least this share of its target tokens without an error.
PASS_FRACTION = 0.8

HIGH, MEDIUM, LOW, ESTIMATED = "High", "Medium", "Low", "Estimated"
# Best first: recommend ranks on this order.
CONFIDENCE_ORDER = (HIGH, MEDIUM, LOW, ESTIMATED)
CONFIDENCE_COLOURS = {HIGH: "green", MEDIUM: "yellow", LOW: "red", ESTIMATED: "blue"}


def cost_per_1k_tokens(tok_s: float | None, hourly_usd: float) -> float | None:
    """Dollars per 1,000 generated tokens: `hourly_usd / 3600 / tok_s * 1000`; None without throughput."""
    if tok_s is None or tok_s <= 0:
        return None
    return hourly_usd / 3600.0 / tok_s * 1000.0


def cost_efficiency(tok_s: float | None, hourly_usd: float) -> float | None:
    """Tokens/s per dollar-per-hour: `tok_s / hourly_usd`; None for a free or unpriced plan."""
    if tok_s is None or hourly_usd <= 0:
        return None
    return tok_s / hourly_usd


def decode_tok_s(output_tokens: int, e2e_s: float, ttft_s: float | None) -> float | None:
    """Decode speed: tokens after the first over the time after the first, `(n - 1) / (e2e - ttft)`.

    The first token's time is prefill (TTFT), so it is left out of both sides. None when fewer than two
    tokens came back or no time passed after the first.
    """
    if ttft_s is None or output_tokens < 2:
        return None
    span = e2e_s - ttft_s
    return (output_tokens - 1) / span if span > 0 else None


def mean_itl(inter_token_s: Sequence[float]) -> float | None:
    """Mean inter-token latency in seconds, None for fewer than two tokens."""
    return statistics.fmean(inter_token_s) if inter_token_s else None


def percentile(values: Iterable[float], p: float) -> float | None:
    """The p-th percentile (0-100) with linear interpolation between closest ranks.

    Hyndman & Fan type 7, numpy's default: rank h = (n - 1) * p / 100 on the sorted values, then
    interpolate between floor(h) and ceil(h). p50 of [1, 2, 3, 4] is 2.5; p90 of 1..10 is 9.1.
    None for no values.
    """
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be within 0-100, got {p}")
    ordered = sorted(v for v in values if v is not None and not math.isnan(v))
    if not ordered:
        return None
    h = (len(ordered) - 1) * p / 100.0
    lo, hi = math.floor(h), math.ceil(h)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (h - lo)


def confidence(runs: int) -> str | None:
    """High (3+ runs), Medium (2), Low (1); None for no runs."""
    if runs >= 3:
        return HIGH
    if runs == 2:
        return MEDIUM
    return LOW if runs == 1 else None


def confidence_colour(level: str | None) -> str:
    """The colour name the seed gives a confidence level: green, yellow, red (blue for estimates)."""
    return CONFIDENCE_COLOURS.get(level or "", "white")


def passed(output_tokens: int | None, target_tokens: int, error: str | None = None) -> bool:
    """A test passes when it returned >= PASS_FRACTION of its target tokens without an error."""
    return error is None and output_tokens is not None and output_tokens >= PASS_FRACTION * target_tokens


@dataclass(frozen=True)
class Stats:
    """Mean, median and 90th percentile of one measure; None where there were no values."""

    mean: float | None
    p50: float | None
    p90: float | None
    count: int


def stats(values: Iterable[float | None]) -> Stats:
    """Mean, p50 and p90 of the values that are not None."""
    kept = [v for v in values if v is not None]
    return Stats(statistics.fmean(kept) if kept else None, percentile(kept, 50), percentile(kept, 90),
                 len(kept))
