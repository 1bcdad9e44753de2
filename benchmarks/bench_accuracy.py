"""How accurately the benchmark runner measures: tok/s and TTFT against a simulated vLLM with pinned timing.

Starts a SimVllmServer with `rate_override` (decode tok/s) and `ttft_override` (seconds) for several
rates and TTFTs, runs `ops.bench_run.run_benchmark` on the coding prompts (max_tokens scaled so each run
decodes about a second of tokens), and prints `name=value` lines. The last two are the headline figures,
medians over every run: `tok_s_error_pct` (|measured - configured| / configured) and `ttft_error_ms`
(|measured p50 - configured|). Exits 1 only when nothing could be measured. Takes under a minute.

    .venv/bin/python benchmarks/bench_accuracy.py
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from maider_tui import catalog  # noqa: E402
from maider_tui.bench.prompts import prompts_for  # noqa: E402
from maider_tui.ops.bench_run import BenchTarget, run_benchmark  # noqa: E402
from maider_tui.sim.faults import SimFaults  # noqa: E402
from maider_tui.sim.vllm_behaviour import config_from_args, startup_outcome  # noqa: E402
from maider_tui.sim.vllm_server import SimVllmServer  # noqa: E402

MODEL = "Qwen/Qwen2.5-Coder-7B-Instruct"
GPU = "g2-gpu-rtx4000a1-s"
RATES = (50.0, 150.0, 400.0, 1000.0)  # decode tok/s per stream
TTFTS = (0.05, 0.25)  # seconds
RUNS = 3  # per (rate, TTFT): the figures are medians


def make_server() -> SimVllmServer:
    config = config_from_args([MODEL, "--served-model-name", "coder", "--max-model-len", "8192"])
    outcome = startup_outcome(config, catalog.gpu_type(GPU), catalog.model(MODEL), faults=SimFaults())
    return SimVllmServer(config, outcome, seed=3)


async def measure() -> list[tuple[float, float, float, float]]:
    """(rate, ttft, measured tok/s, measured p50 TTFT) for every run that measured something."""
    server = make_server()
    port = await server.start()
    target = BenchTarget(endpoint=f"http://127.0.0.1:{port}/v1", gpu_type=GPU, gpu_count=1, hourly_usd=0.52,
                         model_id=MODEL, served_model="coder")
    suite = prompts_for("coding")
    found = []
    try:
        for rate in RATES:
            # About one second of decoding per run, whatever the rate.
            scale = rate / sum(p.target_tokens for p in suite)
            server.rate_override = rate
            for ttft in TTFTS:
                server.ttft_override = ttft
                for _ in range(RUNS):
                    outcome = await run_benchmark(target, prompts=suite, max_tokens_scale=scale)
                    tok_s, p50 = outcome.run.summary["avg_tokens_per_sec"], outcome.run.summary["p50_ttft_s"]
                    if tok_s is not None and p50 is not None:
                        found.append((rate, ttft, tok_s, p50))
    finally:
        await server.stop()
    return found


def main() -> int:
    started = time.monotonic()
    found = asyncio.run(measure())
    if not found:
        print("error=nothing could be measured", file=sys.stderr)
        return 1
    tok_errors, ttft_errors = [], []
    for rate in RATES:
        for ttft in TTFTS:
            mine = [(t, p) for r, f, t, p in found if r == rate and f == ttft]
            if not mine:
                continue
            tok = statistics.median(t for t, _ in mine)
            p50 = statistics.median(p for _, p in mine)
            label = f"rate{rate:g}_ttft{ttft * 1000:g}ms"
            print(f"{label}_tok_s={tok:.2f}")
            print(f"{label}_ttft_ms={p50 * 1000:.1f}")
            tok_errors += [abs(t - rate) / rate * 100 for t, _ in mine]
            ttft_errors += [abs(p - ttft) * 1000 for _, p in mine]
    print(f"runs={len(found)}")
    print(f"max_tok_s_error_pct={max(tok_errors):.2f}")
    print(f"max_ttft_error_ms={max(ttft_errors):.1f}")
    print(f"elapsed_s={time.monotonic() - started:.1f}")
    print(f"tok_s_error_pct={statistics.median(tok_errors):.2f}")
    print(f"ttft_error_ms={statistics.median(ttft_errors):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
