"""vLLM's Prometheus `/metrics`: requests running and waiting, token counters, KV-cache use, prefix
cache and preemptions, read from old and new metric names alike. Pure: no I/O.

The text is split into samples by `prometheus.parse_samples`; only the names read here are parsed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from maider_tui.remote.prometheus import parse_samples


@dataclass(frozen=True)
class VllmMetrics:
    """What the dashboard shows from `/metrics`, summed over every engine and model served.

    Counters are cumulative since the server started; rates come from differencing two scrapes.
    `kv_cache_usage` is 0-1, the highest of all engines (see `parse_metrics`), None when not exported.
    """

    requests_running: float = 0.0
    requests_waiting: float = 0.0
    prompt_tokens_total: float = 0.0
    generation_tokens_total: float = 0.0
    kv_cache_usage: float | None = None
    num_preemptions_total: float | None = None
    requests_swapped: float | None = None
    prefix_cache_queries_total: float | None = None
    prefix_cache_hits_total: float | None = None
    requests_finished_total: float | None = None
    model_names: tuple[str, ...] = ()
    engine_count: int = 0
    reported: bool = False

    @property
    def prefix_cache_hit_rate(self) -> float | None:
        """Hits / queries since start, None before the first query."""
        if not self.prefix_cache_queries_total or self.prefix_cache_hits_total is None:
            return None
        return self.prefix_cache_hits_total / self.prefix_cache_queries_total


def _values(by_name: Mapping[str, list[float]], names: Iterable[str]) -> list[float] | None:
    """The values of the first of `names` that has any: newer names first, older ones as fallbacks."""
    return next((by_name[name] for name in names if by_name.get(name)), None)


def _counter(by_name: Mapping[str, list[float]], base: str, *older: str) -> float | None:
    # Counters appear as `x_total` from prometheus_client, bare `x` from some older builds and exporters.
    names = [n for b in (base, *older) for n in (f"{b}_total", b)]
    values = _values(by_name, names)
    return None if values is None else sum(values)


# What parse_metrics reads, under every name vLLM has used (counters with and without `_total`).
_GAUGES = ("num_requests_running", "num_requests_waiting", "num_requests_swapped", "kv_cache_usage_perc",
           "gpu_cache_usage_perc")
_COUNTERS = ("prompt_tokens", "generation_tokens", "num_preemptions", "prefix_cache_queries",
             "gpu_prefix_cache_queries", "prefix_cache_hits", "gpu_prefix_cache_hits", "request_success")
_READ = frozenset([f"vllm:{g}" for g in _GAUGES] + [f"vllm:{c}{t}" for c in _COUNTERS for t in ("", "_total")])


def parse_metrics(text: str) -> VllmMetrics:
    """Parse vLLM's Prometheus text into `VllmMetrics`, tolerant of old and new metric names.

    Gauges and counters are summed across label sets (several engines or models). KV-cache usage
    takes the maximum instead: one full engine preempts and queues requests however idle the others
    are, and that is what the user needs to see. NaN samples and `_created` lines are ignored.
    """
    by_name: dict[str, list[float]] = {}
    models: dict[str, None] = {}
    engines: set[str] = set()
    for sample in parse_samples(text, _READ):
        name = sample.name
        if math.isnan(sample.value):
            continue
        by_name.setdefault(name, []).append(sample.value)
        if "model_name" in sample.labels:
            models.setdefault(sample.labels["model_name"])
        if "engine" in sample.labels:
            engines.add(sample.labels["engine"])
    kv = _values(by_name, ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"))
    swapped = by_name.get("vllm:num_requests_swapped")
    return VllmMetrics(
        requests_running=sum(by_name.get("vllm:num_requests_running", [])),
        requests_waiting=sum(by_name.get("vllm:num_requests_waiting", [])),
        prompt_tokens_total=_counter(by_name, "vllm:prompt_tokens") or 0.0,
        generation_tokens_total=_counter(by_name, "vllm:generation_tokens") or 0.0,
        kv_cache_usage=None if kv is None else max(kv),
        num_preemptions_total=_counter(by_name, "vllm:num_preemptions"),
        requests_swapped=None if swapped is None else sum(swapped),
        # V1 before 0.10 named these gpu_prefix_cache_*; 0.10 exports both during the deprecation.
        prefix_cache_queries_total=_counter(by_name, "vllm:prefix_cache_queries",
                                            "vllm:gpu_prefix_cache_queries"),
        prefix_cache_hits_total=_counter(by_name, "vllm:prefix_cache_hits", "vllm:gpu_prefix_cache_hits"),
        requests_finished_total=_counter(by_name, "vllm:request_success"),
        model_names=tuple(models),
        engine_count=len(engines),
        reported=bool(by_name),
    )
