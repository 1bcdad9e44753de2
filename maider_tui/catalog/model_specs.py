"""The built-in models and the wizard's capability tiers.

Shapes come from each repo's config.json on Hugging Face. Parameter counts are worked from those
shapes (embeddings + per-layer attention and MLP) and agree with the size Hugging Face shows:
  Qwen2.5-Coder-7B   hidden 3584, 28 layers, 28 heads / 4 KV, vocab 152064, MLP 18944 -> 7.62B
  Qwen2.5-Coder-14B  hidden 5120, 48 layers, 40 / 8, vocab 152064, MLP 13824          -> 14.77B
  Qwen2.5-Coder-32B  hidden 5120, 64 layers, 40 / 8, vocab 152064, MLP 27648          -> 32.76B
  Qwen2.5-72B        hidden 8192, 80 layers, 64 / 8, vocab 152064, MLP 29568          -> 72.71B
  Llama-3.1-8B       hidden 4096, 32 layers, 32 / 8, vocab 128256, MLP 14336          -> 8.03B
  Llama-3.1-70B      hidden 8192, 80 layers, 64 / 8, vocab 128256, MLP 28672          -> 70.55B
  DeepSeek-Coder-V2-Lite  hidden 2048, 27 layers, 16 heads, MLA (kv_lora_rank 512 + rope 64),
                     64 routed experts (6 active) + 2 shared, vocab 102400 -> 15.7B, 2.4B active
  Qwen3-Coder-30B-A3B hidden 2048, 48 layers, 32 / 4, head_dim 128, 128 experts (8 active) of
                     768, vocab 151936 -> 30.53B, 3.35B active
All are untied (separate lm_head). Qwen's AWQ checkpoints keep the base shapes, except
Qwen2.5-72B-Instruct-AWQ, which pads the MLP to 29696 so tensor parallelism splits whole
128-wide groups: 80 x 3 x 8192 x 128 = 0.25B more parameters.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TypedDict, Unpack

from maider_tui.models import Capability, ModelSpec

class _Family(TypedDict):
    """The shape fields a model family shares."""

    head_dim: int
    vocab_size: int
    tie_word_embeddings: bool
    max_positions: int


class _AwqChanges(TypedDict, total=False):
    """What an AWQ twin may change besides the quantisation."""

    category: str
    params_b: float


# Qwen2.5 models were trained to 32768 positions; longer needs YaRN, which we do not enable.
_QWEN25 = _Family(head_dim=128, vocab_size=152064, tie_word_embeddings=False, max_positions=32768)
_LLAMA31 = _Family(head_dim=128, vocab_size=128256, tie_word_embeddings=False, max_positions=131072)


def _awq(spec: ModelSpec, **changes: Unpack[_AwqChanges]) -> ModelSpec:
    """The 4-bit AWQ (group size 128) twin of a 16-bit spec."""
    return replace(
        spec,
        id=spec.id + "-AWQ",
        short_name=spec.short_name + "-AWQ",
        quant="awq",
        quant_bits=4,
        quant_group_size=128,
        **changes,
    )


_CODER_7B = ModelSpec(
    "Qwen/Qwen2.5-Coder-7B-Instruct", "7B", "7b", 7.62,
    layers=28, attention_heads=28, kv_heads=4, hidden_size=3584, coder=True, **_QWEN25,
)
_CODER_14B = ModelSpec(
    "Qwen/Qwen2.5-Coder-14B-Instruct", "14B", "14b", 14.77,
    layers=48, attention_heads=40, kv_heads=8, hidden_size=5120, coder=True, **_QWEN25,
)
_CODER_32B = ModelSpec(
    "Qwen/Qwen2.5-Coder-32B-Instruct", "32B", "30b", 32.76,
    layers=64, attention_heads=40, kv_heads=8, hidden_size=5120, coder=True, **_QWEN25,
)
_QWEN_72B = ModelSpec(
    "Qwen/Qwen2.5-72B-Instruct", "72B", "70b-full", 72.71,
    layers=80, attention_heads=64, kv_heads=8, hidden_size=8192, **_QWEN25,
)
_LLAMA_8B = ModelSpec(
    "meta-llama/Llama-3.1-8B-Instruct", "Llama-8B", "7b", 8.03,
    layers=32, attention_heads=32, kv_heads=8, hidden_size=4096, **_LLAMA31,
)
_LLAMA_70B = ModelSpec(
    "meta-llama/Llama-3.1-70B-Instruct", "Llama-70B", "70b-full", 70.55,
    layers=80, attention_heads=64, kv_heads=8, hidden_size=8192, **_LLAMA31,
)
_DEEPSEEK_LITE = ModelSpec(
    "deepseek-ai/DeepSeek-Coder-V2-Lite-Instruct", "DS-Coder-V2-Lite", "14b", 15.71,
    active_params_b=2.4,
    layers=27, attention_heads=16,
    # config.json says 16 KV heads, but MLA caches one shared latent per layer instead;
    # head_dim is the query/key width (128 nope + 64 rope).
    kv_heads=16, head_dim=192, hidden_size=2048, vocab_size=102400, tie_word_embeddings=False,
    max_positions=163840, kv_layout="mla", kv_lora_rank=512, qk_rope_head_dim=64,
    trust_remote_code=True, coder=True,
)
_QWEN3_CODER_30B = ModelSpec(
    "Qwen/Qwen3-Coder-30B-A3B-Instruct", "Qwen3-30B-A3B", "30b", 30.53,
    active_params_b=3.35,
    layers=48, attention_heads=32, kv_heads=4, head_dim=128, hidden_size=2048, vocab_size=151936,
    tie_word_embeddings=False, max_positions=262144, coder=True,
)

_MODELS: tuple[ModelSpec, ...] = (
    _CODER_7B,
    _awq(_CODER_7B),
    _LLAMA_8B,
    _CODER_14B,
    _awq(_CODER_14B),
    _DEEPSEEK_LITE,
    _QWEN3_CODER_30B,
    _CODER_32B,
    _awq(_CODER_32B),
    _LLAMA_70B,
    _QWEN_72B,
    _awq(_QWEN_72B, category="70b", params_b=72.96),
)

CATEGORIES: tuple[str, ...] = ("7b", "14b", "30b", "70b", "70b-full")

_CAPABILITIES: tuple[Capability, ...] = (
    Capability("7B-14B", "7B-14B: fast, fits one small GPU", ("7b", "14b")),
    Capability("30B-32B", "30B-32B: strong coders, two GPUs or more", ("30b",)),
    Capability("70B+", "70B+: the largest open models, several GPUs", ("70b", "70b-full")),
    Capability("custom", "Custom: any Hugging Face model you name", ()),
)


def all_models() -> tuple[ModelSpec, ...]:
    return _MODELS


def all_capabilities() -> tuple[Capability, ...]:
    return _CAPABILITIES


def category_for(params_b: float, quantized: bool) -> str:
    """The size category of a model with this many (billion) parameters."""
    if params_b < 11:
        return "7b"
    if params_b < 24:
        return "14b"
    if params_b < 48:
        return "30b"
    return "70b" if quantized else "70b-full"
