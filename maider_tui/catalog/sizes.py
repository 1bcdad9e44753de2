"""How many bytes a model's weights and its KV cache take. Pure arithmetic on a ModelSpec.

Weights: the embedding table and lm_head stay 16-bit in every format we know (AWQ, GPTQ and
FP8 checkpoints leave them alone); every other parameter (the "body": attention, MLP, experts)
takes the quantised width. Norms and biases are counted in the body; they are under 0.1%.

AWQ/GPTQ 4-bit, group size 128: each weight 4 bits, plus per 128 weights one fp16 scale and one
packed 4-bit zero point: 4 + (16 + 4) / 128 = 4.156 bits = 0.5195 bytes per parameter.
Checked against the checkpoints on Hugging Face (decimal GB, as the Hub shows them):
  Qwen2.5-Coder-7B-AWQ   6.525B x 0.5195 + 1.090B x 2 = 5.57 GB   (Hub: ~5.6 GB)
  Qwen2.5-Coder-14B-AWQ 13.21B x 0.5195 + 1.557B x 2 = 9.98 GB   (Hub: ~10.0 GB)
  Qwen2.5-Coder-32B-AWQ 31.20B x 0.5195 + 1.557B x 2 = 19.32 GB  (Hub: ~19.3 GB) = 18.0 GiB
  Qwen2.5-72B-AWQ       70.47B x 0.5195 + 2.491B x 2 = 41.6 GB   (Hub: ~41.6 GB)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from maider_tui.models import ModelSpec

GIB = 1024**3
BYTES_16BIT = 2

# KV-cache element width by vLLM's --kv-cache-dtype; "auto" follows the 16-bit model dtype.
KV_DTYPE_BYTES: dict[str, int] = {"auto": 2, "fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1}


@dataclass(frozen=True, slots=True)
class WeightBytes:
    """A checkpoint's weights split the way tensor and pipeline parallelism split them."""

    embed: float  # input embedding table
    lm_head: float  # output projection; 0 when tied to the embedding
    body: float  # all decoder layers together

    @property
    def total(self) -> float:
        return self.embed + self.lm_head + self.body


def bytes_per_body_param(model: ModelSpec) -> float:
    """Bytes per quantised (body) parameter, group scales and zero points included."""
    if model.quant is None:
        return float(BYTES_16BIT)
    width = model.quant_bits / 8
    if model.quant_group_size > 0:
        width += (16 + model.quant_bits) / 8 / model.quant_group_size
    return width


def weight_bytes(model: ModelSpec) -> WeightBytes:
    """The model's weights in bytes, embeddings and lm_head at 16 bits, the body as quantised."""
    embed_params = model.vocab_size * model.hidden_size
    head_params = 0 if model.tie_word_embeddings else embed_params
    body_params = model.params - embed_params - head_params
    if body_params <= 0:
        raise ValueError(f"{model.id}: {model.params_b}B parameters is less than its embeddings")
    return WeightBytes(
        embed=embed_params * BYTES_16BIT,
        lm_head=head_params * BYTES_16BIT,
        body=body_params * bytes_per_body_param(model),
    )


def decode_bytes_per_token(model: ModelSpec) -> float:
    """Weight bytes read to generate one token: the active body plus the whole lm_head.

    The embedding table is not streamed (one row per token), the output projection is (a tied
    model reads the embedding table as its lm_head). A MoE model reads only its active experts.
    """
    w = weight_bytes(model)
    head = w.lm_head or w.embed
    if model.active_params_b is None:
        return w.body + head
    embed_params = model.vocab_size * model.hidden_size
    head_params = 0 if model.tie_word_embeddings else embed_params
    active_body = max(model.active_params_b * 1e9 - embed_params - head_params, 0.0)
    return active_body * bytes_per_body_param(model) + head


def kv_dtype_bytes(kv_cache_dtype: str) -> int:
    """Bytes per cached element for a vLLM --kv-cache-dtype value."""
    try:
        return KV_DTYPE_BYTES[kv_cache_dtype]
    except KeyError:
        known = ", ".join(KV_DTYPE_BYTES)
        raise ValueError(f"unknown kv_cache_dtype {kv_cache_dtype!r}; use one of {known}") from None


def kv_bytes_per_token(model: ModelSpec, kv_cache_dtype: str = "auto", *, tp: int = 1, pp: int = 1) -> int:
    """KV-cache bytes one token takes on one GPU of a (TP, PP) plan; the whole model at 1, 1.

    Standard/GQA: 2 (K and V) x layers x KV heads x head_dim x bytes. Tensor parallelism splits
    the KV heads, at least one per rank (vLLM replicates them when TP exceeds the KV heads);
    pipeline parallelism splits the layers (the fullest stage counts). MLA (DeepSeek-V2) caches
    one latent of kv_lora_rank + qk_rope_head_dim per layer, which every TP rank keeps whole.
    """
    width = kv_dtype_bytes(kv_cache_dtype)
    layers = math.ceil(model.layers / pp)
    if model.kv_layout == "mla":
        return layers * (model.kv_lora_rank + model.qk_rope_head_dim) * width
    heads = max(1, model.kv_heads // tp)
    return 2 * layers * heads * model.head_dim * width


def weights_per_gpu_bytes(model: ModelSpec, tp: int, pp: int) -> float:
    """Weight bytes on the most loaded GPU of a (TP, PP) plan.

    TP shards everything (vLLM splits the vocabulary too). With PP, the first stage holds the
    embeddings and the last the lm_head (a copy of the embedding when tied), each with
    ceil(layers / PP) layers; the heavier of the two is the one that must fit.
    """
    w = weight_bytes(model)
    stage_body = w.body * math.ceil(model.layers / pp) / model.layers
    ends = w.embed + w.lm_head if pp == 1 else max(w.embed, w.lm_head)
    return (stage_body + ends) / tp
