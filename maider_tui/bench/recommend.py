"""Recommendations: the best GPU type + model for a task, budget and size preference. Pure.

Ranking, as the seed orders its factors: confidence first (High, Medium, Low, then Estimated), then
cost efficiency weighted by the size preference, then speed. A bare tie-break on size would never
fire (efficiencies are never exactly equal), so the preference scales efficiency instead:
"largest" multiplies it by (params / largest params)^2, "smallest" by (smallest params / params)^2,
"balanced" leaves it. Squared, so a model twice as large needs four times the efficiency to lose
under "largest". Configurations that fit (catalog.fit) but were never measured get the catalog's
roofline estimate, marked estimated.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from maider_tui.bench.aggregate import ComparisonRow, comparison_rows
from maider_tui.bench.metrics import (
    CONFIDENCE_ORDER,
    ESTIMATED,
    LOW,
    MEDIUM,
    cost_efficiency,
    cost_per_1k_tokens,
)

TASKS = {"coding": "coding", "context-heavy": "context_heavy", "reasoning": "reasoning", "mixed": None}
# $/h bounds: (lowest included, highest included); $1.00 and $3.00 exactly both fall in "1-3".
BUDGETS: dict[str, tuple[float, float]] = {
    "under-1": (0.0, 0.999_999), "1-3": (1.0, 3.0), "over-3": (3.000_001, float("inf")),
    "none": (0.0, float("inf")),
}
SIZES = ("smallest", "balanced", "largest")
# Context-heavy work needs room for the prompt: estimates below this context are not offered for it.
CONTEXT_HEAVY_MIN_CONTEXT = 16_384
STALE_DAYS = 30
ESTIMATE_WARNING = ("Estimated from the catalog's roofline model, not measured: "
                    "benchmark it before relying on it.")


@dataclass(frozen=True)
class Recommendation:
    """One ranked suggestion; `estimated` means no run exists and the figures come from the catalog."""

    rank: int
    gpu_type: str
    gpu_count: int
    model_id: str
    model_category: str
    tokens_per_sec: float
    cost_per_1k_tokens: float | None
    hourly_usd: float
    cost_efficiency: float | None
    runs: int
    confidence: str
    estimated: bool
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def in_budget(hourly_usd: float, budget: str) -> bool:
    """True when a plan's $/h is within the budget band (see BUDGETS)."""
    if budget not in BUDGETS:
        raise ValueError(f"unknown budget {budget!r}; use {', '.join(BUDGETS)}")
    low, high = BUDGETS[budget]
    return low <= round(hourly_usd, 6) <= high


def recommend(runs_or_rows: Iterable[Any], *, task: str = "mixed", budget: str = "none",
              size: str = "balanced", gpu_types: Sequence[Any] | None = None, now: float | None = None,
              limit: int = 3, estimates: bool = True) -> list[Recommendation]:
    """The top `limit` configurations for `task` (coding, context-heavy, reasoning, mixed), `budget`
    (under-1, 1-3, over-3, none) and `size` (smallest, balanced, largest).

    `runs_or_rows`: BenchRunRecords (grouped here, for the task's category) or ComparisonRows already
    built. `gpu_types`: the plans on offer (default: the catalog's); estimates are made for these, and
    measured rows of other types are kept. `now` (epoch s) enables the stale-data warning.
    """
    task = task.strip().lower().replace("_", "-")  # context_heavy as typed for bench compare is fine too
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; use {', '.join(TASKS)}")
    if size not in SIZES:
        raise ValueError(f"unknown size preference {size!r}; use {', '.join(SIZES)}")
    in_budget(0.0, budget)  # validates the name before any work
    items = list(runs_or_rows)
    rows = [i for i in items if isinstance(i, ComparisonRow)]
    rows += comparison_rows([i for i in items if not isinstance(i, ComparisonRow)], task_category=TASKS[task])
    candidates = [_measured(r, now) for r in rows if in_budget(r.hourly_usd, budget)]
    if estimates:
        measured = {(r.gpu_type, r.model_id) for r in rows}
        candidates += [e for e in _estimates(gpu_types, task) if (e.gpu_type, e.model_id) not in measured
                       and in_budget(e.hourly_usd, budget)]
    ranked = _rank(candidates, size)[:limit]
    return [_with_rank(c, i + 1) for i, c in enumerate(ranked)]


def _measured(row: ComparisonRow, now: float | None) -> Recommendation:
    warnings = []
    if row.confidence == LOW:
        warnings.append("Single benchmark: results may vary; run it again on this configuration.")
    elif row.confidence == MEDIUM:
        warnings.append("Two benchmarks: some variance possible; a third gives High confidence.")
    if now is not None and row.last_run and (now - row.last_run) / 86_400 > STALE_DAYS:
        warnings.append(f"Last measured {(now - row.last_run) / 86_400:.0f} days ago: the data may be stale.")
    return Recommendation(0, row.gpu_type, row.gpu_count, row.model_id, row.model_category,
                          row.tokens_per_sec, row.cost_per_1k_tokens, row.hourly_usd, row.cost_efficiency,
                          row.runs, row.confidence, False, tuple(warnings))


def _estimates(gpu_types: Sequence[Any] | None, task: str) -> list[Recommendation]:
    """A roofline estimate for every built-in model that fits each GPU type."""
    from maider_tui import catalog

    found = []
    for gt in gpu_types if gpu_types is not None else catalog.gpu_types():
        if getattr(gt, "family", None) is None:
            continue  # unknown hardware: no bandwidth, no estimate
        for report in catalog.models_that_fit(gt):
            if task == "context-heavy" and report.max_context < CONTEXT_HEAVY_MIN_CONTEXT:
                continue
            tok_s = catalog.estimate_decode_tok_s(report.model, gt)
            if not tok_s:
                continue
            found.append(Recommendation(
                0, gt.id, gt.gpus, report.model.id, report.model.category, tok_s,
                cost_per_1k_tokens(tok_s, gt.hourly_usd), gt.hourly_usd,
                cost_efficiency(tok_s, gt.hourly_usd), 0, ESTIMATED, True, (ESTIMATE_WARNING,)))
    return found


def _params(model_id: str, category: str) -> float:
    """Model size in billions: the catalog's figure, else the number in its category (7b -> 7)."""
    from maider_tui import catalog

    try:
        return catalog.model(model_id).params_b
    except Exception:  # noqa: BLE001 - a custom or imported model the catalog does not know
        digits = "".join(ch for ch in category.split("-")[0] if ch.isdigit() or ch == ".")
        return float(digits) if digits else 1.0


def _rank(candidates: list[Recommendation], size: str) -> list[Recommendation]:
    if not candidates:
        return []
    params = {(c.model_id, c.model_category): _params(c.model_id, c.model_category) for c in candidates}
    largest, smallest = max(params.values()), min(params.values())

    def weight(c: Recommendation) -> float:
        p = params[(c.model_id, c.model_category)]
        if size == "largest":
            return (p / largest) ** 2
        if size == "smallest":
            return (smallest / p) ** 2
        return 1.0

    def key(c: Recommendation) -> tuple:
        return (CONFIDENCE_ORDER.index(c.confidence) if c.confidence in CONFIDENCE_ORDER else 9,
                -((c.cost_efficiency or 0.0) * weight(c)), -c.tokens_per_sec, c.gpu_type, c.model_id)

    return sorted(candidates, key=key)


def _with_rank(rec: Recommendation, rank: int) -> Recommendation:
    from dataclasses import replace

    return replace(rec, rank=rank)
