"""The fit planner: will this model run on this GPU type under vLLM, how, and with what context?

Per GPU, vLLM may use VRAM x gpu_memory_utilization. From that it takes the weights on that GPU
and what the profile run measures (activations, CUDA graphs, the CUDA context outside torch);
the rest becomes KV cache, which must hold at least one request of max_model_len tokens.
We stand in for the profile run with a fixed RESERVE_GB per GPU (see below).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from maider_tui.catalog.lookup import as_gpu_type, as_model
from maider_tui.catalog.sizes import (
    GIB,
    kv_bytes_per_token,
    kv_dtype_bytes,
    weight_bytes,
    weights_per_gpu_bytes,
)
from maider_tui.models import FitReport, GpuType, ModelSpec

# Per-GPU memory the weights and KV cache cannot have, in GiB. What vLLM's profile run finds on
# these models at its default 8192 batched tokens: ~0.5 GiB CUDA context, cuBLAS workspaces and
# NCCL buffers; ~0.5-0.7 GiB peak activations and sampler logits (a 32B MLP shard at 8192 tokens
# is ~0.4 GiB); ~0.3-0.5 GiB CUDA graphs. 1.5 GiB covers that without eating the context: it
# keeps Qwen2.5-Coder-32B-AWQ at its full 32K on 2x RTX 4000 Ada (9.0 GiB of weights per GPU,
# 7.5 GiB left for 128 KiB/token) and rightly rejects it on one (18.0 GiB of weights alone).
RESERVE_GB = 1.5

CONTEXT_STEP = 1024  # contexts are offered in whole K
_FP8_KV = {"fp8", "fp8_e4m3", "fp8_e5m2"}


@dataclass(frozen=True, slots=True)
class _Plan:
    tp: int
    pp: int
    weights_per_gpu: float  # bytes
    kv_free: float  # bytes per GPU left for the KV cache
    kv_per_token: int  # bytes per token per GPU
    tokens: int  # how many tokens the free KV memory holds
    max_context: int


def valid_tensor_parallel(model: ModelSpec, tp: int) -> bool:
    """vLLM's rule: attention heads divide by TP, and KV heads by TP (or TP by KV heads)."""
    if model.attention_heads % tp:
        return False
    return model.kv_heads % tp == 0 or tp % model.kv_heads == 0


def candidate_plans(model: ModelSpec, gpus: int) -> list[tuple[int, int]]:
    """(TP, PP) pairs worth trying on `gpus` GPUs.

    All GPUs in tensor parallel when the heads allow it. Otherwise pipeline parallel over all of
    them (TP 1), and the largest TP below the GPU count that the heads allow (the rest idle).
    """
    if valid_tensor_parallel(model, gpus):
        return [(gpus, 1)]
    plans = []
    if model.layers >= gpus:
        plans.append((1, gpus))
    fallback_tp = next(t for t in range(gpus - 1, 0, -1) if valid_tensor_parallel(model, t))
    plans.append((fallback_tp, 1))
    return plans


def fit(
    model: ModelSpec | str,
    gpu_type: GpuType | str,
    *,
    max_model_len: int | None = None,
    gpu_memory_utilization: float = 0.90,
    kv_cache_dtype: str = "auto",
) -> FitReport:
    """Plan `model` on `gpu_type` (objects or ids) and say whether, how and with what context it fits.

    max_model_len: the context the user wants; the report says whether it fits and still gives
    the largest that does in `max_context`. An fp8 KV cache on a GPU without FP8 falls back to
    16-bit, with a note. A GPU type of unknown family is never guessed at: it does not fit.
    """
    spec, gt = as_model(model), as_gpu_type(gpu_type)
    if not 0.0 < gpu_memory_utilization <= 1.0:
        raise ValueError(f"gpu_memory_utilization must be in (0, 1], got {gpu_memory_utilization}")
    if max_model_len is not None and max_model_len < 1:
        raise ValueError(f"max_model_len must be positive, got {max_model_len}")
    kv_dtype_bytes(kv_cache_dtype)  # rejects unknown values early

    notes: list[str] = []
    family = gt.family
    if kv_cache_dtype in _FP8_KV and family is not None and not family.fp8:
        notes.append(f"fp8 KV cache is not supported on {family.short_name}, planned with 16-bit KV")
        kv_cache_dtype = "auto"

    weights_gb = weight_bytes(spec).total / GIB
    base: dict[str, Any] = dict(
        model=spec,
        gpu_type=gt,
        weights_gb=weights_gb,
        kv_bytes_per_token=kv_bytes_per_token(spec, kv_cache_dtype),
        dtype="half" if family is not None and not family.bf16 else "auto",
        kv_cache_dtype=kv_cache_dtype,
        gpu_memory_utilization=gpu_memory_utilization,
        requested_max_model_len=max_model_len,
        reserve_gb=RESERVE_GB,
    )
    plans_tried = candidate_plans(spec, gt.gpus)

    if family is None:
        reason = f"cannot judge {gt.label} ({gt.id}): its GPU model and VRAM are unknown"
        return _no_plan(spec, plans_tried[0], 0.0, reason, notes, base)
    usable = family.vram_bytes * gpu_memory_utilization
    if spec.quant == "fp8" and family.compute_capability < (8, 0):
        # vLLM runs fp8 weights natively on Ada+ and weight-only (Marlin) on Ampere; not on Turing.
        reason = (
            f"fp8 weights need compute capability 8.0+, {family.short_name} is "
            f"{family.compute_capability_str}"
        )
        return _no_plan(spec, plans_tried[0], usable, reason, notes, base)

    plans = [_evaluate(spec, tp, pp, usable, kv_cache_dtype) for tp, pp in plans_tried]
    need = max_model_len or CONTEXT_STEP
    # Best plan: one that holds the wanted context, then the longest context; at equal context
    # more TP (one request decodes faster over TP ranks than through stages that take turns).
    plan = max(plans, key=lambda p: (p.max_context >= need, p.max_context, p.tp, p.tokens))

    weights_ok = plan.kv_free > 0
    fits = plan.max_context >= need  # max_context never exceeds the model's max positions
    reason = _reason(spec, gt, plan, plans, usable, fits, max_model_len)
    if notes:
        reason += "; " + "; ".join(notes)
    kv_cache_gb = max(plan.kv_free, 0.0) / GIB
    return FitReport(
        fits=fits,
        reason=reason,
        weights_per_gpu_gb=plan.weights_per_gpu / GIB,
        kv_bytes_per_token_per_gpu=plan.kv_per_token,
        tensor_parallel_size=plan.tp,
        pipeline_parallel_size=plan.pp,
        max_model_len=(max_model_len or plan.max_context) if fits else 0,
        max_context=plan.max_context,
        usable_gb=usable / GIB,
        kv_cache_gb=kv_cache_gb,
        per_gpu_gb=(plan.weights_per_gpu / GIB + RESERVE_GB + kv_cache_gb) if weights_ok else 0.0,
        notes=tuple(notes),
        **base,
    )


def _no_plan(
    spec: ModelSpec,
    layout: tuple[int, int],
    usable: float,
    reason: str,
    notes: list[str],
    base: dict[str, Any],
) -> FitReport:
    """A report that does not fit before any memory arithmetic could say otherwise."""
    tp, pp = layout
    return FitReport(
        fits=False,
        reason="; ".join([reason, *notes]),
        weights_per_gpu_gb=weights_per_gpu_bytes(spec, tp, pp) / GIB,
        kv_bytes_per_token_per_gpu=kv_bytes_per_token(spec, base["kv_cache_dtype"], tp=tp, pp=pp),
        tensor_parallel_size=tp,
        pipeline_parallel_size=pp,
        max_model_len=0,
        max_context=0,
        usable_gb=usable / GIB,
        kv_cache_gb=0.0,
        per_gpu_gb=0.0,
        notes=tuple(notes),
        **base,
    )


def _evaluate(model: ModelSpec, tp: int, pp: int, usable: float, kv_cache_dtype: str) -> _Plan:
    weights = weights_per_gpu_bytes(model, tp, pp)
    kv_free = usable - weights - RESERVE_GB * GIB
    per_token = kv_bytes_per_token(model, kv_cache_dtype, tp=tp, pp=pp)
    tokens = math.floor(kv_free / per_token) if kv_free > 0 else 0
    context = min(tokens // CONTEXT_STEP * CONTEXT_STEP, model.max_positions)
    return _Plan(tp, pp, weights, kv_free, per_token, tokens, context)


def context_label(tokens: int) -> str:
    """32768 -> "32K"; lengths that are not whole K keep their digits."""
    if tokens and tokens % CONTEXT_STEP == 0:
        return f"{tokens // CONTEXT_STEP}K"
    return f"{tokens:,}"


def _layout(plan: _Plan, gpus: int) -> str:
    if plan.pp > 1:
        return f"PP {plan.pp}"
    if plan.tp == 1 and gpus == 1:
        return "1 GPU"
    idle = f" on {plan.tp} of {gpus} GPUs" if plan.tp < gpus else ""
    return f"TP {plan.tp}{idle}"


def _layout_words(plan: _Plan, gpus: int) -> str:
    """The layout said in words, for the sentence that explains why it was chosen."""
    if plan.pp > 1:
        return f"as a pipeline over {'all ' if plan.pp == gpus else ''}{plan.pp} GPUs"
    if plan.tp == 1 and gpus == 1:
        return "on 1 GPU"
    if plan.tp < gpus:
        return f"tensor parallel on {plan.tp} of the {gpus} GPUs"
    return f"tensor parallel on all {plan.tp} GPUs"


def _reason(
    spec: ModelSpec,
    gt: GpuType,
    plan: _Plan,
    plans: list[_Plan],
    usable: float,
    fits: bool,
    wanted: int | None,
) -> str:
    layout = _layout(plan, gt.gpus)
    if plan.kv_free <= 0:
        one = plan.tp * plan.pp == 1
        where = "" if one else f" per GPU ({layout})"
        text = (
            f"needs {plan.weights_per_gpu / GIB:.1f} GB of weights{where} + {RESERVE_GB:.1f} GB overhead, "
            f"{usable / GIB:.1f} GB usable{'' if gt.gpus == 1 else ' per GPU'} on {gt.short_name}"
        )
    elif plan.max_context == 0:
        text = (
            f"{spec.short_name} weights fit on {gt.short_name} ({layout}) but leave KV cache "
            f"for only {plan.tokens} tokens"
        )
    elif wanted is not None and wanted > spec.max_positions:
        text = (
            f"{spec.short_name} supports at most {context_label(spec.max_positions)} context, "
            f"{context_label(wanted)} asked"
        )
    elif wanted is not None and not fits:
        text = (
            f"{context_label(wanted)} context does not fit: {spec.short_name}, {layout}, "
            f"has KV cache for up to {context_label(plan.max_context)}"
        )
    else:
        at_limit = plan.max_context == spec.max_positions
        most = context_label(plan.max_context)
        if wanted is not None:
            limit = ", the model's limit" if at_limit else ""
            text = f"{spec.short_name}, {layout}, {context_label(wanted)} context fits (up to {most}{limit})"
        else:
            limit = " (the model's limit)" if at_limit else ""
            text = f"{spec.short_name}, {layout}, up to {most} context{limit}"
    if len(plans) > 1:
        others = "; ".join(
            f"{_layout_words(p, gt.gpus)} it would "
            + (f"reach {context_label(p.max_context)}" if p.max_context else "not fit")
            for p in plans
            if p is not plan
        )
        text += (
            f"; its {spec.attention_heads} attention heads do not divide among {gt.gpus} GPUs, "
            f"so it runs {_layout_words(plan, gt.gpus)} ({others})"
        )
    return text
