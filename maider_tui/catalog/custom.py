"""Build a ModelSpec for a model the catalog does not hold, from its Hugging Face config.json."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from maider_tui.catalog.model_specs import category_for
from maider_tui.models import ModelSpec

_REQUIRED = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "max_position_embeddings",
    "vocab_size",
)
_EXPERT_KEYS = ("num_experts", "n_routed_experts", "num_local_experts")
_QUANT_METHODS = ("awq", "gptq", "fp8")


def custom_model(
    config: Mapping[str, Any],
    *,
    model_id: str,
    params_b: float | None = None,
    active_params_b: float | None = None,
    short_name: str | None = None,
    trust_remote_code: bool | None = None,
    coder: bool = False,
) -> ModelSpec:
    """A ModelSpec from a config.json dict plus, where needed, the parameter count (billions).

    Dense models without `params_b` get an estimate from the config (see estimate_params_b).
    MoE and MLA models need `params_b` given: their shapes vary too much to estimate safely.
    trust_remote_code defaults to whether the config points at the repo's own code (auto_map).
    Raises ValueError for a config that lacks what the fit planner needs.
    """
    cfg = _flatten(config)
    missing = [k for k in _REQUIRED if not isinstance(cfg.get(k), int)]
    if missing:
        raise ValueError(f"{model_id}: config.json lacks {', '.join(missing)}")

    hidden = cfg["hidden_size"]
    heads = cfg["num_attention_heads"]
    kv_heads = cfg.get("num_key_value_heads") or heads
    head_dim = cfg.get("head_dim") or hidden // heads
    mla = isinstance(cfg.get("kv_lora_rank"), int) and cfg["kv_lora_rank"] > 0
    moe = any(cfg.get(k) for k in _EXPERT_KEYS)
    if params_b is None:
        if moe or mla:
            raise ValueError(f"{model_id}: give its parameter count; MoE/MLA sizes are not estimated")
        params_b = estimate_params_b(cfg)
    quant, bits, group = _quantization(model_id, cfg.get("quantization_config"))

    return ModelSpec(
        id=model_id,
        short_name=short_name or model_id.rsplit("/", 1)[-1],
        category=category_for(params_b, quant is not None),
        params_b=params_b,
        active_params_b=active_params_b if moe else None,
        layers=cfg["num_hidden_layers"],
        attention_heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        hidden_size=hidden,
        vocab_size=cfg["vocab_size"],
        # Untied is the safe assumption when a config is silent: it counts an lm_head.
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        max_positions=cfg["max_position_embeddings"],
        quant=quant,
        quant_bits=bits,
        quant_group_size=group,
        kv_layout="mla" if mla else "gqa",
        kv_lora_rank=cfg["kv_lora_rank"] if mla else 0,
        qk_rope_head_dim=cfg.get("qk_rope_head_dim", 0) if mla else 0,
        trust_remote_code="auto_map" in cfg if trust_remote_code is None else trust_remote_code,
        coder=coder,
    )


def estimate_params_b(cfg: Mapping[str, Any]) -> float:
    """Parameters (billions) of a dense decoder from its config.json.

    embeddings (vocab x hidden, twice when untied)
    + layers x (q and o: 2 x hidden x heads x head_dim; k and v: 2 x hidden x kv_heads x head_dim;
                gated MLP (gate, up, down): 3 x hidden x intermediate_size).
    Norms and biases are ignored (<0.1%). A non-gated MLP is overestimated, which errs on the
    safe side for fitting. It gives 7.62B for Qwen2.5-Coder-7B and 8.03B for Llama-3.1-8B.
    """
    cfg = _flatten(cfg)
    if not isinstance(cfg.get("intermediate_size"), int):
        raise ValueError("config.json lacks intermediate_size; give the parameter count instead")
    hidden = cfg["hidden_size"]
    heads = cfg["num_attention_heads"]
    kv_heads = cfg.get("num_key_value_heads") or heads
    head_dim = cfg.get("head_dim") or hidden // heads
    attention = 2 * hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim
    mlp = 3 * hidden * cfg["intermediate_size"]
    tables = 1 if cfg.get("tie_word_embeddings", False) else 2
    embeddings = tables * cfg["vocab_size"] * hidden
    return (embeddings + cfg["num_hidden_layers"] * (attention + mlp)) / 1e9


def _flatten(config: Mapping[str, Any]) -> dict[str, Any]:
    """Top-level keys, filled in from text_config (multimodal configs keep the LLM there)."""
    cfg = dict(config)
    text = config.get("text_config")
    if isinstance(text, Mapping):
        for key, value in text.items():
            cfg.setdefault(key, value)
    return cfg


def _quantization(model_id: str, qc: object) -> tuple[str | None, int, int]:
    """(method, bits, group size) from a quantization_config; (None, 16, 0) when absent."""
    if not isinstance(qc, Mapping):
        return None, 16, 0
    method = str(qc.get("quant_method", "")).lower()
    if method not in _QUANT_METHODS:
        raise ValueError(
            f"{model_id}: quantization {method or '?'!r} is not one the planner knows "
            f"({', '.join(_QUANT_METHODS)})"
        )
    if method == "fp8":
        return "fp8", 8, 0  # block scales are a rounding error next to the weights
    bits = int(qc.get("bits", qc.get("w_bit", 4)))
    group = int(qc.get("group_size", qc.get("q_group_size", 128)))
    # group_size -1 means one scale per output channel: negligible, like no groups at all.
    return method, bits, max(group, 0)
