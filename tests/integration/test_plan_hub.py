"""`maider-tui plan` takes what the wizard takes: any Hugging Face id, read from the (simulated) Hub
by the same function, a MoE's size from its model info."""

from __future__ import annotations

import argparse
import io

import yaml

from maider_tui.commands.plan import add_plan_parser, run_plan
from maider_tui.settings import Settings


def _plan(sim_cloud, *argv: str, token: str | None = None) -> tuple[int, str, str]:
    root = argparse.ArgumentParser(prog="maider-tui")
    add_plan_parser(root.add_subparsers(dest="command"))
    out, err = io.StringIO(), io.StringIO()
    code = run_plan(root.parse_args(["plan", *argv]), settings=Settings(), out=out, err=err,
                    hf_base_url=sim_cloud.hf_base_url, hf_token=token)
    return code, out.getvalue(), err.getvalue()


def test_a_moe_from_the_hub_is_planned_with_its_size_from_the_model_info(sim_cloud):
    code, out, err = _plan(sim_cloud, "--type", "g2-gpu-rtx4000a2-s", "--model", "Qwen/Qwen1.5-MoE-A2.7B-Chat",
                           "--compose")
    assert code == 0, err
    command = yaml.safe_load(out)["services"]["vllm"]["command"]
    assert command[0] == "Qwen/Qwen1.5-MoE-A2.7B-Chat"


def test_a_gated_or_missing_id_says_what_to_do(sim_cloud):
    code, _, err = _plan(sim_cloud, "--type", "g2-gpu-rtx4000a1-s", "--model", "mistralai/Mistral-7B-Instruct-v0.3")
    assert code == 2 and "token" in err and "--config-json" in err
    code, out, err = _plan(sim_cloud, "--type", "g2-gpu-rtx4000a1-s", "--model", "mistralai/Mistral-7B-Instruct-v0.3",
                           token="hf_demo")
    assert code == 0, err
    code, _, err = _plan(sim_cloud, "--type", "g2-gpu-rtx4000a1-s", "--model", "nobody/no-such-model")
    assert code == 2 and "was not found" in err
