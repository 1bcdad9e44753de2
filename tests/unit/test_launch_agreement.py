"""One truth for a launch: for every built-in model on every GPU plan, the wizard's model step, its
review, `maider-tui plan` and the compose file that reaches the VM say the same context, flags and
environment (all of them come from `deploy.launch.resolve`)."""

from __future__ import annotations

import argparse
import io

import pytest
import yaml

from maider_tui import catalog
from maider_tui.catalog import context_label
from maider_tui.deploy import compose
from maider_tui.deploy.launch import default_context, resolve, split_flag
from maider_tui.commands.plan import add_plan_parser, run_plan
from maider_tui.ops.provision import LaunchPlan
from maider_tui.profiles import builtin_profile
from maider_tui.settings import Settings
from maider_tui.ui.screens.wizard_review import ReviewEdits, build_plan, plan_summary
from maider_tui.ui.screens.wizard_steps import model_choices, plan_context

SETTINGS = Settings()
PAIRS = [(m, g) for m in catalog.models() for g in catalog.gpu_types()
         if default_context(m, g, SETTINGS, builtin_profile(m.id)) is not None]


def _plan_compose(model_id: str, gpu_id: str) -> str:
    root = argparse.ArgumentParser(prog="maider-tui")
    add_plan_parser(root.add_subparsers(dest="command"))
    out, err = io.StringIO(), io.StringIO()
    code = run_plan(root.parse_args(["plan", "--type", gpu_id, "--model", model_id, "--compose"]),
                    settings=SETTINGS, out=out, err=err)
    assert code == 0, err.getvalue()
    return out.getvalue()


def test_every_built_in_model_but_the_16_bit_70bs_is_covered():
    # 141 GB of weights and more: no single VM holds them (a 4x Quadro RTX 6000 has 96 GB).
    missing = {m.id for m in catalog.models()} - {m.id for m, _ in PAIRS}
    assert missing == {"Qwen/Qwen2.5-72B-Instruct", "meta-llama/Llama-3.1-70B-Instruct"}
    assert len(PAIRS) > 20


@pytest.mark.parametrize(("model", "gpu"), PAIRS, ids=[f"{m.short_name}@{g.id}" for m, g in PAIRS])
def test_the_model_step_the_review_plan_and_compose_agree(model, gpu):
    profile = builtin_profile(model.id)
    context = default_context(model, gpu, SETTINGS, profile)

    # The model step: the context column of the model's row is the context it will launch with.
    (row,) = model_choices(gpu, [model], SETTINGS)
    assert row.cells[3] == context_label(context)

    # The review: the context the model step hands on, its fields, the plan it launches.
    report, _ = plan_context(model, gpu, str(context))
    assert report is not None and report.max_model_len == context
    assert context_label(context) in plan_summary(catalog.region(gpu.regions[0]), report).plain
    edits = ReviewEdits.from_settings(SETTINGS, "agree", profile)
    assert "--max-num-seqs" not in edits.extra_args, "max num seqs is shown in its own field"
    launched = build_plan(SETTINGS, gpu.regions[0], report, edits, profile)
    assert launched.config.max_model_len == context
    assert launched.config.max_num_seqs == edits.max_num_seqs == split_flag(profile.extra_args, "--max-num-seqs")[0]
    assert dict(launched.config.env) == {**profile.env, **SETTINGS.vllm.env}

    # The settings' own launch (what `resume` and the headless paths rebuild) is the same launch.
    assert LaunchPlan.from_settings(SETTINGS, gpu_type=gpu, model=model.id).config == launched.config

    # `plan --compose` prints exactly the compose file that reaches the VM.
    on_vm = compose.render(launched.config, launched.compose)
    printed = _plan_compose(model.id, gpu.id)
    assert printed.startswith(on_vm)
    command = yaml.safe_load(on_vm)["services"]["vllm"]["command"]
    assert command[command.index("--max-model-len") + 1] == str(context)
    if launched.config.max_num_seqs:
        assert command[command.index("--max-num-seqs") + 1] == str(launched.config.max_num_seqs)
    assert resolve(model, gpu, SETTINGS).config == launched.config


def test_the_profile_limit_is_the_context_shown_and_deployed():
    """Qwen3-Coder-30B-A3B on 4x RTX 4000 Ada: 64K (its profile's limit) on the model step and on the
    VM, and 16 in the review's max-num-seqs field, not 97K beside "context limit: 65536"."""
    gpu = catalog.gpu_type("g2-gpu-rtx4000a4-m")
    model = catalog.model("Qwen/Qwen3-Coder-30B-A3B-Instruct")
    (row,) = model_choices(gpu, [model], SETTINGS)
    assert row.cells[3] == "64K" and "up to" in row.detail
    edits = ReviewEdits.from_settings(SETTINGS, "x", builtin_profile(model.id))
    assert edits.max_num_seqs == 16 and edits.extra_args == ()


def test_a_typed_context_above_the_profile_limit_is_the_users_and_is_deployed():
    gpu = catalog.gpu_type("g2-gpu-rtx4000a2-s")
    model = catalog.model("meta-llama/Llama-3.1-8B-Instruct")
    assert default_context(model, gpu, SETTINGS, builtin_profile(model.id)) == 32768
    launch = resolve(model, gpu, SETTINGS, context=65536)
    assert launch.report.fits and launch.config.max_model_len == 65536


def test_the_users_max_num_seqs_wins_over_the_profiles():
    settings = Settings.from_dict({"vllm": {"max_num_seqs": 4, "extra_args": "--enable-prefix-caching"}})
    model = catalog.model("Qwen/Qwen3-Coder-30B-A3B-Instruct")
    launch = resolve(model, catalog.gpu_type("g2-gpu-rtx4000a4-m"), settings)
    assert launch.config.max_num_seqs == 4
    assert launch.config.extra_args == ("--enable-prefix-caching",)


@pytest.mark.parametrize(("args", "value", "rest"), [
    (("--max-num-seqs", "16"), 16, ()),
    (("--max-num-seqs=8", "--x"), 8, ("--x",)),
    (("--a", "1", "--max_num_seqs", "2"), 2, ("--a", "1")),
    (("--max-num-seqs", "many"), None, ("--max-num-seqs", "many")),
    ((), None, ()),
])
def test_split_flag(args, value, rest):
    assert split_flag(args, "--max-num-seqs") == (value, rest)


def test_the_attention_backend_is_said_for_turing_ada_and_mla():
    from maider_tui.deploy.launch import attention_backend

    turing, ada = catalog.gpu_type("g1-gpu-rtx6000-1"), catalog.gpu_type("g2-gpu-rtx4000a1-s")
    coder7 = catalog.model("Qwen/Qwen2.5-Coder-7B-Instruct-AWQ")
    assert attention_backend(turing, coder7).startswith("FlexAttention (SM 7.5: no FlashAttention")
    assert attention_backend(ada, coder7) == "FlashAttention (SM 8.9)"
    assert attention_backend(ada, catalog.model("deepseek-ai/DeepSeek-Coder-V2-Lite-Instruct")).startswith("Triton MLA")
    report, _ = plan_context(coder7, turing, "8192")
    assert "Attention FlexAttention" in plan_summary(catalog.region(turing.regions[0]), report).plain
