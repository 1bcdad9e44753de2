"""Benchmark formulas, percentiles, confidence and the runner's summary maths, on hand-worked numbers."""

from __future__ import annotations

import pytest

from maider_tui.bench import prompts_for
from maider_tui.bench.metrics import (
    PASS_FRACTION,
    confidence,
    confidence_colour,
    cost_efficiency,
    cost_per_1k_tokens,
    decode_tok_s,
    mean_itl,
    passed,
    percentile,
)
from maider_tui.bench.prompts import CATEGORIES, PROMPTS
from maider_tui.bench.runmath import Measurement, summarize, sweep_point


def test_cost_per_1k_tokens_follows_the_formula_not_the_seeds_table():
    # $3.00/h / 3600 = $0.000833/s; 1000 tokens at 45.3 tok/s take 22.08 s -> $0.01840
    # (the seed's table prints 0.0242).
    assert cost_per_1k_tokens(45.3, 3.00) == pytest.approx(0.018396, abs=1e-6)
    # $1.04/h, 38.1 tok/s: 1.04 / 3600 / 38.1 * 1000 = $0.007582 (the seed prints 0.0178).
    assert cost_per_1k_tokens(38.1, 1.04) == pytest.approx(0.0075823, abs=1e-6)
    assert cost_per_1k_tokens(0, 1.0) is None and cost_per_1k_tokens(None, 1.0) is None


def test_cost_efficiency_is_tok_s_per_dollar_hour():
    assert cost_efficiency(45.3, 3.00) == pytest.approx(15.1)  # 45.3 / 3
    assert cost_efficiency(38.1, 1.04) == pytest.approx(36.635, abs=1e-3)  # the seed's 36.6
    assert cost_efficiency(10, 0) is None


def test_decode_rate_leaves_the_first_token_out():
    # 101 tokens, 0.5 s to the first, 2.5 s in all: 100 tokens in 2.0 s = 50 tok/s.
    assert decode_tok_s(101, 2.5, 0.5) == pytest.approx(50.0)
    assert decode_tok_s(1, 2.5, 0.5) is None  # one token: no decode interval
    assert decode_tok_s(10, 0.5, 0.5) is None and decode_tok_s(10, 1.0, None) is None
    assert mean_itl([0.01, 0.03]) == pytest.approx(0.02) and mean_itl([]) is None


def test_percentile_interpolates_linearly_between_ranks():
    assert percentile([4, 1, 3, 2], 50) == pytest.approx(2.5)  # rank 1.5 between 2 and 3
    assert percentile(range(1, 11), 90) == pytest.approx(9.1)  # rank 8.1: 9 + 0.1 * (10 - 9)
    assert percentile([7], 90) == 7 and percentile([], 50) is None
    assert percentile([1, 2], 0) == 1 and percentile([1, 2], 100) == 2
    with pytest.raises(ValueError):
        percentile([1], 101)


@pytest.mark.parametrize(("runs", "level", "colour"),
                         [(5, "High", "green"), (3, "High", "green"), (2, "Medium", "yellow"),
                          (1, "Low", "red")])
def test_confidence_levels_and_colours(runs, level, colour):
    assert confidence(runs) == level and confidence_colour(level) == colour


def test_no_runs_no_confidence():
    assert confidence(0) is None


def test_a_test_passes_at_the_set_fraction_of_its_target():
    assert PASS_FRACTION == 0.8
    assert passed(80, 100) and not passed(79, 100)
    assert not passed(100, 100, error="HTTP 500") and not passed(None, 100)


def test_the_suite_has_the_seeds_twelve_prompts_and_targets():
    assert len(PROMPTS) == 12 and len({p.id for p in PROMPTS}) == 12
    targets = {c: [p.target_tokens for p in prompts_for(c)] for c in CATEGORIES}
    assert targets == {"coding": [100, 200, 400, 500], "context_heavy": [800, 1000, 600, 800],
                       "reasoning": [300, 400, 500, 600]}
    heavy = prompts_for("context-heavy")
    # Context-heavy prompts carry the code: several thousand characters each.
    assert all(len(p.messages[-1]["content"]) > 4000 for p in heavy)
    assert all(len(p.messages[-1]["content"]) < 1500 for p in prompts_for("coding"))
    with pytest.raises(ValueError, match="coding"):
        prompts_for("poetry")


def test_summary_by_category_with_costs():
    ms = [
        Measurement("a", "coding", 100, output_tokens=101, ttft_s=0.1, e2e_s=2.1),  # 100 / 2.0 = 50 tok/s
        Measurement("b", "coding", 100, output_tokens=51, ttft_s=0.3, e2e_s=2.3),  # 50 / 2.0 = 25 tok/s
        Measurement("c", "reasoning", 100, error="timed out"),
    ]
    by_cat, summary = summarize(ms, hourly_usd=0.54)
    assert by_cat["coding"]["avg_tokens_per_sec"] == pytest.approx(37.5)
    assert by_cat["coding"]["p50_ttft_s"] == pytest.approx(0.2)
    assert by_cat["coding"]["tests_passed"] == 1 and by_cat["coding"]["tests_total"] == 2  # 51 < 80
    assert by_cat["reasoning"]["avg_tokens_per_sec"] is None and by_cat["reasoning"]["tests_passed"] == 0
    assert summary["tests_total"] == 3 and summary["tests_passed"] == 1
    # 0.54 / 3600 / 37.5 * 1000 = $0.004 per 1K; 37.5 / 0.54 = 69.4.
    assert summary["cost_per_1k_tokens"] == pytest.approx(0.004)
    assert summary["cost_efficiency"] == pytest.approx(69.444, abs=1e-3)
    assert summary["p90_tokens_per_sec"] == pytest.approx(47.5)  # 25 + 0.9 * 25


def test_sweep_point_is_total_tokens_over_wall_time():
    streams = [Measurement("s", "coding", 50, output_tokens=50, ttft_s=0.1, e2e_s=1.0) for _ in range(4)]
    point = sweep_point(4, 1.25, streams + [Measurement("s", "coding", 50, error="boom")])
    assert point["throughput_tok_s"] == pytest.approx(160.0)  # 200 tokens / 1.25 s
    assert point["errors"] == 1 and point["p50_latency_s"] == pytest.approx(1.0)
