"""vLLM /metrics parsing: real exposition text from old and new vLLM builds, and hand-made edge cases."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from maider_tui.remote.prometheus import parse_samples
from maider_tui.remote.vllm import VllmMetrics, parse_metrics

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


# ---- real outputs from public sources ---------------------------------------------------------------

def test_real_v1_engine_kv_cache_usage_perc():
    # vllm-project/production-stack issue #617 (vLLM 0.10.0 V1 engine serving zai-org/GLM-4.5): the
    # new `vllm:kv_cache_usage_perc`, `engine` labels, `_created` gauges beside their counters, and the
    # deprecated gpu_prefix_cache_* counters still exported. An excerpt of the thread's dump.
    metrics = parse_metrics(fixture("vllm_metrics_v1_glm45_excerpt.txt"))
    assert metrics.kv_cache_usage == pytest.approx(9.75010481363281e-06)
    assert metrics.model_names == ("zai-org/GLM-4.5",)
    assert metrics.engine_count == 1
    # The new name wins; the `_created` timestamp (1.75e9) must not leak into the counter.
    assert metrics.prefix_cache_queries_total == 32.0
    assert metrics.prefix_cache_hits_total == 0.0  # only the deprecated name is in the excerpt
    assert metrics.prefix_cache_hit_rate == 0.0
    assert metrics.num_preemptions_total is None
    assert metrics.reported


def test_real_old_name_gpu_cache_usage_perc():
    # vllm-project/production-stack issue #318 (Qwen/Qwen2.5-Coder-32B-Instruct): labels carry only
    # `model_name` and KV usage is the older `vllm:gpu_cache_usage_perc`; process_* lines precede it.
    metrics = parse_metrics(fixture("vllm_metrics_gpu_cache_qwen25coder_excerpt.txt"))
    assert metrics.kv_cache_usage == 0.0  # present and zero, not missing
    assert (metrics.requests_running, metrics.requests_waiting) == (0.0, 0.0)
    assert metrics.model_names == ("Qwen/Qwen2.5-Coder-32B-Instruct",)
    assert metrics.engine_count == 0
    assert metrics.reported


def test_real_v05_exposition_with_declarations_only():
    # MeetKai/functionary pull request #263: a vLLM 0.5.x /metrics before any engine stats were logged,
    # HELP/TYPE lines only (v0 names: num_requests_swapped, gpu_cache_usage_perc, num_preemptions_total).
    metrics = parse_metrics(fixture("vllm_metrics_v05_declared_only.txt"))
    assert metrics == VllmMetrics()
    assert metrics.kv_cache_usage is None and metrics.num_preemptions_total is None
    assert not metrics.reported


# ---- names across versions --------------------------------------------------------------------------

V0_STYLE = """\
# HELP vllm:num_requests_running Number of requests currently running on GPU.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="meta-llama/Llama-3.1-8B-Instruct"} 3.0
vllm:num_requests_swapped{model_name="meta-llama/Llama-3.1-8B-Instruct"} 1.0
vllm:num_requests_waiting{model_name="meta-llama/Llama-3.1-8B-Instruct"} 2.0
vllm:gpu_cache_usage_perc{model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.4375
vllm:num_preemptions_total{model_name="meta-llama/Llama-3.1-8B-Instruct"} 7.0
vllm:prompt_tokens_total{model_name="meta-llama/Llama-3.1-8B-Instruct"} 5.453083e+06
vllm:generation_tokens_total{model_name="meta-llama/Llama-3.1-8B-Instruct"} 155722.0
vllm:request_success_total{finished_reason="stop",model_name="meta-llama/Llama-3.1-8B-Instruct"} 6193.0
vllm:request_success_total{finished_reason="length",model_name="meta-llama/Llama-3.1-8B-Instruct"} 5.0
vllm:cache_config_info{block_size="16",cache_dtype="auto",num_gpu_blocks="2375",sliding_window="None"} 1.0
"""


def test_v0_style_names():
    m = parse_metrics(V0_STYLE)
    assert (m.requests_running, m.requests_waiting, m.requests_swapped) == (3.0, 2.0, 1.0)
    assert m.kv_cache_usage == 0.4375 and m.num_preemptions_total == 7.0
    assert m.prompt_tokens_total == 5_453_083.0 and m.generation_tokens_total == 155_722.0
    assert m.requests_finished_total == 6198.0


def test_counters_without_the_total_suffix_and_older_preemption_name():
    m = parse_metrics('vllm:prompt_tokens{model_name="m"} 10\nvllm:generation_tokens{model_name="m"} 4\n'
                      'vllm:num_preemptions{model_name="m"} 2\n')
    assert (m.prompt_tokens_total, m.generation_tokens_total, m.num_preemptions_total) == (10, 4, 2)


def test_new_kv_name_wins_when_both_are_exported():
    m = parse_metrics('vllm:gpu_cache_usage_perc{engine="0"} 0.9\n'
                      'vllm:kv_cache_usage_perc{engine="0"} 0.25\n')
    assert m.kv_cache_usage == 0.25


# ---- several engines and models ---------------------------------------------------------------------

TWO_ENGINES = """\
vllm:num_requests_running{engine="0",model_name="qwen-coder"} 4.0
vllm:num_requests_running{engine="1",model_name="qwen-coder"} 2.0
vllm:num_requests_waiting{engine="0",model_name="qwen-coder"} 1.0
vllm:num_requests_waiting{engine="1",model_name="qwen-coder"} 5.0
vllm:kv_cache_usage_perc{engine="0",model_name="qwen-coder"} 0.30
vllm:kv_cache_usage_perc{engine="1",model_name="qwen-coder"} 0.95
vllm:prompt_tokens_total{engine="0",model_name="qwen-coder"} 1000.0
vllm:prompt_tokens_total{engine="1",model_name="qwen-coder"} 1e+03
vllm:prompt_tokens_created{engine="0",model_name="qwen-coder"} 1.7537953269352946e+09
vllm:generation_tokens_total{engine="0",model_name="qwen-coder"} 300.0
vllm:generation_tokens_total{engine="1",model_name="qwen-coder"} 200.0
vllm:num_preemptions_total{engine="0",model_name="qwen-coder"} 0.0
vllm:num_preemptions_total{engine="1",model_name="qwen-coder"} 3.0
vllm:num_requests_running{engine="0",model_name="draft"} 1.0
"""


def test_label_sets_are_summed_and_kv_takes_the_fullest_engine():
    m = parse_metrics(TWO_ENGINES)
    assert (m.requests_running, m.requests_waiting) == (7.0, 6.0)
    assert (m.prompt_tokens_total, m.generation_tokens_total) == (2000.0, 500.0)
    assert m.num_preemptions_total == 3.0
    assert m.kv_cache_usage == 0.95  # max, not mean: engine 1 is the one about to preempt
    assert m.engine_count == 2 and m.model_names == ("qwen-coder", "draft")


# ---- the text format itself --------------------------------------------------------------------------

def test_quoted_label_values_with_commas_spaces_braces_and_escapes():
    line = r'vllm:num_requests_running{model_name="a, \"b\" {c} d\\e",engine="0"} 2'
    (sample,) = parse_samples(line)
    assert sample.labels == {"model_name": 'a, "b" {c} d\\e', "engine": "0"}
    assert parse_metrics(line).model_names == ('a, "b" {c} d\\e',)


def test_special_values_and_timestamps():
    samples = parse_samples("a 1e+03\nb NaN\nc +Inf\nd -Inf\ne 2.5 1700000000000\nf{x=\"1\",} 4\n")
    values = {s.name: s.value for s in samples}
    assert values["a"] == 1000.0 and math.isnan(values["b"]) and values["c"] == math.inf
    assert values["d"] == -math.inf and values["e"] == 2.5 and values["f"] == 4.0  # trailing comma allowed


def test_nan_samples_are_ignored_in_sums():
    m = parse_metrics('vllm:num_requests_running{engine="0"} NaN\nvllm:num_requests_running{engine="1"} 2\n'
                      'vllm:kv_cache_usage_perc{engine="0"} NaN\n')
    assert m.requests_running == 2.0 and m.kv_cache_usage is None


def test_garbage_lines_are_skipped():
    text = (
        "this is not a metric\n"
        'vllm:num_requests_running{model_name="unterminated} 3\n'
        "vllm:num_requests_waiting abc\n"
        "vllm:num_requests_waiting 1 2 3 4\n"
        "{}\n"
        "<html><body>502 Bad Gateway</body></html>\n"
        "vllm:num_requests_running  5\n"
        "   # indented comment 7\n"
        "vllm:generation_tokens_total{model_name=\"m\"} 42\n"
    )
    m = parse_metrics(text)
    assert m.requests_running == 5.0 and m.requests_waiting == 0.0 and m.generation_tokens_total == 42.0


def test_missing_metrics_are_none_or_zero():
    m = parse_metrics("")
    assert m.requests_running == m.requests_waiting == 0.0
    assert m.prompt_tokens_total == m.generation_tokens_total == 0.0
    assert m.kv_cache_usage is None and m.num_preemptions_total is None and m.requests_swapped is None
    assert m.prefix_cache_hit_rate is None and not m.reported


def test_non_vllm_metrics_are_not_counted():
    m = parse_metrics('process_open_fds 45.0\npython_gc_objects_collected_total{generation="0"} 7522.0\n')
    assert m == VllmMetrics()


async def test_clients_share_one_tls_context():
    """Each client would load the CA bundle into a context of its own (about 0.8 MiB, and a session
    opens a client per metrics poll): the vLLM clients and the remote sim's client share one."""
    from maider_tui.remote.vllm import VllmClient
    from maider_tui.sim.remote import RemoteSim

    first, second = VllmClient("http://127.0.0.1:8001"), VllmClient("https://example.invalid/v1")
    sim = RemoteSim("http://127.0.0.1:9/v4", "sim-token")
    try:
        contexts = [client._http._transport._pool._ssl_context for client in (first, second, sim)]
        assert contexts[0] is contexts[1] is contexts[2] is not None
    finally:
        await first.aclose()
        await second.aclose()
        sim.close()


def test_only_the_samples_read_are_parsed():
    histogram = "".join(f'vllm:e2e_request_latency_seconds_bucket{{le="{b}",model_name="m"}} 4\n' for b in range(40))
    text = histogram + 'vllm:num_requests_running{model_name="m"} 2\nvllm:generation_tokens_total{model_name="m"} 9\n'
    assert [s.name for s in parse_samples(text, {"vllm:num_requests_running"})] == ["vllm:num_requests_running"]
    assert len(parse_samples(text)) == 42  # without names, every sample
    m = parse_metrics(text)
    assert (m.requests_running, m.generation_tokens_total, m.model_names, m.reported) == (2.0, 9.0, ("m",), True)
    assert not parse_metrics(histogram).reported  # histograms alone are not the numbers the dashboard shows
