"""The runner's arithmetic, pure: one prompt's measurement, per-category and summary figures, and a
concurrency-sweep point. `ops.bench_run` does the I/O and calls these."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from maider_tui.bench.metrics import (
    cost_efficiency,
    cost_per_1k_tokens,
    decode_tok_s,
    mean_itl,
    passed,
    stats,
)


@dataclass(frozen=True)
class Measurement:
    """One prompt's outcome: timings from the stream, or the error that ended it."""

    prompt_id: str
    category: str
    target_tokens: int
    output_tokens: int | None = None
    ttft_s: float | None = None
    e2e_s: float | None = None
    itl_mean_s: float | None = None
    error: str | None = None

    @property
    def tokens_per_sec(self) -> float | None:
        """Decode tok/s, (n - 1) / (e2e - ttft); None for an error or fewer than two tokens."""
        if self.error is not None or self.output_tokens is None or self.e2e_s is None:
            return None
        return decode_tok_s(self.output_tokens, self.e2e_s, self.ttft_s)

    @property
    def ok(self) -> bool:
        """Passed: at least PASS_FRACTION of the target tokens, no error."""
        return passed(self.output_tokens, self.target_tokens, self.error)


def measurement_from_stream(prompt_id: str, category: str, target_tokens: int, result: Any) -> Measurement:
    """A Measurement from a `remote.vllm.StreamResult`."""
    return Measurement(prompt_id, category, target_tokens, output_tokens=result.output_tokens,
                       ttft_s=result.ttft_s, e2e_s=result.e2e_s, itl_mean_s=mean_itl(result.inter_token_s))


def figures(measurements: Sequence[Measurement]) -> dict[str, Any]:
    """Averages and p50/p90 of tok/s and TTFT, mean ITL, tests passed/total (the seed's key names)."""
    tok = stats(m.tokens_per_sec for m in measurements)
    ttft = stats(m.ttft_s for m in measurements if m.error is None)
    itl = stats(m.itl_mean_s for m in measurements if m.error is None)
    return {
        "avg_tokens_per_sec": tok.mean, "p50_tokens_per_sec": tok.p50, "p90_tokens_per_sec": tok.p90,
        "avg_ttft_s": ttft.mean, "p50_ttft_s": ttft.p50, "p90_ttft_s": ttft.p90, "avg_itl_s": itl.mean,
        "tests_passed": sum(1 for m in measurements if m.ok), "tests_total": len(measurements),
    }


def summarize(measurements: Sequence[Measurement],
              hourly_usd: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """(results_by_category, summary) of a run, as stored and as the seed's JSON names them.

    The summary adds cost_per_1k_tokens and cost_efficiency from the run's average tok/s.
    """
    by_category: dict[str, list[Measurement]] = {}
    for m in measurements:
        by_category.setdefault(m.category, []).append(m)
    results = {cat: figures(items) for cat, items in by_category.items()}
    summary = figures(measurements)
    summary["cost_per_1k_tokens"] = cost_per_1k_tokens(summary["avg_tokens_per_sec"], hourly_usd)
    summary["cost_efficiency"] = cost_efficiency(summary["avg_tokens_per_sec"], hourly_usd)
    return results, summary


def sweep_point(concurrency: int, wall_s: float, streams: Sequence[Measurement]) -> dict[str, Any]:
    """One concurrency level: aggregate throughput (all output tokens / wall time) against latency."""
    done = [m for m in streams if m.error is None and m.output_tokens]
    total = sum(m.output_tokens or 0 for m in done)
    return {
        "concurrency": concurrency,
        "throughput_tok_s": total / wall_s if wall_s > 0 else None,
        "per_stream_tok_s": stats(m.tokens_per_sec for m in done).mean,
        "p50_ttft_s": stats(m.ttft_s for m in done).p50,
        "p50_latency_s": stats(m.e2e_s for m in done).p50,
        "p90_latency_s": stats(m.e2e_s for m in done).p90,
        "errors": len(streams) - len(done),
    }
