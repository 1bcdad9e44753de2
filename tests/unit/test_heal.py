"""Self-healing's pure part: real vLLM failure logs diagnosed, remedies chosen, the sim's failures healed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from maider_tui import catalog
from maider_tui.ops.heal import MAX_ATTEMPTS, Diagnosis, describe_change, diagnose, remedy
from maider_tui.models import VllmConfig

LOGS = Path(__file__).resolve().parents[1] / "fixtures" / "vllm_logs"
CODER_7B = "Qwen/Qwen2.5-Coder-7B-Instruct"
CODER_14B = "Qwen/Qwen2.5-Coder-14B-Instruct"
CODER_32B_AWQ = "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ"
QWEN_72B_AWQ = "Qwen/Qwen2.5-72B-Instruct-AWQ"
DEEPSEEK_LITE = "deepseek-ai/DeepSeek-Coder-V2-Lite-Instruct"


def log(name: str) -> str:
    return (LOGS / name).read_text(encoding="utf-8")


def from_the_log(evidence: str, text: str) -> bool:
    """The evidence is the log's own words: one message, its prefixes stripped and its breaks joined."""
    return bool(evidence) and re.sub(r"\s", "", evidence) in re.sub(r"\s", "", text)


# --- diagnose: real logs from public issues (tests/fixtures/vllm_logs/SOURCES.md) -------------------

@pytest.mark.parametrize(("name", "kind", "detail", "numbers"), [
    ("oom_linear_weights_v1.txt", "oom", None, {"total_gib": 93.09}),
    ("oom_cudagraph_runtime_error.txt", "oom", None, {}),
    ("oom_free_memory_on_startup.txt", "oom", "startup_free_memory",
     {"free_gib": 3.22, "total_gib": 4.0, "gpu_memory_utilization": 0.9}),
    ("oom_no_cache_blocks_compose.txt", "oom", "no_cache_blocks", {}),
    ("kv_cache_v0_max_seq_len.txt", "kv_cache", None, {"max_seq_len": 131072, "kv_capacity_tokens": 79392}),
    ("kv_cache_v1_estimated_length.txt", "kv_cache", None,
     {"max_seq_len": 262144, "kv_capacity_tokens": 34736, "kv_needed_gib": 24.0, "kv_available_gib": 3.18}),
    ("kv_cache_v1_no_estimate.txt", "kv_cache", None,
     {"max_seq_len": 1048576, "kv_needed_gib": 24.0, "kv_available_gib": 9.97}),
    ("nccl_dist_backend_error.txt", "nccl", None, {}),
    ("nccl_shm_warn.txt", "nccl", None, {}),
    ("nccl_cupy_system_error.txt", "nccl", None, {}),
    ("tp_attention_heads_pydantic.txt", "tensor_parallel", None, {"heads": 64, "tp": 3}),
    ("tp_attention_heads_v0.txt", "tensor_parallel", None, {"heads": 52, "tp": 8}),
    ("tp_world_size_local_gpu_count.txt", "tensor_parallel", None, {"world_size": 2, "gpus_available": 1}),
    ("tp_world_size_visible_devices.txt", "tensor_parallel", None, {"world_size": 16, "gpus_available": 8}),
    ("tp_tensor_parallel_size_pydantic.txt", "tensor_parallel", None,
     {"world_size": 16, "gpus_available": 8}),
    ("model_loading_bf16_t4.txt", "model_loading", "bf16_unsupported", {"compute_capability": 7.5}),
    ("model_loading_trust_remote_code.txt", "model_loading", "trust_remote_code", {}),
    ("model_loading_unsupported_architecture.txt", "model_loading", "unsupported_architecture", {}),
    ("model_loading_not_found.txt", "model_loading", "not_found", {}),
    ("model_loading_gated.txt", "model_loading", "gated", {}),
])
def test_real_failure_logs(name, kind, detail, numbers):
    text = log(name)
    found = diagnose(text)
    assert found is not None, name
    assert (found.kind, found.detail) == (kind, detail)
    assert numbers.items() <= found.numbers.items()
    assert from_the_log(found.evidence, text)
    assert found.summary and "{" not in found.summary


@pytest.mark.parametrize("name", [
    "healthy_nccl_info.txt", "healthy_memory_profiling.txt", "healthy_cudagraph_memory_notes.txt",
    "healthy_running_out_of_memory_note.txt",
])
def test_healthy_logs_are_not_failures(name):
    assert diagnose(log(name)) is None


def test_evidence_is_the_cause_not_vllms_wrapper_lines():
    found = diagnose(log("oom_linear_weights_v1.txt"))
    assert "CUDA out of memory. Tried to allocate 896.00 MiB" in found.evidence
    assert "EngineCore failed to start" not in found.evidence


def test_an_info_line_about_memory_is_not_an_oom_but_a_later_error_is():
    notes = log("healthy_running_out_of_memory_note.txt")
    assert diagnose(notes) is None
    assert diagnose(notes + "\n" + log("nccl_dist_backend_error.txt")).kind == "nccl"


def test_the_last_error_wins_and_a_server_that_came_up_after_it_is_healthy():
    both = log("nccl_dist_backend_error.txt") + log("kv_cache_v0_max_seq_len.txt")
    assert diagnose(both).kind == "kv_cache"
    recovered = both + "(APIServer pid=1) INFO:     Application startup complete.\n"
    assert diagnose(recovered) is None


def test_only_the_latest_run_counts():
    earlier = log("oom_linear_weights_v1.txt")
    restart = "(APIServer pid=1) INFO 01-01 00:10:00 [api_server.py:1839] vLLM API server version 0.11.0\n"
    assert diagnose(earlier + restart) is None  # the new run has not failed (yet)
    assert diagnose(earlier + restart + log("tp_attention_heads_pydantic.txt")).kind == "tensor_parallel"


def test_docker_timestamps_and_ansi_colours_are_read_through():
    line = log("model_loading_bf16_t4.txt").strip()
    assert diagnose(f"2025-01-14T14:30:22.123456789Z \x1b[31m{line}\x1b[0m").detail == "bf16_unsupported"


def test_empty_and_ordinary_logs_are_none():
    assert diagnose("") is None
    assert diagnose("INFO 01-01 00:00:00 [core.py:1] Initializing a V1 LLM engine with config: "
                    "trust_remote_code=False, tensor_parallel_size=2") is None


# --- diagnose: what the simulated vLLM prints for bad configurations --------------------------------

try:
    from maider_tui.sim import vllm_behaviour as sim
    from maider_tui.sim.faults import SimFaults
except ImportError:  # the simulated vLLM is another part of the app; the real-log tests stand alone
    sim = None
needs_sim = pytest.mark.skipif(sim is None, reason="maider_tui.sim.vllm_behaviour is not there yet")

NCCL_OK = {"NCCL_IB_DISABLE": "1"}
SIM_CASES = [  # (flags, plan, container env, faults, the fixed config's field: value)
    ([CODER_7B, "--gpu-memory-utilization", "0.75", "--max-model-len", "4096"], "g2-gpu-rtx4000a1-s", None,
     None, {"gpu_memory_utilization": 0.9}),
    ([CODER_7B, "--gpu-memory-utilization", "0.99", "--max-model-len", "4096"], "g2-gpu-rtx4000a1-s", None,
     None, {"gpu_memory_utilization": 0.94}),
    ([QWEN_72B_AWQ, "-tp", "2", "--max-model-len", "32768"], "g1-gpu-rtx6000-2", NCCL_OK, None,
     {"max_model_len": catalog.fit(QWEN_72B_AWQ, "g1-gpu-rtx6000-2").max_context}),
    ([CODER_7B, "--max-model-len", "65536"], "g2-gpu-rtx4000a1-s", None, None, {"max_model_len": 32768}),
    ([CODER_32B_AWQ, "-tp", "2"], "g2-gpu-rtx4000a2-s", None, None,
     {"env": {"NCCL_DEBUG": "WARN", "NCCL_IB_DISABLE": "1", "NCCL_P2P_DISABLE": "0"}}),
    ([CODER_14B, "-tp", "3", "--max-model-len", "8192"], "g1-gpu-rtx6000-3", NCCL_OK, None,
     {"tensor_parallel_size": 2, "pipeline_parallel_size": 1}),
    ([CODER_14B, "-tp", "4", "--max-model-len", "8192"], "g1-gpu-rtx6000-3", NCCL_OK, None,
     {"tensor_parallel_size": 2}),
    ([CODER_7B, "--dtype", "bfloat16", "--max-model-len", "8192"], "g1-gpu-rtx6000-1", None, None,
     {"dtype": "half"}),
    ([DEEPSEEK_LITE, "-tp", "2", "--max-model-len", "32768"], "g2-gpu-rtx4000a2-s", NCCL_OK, None,
     {"trust_remote_code": True}),
]


def sim_start(config: VllmConfig, plan: str, env: dict | None, faults: SimFaults | None):
    try:
        model = catalog.model(config.model)
    except catalog.UnknownModelError:
        model = None
    return sim.startup_outcome(config, catalog.gpu_type(plan), model, faults=faults or SimFaults(), env=env)


@needs_sim
@pytest.mark.parametrize(("flags", "plan", "env", "faults", "fixed"), SIM_CASES)
def test_the_sims_failures_are_diagnosed_and_healed(flags, plan, env, faults, fixed):
    config = sim.config_from_args(flags)
    outcome = sim_start(config, plan, env, faults)
    assert not outcome.ok
    found = diagnose("\n".join(outcome.log_lines))
    assert found is not None and found.kind == outcome.kind
    assert any(line.endswith(found.evidence) for line in outcome.log_lines)
    gpus = catalog.gpu_type(plan).gpus
    for attempt in range(1, MAX_ATTEMPTS + 1):
        config = remedy(config, found, attempt, gpus, container_env=env)
        assert config is not None, f"nothing left after {found.summary}"
        outcome = sim_start(config, plan, env, faults)
        if outcome.ok:
            break
        found = diagnose("\n".join(outcome.log_lines))
    assert outcome.ok
    assert {name: getattr(config, name) for name in fixed} == fixed
    assert diagnose("\n".join(outcome.log_lines)) is None  # a healthy sim log reads as healthy


@needs_sim
@pytest.mark.parametrize(("flags", "unsupported"), [(["acme/NoSuchModel-7B"], False), ([CODER_7B], True)])
def test_what_flags_cannot_fix_ends_the_healing(flags, unsupported):
    faults = SimFaults(unsupported_models={CODER_7B}) if unsupported else None
    config = sim.config_from_args(flags)
    outcome = sim_start(config, "g2-gpu-rtx4000a1-s", None, faults)
    found = diagnose("\n".join(outcome.log_lines))
    assert found.kind == "model_loading" and found.detail in ("not_found", "unsupported_architecture")
    assert remedy(config, found, 1, 1) is None


# --- remedy -----------------------------------------------------------------------------------------

OOM = Diagnosis("oom", "torch.OutOfMemoryError: CUDA out of memory.")


def test_oom_lowers_the_utilisation_then_also_halves_the_context():
    first = remedy(VllmConfig(model=CODER_7B, max_model_len=32768), OOM, 1, 1)
    assert (first.gpu_memory_utilization, first.max_model_len) == (0.85, 32768)
    second = remedy(first, OOM, 2, 1)
    assert (second.gpu_memory_utilization, second.max_model_len) == (0.80, 16384)
    assert describe_change(first, second) == \
        "gpu_memory_utilization 0.85 -> 0.80, max_model_len 32768 -> 16384"


def test_oom_halves_an_unset_context_from_the_models_own_limit_or_8192():
    assert remedy(VllmConfig(model=CODER_7B), OOM, 2, 1).max_model_len == 16384  # catalog: 32768
    assert remedy(VllmConfig(model="acme/Custom-3B"), OOM, 2, 1).max_model_len == 4096
    assert remedy(VllmConfig(model="acme/Custom-3B", max_model_len=5000), OOM, 2, 1).max_model_len == 2048


def test_oom_stops_at_its_floors():
    floor = VllmConfig(model=CODER_7B, gpu_memory_utilization=0.70, max_model_len=1024)
    assert remedy(floor, OOM, 1, 1) is None
    assert remedy(floor, OOM, 3, 1) is None
    near = remedy(VllmConfig(model=CODER_7B, gpu_memory_utilization=0.72, max_model_len=1024), OOM, 2, 1)
    assert (near.gpu_memory_utilization, near.max_model_len) == (0.70, 1024)


def test_startup_free_memory_sets_the_utilisation_below_what_is_free():
    found = diagnose(log("oom_free_memory_on_startup.txt"))
    healed = remedy(VllmConfig(model=CODER_7B, max_model_len=8192), found, 2, 1)
    assert (healed.gpu_memory_utilization, healed.max_model_len) == (0.79, 8192)
    busy = Diagnosis("oom", "x", {"free_gib": 10.0, "total_gib": 24.0}, "startup_free_memory")
    assert remedy(VllmConfig(model=CODER_7B), busy, 1, 1) is None  # another process holds the GPU


def test_no_cache_blocks_raises_the_utilisation_as_vllm_advises():
    found = diagnose(log("oom_no_cache_blocks_compose.txt"))
    low = VllmConfig(model=CODER_7B, gpu_memory_utilization=0.6)
    assert remedy(low, found, 1, 1).gpu_memory_utilization == 0.9
    assert remedy(VllmConfig(model=CODER_7B), found, 1, 1).gpu_memory_utilization == 0.95
    assert remedy(VllmConfig(model=CODER_7B, gpu_memory_utilization=0.95), found, 1, 1) is None


@pytest.mark.parametrize(("name", "before", "after"), [
    ("kv_cache_v0_max_seq_len.txt", 131072, 78848),  # 79392 rounded down to 1024s
    ("kv_cache_v1_estimated_length.txt", 262144, 33792),  # 34736
    ("kv_cache_v1_no_estimate.txt", 1048576, 435200),  # 9.97/24 GiB of 1048576 tokens
])
def test_kv_cache_takes_the_capacity_vllm_reported(name, before, after):
    config = VllmConfig(model="acme/Long-Model", max_model_len=before)
    assert remedy(config, diagnose(log(name)), 1, 1).max_model_len == after


def test_kv_cache_without_numbers_halves_and_too_small_a_cache_is_the_end():
    config = VllmConfig(model=CODER_7B, max_model_len=32768)
    assert remedy(config, Diagnosis("kv_cache", "KV cache"), 1, 1).max_model_len == 16384
    tiny = Diagnosis("kv_cache", "x", {"max_seq_len": 16384, "kv_capacity_tokens": 976})
    assert remedy(VllmConfig(model=CODER_7B, max_model_len=16384), tiny, 1, 1) is None
    over = Diagnosis("kv_cache", "x", {"max_seq_len": 65536, "max_positions": 32768}, "over_model_limit")
    assert remedy(VllmConfig(model=CODER_7B, max_model_len=65536), over, 1, 1).max_model_len == 32768


def test_nccl_adds_the_env_then_turns_p2p_off_once_then_gives_up():
    nccl = diagnose(log("nccl_dist_backend_error.txt"))
    config = VllmConfig(model=CODER_32B_AWQ, tensor_parallel_size=2, env={"OTHER": "x"})
    first = remedy(config, nccl, 1, 2)
    assert first.env == {"OTHER": "x", "NCCL_DEBUG": "WARN", "NCCL_IB_DISABLE": "1", "NCCL_P2P_DISABLE": "0"}
    assert describe_change(config, first) == ("env +NCCL_DEBUG=WARN, env +NCCL_IB_DISABLE=1, "
                                              "env +NCCL_P2P_DISABLE=0")
    second = remedy(first, nccl, 2, 2)
    assert second.env["NCCL_P2P_DISABLE"] == "1"
    assert describe_change(first, second) == "env NCCL_P2P_DISABLE 0 -> 1"
    assert remedy(second, nccl, 3, 2) is None


def test_nccl_knows_what_compose_already_gave_the_container():
    nccl = diagnose(log("nccl_shm_warn.txt"))
    compose_env = {"NCCL_DEBUG": "WARN", "NCCL_IB_DISABLE": "1", "NCCL_P2P_DISABLE": "0"}
    config = VllmConfig(model=CODER_32B_AWQ, tensor_parallel_size=2)
    healed = remedy(config, nccl, 1, 2, container_env=compose_env)
    assert healed.env == {"NCCL_P2P_DISABLE": "1"}


@pytest.mark.parametrize(("config", "name", "gpus", "layout"), [
    (VllmConfig(model="acme/Big", tensor_parallel_size=3), "tp_attention_heads_pydantic.txt", 3, (2, 1)),
    (VllmConfig(model="acme/Big", tensor_parallel_size=3), "tp_attention_heads_pydantic.txt", 4, (4, 1)),
    (VllmConfig(model="acme/Odd", tensor_parallel_size=8), "tp_attention_heads_v0.txt", 8, (4, 2)),
    (VllmConfig(model="acme/Big", tensor_parallel_size=2), "tp_world_size_local_gpu_count.txt", 2, (1, 1)),
    (VllmConfig(model="acme/Big", tensor_parallel_size=16), "tp_tensor_parallel_size_pydantic.txt", 8,
     (8, 1)),
])
def test_tensor_parallel_fits_the_gpus_and_the_heads(config, name, gpus, layout):
    healed = remedy(config, diagnose(log(name)), 1, gpus)
    assert (healed.tensor_parallel_size, healed.pipeline_parallel_size) == layout


def test_tensor_parallel_uses_the_catalogs_heads_when_the_log_has_none():
    world = Diagnosis("tensor_parallel", "World size (4) is larger than ...",
                      {"world_size": 4, "gpus_available": 3})
    healed = remedy(VllmConfig(model=CODER_14B, tensor_parallel_size=4), world, 1, 3)  # 40 heads
    assert (healed.tensor_parallel_size, healed.pipeline_parallel_size) == (2, 1)
    assert describe_change(VllmConfig(model=CODER_14B, tensor_parallel_size=4), healed) == \
        "tensor_parallel_size 4 -> 2"
    same = VllmConfig(model=CODER_14B, tensor_parallel_size=2)
    assert remedy(same, Diagnosis("tensor_parallel", "tp_size mismatch"), 1, 3) is None  # already the best


@pytest.mark.parametrize(("name", "config", "change"), [
    ("model_loading_bf16_t4.txt", VllmConfig(model=CODER_7B, dtype="bfloat16"), {"dtype": "half"}),
    ("model_loading_bf16_t4.txt", VllmConfig(model=CODER_7B), {"dtype": "half"}),
    ("model_loading_trust_remote_code.txt", VllmConfig(model=DEEPSEEK_LITE), {"trust_remote_code": True}),
])
def test_model_loading_remedies(name, config, change):
    healed = remedy(config, diagnose(log(name)), 1, 1)
    assert {field: getattr(healed, field) for field in change} == change
    assert remedy(healed, diagnose(log(name)), 2, 1) is None  # the same error again: nothing left


@pytest.mark.parametrize("name", [
    "model_loading_unsupported_architecture.txt", "model_loading_not_found.txt", "model_loading_gated.txt"])
def test_model_loading_with_nothing_to_try(name):
    assert remedy(VllmConfig(model=CODER_7B, dtype="half"), diagnose(log(name)), 1, 1) is None


def test_other_model_loading_errors_drop_an_explicit_dtype():
    other = Diagnosis("model_loading", "RuntimeError: something about the architecture")
    healed = remedy(VllmConfig(model=CODER_7B, dtype="float16"), other, 1, 1)
    assert healed.dtype == "auto"
    assert remedy(healed, other, 2, 1) is None


def test_unknown_kind_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown diagnosis kind"):
        remedy(VllmConfig(model=CODER_7B), Diagnosis("gremlins", "x"), 1, 1)


def test_describe_change_names_each_flag():
    old = VllmConfig(model=CODER_7B)
    new = VllmConfig(model=CODER_7B, dtype="half", trust_remote_code=True, max_num_seqs=8, env={"A": "1"})
    assert describe_change(old, new) == \
        "dtype auto -> half, max_num_seqs unset -> 8, trust_remote_code false -> true, env +A=1"
    assert describe_change(new, old).endswith("env -A")
    assert describe_change(old, old) == "no change"
