"""Run the benchmark suite against a session's vLLM endpoint and store it as one run.

UI-free. One warm-up request (not counted), then each prompt streamed in turn with max_tokens = its
target; progress per prompt through `emit`; an optional concurrency sweep (1, 4, 8 parallel
requests). The run is stored in one transaction at the very end, so a cancelled or failed run leaves
nothing behind.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..bench.prompts import WARMUP, BenchPrompt, category_key, prompts_for
from ..bench.runmath import Measurement, measurement_from_stream, summarize, sweep_point
from ..clock import Clock, SystemClock
from ..remote.vllm import StreamResult, VllmClient
from ..store import BenchResultRecord, BenchRunRecord

if TYPE_CHECKING:
    from maider_tui.models import VllmConfig
    from maider_tui.store import SessionRecord, Store

    from .live import LiveSession

SWEEP_LEVELS = (1, 4, 8)
SWEEP_PROMPT = "coding_code_review"


class BenchError(Exception):
    """The benchmark could not run (vLLM did not answer the warm-up); nothing was stored."""


@dataclass(frozen=True)
class BenchTarget:
    """What is benchmarked: the endpoint and the configuration the run is filed under."""

    endpoint: str
    gpu_type: str
    gpu_count: int
    hourly_usd: float
    model_id: str
    session: str | None = None
    served_model: str | None = None  # the name to send; asked from /v1/models when None
    model_category: str = ""
    vram_per_gpu: float = 0.0
    total_vram: float = 0.0
    vllm_config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_session(cls, endpoint: str, record: SessionRecord,
                     config: VllmConfig | None = None) -> BenchTarget:
        """From a SessionRecord (and its VllmConfig); VRAM and category come from the catalog."""
        from .. import catalog

        model_id = config.model if config is not None else record.model
        vram = total = 0.0
        try:
            gt = catalog.gpu_type(record.gpu_type)
            vram, total = gt.vram_per_gpu_gb or 0.0, (gt.vram_per_gpu_gb or 0.0) * record.gpu_count
        except Exception:  # noqa: BLE001 - a plan the catalog does not know: VRAM stays unknown (0)
            pass
        try:
            category = catalog.model(model_id).category
        except Exception:  # noqa: BLE001 - a custom model
            category = ""
        return cls(endpoint=endpoint, gpu_type=record.gpu_type, gpu_count=record.gpu_count,
                   hourly_usd=record.hourly_usd, model_id=model_id, session=record.name,
                   served_model=config.served_model_name if config is not None else None,
                   model_category=category,
                   vram_per_gpu=round(vram, 1), total_vram=round(total, 1),
                   vllm_config=(config.to_dict() if config is not None
                                else dict(record.vllm_config)))

    @classmethod
    def from_live(cls, live: LiveSession) -> BenchTarget:
        """From a ready LiveSession (its handle's endpoint, record and config)."""
        handle = live.handle
        if handle is None:
            raise BenchError(f"{live.name} is not connected; attach to it first.")
        return cls.from_session(handle.endpoint, handle.record, handle.config)


@dataclass(frozen=True)
class BenchProgressEvent:
    """Progress of a run: `phase` is "prompt" (one finished), "warmup" or "sweep"."""

    session: str
    phase: str
    done: int
    total: int
    prompt_id: str
    name: str
    category: str
    ok: bool
    tokens_per_sec: float | None
    ttft_s: float | None
    message: str

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


@dataclass(frozen=True)
class BenchOutcome:
    run: BenchRunRecord
    results: list[BenchResultRecord]
    measurements: list[Measurement]
    sweep: list[dict[str, Any]]
    stored: bool


async def _measure(client: VllmClient, model: str, prompt: BenchPrompt, max_tokens: int,
                   extra: dict[str, Any] | None) -> Measurement:
    """Stream one prompt; an error becomes a failed Measurement (cancellation still propagates)."""
    try:
        result = None
        async for event in client.stream_chat(model, prompt.messages, max_tokens=max_tokens, extra=extra):
            if isinstance(event, StreamResult):
                result = event
        if result is None:
            raise RuntimeError("the stream ended without a result")
        return measurement_from_stream(prompt.id, prompt.category, max_tokens, result)
    except Exception as exc:  # noqa: BLE001 - one failed prompt is a failed test, not a failed run
        return Measurement(prompt.id, prompt.category, max_tokens, error=str(exc) or type(exc).__name__)


def scaled_tokens(target: int, scale: float) -> int:
    """max_tokens for a prompt: its target times `scale` (tests use a small scale), at least 2."""
    return max(2, round(target * scale))


async def run_benchmark(target: BenchTarget, *, category: str = "all", store: Store | None = None,
                        clock: Clock | None = None, emit: Callable[[BenchProgressEvent], object] | None = None,
                        concurrency_sweep: bool = False, prompts: Sequence[BenchPrompt] | None = None,
                        max_tokens_scale: float = 1.0, api_key: str | None = None, timeout: float = 300.0,
                        extra: dict[str, Any] | None = None, timer: Clock | None = None) -> BenchOutcome:
    """Benchmark `target` and (when `store` is given) store the run; returns what was measured.

    `prompts` overrides the category's prompts; `max_tokens_scale` shrinks every target (tests).
    `extra` goes into each request body (e.g. {"ignore_eos": True}). BenchError when the warm-up
    fails. Cancelling the task stores nothing. `clock` stamps the run; `timer` times the requests and
    defaults to the system clock, since a real server's speed needs real time (a test's frozen clock
    would make every duration zero).
    """
    clock = clock or SystemClock()
    timer = timer or SystemClock()
    suite = list(prompts) if prompts is not None else list(prompts_for(category))
    name = target.session or target.endpoint
    report = emit or (lambda event: None)
    async with VllmClient(target.endpoint, api_key=api_key, timeout=timeout, clock=timer) as client:
        model = target.served_model or await _served_name(client, target.model_id)
        warm = await _measure(client, model, WARMUP, WARMUP.target_tokens, extra)
        if warm.error is not None:
            raise BenchError(f"vLLM at {target.endpoint} did not answer the warm-up request: {warm.error}")
        report(BenchProgressEvent(name, "warmup", 0, len(suite), WARMUP.id, WARMUP.name, WARMUP.category,
                                  True, warm.tokens_per_sec, warm.ttft_s, "Warm-up done (not counted)."))
        measurements = []
        for i, prompt in enumerate(suite, 1):
            max_tokens = scaled_tokens(prompt.target_tokens, max_tokens_scale)
            m = await _measure(client, model, prompt, max_tokens, extra)
            measurements.append(m)
            report(BenchProgressEvent(name, "prompt", i, len(suite), prompt.id, prompt.name, prompt.category,
                                      m.ok, m.tokens_per_sec, m.ttft_s, _line(prompt, m)))
        sweep = []
        if concurrency_sweep:
            sweep = await _sweep(client, model, max_tokens_scale, extra, timer, name, report)
    return _finish(target, category, measurements, sweep, clock, store, max_tokens_scale)


async def _served_name(client: VllmClient, fallback: str) -> str:
    try:
        models = await client.models()
    except Exception:  # noqa: BLE001 - the warm-up will say what is wrong
        return fallback
    return models[0].id if models else fallback


def _line(prompt: BenchPrompt, m: Measurement) -> str:
    if m.error is not None:
        return f"{prompt.name}: failed ({m.error})"
    speed = f"{m.tokens_per_sec:.1f} tok/s" if m.tokens_per_sec is not None else "no speed"
    ttft = f", TTFT {m.ttft_s * 1000:.0f} ms" if m.ttft_s is not None else ""
    verdict = "" if m.ok else f" (only {m.output_tokens} of {m.target_tokens} tokens)"
    return f"{prompt.name}: {speed}{ttft}{verdict}"


async def _sweep(client: VllmClient, model: str, scale: float, extra: dict[str, Any] | None, clock: Clock,
                 name: str, report: Callable[[BenchProgressEvent], object]) -> list[dict[str, Any]]:
    """Aggregate throughput and latency with 1, 4 and 8 requests in flight at once."""
    prompt = next(p for p in prompts_for("all") if p.id == SWEEP_PROMPT)
    max_tokens = scaled_tokens(prompt.target_tokens, scale)
    points = []
    for level in SWEEP_LEVELS:
        start = clock.monotonic()
        streams = await asyncio.gather(*(_measure(client, model, prompt, max_tokens, extra)
                                         for _ in range(level)))
        point = sweep_point(level, clock.monotonic() - start, streams)
        points.append(point)
        rate = point["throughput_tok_s"]
        report(BenchProgressEvent(name, "sweep", level, SWEEP_LEVELS[-1], prompt.id, f"{level} in parallel",
                                  prompt.category, point["errors"] == 0, rate, point["p50_ttft_s"],
                                  f"{level} in parallel: {rate or 0:.1f} tok/s in total"))
    return points


def _finish(target: BenchTarget, category: str, measurements: list[Measurement], sweep: list[dict[str, Any]],
            clock: Clock, store: Store | None, scale: float) -> BenchOutcome:
    by_category, summary = summarize(measurements, target.hourly_usd)
    summary["category"] = category_key(category)
    if scale != 1.0:
        summary["max_tokens_scale"] = scale  # a shortened run is not comparable to a full one
    if sweep:
        summary["concurrency"] = sweep
    run = BenchRunRecord(
        id=str(uuid.uuid4()), timestamp=clock.now(), session=target.session, gpu_type=target.gpu_type,
        gpu_count=target.gpu_count, vram_per_gpu=target.vram_per_gpu, total_vram=target.total_vram,
        hourly_usd=target.hourly_usd, model_id=target.model_id, model_category=target.model_category,
        vllm_config=dict(target.vllm_config), results_by_category=by_category, summary=summary,
        source="measured")
    results = [BenchResultRecord(run.id, m.prompt_id, m.category, m.ok, m.ttft_s, m.tokens_per_sec,
                                 m.output_tokens, m.e2e_s, m.error) for m in measurements]
    if store is not None:
        store.add_bench_run(run, results)
    return BenchOutcome(run, results, measurements, sweep, store is not None)
