"""The comparison table: one row per configuration (GPU type + model) from stored benchmark runs.

Pure. Rows are built from run summaries only (`BenchRunRecord.summary` and `.results_by_category`),
so imported runs of the seed's database, which have no per-prompt results, count the same.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from maider_tui.bench.metrics import confidence, cost_efficiency, cost_per_1k_tokens, percentile

# Direction each sortable column is best in: the best row comes first.
SORT_KEYS: dict[str, bool] = {  # name -> descending
    "tokens_per_sec": True,
    "cost_efficiency": True,
    "cost_per_1k_tokens": False,
    "hourly_usd": False,
    "ttft_p50_s": False,
    "peak_tok_s": True,
    "runs": True,
    "gpu_count": True,
    "total_vram": True,
    "gpu_type": False,
    "model_id": False,
    "model_category": False,
    "last_run": True,
}


@dataclass(frozen=True)
class ComparisonRow:
    """One configuration: averages over its runs for the chosen task category (or all)."""

    gpu_type: str
    gpu_count: int
    total_vram: float
    model_id: str
    model_category: str
    tokens_per_sec: float
    ttft_p50_s: float | None
    cost_per_1k_tokens: float | None
    hourly_usd: float
    cost_efficiency: float | None
    runs: int
    confidence: str
    tests_passed: int
    tests_total: int
    last_run: float
    peak_tok_s: float | None = None  # the concurrency sweep's best total tok/s (every stream together)
    peak_concurrency: int | None = None  # how many requests in parallel gave peak_tok_s

    def as_dict(self) -> dict[str, Any]:
        """Plain values for JSON and CSV exports."""
        return asdict(self)


def run_tok_s(run: Any, task_category: str | None = None) -> float | None:
    """A run's average decode tok/s for one task category, or overall; None when it has none."""
    if task_category:
        entry = (run.results_by_category or {}).get(task_category)
        value = entry.get("avg_tokens_per_sec") if isinstance(entry, dict) else None
    else:
        value = (run.summary or {}).get("avg_tokens_per_sec")
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def _run_ttft(run: Any, task_category: str | None) -> float | None:
    source = (run.results_by_category or {}).get(task_category) if task_category else run.summary
    value = source.get("p50_ttft_s") if isinstance(source, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


def _run_tests(run: Any, task_category: str | None) -> tuple[int, int]:
    source = (run.results_by_category or {}).get(task_category) if task_category else run.summary
    if not isinstance(source, dict):
        return 0, 0
    done, total = source.get("tests_passed"), source.get("tests_total")
    return (int(done) if isinstance(done, (int, float)) else 0,
            int(total) if isinstance(total, (int, float)) else 0)


def run_peak(run: Any) -> tuple[float, int] | None:
    """A run's best concurrency-sweep point as (total tok/s, requests in parallel); None without a sweep."""
    points = (run.summary or {}).get("concurrency")
    best: tuple[float, int] | None = None
    for point in points if isinstance(points, list) else ():
        rate = point.get("throughput_tok_s") if isinstance(point, dict) else None
        level = point.get("concurrency") if isinstance(point, dict) else None
        if isinstance(rate, (int, float)) and rate > 0 and isinstance(level, int) and (best is None or rate > best[0]):
            best = (float(rate), level)
    return best


def _category(task_category: str | None) -> str | None:
    return task_category.replace("-", "_").lower() if task_category and task_category != "all" else None


def comparison_rows(runs: Iterable[Any], *, gpu_type: str | None = None, model_category: str | None = None,
                    task_category: str | None = None, sort_by: str = "cost_efficiency",
                    descending: bool | None = None) -> list[ComparisonRow]:
    """Group runs by (GPU type, model) and average them; filter, then sort best first.

    tokens/s is the mean of the runs' averages; TTFT p50 the median of the runs' p50s (None for runs
    imported without it); $/h the mean price over the runs, and cost/1K and efficiency follow from
    those two; the peak is the best concurrency-sweep point of any run. Runs without a figure for
    `task_category` are left out. `descending` overrides the
    column's natural direction (SORT_KEYS). Unknown `sort_by`: ValueError listing the columns.
    """
    if sort_by not in SORT_KEYS:
        raise ValueError(f"cannot sort by {sort_by!r}; use one of {', '.join(SORT_KEYS)}")
    category = _category(task_category)
    groups: dict[tuple[str, str], list[tuple[Any, float]]] = {}
    for run in runs:
        if gpu_type and run.gpu_type.lower() != gpu_type.lower():
            continue
        if model_category and run.model_category.lower() != model_category.lower():
            continue
        tok_s = run_tok_s(run, category)
        if tok_s is not None:
            groups.setdefault((run.gpu_type, run.model_id), []).append((run, tok_s))
    rows = [_row(items, category) for items in groups.values()]
    return sort_rows(rows, sort_by, descending)


def _row(items: Sequence[tuple[Any, float]], category: str | None) -> ComparisonRow:
    runs = [run for run, _ in items]
    latest = max(runs, key=lambda r: r.timestamp or 0.0)
    tok_s = statistics.fmean(t for _, t in items)
    hourly = statistics.fmean(r.hourly_usd for r in runs)
    tests = [_run_tests(r, category) for r in runs]
    # the sweep runs one coding prompt whatever the category: its peak describes the configuration
    peak = max((p for r in runs if (p := run_peak(r)) is not None), default=None)
    return ComparisonRow(
        gpu_type=latest.gpu_type, gpu_count=latest.gpu_count, total_vram=latest.total_vram,
        model_id=latest.model_id, model_category=latest.model_category, tokens_per_sec=tok_s,
        ttft_p50_s=percentile([t for r in runs if (t := _run_ttft(r, category)) is not None], 50),
        cost_per_1k_tokens=cost_per_1k_tokens(tok_s, hourly), hourly_usd=hourly,
        cost_efficiency=cost_efficiency(tok_s, hourly), runs=len(runs),
        confidence=confidence(len(runs)) or "",
        tests_passed=sum(p for p, _ in tests), tests_total=sum(t for _, t in tests),
        last_run=latest.timestamp or 0.0,
        peak_tok_s=peak[0] if peak else None, peak_concurrency=peak[1] if peak else None,
    )


def sort_rows(rows: Iterable[ComparisonRow], sort_by: str = "cost_efficiency",
              descending: bool | None = None) -> list[ComparisonRow]:
    """Rows sorted by one column, best first by default; rows without a value go last either way."""
    desc = SORT_KEYS[sort_by] if descending is None else descending
    rows = list(rows)
    known = [r for r in rows if getattr(r, sort_by) is not None]
    unknown = [r for r in rows if getattr(r, sort_by) is None]
    # A stable tie-break keeps equal rows in a fixed order, so tables and snapshots do not flicker.
    known.sort(key=lambda r: (r.gpu_type, r.model_id))
    known.sort(key=lambda r: getattr(r, sort_by), reverse=desc)
    return known + sorted(unknown, key=lambda r: (r.gpu_type, r.model_id))
