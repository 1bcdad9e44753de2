"""Benchmark coverage (the seed's `benchmark-status`): what has been measured, what is stale or missing,
and what to benchmark next. Pure: the caller passes the runs, the GPU types and the time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from maider_tui.bench.metrics import CONFIDENCE_ORDER, HIGH, confidence

STALE_AFTER_DAYS = 30
DAY_S = 86_400.0


@dataclass(frozen=True)
class ConfigCoverage:
    """One configuration (GPU type + model) that has runs."""

    gpu_type: str
    model_id: str
    runs: int
    last_run: float
    age_days: float
    stale: bool
    confidence: str


@dataclass(frozen=True)
class MissingType:
    """A GPU type of the catalog with no run at all."""

    gpu_type: str
    label: str
    hourly_usd: float


@dataclass(frozen=True)
class Suggestion:
    """One thing worth benchmarking next, and why."""

    gpu_type: str
    model_id: str | None
    reason: str


@dataclass(frozen=True)
class CoverageReport:
    total_runs: int
    gpu_types_tested: tuple[str, ...]
    gpu_types_total: int
    configurations: tuple[ConfigCoverage, ...]
    missing: tuple[MissingType, ...]
    confidence_breakdown: dict[str, int]
    last_run: float | None
    next: tuple[Suggestion, ...]

    @property
    def stale(self) -> tuple[ConfigCoverage, ...]:
        return tuple(c for c in self.configurations if c.stale)


def coverage_report(runs: Iterable[Any], *, now: float, gpu_types: Sequence[Any] | None = None,
                    stale_after_days: float = STALE_AFTER_DAYS, suggestions: int = 5) -> CoverageReport:
    """Coverage of `runs` against `gpu_types` (default: the catalog's seven), as of `now` (epoch s).

    A configuration is stale when its newest run is older than `stale_after_days`. What to benchmark
    next, most useful first: configurations short of High confidence (fewest runs first), then stale
    ones (oldest first), then missing GPU types (cheapest first, with the largest model that fits).
    """
    if gpu_types is None:
        from maider_tui import catalog

        gpu_types = catalog.gpu_types()
    runs = list(runs)
    grouped: dict[tuple[str, str], list[Any]] = {}
    for run in runs:
        grouped.setdefault((run.gpu_type, run.model_id), []).append(run)
    configs = []
    for (gpu, model), items in grouped.items():
        last = max(r.timestamp or 0.0 for r in items)
        age = max(0.0, (now - last) / DAY_S)
        configs.append(ConfigCoverage(gpu, model, len(items), last, age, age > stale_after_days,
                                      confidence(len(items)) or ""))
    configs.sort(key=lambda c: (c.gpu_type, c.model_id))
    tested = sorted({r.gpu_type for r in runs})
    known_ids = {t.id for t in gpu_types}
    missing = tuple(MissingType(t.id, getattr(t, "short_name", t.id), t.hourly_usd)
                    for t in sorted(gpu_types, key=lambda t: (t.hourly_usd, t.id)) if t.id not in tested)
    breakdown = Counter(c.confidence for c in configs)
    return CoverageReport(
        total_runs=len(runs),
        # The catalog's types first: "X/7" counts those; plans it does not know follow.
        gpu_types_tested=tuple(sorted(tested, key=lambda t: (t not in known_ids, t))),
        gpu_types_total=len(gpu_types),
        configurations=tuple(configs),
        missing=missing,
        confidence_breakdown={level: breakdown.get(level, 0) for level in CONFIDENCE_ORDER[:3]},
        last_run=max((r.timestamp or 0.0 for r in runs), default=None),
        next=tuple(_suggest(configs, missing, gpu_types))[:suggestions],
    )


def _suggest(configs: list[ConfigCoverage], missing: tuple[MissingType, ...], gpu_types: Sequence[Any]):
    for c in sorted((c for c in configs if c.confidence != HIGH), key=lambda c: (c.runs, -c.last_run)):
        more = 3 - c.runs
        yield Suggestion(c.gpu_type, c.model_id,
                         f"{c.runs} run{'s' if c.runs != 1 else ''}: {more} more for High confidence")
    for c in sorted((c for c in configs if c.stale and c.confidence == HIGH), key=lambda c: c.last_run):
        yield Suggestion(c.gpu_type, c.model_id, f"last run {c.age_days:.0f} days ago (stale)")
    by_id = {t.id: t for t in gpu_types}
    for m in missing:
        yield Suggestion(m.gpu_type, _largest_fit(by_id.get(m.gpu_type)),
                         f"never benchmarked; ${m.hourly_usd:.2f}/h")


def _largest_fit(gpu_type: Any) -> str | None:
    """The model the catalog would put on this GPU type first (largest that fits), if any."""
    if gpu_type is None or getattr(gpu_type, "family", None) is None:
        return None
    from maider_tui import catalog

    fits = catalog.models_that_fit(gpu_type)
    return fits[0].model.id if fits else None


def render_status(report: CoverageReport) -> str:
    """The report as plain text for the terminal (`maider-tui bench status`)."""
    from maider_tui.clock import utc_iso

    lines = [f"Benchmarks: {report.total_runs} run{'s' if report.total_runs != 1 else ''}",
             f"GPU types tested: {len(report.gpu_types_tested)}/{report.gpu_types_total}"]
    if report.last_run is not None:
        lines.append(f"Last benchmark: {utc_iso(report.last_run)}")
    if report.configurations:
        lines.append("Configurations:")
        for c in report.configurations:
            stale = " (stale)" if c.stale else ""
            lines.append(f"  {c.gpu_type}  {c.model_id}  {c.runs} run{'s' if c.runs != 1 else ''}  "
                         f"{c.confidence}  last {utc_iso(c.last_run)[:10]}{stale}")
    if report.missing:
        lines.append("Missing GPU types:")
        lines += [f"  {m.gpu_type} ({m.label}) ${m.hourly_usd:.2f}/h" for m in report.missing]
    lines.append("Confidence: " + ", ".join(f"{k} {v}" for k, v in report.confidence_breakdown.items()))
    if report.next:
        lines.append("Benchmark next:")
        for i, s in enumerate(report.next, 1):
            lines.append(f"  {i}. {s.gpu_type}{' + ' + s.model_id if s.model_id else ''}: {s.reason}")
    return "\n".join(lines)
