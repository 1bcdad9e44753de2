"""Self-healing, the pure part: read vLLM's start-up log, name what went wrong, choose the next flags.

`diagnose(log_text)` finds the failure in a container log; `remedy(config, diagnosis, attempt,
gpu_count)` returns the next `VllmConfig` to try, or None when nothing is left. No I/O here: the loop
that reads logs, restarts the container and waits belongs to provisioning. The rules are in
docs/healing.md; the lines they match are vLLM's and PyTorch's own (tests/fixtures/vllm_logs/).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from maider_tui.catalog import UnknownCatalogIdError, model as catalog_model
from maider_tui.deploy.compose import NCCL_ENV
from maider_tui.models import ModelSpec, VllmConfig
from maider_tui.ops.heal_log import EXCEPTION, Record, records

KINDS = ("oom", "kv_cache", "nccl", "tensor_parallel", "model_loading", "node_lost")
MAX_ATTEMPTS = 3  # what provisioning allows (the seed's number); remedy itself takes any attempt
UTIL_STEP = 0.05
UTIL_FLOOR = 0.70  # below this a 20-24 GB card has little KV cache left to gain from
DEFAULT_UTIL = 0.90  # vLLM's long-standing default
UTIL_CEILING = 0.95  # above this CUDA graphs and the sampler run short at peak
CONTEXT_STEP = 1024
CONTEXT_FLOOR = 1024  # a coding assistant cannot work in less
DEFAULT_CONTEXT = 8192  # what a model outside the catalog is assumed to take when no length is set


@dataclass(frozen=True)
class Diagnosis:
    """What stopped vLLM: `kind` (one of KINDS), the log line that says so, and the numbers it gives.

    detail narrows a kind where the remedy differs: oom "no_cache_blocks" / "startup_free_memory";
    kv_cache "over_model_limit"; model_loading "bf16_unsupported", "trust_remote_code",
    "unsupported_architecture", "not_found", "gated". numbers: e.g. kv_capacity_tokens, max_seq_len,
    max_positions, heads, tp, world_size, gpus_available, compute_capability, free_gib, total_gib.
    """

    kind: str
    evidence: str
    numbers: dict[str, float] = field(default_factory=dict)
    detail: str | None = None

    @property
    def summary(self) -> str:
        """One line for the event log, in the user's words (with the log's numbers when it gave them)."""
        text = _SUMMARIES.get((self.kind, self.detail)) or _SUMMARIES[(self.kind, None)]
        try:
            return text.format(**{name: str(value) for name, value in self.numbers.items()})
        except KeyError:
            return text.split(":")[0]


_SUMMARIES = {
    ("oom", None): "out of GPU memory",
    ("oom", "no_cache_blocks"): "no GPU memory left for the KV cache",
    ("oom", "startup_free_memory"): "less GPU memory free than asked for: {free_gib}/{total_gib} GiB free",
    ("kv_cache", None): "KV cache too small: max_model_len {max_seq_len}, room for {kv_capacity_tokens}",
    ("kv_cache", "over_model_limit"): "max_model_len over the model's limit: {max_seq_len} > {max_positions}",
    ("nccl", None): "NCCL (multi-GPU communication) error",
    ("tensor_parallel", None): "tensor-parallel size does not fit the GPUs or the model",
    ("model_loading", None): "the model failed to load",
    ("model_loading", "bf16_unsupported"): "bfloat16 unsupported: compute capability {compute_capability}",
    ("model_loading", "trust_remote_code"): "the model needs --trust-remote-code",
    ("model_loading", "unsupported_architecture"): "this vLLM does not support the model's architecture",
    ("model_loading", "not_found"): "the model is not on the Hugging Face Hub under that name",
    ("model_loading", "gated"): "the model is gated: the Hugging Face token has no access to it",
    ("node_lost", None): "a VM of the session is gone, and with it a pipeline stage of the model",
}


# --- Reading the log ------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Rule:
    kind: str
    detail: str | None
    pattern: re.Pattern[str]
    generic: bool = False  # a loose pattern (the seed's words): counts only on a line reporting an error


def _rule(kind: str, detail: str | None, pattern: str, generic: bool = False) -> _Rule:
    return _Rule(kind, detail, re.compile(pattern), generic)


_N = r"\d+(?:\.\d+)?"  # a number as vLLM prints it: 9.97, 4.0, 32768
# Most specific first: a line is classified by the first rule it matches. Specific rules are vLLM's
# and PyTorch's own sentences; the generic ones at the end are the seed's table.
_RULES = (
    _rule("kv_cache", None, r"max seq len \((?P<max_seq_len>\d+)\) is larger than the maximum number of "
          r"tokens that can be stored in KV cache \((?P<kv_capacity_tokens>\d+)\)"),
    _rule("kv_cache", None, rf"max seq len \((?P<max_seq_len>\d+)\),? \(?(?P<kv_needed_gib>{_N}) GiB KV "
          rf"cache is needed, which is larger than the available KV cache memory "
          rf"\((?P<kv_available_gib>{_N}) GiB\)"),
    _rule("kv_cache", "over_model_limit", r"User-specified max_model_len \((?P<max_seq_len>\d+)\) is greater "
          r"than (?:the )?derived max_model_len \((?:max_position_embeddings=)?(?P<max_positions>\d+)"),
    _rule("oom", "no_cache_blocks", r"No available memory for the cache blocks"),
    _rule("oom", "startup_free_memory", rf"Free memory on device(?: \S+)? \((?P<free_gib>{_N})/"
          rf"(?P<total_gib>{_N}) GiB\) on startup is less than desired GPU memory utilization"),
    _rule("oom", None, r"CUDA out of memory|OutOfMemoryError|CUDA error: out of memory"),
    _rule("tensor_parallel", None, r"Total number of attention heads \((?P<heads>\d+)\) must be divisible by "
          r"tensor parallel size \((?P<tp>\d+)\)"),
    _rule("tensor_parallel", None, r"(?:World size|Tensor parallel size) \((?P<world_size>\d+)\) "
          r"(?:is|cannot be) larger than the number of available GPUs \((?P<gpus_available>\d+)\)"),
    # "world_size (2) is less than than max local gpu count (1)" (sic) and V1's local_world_size assertion.
    _rule("tensor_parallel", None, r"world_size \((?P<world_size>\d+)\) (?:is less than (?:than )?max local "
          r"gpu count|must be less than or equal to the number of visible devices) "
          r"\((?P<gpus_available>\d+)\)"),
    _rule("tensor_parallel", None, r"GPUs per node is not divisible by the number of tensor parallelism"),
    _rule("model_loading", "bf16_unsupported", rf"Bfloat16 is only supported on GPUs with compute capability "
          rf"of at least {_N}\. Your .+? GPU has compute capability (?P<compute_capability>{_N})"),
    _rule("model_loading", "trust_remote_code", r"trust_remote_code=True|--trust-remote-code|requires you to "
          r"execute the configuration file|contains custom code which must be executed"),
    _rule("model_loading", "unsupported_architecture", r"Model architectures? \[[^\]]*\] (?:are|is) not "
          r"supported"),
    _rule("model_loading", "gated", r"GatedRepoError|access a gated repo|Cannot access gated repo|"
          r"40[13] Client Error"),
    _rule("model_loading", "not_found", r"is not a local folder and is not a valid model identifier|Invalid "
          r"repository ID or local directory|RepositoryNotFoundError|Repository Not Found|404 Client Error|"
          r"Repo id must be in the form"),
    # A session over several VMs: Ray's words when a pipeline stage's VM (or its container) went away.
    _rule("node_lost", None, r"ActorDiedError|The actor is dead because its node has died|"
          r"node \S+ (?:has )?died"),
    _rule("nccl", None, r"NCCL [Ee]rror|nccl(?:SystemError|InternalError|UnhandledCudaError|InvalidUsage|"
          r"InvalidArgument|RemoteError)|NCCL_ERROR_\w+|NCCL WARN|DistBackendError|"
          r"collective operation timeout"),
    _rule("oom", None, r"(?i:out of memory)|\bOOM\b", generic=True),
    _rule("nccl", None, r"\bNCCL\b|collective|all_reduce|allreduce", generic=True),
    _rule("tensor_parallel", None, r"tensor.parallel|tp_size|world_size|[Ww]orld size", generic=True),
    _rule("model_loading", None, r"RuntimeError|architecture|not supported", generic=True),
)

# The lines vLLM prints around a failure that name no cause: the cause is on an earlier line.
_WRAPPERS = re.compile(
    r"Engine core initialization failed|WorkerProc initialization failed|EngineCore failed to start|"
    r"WorkerProc failed to start|EngineDeadError|EngineCore encountered an issue|Worker failed with error|"
    r"Traceback \(most recent call last\)|During handling of the above exception|"
    r"direct cause of the following"
)
_ERRORISH = re.compile(r"Error|Exception|error|[Ff]ailed|[Tt]imed? ?out")
_NUMBER_EXTRAS = (  # numbers a matching line may carry besides its rule's own
    re.compile(r"estimated maximum model length is (?P<kv_capacity_tokens>\d+)"),
    re.compile(rf"GPU (?P<gpu>\d+) has a total capacity of (?P<total_gib>{_N}) GiB"),
    re.compile(rf"desired GPU memory utilization \((?P<gpu_memory_utilization>{_N})"),
)
_QUIET = re.compile(r"^(?:INFO:|DEBUG:|WARNING:)|NCCL INFO ")
_CODE = ('File "', "raise ", '"', 'f"', "^", "~")  # traceback frames and quoted source
_RUN_START = "vLLM API server version"
_READY = ("Application startup complete", "Uvicorn running on", "Starting vLLM API server")


def diagnose(log_text: str) -> Diagnosis | None:
    """The failure in a vLLM container log; None for a healthy or not yet failed start, or a log that
    names no cause (only vLLM's wrapper lines).

    The log is read as it arrives (heal_log.records): lines a terminal broke are joined, compose's,
    docker's, Ray's and vLLM's prefixes stripped; the evidence is that cleaned, whole message.
    Only the latest run counts (from the last "vLLM API server version" line); within it the last
    error message wins. INFO/DEBUG/WARNING lines, traceback frames and source lines never count, so a
    memory-profiling note that mentions "out of memory" is not an OOM; a `raise ValueError("...")`
    line counts by its quoted message, for a traceback cut short there. A server that came up after
    its last error is healthy.
    """
    messages = records(log_text)
    start = max((i for i, record in enumerate(messages) if _RUN_START in record.text), default=0)
    hits = [(index, found) for index in range(start, len(messages)) if (found := _classify(messages[index]))]
    if not hits:
        return None
    index, found = hits[-1]
    return None if any(marker in record.text for record in messages[index + 1:] for marker in _READY) \
        else found


_STRING = re.compile(r"""[rbuf]{0,2}"((?:[^"\\]|\\.)*)"|[rbuf]{0,2}'((?:[^'\\]|\\.)*)'""")


def _readable(text: str) -> str | None:
    """The part of a message that can name a failure; None for traceback frames and quoted source.

    An exception's first line counts even indented (a paste indents it); a `raise X("...")` line
    counts by its string literals (a traceback cut there keeps only that); other source lines and
    frames (indented 4+, `File "`, carets) never do.
    """
    stripped = text.lstrip()
    if not stripped:
        return None
    if EXCEPTION.match(text):
        return text
    if stripped.startswith("raise "):
        quoted = " ".join(a or b for a, b in _STRING.findall(stripped))
        return quoted or None
    if stripped.startswith(_CODE) or len(text) - len(stripped) >= 4:
        return None
    return text


def _classify(record: Record) -> Diagnosis | None:
    text = record.text
    if record.level in ("DEBUG", "INFO", "WARNING", "WARN") or _QUIET.search(text):
        return None
    readable = _readable(text)
    if readable is None:
        return None
    # vLLM's wrapper lines name no cause of their own; one that also quotes the cause still counts
    # ("Exception in worker ... init_device: NCCL error: ..., Traceback (most recent call last):").
    wrapper = _WRAPPERS.search(text) is not None
    for rule in _RULES:
        match = rule.pattern.search(readable)
        if match is None or (rule.generic and (wrapper or not _ERRORISH.search(text))):
            continue
        numbers = _numbers(match.groupdict())
        for extra in _NUMBER_EXTRAS:
            if more := extra.search(readable):
                numbers = {**_numbers(more.groupdict()), **numbers}
        return Diagnosis(rule.kind, record.clean, numbers, rule.detail)
    return None


def _numbers(groups: Mapping[str, str | None]) -> dict[str, float]:
    return {k: (int(v) if v.isdigit() else float(v)) for k, v in groups.items() if v}


# --- Choosing the next flags ----------------------------------------------------------------------

_Changes = dict[str, Any] | None  # the fields to change; None or {} when nothing is left to try
_Env = dict[str, str]

def remedy(config: VllmConfig, diagnosis: Diagnosis, attempt: int, gpu_count: int, *,
           container_env: Mapping[str, str] | None = None) -> VllmConfig | None:
    """The next config to try after `diagnosis` (attempt counts from 1), or None when nothing is left.

    gpu_count: GPUs on the VM. container_env: the environment the container really had (compose adds
    NCCL defaults on top of config.env), so the NCCL remedy does not "add" what was already there.
    A remedy that would change nothing returns None, so the caller never restarts for nothing.
    """
    handler = {"oom": _oom, "kv_cache": _kv_cache, "nccl": _nccl, "tensor_parallel": _tensor_parallel,
               "model_loading": _model_loading, "node_lost": _node_lost}.get(diagnosis.kind)
    if handler is None:
        raise ValueError(f"unknown diagnosis kind {diagnosis.kind!r}; expected one of: {', '.join(KINDS)}")
    changes = handler(config, diagnosis, max(1, attempt), max(1, gpu_count), dict(container_env or {}))
    if not changes:
        return None
    new = config.replace(**changes)
    return None if new == config else new


def _node_lost(config: VllmConfig, d: Diagnosis, attempt: int, gpus: int, env: _Env) -> _Changes:
    """No flag brings a lost VM back: the session is destroyed and launched again."""
    return None


def _oom(config: VllmConfig, d: Diagnosis, attempt: int, gpus: int, env: _Env) -> _Changes:
    """Less memory each time: utilisation -0.05 (floor 0.70), and from attempt 2 half the context.

    Two OOMs are special. "No available memory for the cache blocks" means the utilisation budget is
    all weights: raise it, as vLLM itself advises, back to the usual 0.90 or else by 0.05 (up to
    0.95). "Free memory on device ... on startup" is about the budget only: lower it below what is
    free, keep the context.
    """
    util = config.gpu_memory_utilization
    if d.detail == "no_cache_blocks":
        return {"gpu_memory_utilization": round(min(max(util + UTIL_STEP, DEFAULT_UTIL), UTIL_CEILING), 2)}
    lowered = round(max(util - UTIL_STEP, UTIL_FLOOR), 2)
    if d.detail == "startup_free_memory":
        free, total = d.numbers.get("free_gib"), d.numbers.get("total_gib")
        if free and total:
            fits = math.floor((free / total - 0.01) * 100) / 100
            if fits < UTIL_FLOOR:
                return None  # another process holds the GPU: no flag of ours frees it
            lowered = min(lowered, fits)
        return {"gpu_memory_utilization": lowered}
    changes: dict[str, Any] = {"gpu_memory_utilization": lowered}
    if attempt >= 2:
        current = config.max_model_len or _model_context(config.model)
        halved = max(CONTEXT_FLOOR, current // 2 // CONTEXT_STEP * CONTEXT_STEP)
        if halved < current:
            changes["max_model_len"] = halved
    return changes


def _kv_cache(config: VllmConfig, d: Diagnosis, attempt: int, gpus: int, env: _Env) -> _Changes:
    """max_model_len to what vLLM said fits, rounded down to 1024; half the context without a number.

    The capacity comes from the log: the tokens the KV cache holds (older vLLM), the "estimated
    maximum model length" (newer), else the GiB it had over the GiB it needed times the length asked.
    Above the model's own limit, the limit. Under 1024 tokens nothing is left.
    """
    n = d.numbers
    current = config.max_model_len or int(n.get("max_seq_len") or 0) or _model_context(config.model)
    if d.detail == "over_model_limit" and n.get("max_positions"):
        target = int(n["max_positions"])
    elif n.get("kv_capacity_tokens"):
        target = int(n["kv_capacity_tokens"])
    elif n.get("kv_needed_gib") and n.get("kv_available_gib") and n.get("max_seq_len"):
        target = int(n["max_seq_len"] * n["kv_available_gib"] / n["kv_needed_gib"])
    else:
        target = current // 2
    target = target // CONTEXT_STEP * CONTEXT_STEP
    if target >= current:  # the log and the config disagree: still make progress
        target = current // 2 // CONTEXT_STEP * CONTEXT_STEP
    return {"max_model_len": target} if target >= CONTEXT_FLOOR else None


def _nccl(config: VllmConfig, d: Diagnosis, attempt: int, gpus: int, env: _Env) -> _Changes:
    """First the seed's NCCL settings; if they were already there, turn GPU peer-to-peer off once
    (PCIe P2P under virtualisation is the usual culprit); then nothing is left."""
    seen = {**env, **config.env}
    if any(key not in seen for key in NCCL_ENV):
        return {"env": {**config.env, **{k: v for k, v in NCCL_ENV.items() if k not in seen}}}
    if seen.get("NCCL_P2P_DISABLE") != "1":
        return {"env": {**config.env, "NCCL_P2P_DISABLE": "1"}}
    return None


def _tensor_parallel(config: VllmConfig, d: Diagnosis, attempt: int, gpus: int, env: _Env) -> _Changes:
    """TP = the largest size up to the GPU count that divides the attention heads (the log's count,
    else the catalog's; the catalog's KV heads must allow it too). When TP x some PP uses every GPU,
    the rest goes into pipeline parallel (8 GPUs, 52 heads -> TP 4 PP 2); otherwise PP is 1 and some
    GPUs idle (3 GPUs, 40 heads -> TP 2). The GPU count is the smaller of the VM's and the log's."""
    n = d.numbers
    if n.get("gpus_available"):
        gpus = min(gpus, int(n["gpus_available"]))
    spec = _model_spec(config.model)
    heads = int(n["heads"]) if n.get("heads") else (spec.attention_heads if spec else None)
    kv_heads = spec.kv_heads if spec and spec.attention_heads == heads else None
    for tp in range(gpus, 0, -1):
        if heads and heads % tp:
            continue
        if kv_heads and kv_heads % tp and tp % kv_heads:
            continue
        pp = gpus // tp if gpus % tp == 0 else 1
        return {"tensor_parallel_size": tp, "pipeline_parallel_size": pp}
    return None


def _model_loading(config: VllmConfig, d: Diagnosis, attempt: int, gpus: int, env: _Env) -> _Changes:
    """bfloat16 on an older GPU -> half; a repo with its own code -> trust it; an architecture this
    vLLM lacks, a wrong name or a gated repo -> nothing to try; anything else -> drop an explicit dtype."""
    if d.detail == "bf16_unsupported":
        return None if config.dtype in ("half", "float16") else {"dtype": "half"}
    if d.detail == "trust_remote_code":
        return None if config.trust_remote_code else {"trust_remote_code": True}
    if d.detail in ("unsupported_architecture", "not_found", "gated"):
        return None
    return None if config.dtype == "auto" else {"dtype": "auto"}


def _model_spec(model_id: str) -> ModelSpec | None:
    try:
        return catalog_model(model_id)
    except UnknownCatalogIdError:
        return None


def _model_context(model_id: str) -> int:
    """The context vLLM takes when none is set: the model's own maximum (catalog), else a guess."""
    spec = _model_spec(model_id)
    return spec.max_positions if spec else DEFAULT_CONTEXT


# --- Saying what changed --------------------------------------------------------------------------

_SHOWN_FIELDS = ("gpu_memory_utilization", "max_model_len", "tensor_parallel_size", "pipeline_parallel_size",
                 "dtype", "kv_cache_dtype", "max_num_seqs", "trust_remote_code", "served_model_name",
                 "model", "extra_args")


def describe_change(old: VllmConfig, new: VllmConfig) -> str:
    """The flags that differ, for the event log.

    E.g. "gpu_memory_utilization 0.90 -> 0.85, max_model_len 32768 -> 16384" or "env +NCCL_DEBUG=WARN".
    """
    parts = []
    for name in _SHOWN_FIELDS:
        before, after = getattr(old, name), getattr(new, name)
        if before != after:
            parts.append(f"{name} {_value(name, before)} -> {_value(name, after)}")
    for key in sorted(set(old.env) | set(new.env)):
        before, after = old.env.get(key), new.env.get(key)
        if before != after:
            parts.append(f"env +{key}={after}" if before is None else f"env -{key}" if after is None
                         else f"env {key} {before} -> {after}")
    return ", ".join(parts) or "no change"


def _value(name: str, value: object) -> str:
    if value is None:
        return "unset"
    if name == "gpu_memory_utilization":
        return f"{value:.2f}"
    if name == "extra_args":
        return " ".join(value) or "none"  # type: ignore[arg-type]
    return str(value).lower() if isinstance(value, bool) else str(value)
