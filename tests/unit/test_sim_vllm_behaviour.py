"""The simulated `vllm serve`: command-line parsing, and each startup failure from its real cause and fix.

Log wording is checked against vLLM's own messages as public issues quote them (see
maider_tui/sim/vllm_logs.py for the sources): e.g. vllm-project/vllm#25350 (KV cache), #17835 (CUDA OOM),
#2652 (attention heads), #1157 (bfloat16 on compute capability 7.5), PR #30140 (world size).
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from maider_tui import catalog
from maider_tui.sim.faults import SimFaults
from maider_tui.sim.vllm_behaviour import StartupOutcome, config_from_args, extra_option, startup_outcome

NCCL = {"NCCL_P2P_DISABLE": "1"}
ADA1, ADA2, QUADRO1, QUADRO2, QUADRO3 = ("g2-gpu-rtx4000a1-s", "g2-gpu-rtx4000a2-s", "g1-gpu-rtx6000-1",
                                          "g1-gpu-rtx6000-2", "g1-gpu-rtx6000-3")
CODER_7B = "Qwen/Qwen2.5-Coder-7B-Instruct"
CODER_14B = "Qwen/Qwen2.5-Coder-14B-Instruct"
CODER_32B_AWQ = "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ"
QWEN_72B_AWQ = "Qwen/Qwen2.5-72B-Instruct-AWQ"
DEEPSEEK_LITE = "deepseek-ai/DeepSeek-Coder-V2-Lite-Instruct"


def start(args: list[str], plan: str, env: dict[str, str] | None = None, faults: SimFaults | None = None,
          **kwargs: object) -> StartupOutcome:
    config = config_from_args(args, env)
    try:
        model = catalog.model(config.model)
    except catalog.UnknownModelError:
        model = None
    return startup_outcome(config, catalog.gpu_type(plan), model, faults=faults or SimFaults(), **kwargs)


def log_text(outcome: StartupOutcome) -> str:
    return "\n".join(outcome.log_lines)


# --- config_from_args -------------------------------------------------------------------------------

def test_positional_model_and_both_flag_forms():
    config = config_from_args(
        [CODER_32B_AWQ, "--served-model-name", "coder", "-tp", "2", "--pipeline-parallel-size=1",
         "--max-model-len=32768", "--gpu-memory-utilization", "0.92", "--max-num-seqs", "64", "--dtype=half",
         "--kv-cache-dtype", "fp8", "--trust-remote-code", "--port", "8000", "--enable-prefix-caching",
         "--swap-space", "4"],
        {"HF_TOKEN": "hf_x"})
    assert (config.model, config.served_model_name) == (CODER_32B_AWQ, "coder")
    assert (config.tensor_parallel_size, config.pipeline_parallel_size, config.max_model_len) == (2, 1, 32768)
    assert (config.gpu_memory_utilization, config.max_num_seqs, config.dtype) == (0.92, 64, "half")
    assert (config.kv_cache_dtype, config.trust_remote_code) == ("fp8", True)
    assert config.extra_args == ("--port", "8000", "--enable-prefix-caching", "--swap-space", "4")
    assert config.env == {"HF_TOKEN": "hf_x"} and extra_option(config, "--port") == "8000"


def test_model_flag_underscores_short_forms_and_human_readable_lengths():
    config = config_from_args(["vllm", "serve", "--model", CODER_7B, "--max_model_len", "32K", "-pp=2",
                               "--tensor_parallel_size=1"])
    assert (config.model, config.max_model_len, config.pipeline_parallel_size) == (CODER_7B, 32768, 2)
    assert config_from_args([CODER_7B, "--max-model-len", "8k"]).max_model_len == 8000
    assert config_from_args([CODER_7B]).extra_args == () and config_from_args([CODER_7B]).env == {}


@pytest.mark.parametrize(("args", "flag"), [
    ([CODER_7B, "--max-model-len", "lots"], "--max-model-len"),
    ([CODER_7B, "-tp", "two"], "--tensor-parallel-size"),
    ([CODER_7B, "--gpu-memory-utilization=0,9"], "--gpu-memory-utilization"),
    ([CODER_7B, "--max-num-seqs", "1.5"], "--max-num-seqs"),
    ([CODER_7B, "--port", "http"], "--port"),
    ([CODER_7B, "--dtype", "bf16"], "--dtype"),
    ([CODER_7B, "--gpu-memory-utilization", "1.5"], "--gpu-memory-utilization"),
    ([CODER_7B, "--max-model-len"], "--max-model-len"),
])
def test_bad_values_name_the_flag(args, flag):
    with pytest.raises(ValueError, match=re.escape(f"argument {flag}")):
        config_from_args(args)


def test_no_model_is_an_error():
    with pytest.raises(ValueError, match="no model"):
        config_from_args(["--max-model-len", "4096"])


# --- a start that works -------------------------------------------------------------------------------

def test_ok_start_logs_like_vllm_and_fills_memory_to_the_utilisation():
    outcome = start([CODER_7B, "--max-model-len", "32768"], ADA1)
    assert outcome.ok and outcome.kind is None and outcome.evidence is None
    text = log_text(outcome)
    for line in ("vLLM API server version", f"non-default args: {{'model_tag': '{CODER_7B}'",
                 "Loading weights took", "Model loading took 14.19", "Available KV cache memory:",
                 f"GPU KV cache size: {outcome.kv_cache_tokens:,} tokens",
                 "Maximum concurrency for 32,768 tokens per request:",
                 "Starting vLLM API server 0 on http://0.0.0.0:8000", "Application startup complete.",
                 "Uvicorn running on http://0.0.0.0:8000"):
        assert line in text
    assert outcome.per_gpu_used_mib == (round(0.90 * 20475),)
    assert outcome.max_model_len == 32768 and outcome.kv_cache_tokens >= 32768
    assert outcome.decode_tok_s == pytest.approx(catalog.estimate_decode_tok_s(CODER_7B, ADA1))
    assert 20 <= outcome.prefill_tok_s / outcome.decode_tok_s <= 40
    assert outcome.download_gb == pytest.approx(14.19, abs=0.01)
    assert len(outcome.line_at_s) == len(outcome.log_lines)
    assert list(outcome.line_at_s) == sorted(outcome.line_at_s) and outcome.load_s == outcome.line_at_s[-1]
    assert 30 < outcome.load_s < 120  # weights, torch.compile, CUDA graphs: about a minute
    assert start([CODER_7B, "--max-model-len", "32768"], ADA1) == outcome  # deterministic


def test_per_gpu_memory_follows_the_utilisation_and_idle_gpus_stay_empty():
    outcome = start([CODER_32B_AWQ, "-tp", "2", "--gpu-memory-utilization", "0.85"], ADA2, NCCL,
                    gpus_visible=4)
    assert outcome.ok
    assert outcome.per_gpu_used_mib == (round(0.85 * 20475),) * 2 + (0, 0)
    # The catalog's roofline at TP 2: the seed's ~35 tok/s for this plan.
    assert outcome.decode_tok_s == pytest.approx(catalog.estimate_decode_tok_s(CODER_32B_AWQ, ADA2))


def test_started_at_stamps_the_log():
    at = 1_795_351_260.0  # 2026-11-22 12:41:00 UTC
    outcome = start([CODER_7B, "--max-model-len", "8192"], ADA1, started_at=at)
    assert " 11-22 12:41:00 [api_server.py" in outcome.log_lines[1]


# --- each failure from its cause, fixed by the obvious change ---------------------------------------

def test_oom_32b_awq_on_one_rtx4000_then_two():
    outcome = start([CODER_32B_AWQ], ADA1)
    assert (outcome.ok, outcome.kind) == (False, "oom")
    assert "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate" in outcome.evidence
    assert "GPU 0 has a total capacity of 19.68 GiB of which" in outcome.evidence
    assert outcome.per_gpu_used_mib[0] > 18_000  # weights were in before the profile run failed
    assert outcome.download_gb == pytest.approx(18.0, abs=0.05)
    assert not catalog.fit(CODER_32B_AWQ, ADA1).fits  # the planner agrees
    assert start([CODER_32B_AWQ, "-tp", "2"], ADA2, NCCL).ok


def test_oom_when_the_utilisation_leaves_no_room_and_when_it_asks_too_much():
    low = start([CODER_7B, "--gpu-memory-utilization", "0.75", "--max-model-len", "4096"], ADA1)
    assert low.kind == "oom" and "No available memory for the cache blocks" in low.evidence
    assert start([CODER_7B, "--gpu-memory-utilization", "0.9", "--max-model-len", "4096"], ADA1).ok
    greedy = start([CODER_7B, "--gpu-memory-utilization", "0.99", "--max-model-len", "4096"], ADA1)
    assert greedy.kind == "oom"
    assert re.search(r"Free memory on device cuda:0 \(\d+\.\d\d/19\.68 GiB\) on startup is less than desired "
                     r"GPU memory utilization \(0\.99, \d+\.\d\d GiB\)", greedy.evidence)


def test_kv_cache_72b_awq_on_two_quadros_reports_the_length_that_fits():
    outcome = start([QWEN_72B_AWQ, "-tp", "2", "--max-model-len", "32768"], QUADRO2, NCCL)
    assert (outcome.ok, outcome.kind) == (False, "kv_cache")
    found = re.search(r"To serve at least one request with the models's max seq len \(32768\), "
                      r"\((\d+\.\d\d) GiB KV cache is needed, which is larger than the available KV "
                      r"cache memory \((\d+\.\d\d) GiB\)\. Based on the available memory, the estimated "
                      r"maximum model length is (\d+)\. Try increasing `gpu_memory_utilization` or "
                      r"decreasing `max_model_len`", outcome.evidence)
    assert found and float(found[1]) > float(found[2])
    capacity = int(found[3])
    assert capacity == outcome.kv_cache_tokens and capacity % 16 == 0
    fitted = capacity // 1024 * 1024
    assert fitted == catalog.fit(QWEN_72B_AWQ, QUADRO2).max_context  # the sim and the planner agree
    healed = start([QWEN_72B_AWQ, "-tp", "2", "--max-model-len", str(fitted)], QUADRO2, NCCL)
    assert healed.ok and healed.max_model_len == fitted


def test_max_model_len_beyond_the_model_is_a_kv_cache_kind():
    outcome = start([CODER_7B, "--max-model-len", "65536"], ADA1)
    assert outcome.kind == "kv_cache"
    assert "User-specified max_model_len (65536) is greater than the derived max_model_len" \
        in outcome.evidence


def test_nccl_on_tp2_without_env_then_with_it():
    outcome = start([CODER_32B_AWQ, "-tp", "2"], ADA2)
    assert (outcome.ok, outcome.kind) == (False, "nccl")
    text = log_text(outcome)
    assert "RuntimeError: NCCL error: unhandled system error (run with NCCL_DEBUG=INFO for details)" in text
    assert "ncclSystemError" in text and "Engine core initialization failed" in text
    assert outcome.per_gpu_used_mib == (358, 358)  # CUDA contexts only
    assert outcome.download_gb == 0.0  # weights are fetched after NCCL init, in load_model
    assert start([CODER_32B_AWQ, "-tp", "2"], ADA2, {"NCCL_IB_DISABLE": "1"}).ok
    # The env may come with the config (compose's environment) as well as from the container.
    config = config_from_args([CODER_32B_AWQ, "-tp", "2"], {"NCCL_DEBUG": "WARN"})
    plan, model = catalog.gpu_type(ADA2), catalog.model(CODER_32B_AWQ)
    assert startup_outcome(config, plan, model, faults=SimFaults()).ok


def test_tensor_parallel_3_with_40_heads_then_2():
    outcome = start([CODER_14B, "-tp", "3", "--max-model-len", "8192"], QUADRO3, NCCL)
    assert (outcome.ok, outcome.kind) == (False, "tensor_parallel")
    assert "Value error, Total number of attention heads (40) must be divisible by tensor parallel size " \
        "(3)." in outcome.evidence
    assert outcome.per_gpu_used_mib == (0, 0, 0)
    assert start([CODER_14B, "-tp", "2", "--max-model-len", "8192"], QUADRO3, NCCL).ok


def test_world_size_above_the_gpus():
    outcome = start([CODER_14B, "-tp", "4", "--max-model-len", "8192"], QUADRO3, NCCL)
    assert outcome.kind == "tensor_parallel"
    assert "World size (4) is larger than the number of available GPUs (3)" in outcome.evidence


def test_bfloat16_on_quadro_then_half():
    outcome = start([CODER_7B, "--dtype", "bfloat16", "--max-model-len", "8192"], QUADRO1)
    assert (outcome.ok, outcome.kind) == (False, "model_loading")
    assert ("Bfloat16 is only supported on GPUs with compute capability of at least 8.0. Your Quadro RTX "
            "6000 GPU has compute capability 7.5. You can use float16 instead by explicitly setting the "
            "`dtype` flag in CLI, for example: --dtype=half.") in outcome.evidence
    half = start([CODER_7B, "--dtype", "half", "--max-model-len", "8192"], QUADRO1)
    assert half.ok and "dtype=torch.float16" in log_text(half)


def test_auto_dtype_on_turing_falls_back_to_float16_with_vllms_warning():
    outcome = start([CODER_7B, "--max-model-len", "8192"], QUADRO1)
    assert outcome.ok
    assert ("WARNING 01-01 00:00:02 [model.py:1682] Your device 'Quadro RTX 6000' (with compute capability "
            "7.5) doesn't support torch.bfloat16. Falling back to torch.float16 for compatibility.") \
        in log_text(outcome)


def test_trust_remote_code_for_deepseek_coder_v2_lite():
    args = [DEEPSEEK_LITE, "-tp", "2", "--max-model-len", "32768"]
    outcome = start(args, ADA2, NCCL)
    assert (outcome.ok, outcome.kind) == (False, "model_loading")
    text = log_text(outcome)
    assert (f"Loading {DEEPSEEK_LITE} requires you to execute the configuration file in that repo on your "
            "local machine. Make sure you have read the code there to avoid malicious use, then set the "
            "option `trust_remote_code=True` to remove this error.") in text
    assert "consider setting `trust_remote_code=True`" in outcome.evidence
    assert start([*args, "--trust-remote-code"], ADA2, NCCL).ok


def test_unknown_model_and_unsupported_architecture():
    missing = start(["acme/NoSuchModel-7B"], ADA1)
    assert missing.kind == "model_loading" and missing.download_gb == 0.0
    assert "acme/NoSuchModel-7B is not a local folder and is not a valid model identifier" \
        in log_text(missing)
    assert "Invalid repository ID or local directory specified: 'acme/NoSuchModel-7B'" in missing.evidence
    refused = start([CODER_7B], ADA1, faults=SimFaults(unsupported_models={CODER_7B}))
    assert refused.kind == "model_loading"
    assert "Model architectures ['Qwen2ForCausalLM'] are not supported for now." in refused.evidence
    custom = start(["acme/Foo-7B"], ADA1, faults=SimFaults(unsupported_models={"acme/Foo-7B"}))
    assert "Model architectures ['FooForCausalLM']" in custom.evidence


# --- every check can be switched off ------------------------------------------------------------------

@pytest.mark.parametrize(("args", "plan", "env", "flag"), [
    ([CODER_32B_AWQ, "--max-model-len", "8192"], ADA1, None, "oom"),
    ([QWEN_72B_AWQ, "-tp", "2", "--max-model-len", "32768"], QUADRO2, NCCL, "kv_cache"),
    ([CODER_32B_AWQ, "-tp", "2"], ADA2, None, "nccl_without_env"),
    ([CODER_14B, "-tp", "3", "--max-model-len", "8192"], QUADRO3, NCCL, "tensor_parallel"),
    ([CODER_7B, "--dtype", "bfloat16", "--max-model-len", "8192"], QUADRO1, None, "bf16_on_turing"),
    ([DEEPSEEK_LITE, "-tp", "2", "--max-model-len", "32768"], ADA2, NCCL, "needs_trust_remote_code"),
])
def test_each_failure_switched_off_by_its_fault_flag(args, plan, env, flag):
    assert not start(args, plan, env).ok
    relaxed = replace(SimFaults(), **{flag: False})
    outcome = start(args, plan, env, faults=relaxed)
    assert outcome.ok and outcome.kv_cache_tokens >= outcome.max_model_len


def test_unknown_gpu_family_is_refused():
    config = config_from_args([CODER_7B])
    plan = catalog.gpu_type_from_api("g9-gpu-mystery-1", "Mystery", 1, 9.0)
    with pytest.raises(ValueError, match="unknown"):
        startup_outcome(config, plan, catalog.model(CODER_7B), faults=SimFaults())
