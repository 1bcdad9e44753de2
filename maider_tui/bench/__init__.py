"""Benchmarks: the prompt suite, the metrics, and the pure functions behind compare, status and recommend.

Pure except `dbjson` and `export`, which read and write the files the user names. The runner that
talks to vLLM lives in `maider_tui.ops.bench_run`; the screens call these functions.
"""

from __future__ import annotations

from maider_tui.bench.aggregate import SORT_KEYS, ComparisonRow, comparison_rows
from maider_tui.bench.coverage import CoverageReport, coverage_report
from maider_tui.bench.metrics import (
    PASS_FRACTION,
    confidence,
    confidence_colour,
    cost_efficiency,
    cost_per_1k_tokens,
    decode_tok_s,
    mean_itl,
    percentile,
)
from maider_tui.bench.prompts import CATEGORIES, PROMPTS, BenchPrompt, prompts_for
from maider_tui.bench.recommend import Recommendation, recommend

__all__ = [
    "CATEGORIES",
    "PASS_FRACTION",
    "PROMPTS",
    "SORT_KEYS",
    "BenchPrompt",
    "ComparisonRow",
    "CoverageReport",
    "Recommendation",
    "comparison_rows",
    "confidence",
    "confidence_colour",
    "cost_efficiency",
    "cost_per_1k_tokens",
    "coverage_report",
    "decode_tok_s",
    "mean_itl",
    "percentile",
    "prompts_for",
    "recommend",
]
