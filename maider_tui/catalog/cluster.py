"""The fit planner across VMs: a model that no single plan holds, served by several VMs of one plan.

vLLM splits a model over machines with Ray: tensor parallel inside each VM (its GPUs share a PCIe
host), pipeline parallel across VMs (each VM holds a stage: a run of whole layers). So a cluster of
N VMs with G GPUs each runs TP G (or the largest TP the attention heads allow) and PP N. The stage
with the most layers (and the embeddings or the lm_head) is the one that must fit, and bounds speed.

What the link between VMs costs. Pipeline stages take turns on one request, so a single stream
decodes no faster than one VM holding the whole model would, and each token also crosses N-1 links:
the hidden state of the batch (hidden_size x 2 bytes a token) plus a message's latency, which NCCL
over TCP on a VPC keeps at about LINK_LATENCY_MS. Prefill sends every prompt token's hidden state
through each link, at LINK_GBPS. Both figures are stated assumptions, not measurements: the plan says
so where it shows them, and docs/multi-vm.md explains them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from maider_tui.catalog.fit import CONTEXT_STEP, RESERVE_GB, context_label, fit, valid_tensor_parallel
from maider_tui.catalog.lookup import as_gpu_type, as_model
from maider_tui.catalog.sizes import GIB, kv_bytes_per_token, weight_bytes, weights_per_gpu_bytes
from maider_tui.catalog.speed import estimate_decode_tok_s
from maider_tui.models import FitReport, GpuType, ModelSpec

MAX_NODES = 4  # beyond this, the link and the odds of losing a VM outweigh what another stage gives
# With no context asked, a set of VMs must leave at least this much: aider's system prompt, its repo
# map and the files in the chat take several thousand tokens before the first question.
USEFUL_CONTEXT = 8192
LINK_LATENCY_MS = 0.5  # one hop between two VMs' GPUs: NCCL over TCP on a VPC, assumed
LINK_GBPS = 10.0  # the plans' outbound network, assumed: Linode's GPU plans state 10 Gbps or more
ACTIVATION_BYTES = 2  # hidden states cross the link in 16 bits
PROMPT_TOKENS = 8192  # the prompt the prefill cost is quoted for


@dataclass(frozen=True, slots=True)
class LinkCost:
    """What the links between the VMs cost one request, by the stated assumptions."""

    hops: int
    decode_ms_per_token: float  # added to each generated token
    decode_penalty: float  # the share of single-stream decode speed the links take (0.01 = 1 %)
    prefill_s: float  # added to a PROMPT_TOKENS prompt

    def describe(self) -> str:
        if self.hops == 0:
            return "one VM: no link between VMs"
        return (f"{self.hops} link{'s' if self.hops > 1 else ''} between VMs: about "
                f"{self.decode_penalty:.0%} slower decoding ({self.decode_ms_per_token:.1f} ms a token) and "
                f"{self.prefill_s:.2f} s more for an {context_label(PROMPT_TOKENS)}-token prompt "
                f"(assuming {LINK_LATENCY_MS:g} ms a hop and {LINK_GBPS:g} Gbit/s)")


@dataclass(frozen=True, slots=True)
class ClusterFit:
    """`nodes` VMs of `gpu_type` for one model; `report` holds the most loaded GPU's numbers."""

    gpu_type: GpuType
    nodes: int
    report: FitReport
    link: LinkCost
    decode_tok_s: float | None  # one stream, links included; None when the GPU family is unknown

    @property
    def fits(self) -> bool:
        return self.report.fits

    @property
    def hourly_usd(self) -> float:
        return self.gpu_type.hourly_usd * self.nodes

    @property
    def gpus(self) -> int:
        return self.gpu_type.gpus * self.nodes

    def describe(self) -> str:
        r = self.report
        if self.nodes == 1:
            return f"one VM of {self.gpu_type.short_name} (${self.hourly_usd:.2f}/h): {r.reason}"
        return (f"{self.nodes} VMs of {self.gpu_type.short_name} ({self.gpus} GPUs, ${self.hourly_usd:.2f}/h): "
                f"TP {r.tensor_parallel_size} within each VM, PP {r.pipeline_parallel_size} across VMs, "
                + (f"up to {context_label(r.max_context)} context" if r.fits else r.reason))


def link_cost(model: ModelSpec, hops: int, single_vm_tok_s: float | None) -> LinkCost:
    """The links' cost to one request over `hops` stage boundaries between VMs."""
    if hops <= 0:
        return LinkCost(0, 0.0, 0.0, 0.0)
    per_hop_s = LINK_LATENCY_MS / 1000 + model.hidden_size * ACTIVATION_BYTES / (LINK_GBPS * 1e9 / 8)
    decode_s = hops * per_hop_s
    token_s = 1 / single_vm_tok_s if single_vm_tok_s else 0.0
    penalty = decode_s / (token_s + decode_s) if token_s else 0.0
    prefill_s = hops * (LINK_LATENCY_MS / 1000
                        + PROMPT_TOKENS * model.hidden_size * ACTIVATION_BYTES / (LINK_GBPS * 1e9 / 8))
    return LinkCost(hops, decode_s * 1000, penalty, prefill_s)


def fit_nodes(model: ModelSpec | str, gpu_type: GpuType | str, nodes: int, *, max_model_len: int | None = None,
              gpu_memory_utilization: float = 0.90, kv_cache_dtype: str = "auto") -> ClusterFit:
    """Plan `model` over `nodes` VMs of `gpu_type`: TP within a VM, PP across VMs."""
    spec, gt = as_model(model), as_gpu_type(gpu_type)
    if nodes < 1:
        raise ValueError(f"nodes must be 1 or more, got {nodes}")
    if nodes == 1:
        report = fit(spec, gt, max_model_len=max_model_len, gpu_memory_utilization=gpu_memory_utilization,
                     kv_cache_dtype=kv_cache_dtype)
        return ClusterFit(gt, 1, report, link_cost(spec, 0, None), estimate_decode_tok_s(spec, gt))
    # One VM's own plan at this size settles dtype, fp8 fallbacks and what the family allows.
    alone = fit(spec, gt, gpu_memory_utilization=gpu_memory_utilization, kv_cache_dtype=kv_cache_dtype)
    kv_dtype = alone.kv_cache_dtype
    tp = next(t for t in range(gt.gpus, 0, -1) if valid_tensor_parallel(spec, t))
    pp = nodes
    family = gt.family
    usable = family.vram_bytes * gpu_memory_utilization if family else 0.0
    weights = weights_per_gpu_bytes(spec, tp, pp)
    kv_free = usable - weights - RESERVE_GB * GIB
    per_token = kv_bytes_per_token(spec, kv_dtype, tp=tp, pp=pp)
    tokens = math.floor(kv_free / per_token) if kv_free > 0 else 0
    max_context = min(tokens // CONTEXT_STEP * CONTEXT_STEP, spec.max_positions)
    need = max_model_len or CONTEXT_STEP
    stages_ok = spec.layers >= pp
    fits = family is not None and stages_ok and max_context >= need and not _refused(alone)
    layout = f"TP {tp} x PP {pp} on {nodes} VMs"
    if family is None:
        reason = f"cannot judge {gt.label}: its GPU model and VRAM are unknown"
    elif _refused(alone):
        reason = alone.reason
    elif not stages_ok:
        reason = f"{spec.short_name} has {spec.layers} layers, fewer than {pp} pipeline stages"
    elif kv_free <= 0:
        reason = (f"needs {weights / GIB:.1f} GB of weights per GPU ({layout}) + {RESERVE_GB:.1f} GB overhead, "
                  f"{usable / GIB:.1f} GB usable per GPU on {gt.short_name}")
    elif not fits:
        reason = (f"{context_label(need)} context does not fit: {spec.short_name}, {layout}, has KV cache for up "
                  f"to {context_label(max_context)}")
    else:
        reason = f"{spec.short_name}, {layout}, up to {context_label(max_context)} context"
    kv_cache_gb = max(kv_free, 0.0) / GIB
    report = FitReport(
        model=spec, gpu_type=gt, fits=fits, reason=reason, weights_gb=weight_bytes(spec).total / GIB,
        weights_per_gpu_gb=weights / GIB, kv_bytes_per_token=kv_bytes_per_token(spec, kv_dtype),
        kv_bytes_per_token_per_gpu=per_token, tensor_parallel_size=tp, pipeline_parallel_size=pp,
        max_model_len=(max_model_len or max_context) if fits else 0, max_context=max_context if stages_ok else 0,
        usable_gb=usable / GIB, reserve_gb=RESERVE_GB, kv_cache_gb=kv_cache_gb,
        per_gpu_gb=(weights / GIB + RESERVE_GB + kv_cache_gb) if kv_free > 0 else 0.0,
        dtype=alone.dtype, kv_cache_dtype=kv_dtype, gpu_memory_utilization=gpu_memory_utilization,
        requested_max_model_len=max_model_len, notes=alone.notes,
    )
    # A single stream runs at about one VM's speed with this TP (stages take turns), plus the links.
    single = estimate_decode_tok_s(spec, gt)
    link = link_cost(spec, nodes - 1, single)
    decode = single * (1 - link.decode_penalty) if single else None
    return ClusterFit(gt, nodes, report, link, decode)


def _refused(alone: FitReport) -> bool:
    """Whether one VM's plan was refused for a reason no number of VMs changes (fp8 on Turing ...)."""
    return not alone.fits and alone.max_context == 0 and "compute capability" in alone.reason


def fewest_nodes(model: ModelSpec | str, gpu_type: GpuType | str, *, start: int = 1,
                 max_model_len: int | None = None, max_nodes: int = MAX_NODES) -> ClusterFit | None:
    """The fewest VMs of `gpu_type` (from `start` up to `max_nodes`) that hold `model` at `max_model_len`.
    With no context asked, the fewest that leave it USEFUL_CONTEXT (fewer VMs that hold the weights
    with barely a request's room are no use to aider), or, when no count does, the fewest that hold it
    at all. None when not even `max_nodes` VMs do."""
    spec, gt = as_model(model), as_gpu_type(gpu_type)
    smallest = None
    for nodes in range(start, max_nodes + 1):
        option = fit_nodes(spec, gt, nodes, max_model_len=max_model_len)
        if not option.fits:
            continue
        if max_model_len is not None or option.report.max_context >= USEFUL_CONTEXT:
            return option
        smallest = smallest or option
    return smallest


def cluster_options(model: ModelSpec | str, gpu_types: Iterable[GpuType], *, max_model_len: int | None = None,
                    max_nodes: int = MAX_NODES) -> list[ClusterFit]:
    """For each plan, the fewest VMs (up to `max_nodes`) that hold the model at the asked context
    (`fewest_nodes`); the fewest VMs first (fewer links, fewer VMs to lose), then the lowest price."""
    spec = as_model(model)
    found = [option for gt in gpu_types
             if (option := fewest_nodes(spec, gt, max_model_len=max_model_len, max_nodes=max_nodes)) is not None]
    return sorted(found, key=lambda c: (c.nodes, c.hourly_usd, c.gpu_type.id))


def why_not_one_vm(model: ModelSpec | str, gpu_types: Iterable[GpuType]) -> str:
    """Why no single VM holds the model: its weights against the largest VM's memory."""
    spec = as_model(model)
    known = [t for t in gpu_types if t.total_vram_gb]
    weights = weight_bytes(spec).total / GIB
    if not known:
        return f"{spec.short_name} needs {weights:.0f} GB of weights and no plan's memory is known"
    largest = max(known, key=lambda t: (t.total_vram_gb or 0, -t.hourly_usd))
    return (f"{spec.short_name} needs {weights:.0f} GB of weights; the largest VM, {largest.short_name}, "
            f"has {largest.total_vram_gb:.0f} GB in all, and each GPU also keeps room for the KV cache")
