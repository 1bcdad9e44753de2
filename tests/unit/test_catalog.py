"""The catalog's data and lookups: GPU families, types, regions, models, tiers, custom models."""

from __future__ import annotations

import pytest

from maider_tui import catalog
from maider_tui.catalog import (
    QUADRO_RTX6000,
    RTX4000_ADA,
    UnknownCapabilityError,
    UnknownGpuTypeError,
    UnknownModelError,
    UnknownRegionError,
)
from maider_tui.catalog.sizes import weight_bytes

PRICES = {
    "g2-gpu-rtx4000a1-s": (1, 0.52),
    "g2-gpu-rtx4000a2-s": (2, 1.04),
    "g2-gpu-rtx4000a4-m": (4, 2.08),
    "g1-gpu-rtx6000-1": (1, 1.50),
    "g1-gpu-rtx6000-2": (2, 3.00),
    "g1-gpu-rtx6000-3": (3, 4.50),
    "g1-gpu-rtx6000-4": (4, 6.00),
}
ADA_REGIONS = {"us-ord", "us-sea", "de-fra-2", "fr-par", "in-bom-2", "sg-sin-2", "jp-osa"}
QUADRO_REGIONS = {"us-east", "us-southeast", "eu-central", "ap-west", "ap-south"}


def test_families_are_the_real_hardware():
    assert {f.id for f in catalog.gpu_families()} == {RTX4000_ADA.id, QUADRO_RTX6000.id}
    assert RTX4000_ADA.name == "NVIDIA RTX 4000 Ada Generation"
    assert (RTX4000_ADA.vram_mib, RTX4000_ADA.compute_capability) == (20475, (8, 9))
    assert RTX4000_ADA.bf16 and RTX4000_ADA.fp8
    # The seed's "RTX 6000 Ada 48 GB" is really a 24 GB Turing card without bf16 or fp8.
    assert QUADRO_RTX6000.name == "Quadro RTX 6000"
    assert (QUADRO_RTX6000.vram_mib, QUADRO_RTX6000.compute_capability) == (24576, (7, 5))
    assert not QUADRO_RTX6000.bf16 and not QUADRO_RTX6000.fp8
    assert QUADRO_RTX6000.vram_gb == 24.0
    assert RTX4000_ADA.vram_gb == pytest.approx(19.995, abs=0.001)


def test_seven_gpu_types_with_their_prices():
    types = catalog.gpu_types()
    assert len(types) == 7
    assert {t.id: (t.gpus, t.hourly_usd) for t in types} == PRICES
    assert [t.hourly_usd for t in types] == sorted(t.hourly_usd for t in types)
    assert catalog.gpu_type("g1-gpu-rtx6000-1").monthly_usd == 1000.0
    assert catalog.gpu_type("g2-gpu-rtx4000a1-s").monthly_usd == 350.0


def test_gpu_type_names_and_vram():
    two_ada = catalog.gpu_type("g2-gpu-rtx4000a2-s")
    assert two_ada.short_name == "2x RTX 4000 Ada"
    assert two_ada.label == "RTX4000 Ada x2 Small"
    assert two_ada.total_vram_gb == pytest.approx(2 * 20475 / 1024)
    four_quadro = catalog.gpu_type("G1-GPU-RTX6000-4")  # case does not matter
    assert four_quadro.label == "Dedicated 128GB + RTX6000 GPU x4"
    assert (four_quadro.vram_per_gpu_gb, four_quadro.total_vram_gb) == (24.0, 96.0)


def test_twelve_gpu_regions():
    regions = catalog.regions()
    assert len(regions) == 12
    by_family = {r.id: r.gpu_families for r in regions}
    assert {r for r, fams in by_family.items() if fams == (RTX4000_ADA.id,)} == ADA_REGIONS
    assert {r for r, fams in by_family.items() if fams == (QUADRO_RTX6000.id,)} == QUADRO_REGIONS
    assert catalog.region("de-fra-2").label == "Frankfurt 2, DE"
    assert catalog.region("eu-central").city == "Frankfurt"


def test_types_are_offered_where_their_family_is():
    for gpu_type in catalog.gpu_types():
        expected = ADA_REGIONS if gpu_type.family is RTX4000_ADA else QUADRO_REGIONS
        assert set(gpu_type.regions) == expected, gpu_type.id
    newark = catalog.gpu_types(region_id="us-east")
    assert len(newark) == 4 and all(t.family is QUADRO_RTX6000 for t in newark)
    with pytest.raises(UnknownRegionError):
        catalog.gpu_types(region_id="mars-1")


def test_unknown_model_names_close_matches():
    with pytest.raises(UnknownModelError) as caught:
        catalog.model("Qwen/Qwen2.5-Coder-32B-Instruct-AWG")
    error = caught.value
    assert isinstance(error, KeyError) and isinstance(error, ValueError)
    assert "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ" in str(error)
    assert 1 <= len(error.suggestions) <= 3
    assert str(error).startswith("unknown model 'Qwen/Qwen2.5-Coder-32B-Instruct-AWG'")


def test_unknown_type_region_and_tier_errors():
    with pytest.raises(UnknownGpuTypeError, match="g2-gpu-rtx4000a2-s"):
        catalog.gpu_type("g2-gpu-rtx4000a2-x")
    with pytest.raises(UnknownRegionError, match="us-east"):
        catalog.region("us-eats")
    with pytest.raises(UnknownCapabilityError):
        catalog.models_for_capability("200B")


def test_model_lookup_by_id_or_short_name():
    assert catalog.model("32b-awq").id == "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ"
    assert catalog.model("qwen/qwen2.5-coder-7b-instruct").short_name == "7B"
    assert len(catalog.models()) == 12
    assert len({m.short_name for m in catalog.models()}) == 12


@pytest.mark.parametrize(
    ("model_id", "category"),
    [
        ("Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", "7b"),
        ("meta-llama/Llama-3.1-8B-Instruct", "7b"),
        ("deepseek-ai/DeepSeek-Coder-V2-Lite-Instruct", "14b"),
        ("Qwen/Qwen3-Coder-30B-A3B-Instruct", "30b"),
        ("Qwen/Qwen2.5-Coder-32B-Instruct", "30b"),
        ("Qwen/Qwen2.5-72B-Instruct-AWQ", "70b"),
        ("Qwen/Qwen2.5-72B-Instruct", "70b-full"),
        ("meta-llama/Llama-3.1-70B-Instruct", "70b-full"),
    ],
)
def test_categories(model_id, category):
    assert catalog.model(model_id).category == category


def test_model_shapes_are_consistent():
    for spec in catalog.models():
        assert spec.attention_heads % spec.kv_heads == 0, spec.id
        if spec.kv_layout == "gqa" and spec.id.startswith(("Qwen/Qwen2.5", "meta-llama")):
            assert spec.attention_heads * spec.head_dim == spec.hidden_size, spec.id
    lite = catalog.model("deepseek-ai/DeepSeek-Coder-V2-Lite-Instruct")
    assert (lite.kv_layout, lite.kv_lora_rank, lite.qk_rope_head_dim) == ("mla", 512, 64)
    assert lite.trust_remote_code and lite.is_moe
    assert catalog.model("Qwen/Qwen3-Coder-30B-A3B-Instruct").max_positions == 262_144


@pytest.mark.parametrize(
    ("model_id", "hub_bytes"),
    [
        ("Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", 5.58e9),
        ("Qwen/Qwen2.5-Coder-14B-Instruct-AWQ", 9.99e9),
        ("Qwen/Qwen2.5-Coder-32B-Instruct-AWQ", 19.3e9),
        ("Qwen/Qwen2.5-72B-Instruct-AWQ", 41.6e9),
    ],
)
def test_awq_weights_match_checkpoint_sizes(model_id, hub_bytes):
    assert weight_bytes(catalog.model(model_id)).total == pytest.approx(hub_bytes, rel=0.02)


def test_capability_tiers_map_to_models():
    assert [c.id for c in catalog.capabilities()] == ["7B-14B", "30B-32B", "70B+", "custom"]
    small = catalog.models_for_capability("7B-14B")
    assert {m.category for m in small} == {"7b", "14b"}
    assert "Qwen/Qwen2.5-Coder-14B-Instruct-AWQ" in {m.id for m in small}
    mid = {m.short_name for m in catalog.models_for_capability("30B-32B")}
    assert mid == {"32B", "32B-AWQ", "Qwen3-30B-A3B"}
    big = {m.short_name for m in catalog.models_for_capability(catalog.capability("70B+"))}
    assert big == {"72B", "72B-AWQ", "Llama-70B"}
    assert catalog.models_for_capability("custom") == ()


def test_gpu_type_from_api_known_family():
    t = catalog.gpu_type_from_api(
        "g1-gpu-rtx6000-2", "Dedicated 64GB + RTX6000 GPU x2", 2, 3.0, 2000.0, ["us-east"]
    )
    assert t.family is QUADRO_RTX6000
    assert (t.regions, t.monthly_usd, t.total_vram_gb) == (("us-east",), 2000.0, 48.0)
    assert catalog.family_for_type_id("g2-gpu-rtx4000a1-m") is RTX4000_ADA
    # Without regions from the API, a known family keeps its built-in regions.
    assert set(catalog.gpu_type_from_api("g2-gpu-rtx4000a1-l", "x", 1, 0.96).regions) == ADA_REGIONS


def test_gpu_type_from_api_unknown_family():
    t = catalog.gpu_type_from_api("g3-gpu-rtxpro6000-blackwell-2", "RTX PRO 6000 Blackwell x2", 2, 6.5)
    assert t.family is None
    assert catalog.family_for_type_id(t.id) is None
    assert (t.vram_per_gpu_gb, t.total_vram_gb) == (None, None)
    assert t.short_name == "RTX PRO 6000 Blackwell x2"
    assert t.monthly_usd == 4745.0  # 6.5 x 730
    assert t.regions == ()
    with pytest.raises(ValueError):
        catalog.gpu_type_from_api("g1-gpu-rtx6000-0", "none", 0, 0.0)


LLAMA_8B_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "max_position_embeddings": 131072,
    "vocab_size": 128256,
    "tie_word_embeddings": False,
}


def test_custom_model_from_dense_config():
    # embeddings 2 x 128256 x 4096 = 1.0507e9; per layer q,o 2 x 4096 x 4096 + k,v 2 x 4096 x 1024
    # + MLP 3 x 4096 x 14336 = 218.1e6; x 32 = 6.979e9; total 8.03e9
    spec = catalog.custom_model(LLAMA_8B_CONFIG, model_id="someone/my-llama")
    assert spec.params_b == pytest.approx(8.03, abs=0.01)
    assert (spec.short_name, spec.category, spec.head_dim, spec.kv_heads) == ("my-llama", "7b", 128, 8)
    assert spec.quant is None and not spec.trust_remote_code
    assert catalog.fit(spec, "g2-gpu-rtx4000a1-s").max_context == 12_288  # as the built-in Llama-8B


def test_custom_model_quantised_and_remote_code():
    config = dict(
        LLAMA_8B_CONFIG,
        auto_map={"AutoModelForCausalLM": "modeling.MyModel"},
        quantization_config={"quant_method": "awq", "bits": 4, "group_size": 128},
    )
    spec = catalog.custom_model(config, model_id="someone/my-llama-awq", params_b=8.03)
    assert (spec.quant, spec.quant_bits, spec.quant_group_size) == ("awq", 4, 128)
    assert spec.trust_remote_code
    assert spec.category == "7b"


def test_custom_model_reads_text_config_and_mla():
    nested = {"architectures": ["LlavaForConditionalGeneration"], "text_config": LLAMA_8B_CONFIG}
    assert catalog.custom_model(nested, model_id="a/b").layers == 32
    mla = {
        "hidden_size": 2048, "num_hidden_layers": 27, "num_attention_heads": 16,
        "num_key_value_heads": 16, "max_position_embeddings": 163840, "vocab_size": 102400,
        "kv_lora_rank": 512, "qk_rope_head_dim": 64, "n_routed_experts": 64,
    }
    spec = catalog.custom_model(mla, model_id="x/lite", params_b=15.71, active_params_b=2.4)
    assert (spec.kv_layout, spec.is_moe) == ("mla", True)
    assert catalog.kv_bytes_per_token(spec) == 31_104


def test_custom_model_refuses_what_it_cannot_size():
    with pytest.raises(ValueError, match="parameter count"):
        catalog.custom_model(dict(LLAMA_8B_CONFIG, num_experts=8), model_id="x/moe")
    with pytest.raises(ValueError, match="vocab_size"):
        catalog.custom_model({k: v for k, v in LLAMA_8B_CONFIG.items() if k != "vocab_size"}, model_id="x/y")
    with pytest.raises(ValueError, match="bitsandbytes"):
        catalog.custom_model(
            dict(LLAMA_8B_CONFIG, quantization_config={"quant_method": "bitsandbytes"}), model_id="x/z"
        )
