"""The fit planner across VMs: the fewest VMs that hold a model no single VM holds, and what the link costs."""

from __future__ import annotations

import pytest

from maider_tui import catalog
from maider_tui.catalog.cluster import (LINK_GBPS, LINK_LATENCY_MS, PROMPT_TOKENS, cluster_options, fit_nodes,
                                        link_cost, why_not_one_vm)
from maider_tui.catalog.sizes import GIB, weights_per_gpu_bytes

LLAMA_70B = "meta-llama/Llama-3.1-70B-Instruct"  # 16-bit: 141 GB (131 GiB) of weights
RTX6000_4 = "g1-gpu-rtx6000-4"
ADA_4 = "g2-gpu-rtx4000a4-m"


def test_no_single_vm_holds_a_70b_at_16_bit_and_the_reason_says_why():
    types = list(catalog.gpu_types())
    assert not any(catalog.fit(LLAMA_70B, t).fits for t in types)
    why = why_not_one_vm(LLAMA_70B, types)
    assert "131 GB of weights" in why and "4x Quadro RTX 6000" in why and "96 GB" in why


def test_the_fewest_vms_come_first_then_the_cheapest():
    options = cluster_options(LLAMA_70B, catalog.gpu_types(), max_model_len=32768)
    first = options[0]
    assert (first.gpu_type.id, first.nodes, first.gpus) == (RTX6000_4, 2, 8)
    assert first.report.tensor_parallel_size == 4 and first.report.pipeline_parallel_size == 2
    assert first.hourly_usd == pytest.approx(12.0)
    assert [o.nodes for o in options] == sorted(o.nodes for o in options)
    three_ada = next(o for o in options if o.gpu_type.id == ADA_4)
    assert three_ada.nodes == 3 and three_ada.hourly_usd == pytest.approx(6.24)  # cheaper, one more link
    assert "2 VMs of 4x Quadro RTX 6000" in first.describe() and "PP 2 across VMs" in first.describe()


def test_the_fullest_stage_is_the_one_that_must_fit():
    plan = fit_nodes(LLAMA_70B, RTX6000_4, 2, max_model_len=32768)
    spec = catalog.model(LLAMA_70B)
    assert plan.report.weights_per_gpu_gb == pytest.approx(weights_per_gpu_bytes(spec, 4, 2) / GIB)
    assert plan.report.dtype == "half"  # Turing has no bfloat16
    assert plan.report.fits and plan.report.max_model_len == 32768 and plan.report.max_context >= 65536
    # Two VMs of 4x RTX 4000 Ada hold the weights but leave KV cache for barely a request.
    tight = fit_nodes(LLAMA_70B, ADA_4, 2, max_model_len=32768)
    assert not tight.fits and "does not fit" in tight.report.reason


def test_more_stages_than_layers_is_refused():
    small = catalog.model("Qwen/Qwen2.5-Coder-7B-Instruct-AWQ")  # 28 layers
    plan = fit_nodes(small.id, "g2-gpu-rtx4000a1-s", 4)
    assert plan.fits  # 4 stages of 7 layers
    import dataclasses

    shallow = dataclasses.replace(small, layers=3)
    refused = fit_nodes(shallow, "g2-gpu-rtx4000a1-s", 4)
    assert not refused.fits and "fewer than 4 pipeline stages" in refused.report.reason


def test_one_node_is_the_single_vm_plan():
    one = fit_nodes(LLAMA_70B, RTX6000_4, 1)
    assert one.report == catalog.fit(LLAMA_70B, RTX6000_4) and one.link.hops == 0


def test_the_link_costs_grow_with_each_hop_and_state_their_assumptions():
    spec = catalog.model(LLAMA_70B)
    assert link_cost(spec, 0, 15.0).decode_penalty == 0.0
    one, three = link_cost(spec, 1, 15.0), link_cost(spec, 3, 15.0)
    per_hop_ms = LINK_LATENCY_MS + spec.hidden_size * 2 / (LINK_GBPS * 1e9 / 8) * 1000
    assert one.decode_ms_per_token == pytest.approx(per_hop_ms)
    assert three.decode_ms_per_token == pytest.approx(3 * per_hop_ms)
    assert 0 < one.decode_penalty < three.decode_penalty < 0.05  # a small share of a 67 ms token
    prefill = LINK_LATENCY_MS / 1000 + PROMPT_TOKENS * spec.hidden_size * 2 / (LINK_GBPS * 1e9 / 8)
    assert one.prefill_s == pytest.approx(prefill)
    assert "assuming 0.5 ms a hop and 10 Gbit/s" in three.describe()
    plan = fit_nodes(LLAMA_70B, RTX6000_4, 2)
    alone = catalog.estimate_decode_tok_s(LLAMA_70B, RTX6000_4)
    assert plan.decode_tok_s == pytest.approx(alone * (1 - plan.link.decode_penalty))


def test_with_no_context_asked_the_fewest_vms_leave_a_useful_context():
    from maider_tui.catalog.cluster import USEFUL_CONTEXT, fewest_nodes

    # Two VMs of 4x RTX 4000 Ada hold a 70B's weights with KV cache for about 1K tokens: no use to aider.
    assert fit_nodes(LLAMA_70B, ADA_4, 2).fits and fit_nodes(LLAMA_70B, ADA_4, 2).report.max_context < USEFUL_CONTEXT
    chosen = fewest_nodes(LLAMA_70B, ADA_4, start=2)
    assert chosen.nodes == 3 and chosen.report.max_context >= USEFUL_CONTEXT
    # A context asked for is what counts: 1K is held by two.
    assert fewest_nodes(LLAMA_70B, ADA_4, start=2, max_model_len=1024).nodes == 2
    # Where the fewest already leave room, they are the answer.
    assert fewest_nodes(LLAMA_70B, RTX6000_4, start=2).nodes == 2
    # Where no count leaves the useful context, the fewest that hold the model at all.
    tiny = fewest_nodes(LLAMA_70B, ADA_4, start=2, max_nodes=2)
    assert tiny is not None and tiny.nodes == 2
    assert [o.nodes for o in cluster_options(LLAMA_70B, [catalog.gpu_type(ADA_4)])] == [3]
