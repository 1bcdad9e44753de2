"""diagnose reads vLLM's logs as they really arrive: broken at a terminal's width, behind compose's,
Ray's and vLLM's prefixes, and cut down to a traceback's last line.

Every case is a real log from a public issue, its source named beside it (and in
tests/fixtures/vllm_logs/SOURCES.md). The evidence is the cleaned, whole message: no prefix, no
logger header, the terminal's breaks joined.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from maider_tui.models import VllmConfig
from maider_tui.ops.heal import diagnose, remedy

LOGS = Path(__file__).resolve().parents[1] / "fixtures" / "vllm_logs"


def log(name: str) -> str:
    return (LOGS / name).read_text(encoding="utf-8")


def terminal(text: str, width: int) -> str:
    """The log as a terminal `width` columns wide shows it, copied: every long line broken each
    `width` characters, wherever that falls (mid-word, inside a prefix, before a space)."""
    return "\n".join(line[i:i + width] for line in text.splitlines()
                     for i in range(0, max(len(line), 1), width))


SHAPES = [
    # --- (1) broken at the terminal's width --------------------------------------------------------
    # SergiioB/intel-arc-pro-b70-inference-cookbook issue #4, "10MiB to small KV cache.": a V1 traceback
    # behind `(EngineCore pid=316)`, every long line broken at 119 columns, mid-word ("KV cach" / "e is").
    pytest.param("kv_cache_v1_wrapped_engine_core.txt", "kv_cache", None,
                 {"max_seq_len": 100000, "kv_needed_gib": 4.26, "kv_available_gib": 4.25},
                 "ValueError: To serve at least one request with the model's max seq len (100000), "
                 "(4.26 GiB KV cache is needed, which is larger than the available KV cache memory "
                 "(4.25 GiB). Based on the avai", id="wrapped-kv_cache-engine_core"),
    # vllm-project/vllm issue #19445, "[Bug]: Docker image CUDA error on RTX 2080 Ti" (v0.13.0 comment):
    # PyTorch's OOM message broken into eight lines; the GPU's capacity is on the second.
    pytest.param("oom_wrapped_lines_v013.txt", "oom", None, {"gpu": 0, "total_gib": 10.57},
                 "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 252.00 MiB. GPU 0 has a "
                 "total capacity of 10.57 GiB of which 163.12 MiB is free. Process 2073789 has 10.41 GiB "
                 "memory in use. Of the allocated memory 9.67 GiB is allocated by PyTorch, with 299.88 MiB "
                 "allocated in private pools (e.g., CUDA Graphs), and 26.44 MiB is reserved by PyTorch but "
                 "unallocated. If reserved but unallocated memory is large try setting "
                 "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.",
                 id="wrapped-oom-torch_message"),
    # --- (2) behind prefixes -----------------------------------------------------------------------
    # vllm-project/vllm issue #7800, "[Bug]: Running mistral-large results in an error related to NCCL":
    # the worker's one-line report, its traceback's first line glued to the cause.
    pytest.param("nccl_worker_init_device_one_line.txt", "nccl", None, {},
                 "Exception in worker VllmWorkerProcess while processing method init_device: NCCL error: "
                 "unhandled system error (run with NCCL_DEBUG=INFO for details), Traceback (most recent call "
                 "last):", id="prefixed-nccl-worker_process"),
    # vllm-project/vllm issue #5828, "[Bug]: unhandled system error with NCCL on v0.5.0.post1": Ray's
    # `(RayWorkerWrapper pid=67451, ip=10.1.0.7)` tag, and "NCCL Error 2" with a capital E.
    pytest.param("nccl_ray_worker_wrapper.txt", "nccl", None, {},
                 "RuntimeError: NCCL Error 2: unhandled system error (run with NCCL_DEBUG=INFO for details)",
                 id="prefixed-nccl-ray"),
    # vllm-project/vllm issue #8903, "[Usage]: DOCKER - Getting OOM while running
    # `meta-llama/Llama-3.2-11B-Vision-Instruct`": a worker tag whose "(" the paste lost.
    pytest.param("oom_worker_process_tag_cut.txt", "oom", None, {"gpu": 3, "total_gib": 79.15},
                 "Exception in worker VllmWorkerProcess while processing method "
                 "determine_num_available_blocks: CUDA out of memory. Tried to allocate 19.63 GiB.",
                 id="prefixed-oom-cut_tag"),
    # Tencent-Hunyuan/HunyuanImage-3.0 pull request #54, "Feature/vllm infer": pydantic's error behind
    # the API server's tag, the validation line indented under it.
    pytest.param("model_loading_unsupported_architecture_apiserver.txt", "model_loading",
                 "unsupported_architecture", {},
                 "Value error, Model architectures ['HunyuanImage3ForCausalMM'] are not supported for now.",
                 id="prefixed-model_loading-apiserver"),
    # --- (3) cut down to a traceback's last line ---------------------------------------------------
    # QwenLM/Qwen3 issue #12, its title: `raise ValueError("No available memory for the cache blocks. "
    # ValueError: ...`, the raise line and the exception flattened into one.
    pytest.param("oom_no_cache_blocks_raise_line.txt", "oom", "no_cache_blocks", {},
                 'raise ValueError("No available memory for the cache blocks. " ValueError: No available '
                 "memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the "
                 "engine.", id="cut-oom-raise_line"),
    # vllm-project/vllm issue #2076, "Vllm Docker not able to run Mixtral-8x7B-Instruct-v0.1": only the
    # exception survives, indented like a source line.
    pytest.param("model_loading_unsupported_architecture_indented.txt", "model_loading",
                 "unsupported_architecture", {},
                 "ValueError: Model architectures ['MixtralForCausalLM'] are not supported for now.",
                 id="cut-model_loading-indented"),
    # MIV-XJTU/FSDrive issue #21: `raise ValueError(` and the exception, nothing else.
    pytest.param("tp_attention_heads_raise_cut.txt", "tensor_parallel", None, {"heads": 12, "tp": 8},
                 "ValueError: Total number of attention heads (12) must be divisible by tensor parallel "
                 "size (8).",
                 id="cut-tensor_parallel"),
    # QwenLM/Qwen3 issue #295, "vllm 部署 Qwen1.5-7B-Chat 出错 KV cache 怎么是7344呢？": ` raise ValueError(` and
    # the exception.
    pytest.param("kv_cache_raise_cut.txt", "kv_cache", None,
                 {"max_seq_len": 32768, "kv_capacity_tokens": 7344},
                 "ValueError: The model's max seq len (32768) is larger than the maximum number of tokens "
                 "that can be stored in KV cache (7344).", id="cut-kv_cache"),
]


@pytest.mark.parametrize(("name", "kind", "detail", "numbers", "evidence"), SHAPES)
def test_real_logs_in_every_shape_are_diagnosed(name, kind, detail, numbers, evidence):
    found = diagnose(log(name))
    assert found is not None, name
    assert (found.kind, found.detail) == (kind, detail)
    assert numbers.items() <= found.numbers.items()
    assert found.evidence.startswith(evidence)  # the cleaned, whole message
    assert "\n" not in found.evidence and found.evidence == found.evidence.strip()
    assert found.summary and "{" not in found.summary


def test_a_wrapped_kv_cache_message_gives_the_remedy_its_numbers():
    # SergiioB/intel-arc-pro-b70-inference-cookbook issue #4: 100000 tokens x 4.25 / 4.26 GiB fit.
    found = diagnose(log("kv_cache_v1_wrapped_engine_core.txt"))
    healed = remedy(VllmConfig(model="acme/Long-Model", max_model_len=100000), found, 1, 1)
    assert healed.max_model_len == 99328  # 99765 rounded down to 1024s, not the no-number halving


REAL_FAILURES = sorted(p.name for p in LOGS.glob("*.txt") if not p.name.startswith("healthy_")
                       and p.name != "kv_cache_v1_wrapped_engine_core.txt")  # that one is already broken
HEALTHY = [
    # vllm-project/vllm issue #22304 ("[Bug]:"): "vLLM is using nccl==2.26.2", "Found nccl from library",
    # and a WARNING that custom allreduce is off because "P2P test failed": broken at 80 or 120
    # columns, its tail ("...failed. To silence this warning, specify disable_custom_all_reduce=...")
    # is still the WARNING's, not an NCCL error.
    "healthy_nccl_versions_p2p_warning.txt",
    # gpustack/gpustack issue #1263: "Using Flash Attention backend." from each worker.
    "healthy_flash_attention_backend.txt",
    # vllm-project/vllm issue #10517 (a comment, "20k - OK"): "Memory profiling results: ... kv_cache_size=".
    "healthy_memory_profiling_results.txt",
    # vllm-project/vllm pull request #3175: Ray-tagged INFO "If you are running out of memory, ...".
    "healthy_ray_cudagraph_note_repeated.txt",
    # akash-network/awesome-akash issue #543: an INFO args line broken mid-word.
    "healthy_wrapped_args_tagged.txt",
    # The earlier healthy logs (sources in SOURCES.md): NCCL INFO lines (vllm #10453), V0 memory
    # profiling (#11251), cudagraph memory notes (#15228), "running out of memory" advice (#7593).
    "healthy_nccl_info.txt", "healthy_memory_profiling.txt", "healthy_cudagraph_memory_notes.txt",
    "healthy_running_out_of_memory_note.txt",
]


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("name", REAL_FAILURES)
def test_every_real_failure_reads_the_same_from_a_terminal(name, width):
    whole, broken = diagnose(log(name)), diagnose(terminal(log(name), width))
    assert broken is not None, f"{name} at {width} columns"
    assert (broken.kind, broken.detail, broken.numbers, broken.evidence) == \
        (whole.kind, whole.detail, whole.numbers, whole.evidence)


@pytest.mark.parametrize("width", [None, 80, 120])
@pytest.mark.parametrize("name", HEALTHY)
def test_real_healthy_logs_stay_healthy_whole_or_broken(name, width):
    assert sorted(HEALTHY) == sorted(p.name for p in LOGS.glob("healthy_*.txt"))  # none left out
    text = log(name)
    assert diagnose(text if width is None else terminal(text, width)) is None


def test_memory_profiling_notes_are_not_the_failure_the_kv_cache_line_is():
    # vllm-project/vllm issue #10517, "[Usage]: What's the relationship between KV cache and
    # MAX_SEQUENCE_LENGTH." (a comment): the same start at 20k tokens (fine) and at 29k (too long).
    assert diagnose(log("healthy_memory_profiling_results.txt")) is None
    found = diagnose(log("kv_cache_after_memory_profiling.txt"))
    assert (found.kind, found.numbers) == ("kv_cache", {"max_seq_len": 29000, "kv_capacity_tokens": 23648})
    assert found.evidence.startswith("The model's max seq len (29000)")


def test_ray_info_about_running_out_of_memory_is_not_an_oom_but_the_nccl_error_after_it_is():
    # vllm-project/vllm pull request #3175 (the INFO line, "[repeated 2x across cluster]") and
    # vllm-project/vllm issue #5828 (the NCCL error, Ray tags on every line).
    note = log("healthy_ray_cudagraph_note_repeated.txt")
    assert diagnose(note) is None
    found = diagnose(note + log("nccl_ray_worker_wrapper.txt"))
    assert found.kind == "nccl" and found.evidence.startswith("RuntimeError: NCCL Error 2")


def test_a_wrapped_info_line_stays_info():
    # akash-network/awesome-akash issue #543, "vLLM failing with NCLL error": `[vllm]: INFO ... args:
    # Namespace(...)` broken mid-word ("disable_slidin" / "g_window"); its tail names
    # gpu_memory_utilization and tensor_parallel_size but is part of the INFO line.
    text = log("healthy_wrapped_args_tagged.txt")
    assert diagnose(text) is None
    assert diagnose(text + log("tp_attention_heads_v0.txt")).kind == "tensor_parallel"


def test_the_evidence_drops_rays_repeat_counter():
    line = log("nccl_ray_worker_wrapper.txt").splitlines()[-1] + " [repeated 3x across cluster]"
    assert diagnose(line).evidence == ("RuntimeError: NCCL Error 2: unhandled system error "
                                       "(run with NCCL_DEBUG=INFO for details)")


def test_a_compose_column_named_by_container_name_is_read_through():
    # `container_name:` in a compose file names the column without the "-1" (QAnything's logs in
    # netease-youdao/QAnything issue #128 show "qanything-container-local  | "); an INFO line behind it
    # stays INFO, an exception behind it is the failure.
    info = next(line for line in log("healthy_running_out_of_memory_note.txt").splitlines()
                if "out of memory" in line)
    assert diagnose(f"vllm-openai  | {info}") is None
    error = log("tp_attention_heads_v0.txt").strip()
    assert diagnose(f"vllm-openai  | {error}").evidence == error


def test_docker_timestamps_and_v1_worker_tags_leave_a_wrapper_that_names_no_cause():
    # runpod-workers/worker-vllm issue #276: `docker logs --timestamps` before the engine's tag; the
    # WARNING and INFO lines (one says "backend=nccl") and "WorkerProc failed to start." name no cause.
    text = (
        "2026-03-11T17:57:09.855212259Z (EngineCore_DP0 pid=469) WARNING 03-11 17:57:09 "
        "[multiproc_executor.py:921] Reducing Torch parallelism from 112 threads to 1 to avoid unnecessary "
        "CPU contention. Set OMP_NUM_THREADS in the external environment to tune this value as needed.\n"
        "2026-03-11T17:57:10.584281362Z (EngineCore_DP0 pid=469) INFO 03-11 17:57:10 "
        "[parallel_state.py:1234] world_size=1 rank=0 local_rank=0 distributed_init_method=tcp://127.0.0.1:54953 backend=nccl\n"
        "2026-03-11T17:57:10.976518836Z (EngineCore_DP0 pid=469) ERROR 03-11 17:57:10 "
        "[multiproc_executor.py:783] WorkerProc failed to start.\n")
    assert diagnose(text) is None
    tagged = "(Worker_TP14 pid=116) " + log("tp_attention_heads_v0.txt")
    assert diagnose(text + tagged).kind == "tensor_parallel"
