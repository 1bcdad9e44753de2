"""recommend(): budget bands and their edges, ranking order, size preference, estimates and warnings."""

from __future__ import annotations

import pytest

from maider_tui import catalog
from maider_tui.bench.aggregate import comparison_rows
from maider_tui.bench.recommend import in_budget, recommend
from maider_tui.store import BenchRunRecord

NOW = 1_795_351_260.0
DAY = 86_400.0
A1, A2, R1, R2 = "g2-gpu-rtx4000a1-s", "g2-gpu-rtx4000a2-s", "g1-gpu-rtx6000-1", "g1-gpu-rtx6000-2"
M7, M32 = "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ"
M72 = "Qwen/Qwen2.5-72B-Instruct-AWQ"


def runs_of(gpu: str, model: str, tok_s: float, hourly: float, n: int, *, coding: float | None = None,
            age_days: float = 1) -> list[BenchRunRecord]:
    cats = {"coding": {"avg_tokens_per_sec": coding if coding is not None else tok_s}}
    return [BenchRunRecord(timestamp=NOW - age_days * DAY, gpu_type=gpu, hourly_usd=hourly, model_id=model,
                           model_category=catalog.model(model).category, results_by_category=cats,
                           summary={"avg_tokens_per_sec": tok_s}) for _ in range(n)]


@pytest.mark.parametrize(("hourly", "budget", "inside"), [
    (0.52, "under-1", True), (0.999, "under-1", True), (1.00, "under-1", False), (1.00, "1-3", True),
    (3.00, "1-3", True), (3.00, "over-3", False), (3.01, "over-3", True), (0.52, "1-3", False),
    (6.0, "none", True), (0.0, "none", True),
])
def test_budget_bands_include_one_and_three_dollars_in_the_middle_band(hourly, budget, inside):
    assert in_budget(hourly, budget) is inside


def test_unknown_choices_are_refused():
    with pytest.raises(ValueError, match="under-1"):
        recommend([], budget="cheap")
    with pytest.raises(ValueError, match="mixed"):
        recommend([], task="poetry")
    with pytest.raises(ValueError, match="largest"):
        recommend([], size="huge")


def test_confidence_ranks_before_efficiency():
    runs = runs_of(A1, M7, 60.0, 0.52, 1) + runs_of(A2, M32, 38.0, 1.04, 3) + runs_of(R2, M72, 45.0, 3.0, 2)
    recs = recommend(runs, budget="none", estimates=False)
    # High (36.5/$), then Medium (15/$), then Low even though its efficiency (115/$) is the best.
    assert [(r.gpu_type, r.confidence) for r in recs] == [(A2, "High"), (R2, "Medium"), (A1, "Low")]
    assert [r.rank for r in recs] == [1, 2, 3]
    assert recs[2].warnings[0].startswith("Single benchmark")
    assert recs[1].warnings[0].startswith("Two benchmarks")
    assert recs[0].warnings == () and not recs[0].estimated


def test_efficiency_then_speed_among_equal_confidence():
    runs = runs_of(A1, M7, 52.0, 0.52, 3) + runs_of(R1, M7, 150.0, 1.5, 3) + runs_of(A2, M7, 104.0, 1.04, 3)
    recs = recommend(runs, estimates=False)
    # Efficiency 100 for all three: the faster one wins the tie.
    assert [r.gpu_type for r in recs] == [R1, A2, A1]


def test_budget_filters_measured_runs_and_estimates():
    runs = runs_of(A2, M32, 38.0, 1.04, 3) + runs_of(R2, M72, 45.0, 3.0, 3) + runs_of(A1, M7, 60.0, 0.52, 3)
    under = recommend(runs, budget="under-1")
    assert {r.gpu_type for r in under} == {A1} and under[0].confidence == "High"
    assert all(r.estimated for r in under[1:])  # the rest: estimates for the $0.52 plan
    middle = recommend(runs, budget="1-3", estimates=False)
    assert {r.gpu_type for r in middle} == {A2, R2}  # $3.00 exactly is in 1-3
    assert recommend(runs, budget="over-3", estimates=False) == []


def test_estimates_fill_in_where_nothing_was_measured():
    recs = recommend([], budget="under-1")
    assert len(recs) == 3 and all(r.estimated and r.confidence == "Estimated" for r in recs)
    assert all(r.gpu_type == A1 and r.runs == 0 for r in recs)
    fitting = {r.model.id for r in catalog.models_that_fit(A1)}
    assert {r.model_id for r in recs} <= fitting
    top = recs[0]
    assert top.tokens_per_sec == pytest.approx(catalog.estimate_decode_tok_s(top.model_id, A1))
    assert top.cost_efficiency == pytest.approx(top.tokens_per_sec / 0.52)
    assert "Estimated" in top.warnings[0]


def test_a_measured_configuration_is_never_also_estimated():
    recs = recommend(runs_of(A1, M7, 60.0, 0.52, 1), budget="under-1", limit=20)
    assert [(r.model_id, r.estimated) for r in recs].count((M7, True)) == 0
    assert recs[0].model_id == M7 and not recs[0].estimated


def test_size_preference_moves_larger_or_smaller_models_up():
    runs = runs_of(A1, M7, 76.0, 0.52, 3) + runs_of(A2, M32, 34.0, 1.04, 3) + runs_of(R2, M72, 29.0, 3.0, 3)
    assert recommend(runs, size="balanced", estimates=False)[0].model_id == M7  # 146/$ beats all
    assert recommend(runs, size="largest", estimates=False)[0].model_id == M72
    smallest = recommend(runs, size="smallest", estimates=False)
    assert [r.model_id for r in smallest] == [M7, M32, M72]


def test_task_picks_the_category_figures():
    runs = runs_of(A1, M7, 50.0, 0.52, 3, coding=80.0)
    assert recommend(runs, task="coding", estimates=False)[0].tokens_per_sec == 80.0
    assert recommend(runs, task="mixed", estimates=False)[0].tokens_per_sec == 50.0
    # No reasoning figures were measured: only estimates remain.
    assert all(r.estimated for r in recommend(runs, task="reasoning"))


def test_context_heavy_estimates_need_a_long_context():
    for rec in recommend([], task="context-heavy", limit=50):
        assert catalog.fit(rec.model_id, rec.gpu_type).max_context >= 16_384


def test_rows_can_be_passed_directly_and_stale_data_is_flagged():
    rows = comparison_rows(runs_of(R1, M32, 36.0, 1.5, 3, age_days=45))
    recs = recommend(rows, now=NOW, estimates=False)
    assert recs[0].gpu_type == R1 and "45 days ago" in recs[0].warnings[0]


def test_gpu_types_limit_the_estimates():
    recs = recommend([], gpu_types=[catalog.gpu_type(R2)], limit=50)
    assert recs and {r.gpu_type for r in recs} == {R2}
