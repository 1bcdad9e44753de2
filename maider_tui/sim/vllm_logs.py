"""The lines a vLLM container (V1 engine, 0.11-era) logs as it starts, and as it fails.

Wording is vLLM's and PyTorch's own, as public issues and source quote it (vllm-project/vllm):
KV cache #25350, #34076 (kv_cache_utils.py; PR #16168 added the estimated length); CUDA OOM #17835,
#12030; world size PR #30140; attention heads #2652, PR #52535; bfloat16 #946, #1157 and the auto-dtype
fallback warning in 0.9.2/0.11.0 logs; trust_remote_code: transformers' ValueError wrapped by vLLM's
get_config; NCCL: pynccl_wrapper.NCCL_CHECK (#10626, gpustack#835). Pure text, no I/O: timestamps are
the caller's `started_at` plus sim offsets.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from maider_tui.models import GpuType, ModelSpec, VllmConfig

VLLM_VERSION = "0.11.0"
DEFAULT_STARTED_AT = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC: any fixed instant keeps logs reproducible
API = "APIServer pid=1"  # the container's PID 1 (the image's ENTRYPOINT is `vllm serve`)
ENGINE = "EngineCore_DP0 pid=211"
_SITE = "/usr/local/lib/python3.12/dist-packages/vllm"


def worker(rank: int) -> str:
    """The log prefix of a multiprocessing worker (one per GPU when the world size is above 1)."""
    return f"Worker_TP{rank} pid={301 + rank}"


@dataclass
class VllmLog:
    """Collects log lines with the sim second each appears at (lines stay in the order they were added)."""

    started_at: float = DEFAULT_STARTED_AT
    lines: list[str] = field(default_factory=list)
    at_s: list[float] = field(default_factory=list)
    now: float = 0.0

    def advance(self, seconds: float) -> None:
        """Move the log's own time on: later lines carry later timestamps."""
        self.now = round(self.now + max(0.0, seconds), 3)

    def _stamp(self) -> str:
        return time.strftime("%m-%d %H:%M:%S", time.gmtime(self.started_at + self.now))

    def raw(self, text: str, proc: str | None = None) -> None:
        """A line with no logger format (progress bars, uvicorn, tracebacks of a dying process)."""
        self.lines.append(f"({proc}) {text}" if proc else text)
        self.at_s.append(self.now)

    def info(self, proc: str, src: str, text: str, level: str = "INFO") -> None:
        """A line in vLLM's logger format: `(proc) LEVEL mm-dd HH:MM:SS [file.py:line] text`."""
        self.raw(f"{level} {self._stamp()} [{src}] {text}", proc)

    def error_block(self, proc: str, src: str, lines: list[str]) -> None:
        """`logger.exception` output: every line of the traceback carries the ERROR prefix."""
        for text in lines:
            self.info(proc, src, text, level="ERROR")


def traceback(frames: list[tuple[str, int, str, str]], exc_lines: list[str]) -> list[str]:
    """A Python traceback: frames are (file under vllm/, line, function, source line)."""
    out = ["Traceback (most recent call last):"]
    for path, line, func, src in frames:
        full = path if path.startswith("/") else f"{_SITE}/{path}"
        out += [f'  File "{full}", line {line}, in {func}', f"    {src}"]
    return out + exc_lines


# --- A startup that goes well, stage by stage ---------------------------------------------------

_ARCHITECTURES = (("qwen3", "Qwen3ForCausalLM"), ("qwen", "Qwen2ForCausalLM"), ("llama", "LlamaForCausalLM"),
                  ("deepseek-coder-v2", "DeepseekV2ForCausalLM"), ("deepseek-v2", "DeepseekV2ForCausalLM"),
                  ("mistral", "MistralForCausalLM"), ("gemma", "Gemma2ForCausalLM"))


def architecture_of(model_id: str, model: ModelSpec | None) -> str:
    """The `architectures` entry of the repo's config.json, as far as the id tells it."""
    arch = next((a for key, a in _ARCHITECTURES if key in model_id.lower()), None)
    if arch:  # Qwen3-Coder-30B-A3B and friends are mixture-of-experts
        return arch.replace("Qwen3", "Qwen3Moe") if model is not None and model.is_moe else arch
    word = "".join(ch for ch in model_id.rsplit("/", 1)[-1].split("-")[0] if ch.isalnum()) or "Custom"
    return f"{word[:1].upper()}{word[1:]}ForCausalLM"


def boot(log: VllmLog, config: VllmConfig) -> None:
    """The API server's first lines: version and the arguments that differ from vLLM's defaults."""
    args: dict[str, object] = {"model_tag": config.model, "model": config.model}
    defaults = VllmConfig(model=config.model)
    for name in ("served_model_name", "tensor_parallel_size", "pipeline_parallel_size", "max_model_len",
                 "gpu_memory_utilization", "max_num_seqs", "dtype", "kv_cache_dtype", "trust_remote_code"):
        value = getattr(config, name)
        if value != getattr(defaults, name) or name == "gpu_memory_utilization":
            args[name] = [value] if name == "served_model_name" else value
    log.info(API, "__init__.py:216", "Automatically detected platform cuda.")
    log.info(API, "api_server.py:1839", f"vLLM API server version {VLLM_VERSION}")
    log.info(API, "utils.py:233", f"non-default args: {args!r}")
    log.advance(2.5)  # config.json, tokenizer files and generation config from the Hub


class Phases:
    """The engine side of a startup: which process logs, how long each stage takes (sim seconds)."""

    def __init__(self, log: VllmLog, config: VllmConfig, model: ModelSpec, gpu_type: GpuType, dtype: str,
                 world: int) -> None:
        self.log, self.config, self.model, self.dtype, self.world = log, config, model, dtype, world
        self.family = gpu_type.family
        self.proc = ENGINE if world == 1 else worker(0)  # workers run inside the engine at world size 1
        self.engine_at = 0.0
        self.shards = max(1, math.ceil(model.params_b * (0.55 if model.quant else 2.0) / 4.0))  # ~4 GB files

    def engine_start(self) -> None:
        c, log = self.config, self.log
        quant = self.model.quant
        if quant == "awq" and self.family and self.family.compute_capability >= (8, 0):
            log.info(API, "awq_marlin.py:117", "The model is convertible to awq_marlin during runtime. "
                     "Using awq_marlin kernel.")
            quant = "awq_marlin"
        log.info(API, "scheduler.py:205", "Chunked prefill is enabled with max_num_batched_tokens=2048.")
        log.advance(4.0)  # the engine core process starts and imports torch
        self.engine_at = log.now
        log.info(ENGINE, "core.py:644", "Waiting for init message from front-end.")
        log.info(ENGINE, "core.py:77", (
            f"Initializing a V1 LLM engine (v{VLLM_VERSION}) with config: model='{c.model}', "
            f"tokenizer='{c.model}', trust_remote_code={c.trust_remote_code}, dtype=torch.{self.dtype}, "
            f"max_seq_len={c.max_model_len or self.model.max_positions}, load_format=auto, "
            f"tensor_parallel_size={c.tensor_parallel_size}, "
            f"pipeline_parallel_size={c.pipeline_parallel_size}, "
            f"quantization={quant}, enforce_eager=False, kv_cache_dtype={c.kv_cache_dtype}, "
            f"served_model_name={c.served_model_name or c.model}, enable_prefix_caching=True"))

    def nccl_ok(self) -> None:
        log = self.log
        if self.world > 1:
            log.advance(9.0)  # NCCL init and the custom all-reduce P2P check
            log.info(worker(0), "pynccl.py:103", "vLLM is using nccl==2.27.3")
        tp = self.config.tensor_parallel_size
        for rank in range(self.world):
            log.info(self.proc if self.world == 1 else worker(rank), "parallel_state.py:1208",
                     f"rank {rank} in world size {self.world} is assigned as DP rank 0, "
                     f"PP rank {rank // tp}, TP rank {rank % tp}, EP rank {rank % tp}")

    def load_start(self) -> None:
        log, proc = self.log, self.proc
        log.advance(1.0)
        log.info(proc, "gpu_model_runner.py:2602", f"Starting to load model {self.config.model}...")
        backend = "Flash Attention" if self.family and self.family.compute_capability >= (8, 0) else "Triton"
        log.info(proc, "cuda.py:366", f"Using {backend} backend on V1 engine.")
        log.info(proc, "weight_utils.py:392", "Using model weights format ['*.safetensors']")
        log.raw(f"Loading safetensors checkpoint shards:   0% Completed | 0/{self.shards} [00:00<?, ?it/s]",
                proc)

    def load_done(self, weights_gib: float) -> None:
        log, proc, shards = self.log, self.proc, self.shards
        took = 2.0 + weights_gib  # ~1 GiB/s from the local HF cache into each GPU
        log.advance(took)
        log.raw(f"Loading safetensors checkpoint shards: 100% Completed | {shards}/{shards} "
                f"[00:{min(59, round(took)):02d}<00:00, {took / shards:.2f}s/it]", proc)
        log.info(proc, "default_loader.py:267", f"Loading weights took {took - 0.4:.2f} seconds")
        log.info(proc, "gpu_model_runner.py:2653",
                 f"Model loading took {weights_gib:.4f} GiB and {took:.6f} seconds")
        log.advance(25.0)  # torch.compile, first time on this VM
        for src, text in (("backends.py:548", "Using cache directory: /root/.cache/vllm/torch_compile_cache/"
                           "8f3a1c2b7d/rank_0_0/backbone for vLLM's torch.compile"),
                          ("backends.py:197", "Compiling a graph for dynamic shape takes 16.73 s"),
                          ("monitor.py:34", "torch.compile takes 24.57 s in total")):
            log.info(proc, src, text)
        log.advance(2.0)  # the profile run

    def fail(self, frames: list[tuple[str, int, str, str]], exc_lines: list[str], *, all_ranks: bool = False,
             in_engine: bool = False) -> None:
        """The failure's traceback, from the process that raised it up to the API server."""
        self.log.advance(0.5)
        rank = None if in_engine else (-1 if all_ranks else 0)
        engine_failure(self.log, frames, exc_lines, self.world, rank)


def ready(log: VllmLog, phases: Phases, tokens: int, max_len: int, port: str) -> None:
    """KV cache sized, CUDA graphs captured, the API server listening."""
    log.info(ENGINE, "kv_cache_utils.py:1087", f"GPU KV cache size: {tokens:,} tokens")
    log.info(ENGINE, "kv_cache_utils.py:1091",
             f"Maximum concurrency for {max_len:,} tokens per request: {tokens / max_len:.2f}x")
    graphs = 8.0 if phases.world == 1 else 12.0
    log.advance(graphs)
    log.raw(f"Capturing CUDA graphs (mixed prefill-decode, PIECEWISE): 100%|##########| 67/67 "
            f"[00:{round(graphs):02d}<00:00, {67 / graphs:.2f}it/s]", phases.proc)
    log.info(phases.proc, "gpu_model_runner.py:3480",
             f"Graph capturing finished in {round(graphs)} secs, took 0.45 GiB")
    log.info(ENGINE, "core.py:210", "init engine (profile, create kv cache, warmup model) took "
             f"{log.now - phases.engine_at:.2f} seconds")
    log.advance(2.0)
    log.info(API, "loggers.py:147", "Engine 000: vllm cache_config_info with initialization after "
             f"num_gpu_blocks is: {tokens // 16}")
    log.info(API, "api_server.py:1634", "Supported_tasks: ['generate']")
    log.info(API, "api_server.py:1912", f"Starting vLLM API server 0 on http://0.0.0.0:{port}")
    log.info(API, "launcher.py:34", "Available routes are:")
    for route in ("/health, Methods: GET", "/metrics, Methods: GET", "/v1/models, Methods: GET",
                  "/v1/chat/completions, Methods: POST", "/v1/completions, Methods: POST"):
        log.info(API, "launcher.py:42", f"Route: {route}")
    uvicorn = f"Uvicorn running on http://0.0.0.0:{port} (Press CTRL+C to quit)"
    for line in ("Started server process [1]", "Waiting for application startup.",
                 "Application startup complete.", uvicorn):
        log.raw(f"INFO:     {line}", API)


# --- Failures before the engine starts (API server process, config resolution) -------------------

_CONFIG_FRAMES = [("entrypoints/openai/api_server.py", 1961, "run_server_worker",
                   "async with build_async_engine_client("),
                  ("engine/arg_utils.py", 1326, "create_engine_config", "config = VllmConfig(")]


def hf_not_found(model_id: str) -> list[str]:
    """An id that is not on the Hub: transformers' OSError, then vLLM's ValueError."""
    return [
        f"OSError: {model_id} is not a local folder and is not a valid model identifier listed on "
        "'https://huggingface.co/models'",
        "",
        "During handling of the above exception, another exception occurred:",
        "",
        f"ValueError: Invalid repository ID or local directory specified: '{model_id}'.",
        "Please verify the following requirements:",
        "1. Provide a valid Hugging Face repository ID.",
        "2. Specify a local directory that contains a recognized configuration file.",
    ]


def hf_gated(model_id: str) -> list[str]:
    """A gated repo asked for without a token: huggingface_hub's GatedRepoError as transformers words it."""
    return [
        "OSError: You are trying to access a gated repo.",
        f"Make sure to have access to it at https://huggingface.co/{model_id}.",
        "401 Client Error. (Request ID: Root=1-6752f1a0-3c8e2d7b1f0a4e5d6c7b8a90)",
        "",
        f"Cannot access gated repo for url https://huggingface.co/{model_id}/resolve/main/config.json.",
        f"Access to model {model_id} is restricted. You must have access to it and be authenticated to "
        "access it. Please log in.",
    ]


def trust_remote_code(model_id: str) -> list[str]:
    """transformers refuses to run a repo's own config code; vLLM re-raises it with its flag named."""
    return [
        f"ValueError: Loading {model_id} requires you to execute the configuration file in that repo on "
        "your local machine. Make sure you have read the code there to avoid malicious use, then set the "
        "option `trust_remote_code=True` to remove this error.",
        "",
        "The above exception was the direct cause of the following exception:",
        "",
        "RuntimeError: Failed to load the model config. If the model is a custom model not yet available in "
        "the HuggingFace transformers library, consider setting `trust_remote_code=True` in LLM or using "
        "the `--trust-remote-code` flag in the CLI.",
    ]


SUPPORTED_ARCHITECTURES = ("CohereForCausalLM", "DeepseekV2ForCausalLM", "DeepseekV3ForCausalLM",
                           "Gemma2ForCausalLM", "Gemma3ForCausalLM", "GPTBigCodeForCausalLM",
                           "LlamaForCausalLM", "MistralForCausalLM", "MixtralForCausalLM", "Phi3ForCausalLM",
                           "Qwen2ForCausalLM", "Qwen2MoeForCausalLM", "Qwen3ForCausalLM",
                           "Qwen3MoeForCausalLM")


def _pydantic(cls: str, message: str) -> list[str]:
    # vLLM's configs are pydantic dataclasses: a failed check surfaces as a one-error ValidationError.
    return [f"pydantic_core._pydantic_core.ValidationError: 1 validation error for {cls}",
            f"  Value error, {message} [type=value_error, input_value=ArgsKwargs((), {{...}}), "
            "input_type=ArgsKwargs]",
            "    For further information visit https://errors.pydantic.dev/2.11/v/value_error"]


def unsupported_architecture(arch: str) -> list[str]:
    """The model registry's refusal (`_raise_for_unsupported`), raised inside config validation."""
    keys = ", ".join(repr(a) for a in SUPPORTED_ARCHITECTURES if a != arch)
    return _pydantic("ModelConfig", f"Model architectures ['{arch}'] are not supported for now. "
                     f"Supported architectures: dict_keys([{keys}])")


def max_len_over_model(asked: int, derived: int) -> list[str]:
    """--max-model-len above the model's max_position_embeddings."""
    return _pydantic("ModelConfig", (
        f"User-specified max_model_len ({asked}) is greater than the derived max_model_len "
        f"(max_position_embeddings={derived} or model_max_length=None in model's config.json). To allow "
        "overriding this maximum, set the env var VLLM_ALLOW_LONG_MAX_MODEL_LEN=1. "
        "VLLM_ALLOW_LONG_MAX_MODEL_LEN must be used with extreme caution."))


def world_size(world: int, gpus: int) -> list[str]:
    return _pydantic("ParallelConfig", (
        f"World size ({world}) is larger than the number of available GPUs ({gpus}) in this node. If this "
        "is intentional and you are using:\n- ray, set '--distributed-executor-backend ray'.\n"
        "- multiprocessing, set '--nnodes' appropriately."))


def attention_heads(heads: int, tp: int) -> list[str]:
    return _pydantic("VllmConfig", f"Total number of attention heads ({heads}) must be divisible by tensor "
                     f"parallel size ({tp}).")


def config_failure(log: VllmLog, exc_lines: list[str]) -> None:
    """The API server dies before any engine process starts: a plain traceback, no logger prefix."""
    for text in traceback(_CONFIG_FRAMES, exc_lines):
        for line in text.split("\n"):
            log.raw(line, API)


# --- Failures inside the engine (worker init, weights, profiling, KV cache) ----------------------

def bf16_unsupported(gpu_name: str, cc: str) -> list[str]:
    return [f"ValueError: Bfloat16 is only supported on GPUs with compute capability of at least 8.0. "
            f"Your {gpu_name} GPU has compute capability {cc}. You can use float16 instead by explicitly "
            "setting the `dtype` flag in CLI, for example: --dtype=half."]


def free_memory(free_gib: float, total_gib: float, util: float, requested_gib: float) -> list[str]:
    return [f"ValueError: Free memory on device cuda:0 ({free_gib:.2f}/{total_gib:.2f} GiB) on startup is "
            f"less than desired GPU memory utilization ({util}, {requested_gib:.2f} GiB). Decrease GPU "
            "memory utilization or reduce GPU memory used by other processes."]


def nccl_warnings(log: VllmLog, world: int) -> None:
    """NCCL's own WARN lines (printed by the library, not vLLM's logger) before the error."""
    for rank in range(world):
        log.raw(f"localhost:{301 + rank}:{341 + rank} [{rank}] init.cc:1590 NCCL WARN ncclSystemError: "
                "System call (e.g. socket, malloc) or external library call failed or device error.")


NCCL_ERROR = ["RuntimeError: NCCL error: unhandled system error (run with NCCL_DEBUG=INFO for details)"]
NO_CACHE_BLOCKS = ["ValueError: No available memory for the cache blocks. Try increasing "
                   "`gpu_memory_utilization` when initializing the engine."]
Frames = list[tuple[str, int, str, str]]
_COMM = "distributed/device_communicators"
NCCL_FRAMES: Frames = [
    (f"{_COMM}/pynccl.py", 107, "__init__", "self.comm: ncclComm_t = self.nccl.ncclCommInitRank("),
    (f"{_COMM}/pynccl_wrapper.py", 256, "NCCL_CHECK", 'raise RuntimeError(f"NCCL error: {error_str}")'),
]
INIT_DEVICE_FRAMES: Frames = [
    ("v1/worker/gpu_worker.py", 180, "init_device",
     "current_platform.check_if_supports_dtype(self.model_config.dtype)"),
]
LOAD_FRAMES: Frames = [
    ("v1/worker/gpu_model_runner.py", 2613, "load_model", "self.model = model_loader.load_model("),
    ("model_executor/layers/linear.py", 444, "__init__",
     "weight = Parameter(torch.empty(sum(output_partition_sizes),"),
]
PROFILE_FRAMES: Frames = [
    ("v1/worker/gpu_model_runner.py", 3408, "profile_run", "hidden_states, _ = self._dummy_run("),
]
KV_FRAMES: Frames = [
    ("v1/core/kv_cache_utils.py", 707, "check_enough_kv_cache_memory", "raise ValueError("),
]


def torch_oom(gpu: int, tried_mib: float, total_gib: float, free_mib: float, in_use_gib: float) -> list[str]:
    """PyTorch's caching-allocator message, as vLLM workers print it."""
    return [f"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate {tried_mib:.2f} MiB. GPU {gpu} "
            f"has a total capacity of {total_gib:.2f} GiB of which {free_mib:.2f} MiB is free. Including "
            f"non-PyTorch memory, this process has {in_use_gib:.2f} GiB memory in use. Of the allocated "
            "memory "
            f"{in_use_gib - 0.31:.2f} GiB is allocated by PyTorch, and 21.43 MiB is reserved by PyTorch but "
            "unallocated. If reserved but unallocated memory is large try setting "
            "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.  See documentation for "
            "Memory Management  (https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)"]


def kv_cache_too_small(max_len: int, need_gib: float, avail_gib: float, estimated: int) -> list[str]:
    """V1's check that one request of max_model_len fits; it names the length that would fit."""
    estimate = (f" Based on the available memory, the estimated maximum model length is {estimated}."
                if estimated > 0 else "")
    return [f"ValueError: To serve at least one request with the models's max seq len ({max_len}), "
            f"({need_gib:.2f} GiB KV cache is needed, which is larger than the available KV cache memory "
            f"({avail_gib:.2f} GiB).{estimate} Try increasing `gpu_memory_utilization` or decreasing "
            "`max_model_len` when initializing the engine."]


def engine_failure(log: VllmLog, frames: Frames, exc_lines: list[str], world: int,
                   failing_rank: int | None) -> None:
    """How V1 reports an engine failure: the worker's traceback (TP > 1), the engine's, the API server's.

    failing_rank: the worker that raised (-1: every worker; None: the engine process itself)."""
    if failing_rank is not None and world > 1:
        for rank in range(world) if failing_rank < 0 else [failing_rank]:
            log.error_block(worker(rank), "multiproc_executor.py:597",
                            ["WorkerProc failed to start."] + traceback(frames, exc_lines))
        frames = [("v1/executor/multiproc_executor.py", 134, "_init_executor",
                   "self.workers = WorkerProc.wait_for_ready(unready_workers)")]
        exc_lines = ["Exception: WorkerProc initialization failed due to an exception in a background "
                     "process. See stack trace for root cause."]
    log.error_block(ENGINE, "core.py:708", ["EngineCore failed to start."] + traceback(
        [("v1/engine/core.py", 699, "run_engine_core", "engine_core = EngineCoreProc(*args, **kwargs)"),
         *frames],
        exc_lines))
    log.advance(1.0)
    for line in traceback([("v1/engine/utils.py", 886, "wait_for_engine_startup", 'raise RuntimeError(')],
                          ["RuntimeError: Engine core initialization failed. See root cause above. "
                           "Failed core proc(s): {}"]):
        log.raw(line, API)
