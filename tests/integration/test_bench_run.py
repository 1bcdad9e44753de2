"""The benchmark runner against the simulated vLLM over real HTTP: accuracy, storage, progress, cancel."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from maider_tui import catalog
from maider_tui.bench.prompts import BenchPrompt, prompts_for
from maider_tui.ops.bench_run import BenchError, BenchProgressEvent, BenchTarget, run_benchmark
from maider_tui.sim.faults import SimFaults
from maider_tui.sim.vllm_behaviour import config_from_args, startup_outcome
from maider_tui.sim.vllm_server import SimVllmServer
from maider_tui.store import SessionRecord, open_store

MODEL = "Qwen/Qwen2.5-Coder-7B-Instruct"
GPU = "g2-gpu-rtx4000a1-s"
RATE = 300.0
TTFT = 0.05
SCALE = 0.3  # coding targets 100..500 -> 30..150 tokens: about 1.2 s of decoding in all


@pytest.fixture
async def server() -> AsyncIterator[SimVllmServer]:
    config = config_from_args([MODEL, "--served-model-name", "coder", "--max-model-len", "8192"])
    outcome = startup_outcome(config, catalog.gpu_type(GPU), catalog.model(MODEL), faults=SimFaults())
    sim = SimVllmServer(config, outcome, seed=5)
    sim.rate_override, sim.ttft_override = RATE, TTFT
    sim.port = await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
def store(tmp_path):
    with open_store(tmp_path / "state.db") as s:
        yield s


def target_for(server: SimVllmServer, **changes) -> BenchTarget:
    record = SessionRecord(name="bench-1", gpu_type=GPU, gpu_count=1, model=MODEL, hourly_usd=0.52)
    target = BenchTarget.from_session(f"http://127.0.0.1:{server.port}/v1", record, server.config)
    return target if not changes else BenchTarget(**{**target.__dict__, **changes})


async def test_measures_the_sims_rate_and_ttft_and_stores_one_run(server, store):
    events: list[BenchProgressEvent] = []
    outcome = await run_benchmark(target_for(server), category="coding", store=store, emit=events.append,
                                  max_tokens_scale=SCALE)
    summary = outcome.run.summary
    # Wide enough for the suite's four workers on two busy cores, narrow enough to catch a wrong count
    # (counting the first token's wait into the rate is off by a third on the shortest prompt). The
    # precise figures are benchmarks/bench_accuracy.py's.
    assert summary["avg_tokens_per_sec"] == pytest.approx(RATE, rel=0.12)
    assert summary["p50_ttft_s"] == pytest.approx(TTFT, abs=0.040)
    for m in outcome.measurements:
        assert m.tokens_per_sec == pytest.approx(RATE, rel=0.15) and m.ok
    assert summary["tests_passed"] == summary["tests_total"] == 4
    assert summary["cost_per_1k_tokens"] == pytest.approx(0.52 / 3600 / summary["avg_tokens_per_sec"] * 1000)
    assert set(outcome.run.results_by_category) == {"coding"}
    # Progress: the warm-up (not counted), then one event per prompt in order.
    expected = [("warmup", 0, 4)] + [("prompt", i, 4) for i in range(1, 5)]
    assert [(e.phase, e.done, e.total) for e in events] == expected
    assert [e.prompt_id for e in events[1:]] == [p.id for p in prompts_for("coding")]
    (run,) = store.bench_runs()
    assert (run.gpu_type, run.gpu_count, run.hourly_usd, run.model_id) == (GPU, 1, 0.52, MODEL)
    assert run.model_category == "7b" and run.vram_per_gpu == 20.0 and run.session == "bench-1"
    assert run.vllm_config["served_model_name"] == "coder" and run.source == "measured"
    results = store.bench_results(run.id)
    assert [r.prompt_id for r in results] == [p.id for p in prompts_for("coding")]
    assert results[0].output_tokens == 30 and results[-1].output_tokens == 150  # 100 and 500 x 0.3
    # The warm-up counts on the server but not in the run.
    assert server.generation_tokens_total == 16 + sum(r.output_tokens for r in results)


async def test_cancelling_stores_nothing(server, store):
    started = asyncio.Event()
    task = asyncio.create_task(run_benchmark(target_for(server), category="coding", store=store,
                                             emit=lambda e: started.set() if e.phase == "prompt" else None))
    await asyncio.wait_for(started.wait(), 5)  # one prompt done, the next one streaming
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert store.bench_runs() == []


async def test_a_failing_prompt_is_a_failed_test_not_a_failed_run(server, store):
    too_long = BenchPrompt("huge", "coding", "Huge", 9000, "Write a lot.")  # > max_model_len 8192
    suite = [prompts_for("coding")[0], too_long]
    outcome = await run_benchmark(target_for(server), prompts=suite, store=store)
    ok, failed = outcome.measurements
    assert ok.ok and not failed.ok and "maximum context length" in failed.error
    assert outcome.run.summary["tests_passed"] == 1 and outcome.run.summary["tests_total"] == 2
    assert [r.ok for r in store.bench_results(outcome.run.id)] == [True, False]


async def test_concurrency_sweep_reports_throughput_against_latency(server, store):
    outcome = await run_benchmark(target_for(server), prompts=prompts_for("coding")[:1], store=store,
                                  concurrency_sweep=True, max_tokens_scale=0.2)
    sweep = outcome.run.summary["concurrency"]
    assert [p["concurrency"] for p in sweep] == [1, 4, 8] and all(p["errors"] == 0 for p in sweep)
    # Eight streams share the engine (rate / 1.14 each) but deliver far more in total.
    assert sweep[2]["throughput_tok_s"] > 5 * sweep[0]["throughput_tok_s"]
    assert sweep[0]["per_stream_tok_s"] == pytest.approx(RATE, rel=0.12)
    assert store.get_bench_run(outcome.run.id).summary["concurrency"] == sweep


async def test_an_unreachable_endpoint_fails_the_warm_up_and_stores_nothing(store):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again at once: nothing listens there
    target = BenchTarget(endpoint=f"http://127.0.0.1:{port}/v1", gpu_type=GPU, gpu_count=1, hourly_usd=0.52,
                         model_id=MODEL)
    with pytest.raises(BenchError, match="warm-up"):
        await run_benchmark(target, store=store, timeout=2)
    assert store.bench_runs() == []


async def test_the_served_name_is_asked_when_unknown(server):
    outcome = await run_benchmark(target_for(server, served_model=None), prompts=prompts_for("coding")[:1],
                                  max_tokens_scale=0.1)
    assert outcome.measurements[0].ok and not outcome.stored
