"""The fit planner, checked against cases worked by hand.

Units: "GB" is GiB (2**30 bytes). Usable per GPU = VRAM x 0.90:
  RTX 4000 Ada    20475 MiB x 0.9 = 18427.5 MiB = 17.996 GiB
  Quadro RTX 6000 24576 MiB x 0.9 = 22118.4 MiB = 21.600 GiB
Reserve per GPU (activations, CUDA graphs, CUDA context) = 1.5 GiB.
AWQ body bytes per parameter = (4 + (16 + 4) / 128) / 8 = 0.51953125.
"""

from __future__ import annotations

import pytest

from maider_tui import catalog
from maider_tui.catalog import RESERVE_GB, fit
from maider_tui.catalog.fit import candidate_plans, valid_tensor_parallel

GIB = 2**30
ADA_1, ADA_2, ADA_4 = "g2-gpu-rtx4000a1-s", "g2-gpu-rtx4000a2-s", "g2-gpu-rtx4000a4-m"
QUADRO_1, QUADRO_3, QUADRO_4 = "g1-gpu-rtx6000-1", "g1-gpu-rtx6000-3", "g1-gpu-rtx6000-4"
CODER_32B_AWQ = "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ"


def test_reserve_is_the_documented_value():
    assert RESERVE_GB == 1.5


def test_32b_awq_does_not_fit_one_rtx4000_ada():
    # embed = lm_head = 152064 x 5120 = 778,567,680 params x 2 B = 1,557,135,360 B each
    # body  = 32.76e9 - 2 x 778,567,680 = 31,202,864,640 params x 0.51953125 = 16,210,863,270 B
    # total = 16,210,863,270 + 2 x 1,557,135,360 = 19,325,133,990 B = 17.998 GiB (Hub: 19.3 GB)
    # free  = 17.996 - 17.998 - 1.5 < 0: the weights alone fill the card.
    r = fit(CODER_32B_AWQ, ADA_1)
    assert not r.fits
    assert r.weights_gb == pytest.approx(19_325_133_990 / GIB, rel=1e-6)
    assert r.weights_gb == pytest.approx(17.998, abs=0.001)
    assert r.usable_gb == pytest.approx(17.996, abs=0.001)
    assert (r.max_model_len, r.max_context, r.kv_cache_gb) == (0, 0, 0.0)
    assert r.reason == "needs 18.0 GB of weights + 1.5 GB overhead, 18.0 GB usable on 1x RTX 4000 Ada"


def test_32b_awq_fits_two_rtx4000_ada_at_full_context():
    # TP 2: 40 heads and 8 KV heads both divide by 2.
    # weights per GPU = 17.998 / 2 = 8.999 GiB; free = 17.996 - 8.999 - 1.5 = 7.497 GiB
    # KV/token = 2 x 64 layers x 8 KV heads x 128 x 2 B = 262,144 B; per GPU (4 heads) 131,072 B
    # tokens = 7.497 GiB / 128 KiB = 61,412 -> 59 x 1024 = 60,416 -> capped at 32,768 positions
    r = fit(CODER_32B_AWQ, ADA_2)
    assert r.fits
    assert (r.tensor_parallel_size, r.pipeline_parallel_size) == (2, 1)
    assert r.weights_per_gpu_gb == pytest.approx(8.999, abs=0.001)
    assert r.kv_bytes_per_token == 262_144
    assert r.kv_bytes_per_token_per_gpu == 131_072
    assert r.kv_cache_gb == pytest.approx(7.497, abs=0.001)
    assert r.max_model_len == r.max_context == 32_768
    assert r.per_gpu_gb == pytest.approx(r.usable_gb)
    assert r.dtype == "auto"
    assert r.reason == "32B-AWQ, TP 2, up to 32K context (the model's limit)"


def test_72b_awq_on_three_quadros_chooses_pipeline_parallel():
    # 64 heads do not divide by 3, so the plans are PP 3 (TP 1) and TP 2 on 2 of the 3 GPUs.
    # embed = lm_head = 152064 x 8192 = 1,245,708,288 params x 2 B = 2,491,416,576 B each
    # body  = 72.96e9 - 2,491,416,576 = 70,468,583,424 params x 0.51953125 = 36,610,631,232 B
    # total = 41,593,464,384 B = 38.737 GiB (Hub: ~41.6 GB)
    # TP 2: 19.368 GiB per GPU, free 21.6 - 19.368 - 1.5 = 0.732 GiB;
    #       KV/token/GPU = 2 x 80 x 4 x 128 x 2 = 163,840 B -> 4,794 tokens -> 4K
    # PP 3: 27 layers per stage: 36,610,631,232 x 27/80 + 2,491,416,576 = 13.828 GiB,
    #       free 21.6 - 13.828 - 1.5 = 6.272 GiB; KV/token/GPU = 2 x 27 x 8 x 128 x 2 = 110,592 B
    #       -> 60,897 tokens -> capped at 32K. PP 3 wins on context.
    assert not valid_tensor_parallel(catalog.model("72B-AWQ"), 3)
    assert candidate_plans(catalog.model("72B-AWQ"), 3) == [(1, 3), (2, 1)]
    r = fit("Qwen/Qwen2.5-72B-Instruct-AWQ", QUADRO_3)
    assert r.fits
    assert (r.tensor_parallel_size, r.pipeline_parallel_size) == (1, 3)
    assert r.weights_gb == pytest.approx(41_593_464_384 / GIB, rel=1e-6)
    assert r.weights_per_gpu_gb == pytest.approx(13.828, abs=0.001)
    assert r.kv_bytes_per_token_per_gpu == 110_592
    assert r.kv_cache_gb == pytest.approx(6.272, abs=0.001)
    assert r.max_context == 32_768
    assert r.dtype == "half"
    assert r.reason.endswith("its 64 attention heads do not divide among 3 GPUs, so it runs as a pipeline over "
                             "all 3 GPUs (tensor parallel on 2 of the 3 GPUs it would reach 4K)")
    config = r.to_vllm_config(served_model_name="coder")
    assert (config.tensor_parallel_size, config.pipeline_parallel_size) == (1, 3)
    assert (config.dtype, config.max_model_len, config.served_model_name) == ("half", 32_768, "coder")


def test_72b_awq_on_two_quadros_gets_only_4k():
    # Same TP 2 arithmetic as above: 4,794 tokens -> 4K (the seed promised 32K on 48 GB cards).
    r = fit("Qwen/Qwen2.5-72B-Instruct-AWQ", "g1-gpu-rtx6000-2")
    assert r.fits and r.max_context == 4_096


def test_72b_full_precision_does_not_fit_four_quadros():
    # 72.71e9 x 2 B = 145.42e9 B = 135.43 GiB; TP 4 -> 33.86 GiB per GPU > 21.6 usable.
    # The seed's matrix lists 70b-full for RTX6000x4, but that assumed 48 GB cards.
    r = fit("Qwen/Qwen2.5-72B-Instruct", QUADRO_4)
    assert not r.fits
    assert r.tensor_parallel_size == 4
    assert r.weights_gb == pytest.approx(135.43, abs=0.01)
    assert r.weights_per_gpu_gb == pytest.approx(33.86, abs=0.01)
    assert "33.9 GB of weights per GPU (TP 4)" in r.reason
    assert "21.6 GB usable per GPU on 4x Quadro RTX 6000" in r.reason
    with pytest.raises(ValueError, match="does not fit"):
        r.to_vllm_config()


def test_7b_on_a_quadro_runs_in_half_precision():
    # 7.62e9 x 2 B = 15.24e9 B = 14.193 GiB; free 21.6 - 14.193 - 1.5 = 5.907 GiB
    # KV/token = 2 x 28 x 4 x 128 x 2 = 57,344 B -> 110,599 tokens -> capped at 32K
    r = fit("Qwen/Qwen2.5-Coder-7B-Instruct", QUADRO_1)
    assert r.fits
    assert r.dtype == "half"  # Turing has no bfloat16
    assert r.weights_gb == pytest.approx(14.193, abs=0.001)
    assert r.kv_bytes_per_token == 57_344
    assert r.max_context == 32_768
    assert fit("Qwen/Qwen2.5-Coder-7B-Instruct", ADA_1).dtype == "auto"


def test_fp8_kv_cache_halves_kv_bytes_and_doubles_context():
    # Llama-3.1-8B on 1x RTX 4000 Ada: 8.03e9 x 2 B = 14.957 GiB; free 17.996 - 14.957 - 1.5 = 1.539 GiB
    # auto: 2 x 32 x 8 x 128 x 2 B = 131,072 B/token -> 12,604 tokens -> 12K
    # fp8:  65,536 B/token -> 25,208 tokens -> 24K
    auto = fit("meta-llama/Llama-3.1-8B-Instruct", ADA_1)
    fp8 = fit("meta-llama/Llama-3.1-8B-Instruct", ADA_1, kv_cache_dtype="fp8")
    assert auto.kv_bytes_per_token == 131_072
    assert fp8.kv_bytes_per_token == 65_536
    assert (auto.max_context, fp8.max_context) == (12_288, 24_576)
    assert fp8.kv_cache_dtype == "fp8" and fp8.notes == ()


def test_fp8_kv_cache_on_a_quadro_falls_back_to_16_bit():
    r = fit("meta-llama/Llama-3.1-8B-Instruct", QUADRO_1, kv_cache_dtype="fp8")
    assert r.fits
    assert r.kv_cache_dtype == "auto"
    assert r.kv_bytes_per_token == 131_072
    assert "fp8 KV cache is not supported on Quadro RTX 6000" in r.reason
    assert len(r.notes) == 1


def test_requested_context_that_fits():
    r = fit(CODER_32B_AWQ, ADA_2, max_model_len=16_384)
    assert r.fits
    assert (r.max_model_len, r.max_context, r.requested_max_model_len) == (16_384, 32_768, 16_384)
    assert "16K context fits" in r.reason
    assert r.to_vllm_config().max_model_len == 16_384


def test_requested_context_that_does_not_fit():
    # Llama-3.1-8B on 1x RTX 4000 Ada holds 12K (see the fp8 case); 16K is asked.
    r = fit("meta-llama/Llama-3.1-8B-Instruct", ADA_1, max_model_len=16_384)
    assert not r.fits
    assert (r.max_model_len, r.max_context) == (0, 12_288)
    assert r.reason == "16K context does not fit: Llama-8B, 1 GPU, has KV cache for up to 12K"


def test_context_is_capped_at_max_positions():
    # Llama-3.1-8B on 4x RTX 4000 Ada: TP 4, 14.957 / 4 = 3.739 GiB per GPU,
    # free 17.996 - 3.739 - 1.5 = 12.756 GiB; KV/token/GPU = 2 x 32 x 2 x 128 x 2 = 32,768 B
    # -> 418,000 tokens, capped at the model's 131,072 positions.
    r = fit("meta-llama/Llama-3.1-8B-Instruct", ADA_4)
    assert r.kv_bytes_per_token_per_gpu == 32_768
    assert r.max_context == 131_072
    assert "the model's limit" in r.reason
    # Asking past the model's positions never fits, however much memory is free.
    too_long = fit("Qwen/Qwen2.5-Coder-7B-Instruct", ADA_4, max_model_len=65_536)
    assert not too_long.fits and too_long.max_context == 32_768
    assert too_long.reason == "7B supports at most 32K context, 64K asked"


def test_context_rounds_down_to_whole_k():
    # Qwen2.5-Coder-14B (16-bit) on 2x RTX 4000 Ada: 27.51 GiB / 2 = 13.756 GiB per GPU,
    # free 17.996 - 13.756 - 1.5 = 2.740 GiB; KV/token/GPU = 2 x 48 x 4 x 128 x 2 = 98,304 B
    # -> 29,928 tokens -> 29 x 1024 = 29,696.
    r = fit("Qwen/Qwen2.5-Coder-14B-Instruct", ADA_2)
    assert r.fits and r.max_context == 29_696
    assert r.max_context % 1024 == 0


def test_unknown_gpu_type_is_never_guessed():
    blackwell = catalog.gpu_type_from_api(
        "g3-gpu-rtxpro6000-blackwell-1", "RTX PRO 6000 Blackwell x1", 1, 3.25
    )
    r = fit("7B", blackwell)
    assert not r.fits
    assert (r.max_context, r.usable_gb) == (0, 0.0)
    assert r.reason.startswith("cannot judge RTX PRO 6000 Blackwell x1")
    assert catalog.estimate_decode_tok_s("7B", blackwell) is None


def test_tp_preferred_when_both_plans_reach_the_same_context():
    # Qwen2.5-Coder-7B on 3x Quadro: 28 heads do not divide by 3; PP 3 and TP 2 both reach the
    # 32K cap, and TP 2 decodes one request faster than three stages taking turns.
    r = fit("Qwen/Qwen2.5-Coder-7B-Instruct", QUADRO_3)
    assert (r.tensor_parallel_size, r.pipeline_parallel_size) == (2, 1)
    assert "(as a pipeline over all 3 GPUs it would reach 32K)" in r.reason
    assert "PP 3 gives" not in r.reason


def test_mla_kv_cache_is_one_latent_per_layer():
    # DeepSeek-Coder-V2-Lite: 27 layers x (512 + 64) x 2 B = 31,104 B/token, kept whole on every TP rank.
    r = fit("deepseek-ai/DeepSeek-Coder-V2-Lite-Instruct", ADA_2)
    assert r.kv_bytes_per_token == 31_104
    assert r.kv_bytes_per_token_per_gpu == 31_104
    assert r.to_vllm_config().trust_remote_code is True


def test_fp8_weights_refused_on_turing():
    spec = catalog.custom_model(
        {
            "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
            "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256,
            "max_position_embeddings": 131072, "quantization_config": {"quant_method": "fp8"},
        },
        model_id="someone/Llama-3.1-8B-FP8",
    )
    assert not fit(spec, QUADRO_1).fits
    assert "compute capability 8.0+" in fit(spec, QUADRO_1).reason
    assert fit(spec, ADA_1).fits


def test_ids_and_objects_give_the_same_report():
    by_id = fit(CODER_32B_AWQ, ADA_2)
    by_object = fit(catalog.model(CODER_32B_AWQ), catalog.gpu_type(ADA_2))
    assert by_id == by_object


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="gpu_memory_utilization"):
        fit("7B", ADA_1, gpu_memory_utilization=1.5)
    with pytest.raises(ValueError, match="kv_cache_dtype"):
        fit("7B", ADA_1, kv_cache_dtype="int3")
    with pytest.raises(ValueError, match="max_model_len"):
        fit("7B", ADA_1, max_model_len=0)


def test_lower_utilisation_leaves_less_kv_cache():
    assert fit("7B", ADA_1, gpu_memory_utilization=0.80).kv_cache_gb < fit("7B", ADA_1).kv_cache_gb


def test_models_that_fit_come_from_fit_largest_first():
    one_ada = catalog.models_that_fit(ADA_1)
    names = [r.model.short_name for r in one_ada]
    assert names[0] == "14B-AWQ"
    assert "32B-AWQ" not in names and "14B" not in names
    assert all(r.fits for r in one_ada)
    three_quadros = [r.model.short_name for r in catalog.models_that_fit(QUADRO_3)]
    assert three_quadros[0] == "72B-AWQ"
    assert "72B" not in three_quadros
    # Llama-3.1-8B fits one RTX 4000 Ada at 12K, so not when 16K is asked.
    at_16k = [r.model.short_name for r in catalog.models_that_fit(ADA_1, max_model_len=16_384)]
    assert "Llama-8B" in names and "Llama-8B" not in at_16k


def test_decode_estimate_is_near_the_seed_figure():
    # 32B-AWQ reads 16,210,863,270 + 1,557,135,360 (lm_head) = 17.768e9 B per token;
    # 0.95 x 360e9 x 2**0.85 / 17.768e9 = 34.7 tok/s (seed: ~38).
    tok_s = catalog.estimate_decode_tok_s(CODER_32B_AWQ, ADA_2)
    assert tok_s == pytest.approx(34.7, abs=0.1)
    assert abs(tok_s - 38.1) < 4
    # A MoE model reads only its active experts: far faster than a dense model of similar size.
    moe = catalog.estimate_decode_tok_s("Qwen/Qwen3-Coder-30B-A3B-Instruct", ADA_4)
    dense = catalog.estimate_decode_tok_s("Qwen/Qwen2.5-Coder-32B-Instruct", ADA_4)
    assert moe > 5 * dense
