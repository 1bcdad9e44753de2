"""What a simulated `vllm serve` does with a configuration on a GPU plan: start, or fail like real vLLM.

Pure: no I/O. `config_from_args` reads a compose `command:`; `startup_outcome` walks vLLM's startup in
its own order (config resolution, parallel config, worker init, NCCL, weight loading, memory profile,
KV cache) and stops at the first check the configuration fails, with the log real vLLM prints there.
Memory arithmetic is the fit planner's (`catalog.fit`: usable = VRAM x gpu_memory_utilization, minus
weights, minus RESERVE_GB), so what the planner calls a fit, the sim starts. Every check is decided
from the configuration actually passed, so changing the flags really fixes (or causes) a failure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from maider_tui.catalog.fit import RESERVE_GB
from maider_tui.catalog.sizes import (
    GIB,
    KV_DTYPE_BYTES,
    decode_bytes_per_token,
    kv_bytes_per_token,
    weight_bytes,
    weights_per_gpu_bytes,
)
from maider_tui.catalog.speed import DEFAULT_EFFICIENCY, TP_SCALING_EXPONENT
from maider_tui.models import GpuType, ModelSpec
from maider_tui.records import VllmConfig, first_problem
from maider_tui.sim import vllm_logs as text
from maider_tui.sim.faults import SimFaults
from maider_tui.sim.vllm_logs import Phases, architecture_of, boot, ready

TORCH_HIDDEN_MIB = 320  # torch's total_memory is below nvidia-smi's memory.total: 24576 MiB -> 23.69 GiB
CUDA_CONTEXT_GIB = 0.35  # CUDA context + cuBLAS workspaces: taken before vLLM allocates anything
BLOCK_SIZE = 16  # vLLM's default KV block: capacity is a whole number of blocks
PREFILL_SPEEDUP = 40.0  # prefill is compute-bound and batched: tens of times faster than decode
NCCL_ENV = ("NCCL_P2P_DISABLE", "NCCL_IB_DISABLE", "NCCL_DEBUG")
DTYPES = ("auto", "half", "float16", "bfloat16", "float", "float32")
FailureKind = str  # "oom" | "kv_cache" | "nccl" | "tensor_parallel" | "model_loading"


@dataclass(frozen=True)
class StartupOutcome:
    """How a `vllm serve` start ends, and what the VM shows meanwhile. Times are sim seconds."""

    ok: bool
    kind: FailureKind | None
    log_lines: tuple[str, ...]
    line_at_s: tuple[float, ...]  # when each log line appears, sim seconds after the container starts
    per_gpu_used_mib: tuple[int, ...]  # nvidia-smi memory.used per GPU when up, or at its peak before failing
    load_s: float  # sim seconds until ready (ok) or until the process dies (failure); download not included
    download_gb: float  # GiB of weights fetched: the checkpoint, or 0 when it fails before loading weights
    decode_tok_s: float  # one stream, no batching
    prefill_tok_s: float
    kv_cache_tokens: int
    max_model_len: int  # the effective context length (flag, or the model's own limit)
    evidence: str | None = None  # the failure's key log line


# --- Command line ---------------------------------------------------------------------------------

_VALUE_FLAGS = {
    "--model": "model", "--served-model-name": "served_model_name",
    "--tensor-parallel-size": "tensor_parallel_size", "--pipeline-parallel-size": "pipeline_parallel_size",
    "--max-model-len": "max_model_len", "--gpu-memory-utilization": "gpu_memory_utilization",
    "--max-num-seqs": "max_num_seqs", "--dtype": "dtype", "--kv-cache-dtype": "kv_cache_dtype",
    "--port": "port", "--host": "host",
}
_ALIASES = {"-tp": "--tensor-parallel-size", "-pp": "--pipeline-parallel-size"}
_FLAG_OF = {field: flag for flag, field in _VALUE_FLAGS.items()}
_FLAG_OF.update(tensor_parallel_size="--tensor-parallel-size/-tp",
                pipeline_parallel_size="--pipeline-parallel-size/-pp")
# vLLM switches that take no value, so the token after them is never swallowed as their value.
_SWITCHES = {
    "--enforce-eager", "--enable-prefix-caching", "--no-enable-prefix-caching", "--enable-chunked-prefill",
    "--disable-log-stats", "--enable-log-requests", "--no-enable-log-requests", "--disable-log-requests",
    "--enable-auto-tool-choice", "--enable-sleep-mode", "--disable-custom-all-reduce",
    "--enable-expert-parallel",
}


def _is_flag(token: str) -> bool:
    try:
        float(token)
        return False
    except ValueError:
        return token.startswith("-")


def _human_int(value: str) -> int:
    # vLLM reads --max-model-len like "32k" (x1000) or "32K" (x1024) as well as plain digits.
    scale = {"k": 1000, "K": 1024, "m": 10**6, "M": 2**20}.get(value[-1:], 1)
    return int(float(value[:-1]) * scale) if scale > 1 else int(value)


def _convert(flag: str, field: str, value: str) -> object:
    if field in ("tensor_parallel_size", "pipeline_parallel_size", "max_num_seqs", "port", "max_model_len"):
        try:
            return _human_int(value) if field == "max_model_len" else int(value)
        except ValueError:
            kind = "human_readable_int" if field == "max_model_len" else "int"
            raise ValueError(f"argument {_FLAG_OF[field]}: invalid {kind} value: '{value}'") from None
    if field == "gpu_memory_utilization":
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"argument {flag}: invalid float value: '{value}'") from None
    choices = {"dtype": DTYPES, "kv_cache_dtype": tuple(KV_DTYPE_BYTES)}.get(field)
    if choices and value not in choices:
        listed = ", ".join(f"'{c}'" for c in choices)
        raise ValueError(f"argument {flag}: invalid choice: '{value}' (choose from {listed})")
    return value


def config_from_args(args: list[str], env: Mapping[str, str] | None = None) -> VllmConfig:
    """The VllmConfig a `vllm serve` command line stands for (compose's `command:`: model first, then flags).

    Both `--flag value` and `--flag=value`; `-tp`/`-pp`; underscores in flag names as vLLM accepts them.
    `--port`/`--host` and flags this app does not model stay in `extra_args`, in order. A leading
    `vllm serve` is skipped. Raises ValueError naming the flag, in argparse's words, for a bad value.
    """
    tokens = list(args)
    if tokens[:2] == ["vllm", "serve"]:
        tokens = tokens[2:]
    fields: dict[str, object] = {}
    extra: list[str] = []
    positional: str | None = None
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if not _is_flag(token):
            if positional is not None:
                raise ValueError(f"unrecognized arguments: {token}")
            positional = token
            continue
        name, eq, inline = token.partition("=")
        name = _ALIASES.get(name, name[:2] + name[2:].replace("_", "-") if name.startswith("--") else name)
        if name in ("--trust-remote-code", "--no-trust-remote-code"):
            negated = name == "--no-trust-remote-code" or inline.lower() in ("false", "0")
            fields["trust_remote_code"] = not negated
            continue
        if name not in _VALUE_FLAGS:
            extra.append(token)
            if not eq and name not in _SWITCHES and i < len(tokens) and not _is_flag(tokens[i]):
                extra.append(tokens[i])
                i += 1
            continue
        if not eq:
            if i >= len(tokens) or _is_flag(tokens[i]):
                raise ValueError(f"argument {name}: expected one argument")
            inline, i = tokens[i], i + 1
        field = _VALUE_FLAGS[name]
        value = _convert(name, field, inline)
        if field in ("port", "host"):
            extra += [name, str(value)]
        else:
            fields[field] = value
        while field == "served_model_name" and i < len(tokens) and not _is_flag(tokens[i]):
            i += 1  # nargs="+": further aliases are accepted; the first name is the one served and listed
    model = positional or fields.pop("model", None)
    fields.pop("model", None)
    if not model:
        raise ValueError("no model given: pass it first (vllm serve <model>) or with --model")
    try:
        return VllmConfig.model_validate({**fields, "model": str(model), "extra_args": tuple(extra),
                                          "env": dict(env or {})})
    except ValidationError as exc:
        field, message = first_problem(exc)
        raise ValueError(f"argument {_FLAG_OF.get(field, field)}: {message}") from None


def extra_option(config: VllmConfig, flag: str) -> str | None:
    """The value of a flag kept in `extra_args` (`--port 8001` or `--port=8001`), or None."""
    args = config.extra_args
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


# --- Startup --------------------------------------------------------------------------------------

def decode_rate(model: ModelSpec, gpu_type: GpuType, tp: int) -> float:
    """The catalog's roofline (catalog.speed) at the TP degree actually configured."""
    if gpu_type.family is None:
        return 0.0
    bandwidth = gpu_type.family.bandwidth_gbs * 1e9 * tp**TP_SCALING_EXPONENT
    return DEFAULT_EFFICIENCY * bandwidth / decode_bytes_per_token(model)


def startup_outcome(
    config: VllmConfig,
    gpu_type: GpuType,
    model: ModelSpec | None,
    *,
    faults: SimFaults,
    env: Mapping[str, str] | None = None,
    gpus_visible: int | None = None,
    started_at: float | None = None,
    hub_refusal: str | None = None,
) -> StartupOutcome:
    """Start `config` on `gpu_type` in simulation: ready, or the first failure real vLLM would hit.

    model: the catalog's spec of config.model, None when the Hub has no such repo. env: the
    container's environment (added to config.env). gpus_visible: GPUs the container sees (default:
    the plan's). started_at: epoch seconds for the log's timestamps (default a fixed instant).
    hub_refusal: "gated" when the Hub refused the repo's files for want of a token.
    Raises ValueError for a GPU type of unknown family: the sim cannot pretend to know its hardware.
    """
    family = gpu_type.family
    if family is None:
        raise ValueError(f"cannot simulate {gpu_type.id}: its GPU model is unknown")
    gpus = gpu_type.gpus if gpus_visible is None else gpus_visible
    env_all = {**config.env, **(env or {})}
    tp, pp = config.tensor_parallel_size, config.pipeline_parallel_size
    world = tp * pp
    log = text.VllmLog(started_at if started_at is not None else text.DEFAULT_STARTED_AT)
    boot(log, config)

    def fail(kind: str, used: list[int] | None = None, *, kv_cache_tokens: int = 0,
             max_model_len: int | None = None) -> StartupOutcome:
        return _outcome(False, kind, log, gpus, used, model, gpu_type, config,
                        kv_cache_tokens=kv_cache_tokens, max_model_len=max_model_len)

    # 1. Config resolution on the API server: the Hub, transformers' config, the model registry.
    arch = architecture_of(config.model, model)
    if config.model in faults.unsupported_models:
        text.config_failure(log, text.unsupported_architecture(arch))
        return fail("model_loading")
    if hub_refusal == "gated":
        text.config_failure(log, text.hf_gated(config.model))
        return fail("model_loading")
    if model is None:
        text.config_failure(log, text.hf_not_found(config.model))
        return fail("model_loading")
    if model.trust_remote_code and not config.trust_remote_code and faults.needs_trust_remote_code:
        text.config_failure(log, text.trust_remote_code(config.model))
        return fail("model_loading")
    log.info(text.API, "model.py:547", f"Resolved architecture: {arch}")
    dtype = _resolve_dtype(log, config.dtype, model, gpu_type)
    max_len = config.max_model_len or model.max_positions
    if max_len > model.max_positions and faults.kv_cache:
        text.config_failure(log, text.max_len_over_model(max_len, model.max_positions))
        return fail("kv_cache")
    log.info(text.API, "model.py:1510", f"Using max model len {max_len}")
    if world > gpus and faults.tensor_parallel:
        text.config_failure(log, text.world_size(world, gpus))
        return fail("tensor_parallel")
    if model.attention_heads % tp and faults.tensor_parallel:
        text.config_failure(log, text.attention_heads(model.attention_heads, tp))
        return fail("tensor_parallel")

    # 2. Engine and workers: device init, NCCL, weights, memory profile, KV cache.
    phases = Phases(log, config, model, gpu_type, dtype, world)
    phases.engine_start()
    ctx = [round(CUDA_CONTEXT_GIB * 1024)] * world
    if dtype == "bfloat16" and not family.bf16 and faults.bf16_on_turing:
        lines = text.bf16_unsupported(family.name, family.compute_capability_str)
        phases.fail(text.INIT_DEVICE_FRAMES, lines)
        return fail("model_loading", ctx)
    torch_total = (family.vram_mib - TORCH_HIDDEN_MIB) / 1024
    phys_free = torch_total - CUDA_CONTEXT_GIB
    util = config.gpu_memory_utilization
    if util * torch_total > phys_free and faults.oom:
        lines = text.free_memory(phys_free, torch_total, util, util * torch_total)
        phases.fail(text.INIT_DEVICE_FRAMES[:1], lines)
        return fail("oom", ctx)
    if world > 1 and faults.nccl_without_env and not any(k in env_all for k in NCCL_ENV):
        log.advance(3.0)
        text.nccl_warnings(log, world)
        phases.fail(text.NCCL_FRAMES, text.NCCL_ERROR, all_ranks=True)
        return fail("nccl", ctx)
    phases.nccl_ok()

    wide = 2 if dtype == "float32" and model.quant is None else 1  # fp32 doubles 16-bit weights and KV
    weights = weights_per_gpu_bytes(model, tp, pp) * wide / GIB
    kv_dtype = config.kv_cache_dtype if family.fp8 else "auto"  # as the planner: no fp8 KV before Ada
    per_token = kv_bytes_per_token(model, kv_dtype, tp=tp, pp=pp) * (wide if kv_dtype == "auto" else 1)
    phases.load_start()
    if weights > phys_free and faults.oom:
        shard = weight_bytes(model).body / model.layers / tp / 3  # one MLP projection of one layer
        free = (phys_free * GIB) % shard
        phases.fail(text.LOAD_FRAMES, text.torch_oom(0, shard / 2**20, torch_total, free / 2**20,
                                                     torch_total - free / GIB))
        return fail("oom", _mib([family.vram_mib - free / 2**20] * world))
    phases.load_done(weights)
    peak = _mib([(CUDA_CONTEXT_GIB + weights + RESERVE_GB) * 1024] * world)
    if weights + RESERVE_GB > phys_free and faults.oom:
        free_mib = (phys_free - weights) * 1024
        short_mib = (weights + RESERVE_GB - phys_free) * 1024
        phases.fail(text.PROFILE_FRAMES, text.torch_oom(0, free_mib + short_mib, torch_total, free_mib,
                                                        torch_total - free_mib / 1024))
        return fail("oom", _mib([family.vram_mib - free_mib] * world))
    usable = family.vram_bytes * util / GIB  # the planner's budget (catalog.fit)
    kv_free = usable - weights - RESERVE_GB
    if kv_free <= 0 and faults.oom:
        phases.fail(text.KV_FRAMES, text.NO_CACHE_BLOCKS)
        return fail("oom", peak)
    tokens = math.floor(max(kv_free, 0.0) * GIB / (per_token * BLOCK_SIZE)) * BLOCK_SIZE
    log.info(phases.proc, "gpu_worker.py:298", f"Available KV cache memory: {max(kv_free, 0.0):.2f} GiB")
    need_tokens = math.ceil(max_len / BLOCK_SIZE) * BLOCK_SIZE
    if need_tokens > tokens and faults.kv_cache and (kv_free > 0 or faults.oom):  # no OOM check: no shortfall
        lines = text.kv_cache_too_small(max_len, need_tokens * per_token / GIB, max(kv_free, 0.0), tokens)
        phases.fail(text.KV_FRAMES, lines, in_engine=True)
        return fail("kv_cache", peak, kv_cache_tokens=tokens, max_model_len=max_len)
    tokens = max(tokens, need_tokens)  # with a check switched off, the sim makes room rather than fail
    ready(log, phases, tokens, max_len, extra_option(config, "--port") or "8000")
    used = [min(family.vram_mib, max(round(util * family.vram_mib), p)) for p in peak]
    return _outcome(True, None, log, gpus, used, model, gpu_type, config, kv_cache_tokens=tokens,
                    max_model_len=max_len)


def _resolve_dtype(log: text.VllmLog, asked: str, model: ModelSpec, gpu_type: GpuType) -> str:
    """The dtype vLLM runs: AWQ/GPTQ checkpoints are float16, others bfloat16; `auto` falls back on Turing.

    Since vLLM 0.9 `--dtype auto` on a GPU without bfloat16 warns and casts to float16; only an
    explicit `--dtype bfloat16` fails there (at worker init).
    """
    native = "float16" if model.quant in ("awq", "gptq") else "bfloat16"
    if asked in ("half", "float16"):
        return "float16"
    if asked in ("float", "float32"):
        return "float32"
    if asked == "bfloat16":
        return "bfloat16"
    family = gpu_type.family
    if native == "bfloat16" and family is not None and not family.bf16:
        log.info(text.API, "model.py:1682", f"Your device '{family.name}' (with compute capability "
                 f"{family.compute_capability_str}) doesn't support torch.bfloat16. Falling back to "
                 "torch.float16 for compatibility.", level="WARNING")
        log.info(text.API, "model.py:1733", "Casting torch.bfloat16 to torch.float16.", level="WARNING")
        return "float16"
    return native


def _evidence(lines: list[str]) -> str:
    """The line that says what went wrong: a config check's message, else the last specific exception."""
    wrappers = ("Engine core initialization", "WorkerProc initialization", "ValidationError:")
    checks = (line for line in reversed(lines) if "Value error, " in line)
    specific = (line for line in reversed(lines) if "Error:" in line and not any(w in line for w in wrappers))
    return next(checks, None) or next(specific, lines[-1])


def _loading(lines: list[str]) -> bool:
    return any("Starting to load model" in line for line in lines)


def _mib(values: list[float]) -> list[int]:
    return [round(v) for v in values]


def _outcome(ok: bool, kind: str | None, log: text.VllmLog, gpus: int, used: list[int] | None,
             model: ModelSpec | None, gpu_type: GpuType, config: VllmConfig, *,
             kv_cache_tokens: int = 0, max_model_len: int | None = None) -> StartupOutcome:
    per_gpu = (list(used or [])[:gpus] + [0] * gpus)[:gpus]
    decode = decode_rate(model, gpu_type, config.tensor_parallel_size) if model else 0.0
    evidence = None if ok else _evidence(log.lines)
    return StartupOutcome(
        ok=ok,
        kind=kind,
        log_lines=tuple(log.lines),
        line_at_s=tuple(log.at_s),
        per_gpu_used_mib=tuple(per_gpu),
        load_s=round(log.now, 3),
        # Weights are fetched in load_model: a start that fails before it downloads only config files.
        download_gb=weight_bytes(model).total / GIB if model and (ok or _loading(log.lines)) else 0.0,
        decode_tok_s=decode,
        prefill_tok_s=decode * PREFILL_SPEEDUP,
        kv_cache_tokens=kv_cache_tokens,
        max_model_len=max_model_len or config.max_model_len or (model.max_positions if model else 0),
        evidence=evidence,
    )
