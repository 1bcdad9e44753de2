"""The repos the simulated Hugging Face Hub holds: real model ids the built-in catalog does not.

Each config keeps the real config.json's shape (the keys the fit planner and vLLM read), copied from
the repo named in its comment; `params` is the model info's `safetensors.total` (parameters stored,
as the Hub's model page shows them).
Small and large, dense and mixture-of-experts, one quantized, one that needs `trust_remote_code`,
and three gated ones (the Hub answers 401 without a token for those).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class HubRepo:
    """One model repo: its config.json, gating ("auto"/"manual" need an accepted licence) and size."""

    id: str
    config: dict[str, Any]
    params: int | None  # None: the model info carries no safetensors block
    gated: str | bool = False
    tags: tuple[str, ...] = field(default=("text-generation", "safetensors"))

    @property
    def sha(self) -> str:
        """The main branch's commit: fixed per repo, 40 hex digits like the Hub's."""
        return hashlib.sha1(self.id.encode()).hexdigest()


_QWEN2 = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_act": "silu",
          "rope_theta": 1000000.0, "rms_norm_eps": 1e-06, "use_sliding_window": False}
_MISTRAL = {"hidden_act": "silu", "rms_norm_eps": 1e-05, "rope_theta": 1000000.0, "bos_token_id": 1,
            "eos_token_id": 2}

REPOS: tuple[HubRepo, ...] = (
    # https://huggingface.co/Qwen/Qwen2.5-Coder-1.5B-Instruct/blob/main/config.json
    # (shape as in Qwen's model card: 28 layers, 12 Q / 2 KV heads, tied embeddings, 1.54B).
    HubRepo("Qwen/Qwen2.5-Coder-1.5B-Instruct", {
        **_QWEN2, "hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
        "num_attention_heads": 12, "num_key_value_heads": 2, "max_position_embeddings": 32768,
        "sliding_window": 32768, "max_window_layers": 21, "vocab_size": 151936, "tie_word_embeddings": True,
        "torch_dtype": "bfloat16", "bos_token_id": 151643, "eos_token_id": 151645,
    }, params=1_543_714_304),
    # https://huggingface.co/deepseek-ai/deepseek-coder-6.7b-instruct/blob/main/config.json
    # (a Llama with a 32256 vocabulary and linear RoPE scaling x4 to 16K).
    HubRepo("deepseek-ai/deepseek-coder-6.7b-instruct", {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
        "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32,
        "num_key_value_heads": 32, "max_position_embeddings": 16384, "vocab_size": 32256,
        "rope_scaling": {"factor": 4.0, "type": "linear"}, "rope_theta": 100000, "rms_norm_eps": 1e-06,
        "tie_word_embeddings": False, "torch_dtype": "bfloat16", "bos_token_id": 32013, "eos_token_id": 32021,
    }, params=6_740_512_768),
    # https://huggingface.co/microsoft/Phi-3-mini-4k-instruct/blob/main/config.json
    # (auto_map names the repo's own configuration_phi3.py: transformers needs trust_remote_code).
    HubRepo("microsoft/Phi-3-mini-4k-instruct", {
        "architectures": ["Phi3ForCausalLM"], "model_type": "phi3",
        "auto_map": {"AutoConfig": "configuration_phi3.Phi3Config",
                     "AutoModelForCausalLM": "modeling_phi3.Phi3ForCausalLM"},
        "hidden_act": "silu", "hidden_size": 3072, "intermediate_size": 8192, "num_hidden_layers": 32,
        "num_attention_heads": 32, "num_key_value_heads": 32, "max_position_embeddings": 4096,
        "original_max_position_embeddings": 4096, "sliding_window": 2047, "vocab_size": 32064,
        "rope_theta": 10000.0, "rms_norm_eps": 1e-05, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        "bos_token_id": 1, "eos_token_id": 32000,
    }, params=3_821_079_552),
    # https://huggingface.co/Qwen/Qwen2.5-Coder-32B-Instruct-GPTQ-Int4/blob/main/config.json
    # (the 32B coder's shape, GPTQ 4-bit with group size 128, float16 activations).
    HubRepo("Qwen/Qwen2.5-Coder-32B-Instruct-GPTQ-Int4", {
        **_QWEN2, "hidden_size": 5120, "intermediate_size": 27648, "num_hidden_layers": 64,
        "num_attention_heads": 40, "num_key_value_heads": 8, "max_position_embeddings": 32768,
        "sliding_window": 131072, "max_window_layers": 70, "vocab_size": 152064, "tie_word_embeddings": False,
        "torch_dtype": "float16", "bos_token_id": 151643, "eos_token_id": 151645,
        "quantization_config": {"bits": 4, "damp_percent": 0.01, "desc_act": False, "group_size": 128,
                                "quant_method": "gptq", "static_groups": False, "sym": True,
                                "true_sequential": True},
    }, params=None),  # the Hub counts GPTQ's packed int32 tensors, not the 32.8B: left out here
    # https://huggingface.co/Qwen/Qwen1.5-MoE-A2.7B-Chat/blob/main/config.json
    # (60 routed experts, 4 per token, plus a shared expert: 14.3B stored, 2.7B active).
    HubRepo("Qwen/Qwen1.5-MoE-A2.7B-Chat", {
        "architectures": ["Qwen2MoeForCausalLM"], "model_type": "qwen2_moe", "hidden_act": "silu",
        "hidden_size": 2048, "intermediate_size": 5632, "moe_intermediate_size": 1408,
        "shared_expert_intermediate_size": 5632, "num_experts": 60, "num_experts_per_tok": 4,
        "decoder_sparse_step": 1, "norm_topk_prob": False, "num_hidden_layers": 24, "num_attention_heads": 16,
        "num_key_value_heads": 16, "max_position_embeddings": 8192, "vocab_size": 151936,
        "rope_theta": 1000000.0, "rms_norm_eps": 1e-06, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16", "bos_token_id": 151643, "eos_token_id": 151643,
    }, params=14_315_784_192),
    # https://huggingface.co/mistralai/Mixtral-8x7B-Instruct-v0.1/blob/main/config.json
    # (8 experts, 2 per token: 46.7B stored, 12.9B active; gated behind Mistral's contact form).
    HubRepo("mistralai/Mixtral-8x7B-Instruct-v0.1", {
        **_MISTRAL, "architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "hidden_size": 4096,
        "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
        "num_key_value_heads": 8, "num_local_experts": 8, "num_experts_per_tok": 2,
        "max_position_embeddings": 32768, "sliding_window": None, "vocab_size": 32000,
        "router_aux_loss_coef": 0.02, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    }, params=46_702_792_704, gated="auto"),
    # https://huggingface.co/mistralai/Mistral-7B-Instruct-v0.3/blob/main/config.json
    # (a 32768 vocabulary, 8 KV heads, no sliding window; gated like every mistralai repo).
    HubRepo("mistralai/Mistral-7B-Instruct-v0.3", {
        **_MISTRAL, "architectures": ["MistralForCausalLM"], "model_type": "mistral", "hidden_size": 4096,
        "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
        "num_key_value_heads": 8, "head_dim": 128, "max_position_embeddings": 32768, "sliding_window": None,
        "vocab_size": 32768, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    }, params=7_248_023_552, gated="auto"),
    # https://huggingface.co/meta-llama/Llama-3.2-3B-Instruct/blob/main/config.json
    # (tied embeddings, head_dim 128, llama3 RoPE scaling to 128K; gated behind Meta's licence).
    HubRepo("meta-llama/Llama-3.2-3B-Instruct", {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
        "hidden_size": 3072, "intermediate_size": 8192, "num_hidden_layers": 28, "num_attention_heads": 24,
        "num_key_value_heads": 8, "head_dim": 128, "max_position_embeddings": 131072, "vocab_size": 128256,
        "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "rope_theta": 500000.0, "rms_norm_eps": 1e-05, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
        "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009],
    }, params=3_212_749_824, gated="manual"),
    # https://huggingface.co/google/gemma-2-9b-it/blob/main/config.json
    # (head_dim 256 with 16 heads on a 3584-wide model, a 256000 vocabulary; gated behind Gemma's terms).
    HubRepo("google/gemma-2-9b-it", {
        "architectures": ["Gemma2ForCausalLM"], "model_type": "gemma2",
        "hidden_activation": "gelu_pytorch_tanh",
        "hidden_size": 3584, "intermediate_size": 14336, "num_hidden_layers": 42, "num_attention_heads": 16,
        "num_key_value_heads": 8, "head_dim": 256, "max_position_embeddings": 8192, "sliding_window": 4096,
        "query_pre_attn_scalar": 256, "attn_logit_softcapping": 50.0, "final_logit_softcapping": 30.0,
        "vocab_size": 256000, "rope_theta": 10000.0, "rms_norm_eps": 1e-06, "tie_word_embeddings": True,
        "torch_dtype": "float32", "bos_token_id": 2, "eos_token_id": 1, "pad_token_id": 0,
    }, params=9_241_705_984, gated="manual"),
)
