"""The comparison rows (group, filter, sort), the exports, and coverage, on hand-made runs."""

from __future__ import annotations

import csv
import io
import json

import pytest

from maider_tui import catalog
from maider_tui.bench.aggregate import comparison_rows, sort_rows
from maider_tui.bench.coverage import coverage_report, render_status
from maider_tui.bench.export import ExportError, export_rows, render
from maider_tui.store import BenchRunRecord

NOW = 1_795_351_260.0
DAY = 86_400.0


def run(gpu: str, model: str, tok_s: float, *, hourly: float, category: str = "30b", age_days: float = 1,
        by_cat: dict | None = None, ttft: float | None = 0.2, gpus: int = 1) -> BenchRunRecord:
    cats = by_cat if by_cat is not None else {"coding": tok_s, "reasoning": tok_s}
    return BenchRunRecord(
        timestamp=NOW - age_days * DAY, gpu_type=gpu, gpu_count=gpus, vram_per_gpu=20.0,
        total_vram=20.0 * gpus,
        hourly_usd=hourly, model_id=model, model_category=category,
        results_by_category={c: {"avg_tokens_per_sec": v, "p50_ttft_s": ttft, "tests_passed": 4,
                                 "tests_total": 4} for c, v in cats.items()},
        summary={"avg_tokens_per_sec": tok_s, "p50_ttft_s": ttft, "tests_passed": 8, "tests_total": 8})


@pytest.fixture
def runs():
    return [
        run("g1-gpu-rtx6000-2", "Qwen/Qwen2.5-72B-Instruct-AWQ", 45.0, hourly=3.0, category="70b", gpus=2),
        run("g1-gpu-rtx6000-2", "Qwen/Qwen2.5-72B-Instruct-AWQ", 43.0, hourly=3.0, category="70b", gpus=2,
            ttft=0.4),
        run("g2-gpu-rtx4000a2-s", "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ", 38.0, hourly=1.04, gpus=2,
            by_cat={"coding": 40.0}),
        run("g2-gpu-rtx4000a1-s", "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", 70.0, hourly=0.52, category="7b",
            age_days=40),
    ]


def test_rows_average_per_configuration_with_costs(runs):
    rows = {r.gpu_type: r for r in comparison_rows(runs)}
    big = rows["g1-gpu-rtx6000-2"]
    assert big.runs == 2 and big.confidence == "Medium" and big.tokens_per_sec == pytest.approx(44.0)
    assert big.ttft_p50_s == pytest.approx(0.3)  # median of 0.2 and 0.4
    assert big.cost_per_1k_tokens == pytest.approx(3.0 / 3600 / 44.0 * 1000)
    assert big.cost_efficiency == pytest.approx(44.0 / 3.0)
    assert big.tests_passed == 16 and big.tests_total == 16
    assert rows["g2-gpu-rtx4000a1-s"].confidence == "Low"


def test_default_sort_is_efficiency_best_first(runs):
    order = [r.gpu_type for r in comparison_rows(runs)]
    # 70 / 0.52 = 134.6, 38 / 1.04 = 36.5, 44 / 3 = 14.7
    assert order == ["g2-gpu-rtx4000a1-s", "g2-gpu-rtx4000a2-s", "g1-gpu-rtx6000-2"]


@pytest.mark.parametrize(("column", "first"), [
    ("tokens_per_sec", "g2-gpu-rtx4000a1-s"), ("cost_per_1k_tokens", "g2-gpu-rtx4000a1-s"),
    ("hourly_usd", "g2-gpu-rtx4000a1-s"), ("ttft_p50_s", "g2-gpu-rtx4000a1-s"), ("runs", "g1-gpu-rtx6000-2"),
])
def test_sort_by_any_column(runs, column, first):
    assert comparison_rows(runs, sort_by=column)[0].gpu_type == first


def test_sort_direction_can_be_flipped_and_unknown_values_go_last(runs):
    rows = comparison_rows(runs, sort_by="tokens_per_sec", descending=False)
    assert [round(r.tokens_per_sec) for r in rows] == [38, 44, 70]
    no_ttft = run("g1-gpu-rtx6000-1", "m", 10.0, hourly=1.5, ttft=None)
    assert sort_rows(comparison_rows([*runs, no_ttft]), "ttft_p50_s")[-1].gpu_type == "g1-gpu-rtx6000-1"
    with pytest.raises(ValueError, match="tokens_per_sec"):
        comparison_rows(runs, sort_by="vibes")


def test_filters(runs):
    assert {r.gpu_type for r in comparison_rows(runs, gpu_type="G1-GPU-RTX6000-2")} == {"g1-gpu-rtx6000-2"}
    assert [r.model_category for r in comparison_rows(runs, model_category="7b")] == ["7b"]
    coding = {r.gpu_type: r.tokens_per_sec for r in comparison_rows(runs, task_category="coding")}
    assert coding["g2-gpu-rtx4000a2-s"] == 40.0
    # The 32B run has no reasoning figures, so it is not in the reasoning comparison.
    assert "g2-gpu-rtx4000a2-s" not in {r.gpu_type for r in comparison_rows(runs, task_category="reasoning")}


def test_exports_render_every_format(runs, tmp_path):
    rows = comparison_rows(runs)
    table = list(csv.DictReader(io.StringIO(render(rows, "csv"))))
    assert len(table) == 3 and float(table[0]["tokens_per_sec"]) == 70.0
    assert json.loads(render(rows, "json"))[2]["runs"] == 2
    md = render(rows, "markdown").splitlines()
    assert md[0].startswith("| GPU type |") and len(md) == 5 and "$" not in md[2]
    path = export_rows(rows, tmp_path / "out.md", "markdown")
    assert path.read_text() == render(rows, "markdown")


def test_export_to_a_bad_path_says_why_and_writes_nothing(runs, tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        export_rows(comparison_rows(runs), tmp_path / "missing" / "out.csv", "csv")
    with pytest.raises(ExportError, match="folder"):
        export_rows(comparison_rows(runs), tmp_path, "csv")
    assert list(tmp_path.iterdir()) == []


def test_coverage_counts_stale_missing_and_suggests_next(runs):
    report = coverage_report(runs, now=NOW)
    assert report.total_runs == 4 and report.gpu_types_total == 7
    assert len(report.gpu_types_tested) == 3
    assert [c.gpu_type for c in report.stale] == ["g2-gpu-rtx4000a1-s"]  # 40 days > 30
    assert [m.gpu_type for m in report.missing] == [
        "g1-gpu-rtx6000-1", "g2-gpu-rtx4000a4-m", "g1-gpu-rtx6000-3", "g1-gpu-rtx6000-4"]  # cheapest first
    assert report.missing[0].hourly_usd == 1.5
    assert report.confidence_breakdown == {"High": 0, "Medium": 1, "Low": 2}
    reasons = [(s.gpu_type, s.reason) for s in report.next]
    # Fewest runs first (newest of equals first), then the 2-run config, then the cheapest missing type.
    assert reasons[0] == ("g2-gpu-rtx4000a2-s", "1 run: 2 more for High confidence")
    assert reasons[2] == ("g1-gpu-rtx6000-2", "2 runs: 1 more for High confidence")
    assert reasons[3][0] == "g1-gpu-rtx6000-1" and "never benchmarked; $1.50/h" in reasons[3][1]
    assert report.next[3].model_id == catalog.models_that_fit("g1-gpu-rtx6000-1")[0].model.id
    text = render_status(report)
    assert "GPU types tested: 3/7" in text and "(stale)" in text


def test_coverage_of_nothing():
    report = coverage_report([], now=NOW)
    assert report.total_runs == 0 and len(report.missing) == 7 and report.last_run is None
    assert report.next[0].gpu_type == "g2-gpu-rtx4000a1-s"


def swept(points: list[tuple[int, float]], **kwargs) -> BenchRunRecord:
    record = run("g2-gpu-rtx4000a2-s", "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", 60.0, hourly=1.04, gpus=2, **kwargs)
    record.summary["concurrency"] = [{"concurrency": n, "throughput_tok_s": rate, "errors": 0} for n, rate in points]
    return record


def test_the_concurrency_sweep_peak_is_in_the_row_and_every_export():
    from maider_tui.ui.screens.benchmarks_panes import chart_bars, peak_cell, row_cells

    runs = [swept([(1, 61.2), (4, 702.5), (8, 1198.6)]), swept([(1, 60.0), (4, 650.0), (8, 1010.0)], age_days=2),
            run("g1-gpu-rtx6000-2", "Qwen/Qwen2.5-72B-Instruct-AWQ", 45.0, hourly=3.0, gpus=2)]
    rows = comparison_rows(runs, sort_by="peak_tok_s")
    best, plain = rows
    assert (best.peak_tok_s, best.peak_concurrency) == (1198.6, 8)  # the best point of any run of the pair
    assert plain.peak_tok_s is None and plain.peak_concurrency is None  # no sweep: last, blank
    assert peak_cell(best) == "1199 @8" and peak_cell(plain) == "—"
    assert "1199 @8" in row_cells(best, {})
    assert chart_bars(rows, "peak_tok_s") == [("RTX4000x2 Coder-7B-AWQ @8", 1198.6), ("RTX6000x2 72B-AWQ", None)]
    # the sweep runs one coding prompt: its peak stays whatever task the table is filtered to
    assert comparison_rows(runs, task_category="reasoning")[0].peak_tok_s == 1198.6

    as_json = json.loads(render(rows, "json"))
    assert as_json[0]["peak_tok_s"] == 1198.6 and as_json[0]["peak_concurrency"] == 8
    as_csv = list(csv.DictReader(io.StringIO(render(rows, "csv"))))
    assert as_csv[0]["peak_tok_s"] == "1198.6" and as_csv[0]["peak_concurrency"] == "8"
    assert as_csv[1]["peak_tok_s"] == ""
    assert "| 1198.6 | 8 |" in render(rows, "markdown")
