"""`maider-tui plan`: the dry run prints the fit, the user-data or the compose file, and creates nothing."""

from __future__ import annotations

import argparse
import os
import socket
from pathlib import Path

import pytest
import yaml

from maider_tui.commands.plan import add_plan_parser, run_plan
from maider_tui.deploy.plan import HF_TOKEN_PLACEHOLDER, HOST_KEY_PLACEHOLDER_PUBLIC
from maider_tui.settings import Settings


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="maider-tui")
    add_plan_parser(root.add_subparsers(dest="command"))
    return root


def plan(*argv: str, settings: Settings | None = None) -> int:
    return run_plan(parser().parse_args(["plan", *argv]), settings=settings)


def files_under(root: Path) -> set[Path]:
    return {Path(dirpath) / name for dirpath, _, names in os.walk(root) for name in names}


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the dry run must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def nothing_written(tmp_path: Path):
    before = files_under(tmp_path)
    yield
    assert files_under(tmp_path) == before


def test_summary_is_the_default_and_shows_the_fit(capsys, nothing_written):
    assert plan("--type", "g2-gpu-rtx4000a2-s", "--model", "32B-AWQ", "--region", "us-ord") == 0
    out = capsys.readouterr().out
    assert "dry run: nothing is created" in out
    for expected in ("g2-gpu-rtx4000a2-s: 2x RTX 4000 Ada, 20 GB each (40 GB)", "us-ord (Chicago, US)",
                     "$1.04/h, $24.96/day", "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ", "TP 2, PP 1",
                     "32K (32768 tokens", "auto, KV cache auto",
                     "vllm serve Qwen/Qwen2.5-Coder-32B-Instruct-AWQ --tensor-parallel-size 2"):
        assert expected in out, expected


def test_summary_on_turing_with_a_context(capsys):
    assert plan("--type", "g1-gpu-rtx6000-3", "--model", "14B", "--context", "16k", "--summary") == 0
    out = capsys.readouterr().out
    assert "16K (16384 tokens" in out and "half, KV cache auto" in out
    assert "TP 2, PP 1 (2 of 3 GPUs used)" in out
    assert "$4.50/h, $108.00/day" in out


def test_cloud_init_with_placeholder_host_key(capsys, nothing_written):
    assert plan("--type", "g2-gpu-rtx4000a1-s", "--model", "7B", "--cloud-init") == 0
    out = capsys.readouterr().out
    assert out.startswith("#cloud-config\n")
    data = yaml.safe_load(out)
    assert data["ssh_keys"]["ed25519_public"] == HOST_KEY_PLACEHOLDER_PUBLIC
    assert "placeholder" in data["ssh_keys"]["ed25519_private"]
    assert "HF_TOKEN" not in out


def test_compose_with_the_token_as_a_placeholder(capsys, nothing_written):
    assert plan("--type", "g2-gpu-rtx4000a2-s", "--model", "32B-AWQ", "--compose") == 0
    out = capsys.readouterr().out
    document = yaml.safe_load(out)
    command = document["services"]["vllm"]["command"]
    assert command[:3] == ["Qwen/Qwen2.5-Coder-32B-Instruct-AWQ", "--tensor-parallel-size", "2"]
    assert f"HF_TOKEN={HF_TOKEN_PLACEHOLDER}" in out  # as a comment about .env, not in the services
    assert "HF_TOKEN" not in yaml.safe_dump(document)


def test_the_users_settings_shape_the_plan(capsys):
    settings = Settings.from_dict({
        "vllm": {"served_model_name": "coder", "image": "vllm/vllm-openai:v0.11.2", "max_num_seqs": 4,
                 "extra_args": "--enable-prefix-caching", "env": {"VLLM_SLEEP_WHEN_IDLE": "1"}},
        "compose": {"enable_openwebui": True},
    })
    assert plan("--type", "g2-gpu-rtx4000a1-s", "--model", "7B-AWQ", "--compose", settings=settings) == 0
    services = yaml.safe_load(capsys.readouterr().out)["services"]
    vllm = services["vllm"]
    assert vllm["image"] == "vllm/vllm-openai:v0.11.2" and "open-webui" in services
    assert vllm["command"][1:3] == ["--served-model-name", "coder"]
    assert "--max-num-seqs" in vllm["command"] and vllm["command"][-1] == "--enable-prefix-caching"
    # The model profile's environment under the user's own (which wins for VLLM_SLEEP_WHEN_IDLE).
    assert vllm["environment"] == {"VLLM_HTTP_TIMEOUT_KEEP_ALIVE": "30", "VLLM_SLEEP_WHEN_IDLE": "1",
                                   "SAFETENSORS_FAST_GPU": "1"}


ADA1 = "g2-gpu-rtx4000a1-s"


@pytest.mark.parametrize(("argv", "wanted"), [
    (["--type", "g2-gpu-rtx4000a9", "--model", "7B"], "unknown GPU type 'g2-gpu-rtx4000a9'; did you mean"),
    (["--type", ADA1, "--model", "Qwen2.5-Coder-7B"], "unknown model 'Qwen2.5-Coder-7B'; did you mean"),
    (["--type", ADA1, "--model", "7B", "--region", "us-ordd"], "unknown region 'us-ordd'; did you mean"),
    (["--type", ADA1, "--model", "7B", "--region", "us-east"], "is not offered in us-east"),
])
def test_unknown_ids_name_close_matches_and_exit_2(capsys, argv, wanted):
    assert plan(*argv) == 2
    captured = capsys.readouterr()
    assert wanted in captured.err and captured.out == ""


def test_a_model_that_does_not_fit_says_why_and_exits_1(capsys):
    assert plan("--type", "g2-gpu-rtx4000a1-s", "--model", "32B-AWQ") == 1
    err = capsys.readouterr().err
    assert "does not fit g2-gpu-rtx4000a1-s" in err and "GB of weights" in err
    assert "Plans it fits: g2-gpu-rtx4000a2-s" in err


def test_a_context_beyond_the_model_does_not_fit(capsys):
    assert plan("--type", "g2-gpu-rtx4000a2-s", "--model", "32B-AWQ", "--context", "65536") == 1
    assert "supports at most 32K context" in capsys.readouterr().err


def test_bad_context_and_conflicting_views_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as bad:
        parser().parse_args(["plan", "--type", "t", "--model", "m", "--context", "lots"])
    assert bad.value.code == 2 and "not a context length" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser().parse_args(["plan", "--type", "t", "--model", "m", "--compose", "--cloud-init"])


def test_suggestions_stay_in_the_chosen_region(capsys):
    assert plan("--type", "g2-gpu-rtx4000a1-s", "--model", "32B-AWQ", "--region", "us-ord") == 1
    err = capsys.readouterr().err
    assert "Plans it fits in us-ord: g2-gpu-rtx4000a2-s, g2-gpu-rtx4000a4-m" in err
    assert "rtx6000" not in err  # Quadro plans are not offered in us-ord


def test_the_settings_default_context_is_used_without_context(capsys):
    settings = Settings.from_dict({"vllm": {"max_model_len": 8192}})
    assert plan("--type", "g2-gpu-rtx4000a2-s", "--model", "32B-AWQ", settings=settings) == 0
    assert "8K (8192 tokens" in capsys.readouterr().out


def test_an_unknown_type_or_model_lists_what_is_valid(capsys):
    assert plan("--type", "g9-nope", "--model", "7B") == 2
    err = capsys.readouterr().err
    assert "GPU types: " in err and "g2-gpu-rtx4000a1-s" in err and "g1-gpu-rtx6000-1" in err
    assert plan("--type", ADA1, "--model", "seven-b") == 2
    err = capsys.readouterr().err
    assert "Built-in models: " in err and "7B-AWQ" in err and "Hugging Face id" in err


def test_a_custom_model_is_planned_from_its_config_json(capsys, tmp_path):
    """What the wizard takes, `plan` takes: any Hugging Face id, here offline from its config.json."""
    config = tmp_path / "config.json"
    config.write_text('{"hidden_size": 2048, "num_hidden_layers": 22, "num_attention_heads": 32, '
                      '"num_key_value_heads": 4, "max_position_embeddings": 2048, "vocab_size": 32000, '
                      '"intermediate_size": 5632}')
    assert plan("--type", ADA1, "--model", "TinyLlama/TinyLlama-1.1B-Chat-v1.0", "--config-json", str(config),
                "--compose") == 0
    command = yaml.safe_load(capsys.readouterr().out)["services"]["vllm"]["command"]
    assert command[0] == "TinyLlama/TinyLlama-1.1B-Chat-v1.0"
    assert command[command.index("--max-model-len") + 1] == "2048"


def test_a_custom_model_the_hub_cannot_give_says_how_to_plan_it_offline(capsys):
    # No network here: the Hub cannot be reached, and the message says what to do instead.
    assert plan("--type", ADA1, "--model", "someone/some-model") == 2
    err = capsys.readouterr().err
    assert "Could not reach Hugging Face" in err and "--config-json" in err


def test_plan_compose_carries_the_profiles_flags_and_env(capsys):
    assert plan("--type", "g2-gpu-rtx4000a4-m", "--model", "Qwen/Qwen3-Coder-30B-A3B-Instruct", "--compose") == 0
    vllm = yaml.safe_load(capsys.readouterr().out)["services"]["vllm"]
    command = vllm["command"]
    assert command[command.index("--max-num-seqs") + 1] == "16"
    assert command[command.index("--max-model-len") + 1] == "65536"
    assert vllm["environment"]["SAFETENSORS_FAST_GPU"] == "1" and vllm["environment"]["VLLM_SLEEP_WHEN_IDLE"] == "0"


LLAMA_70B = "meta-llama/Llama-3.1-70B-Instruct"


def test_a_model_no_vm_holds_names_the_fewest_vms_that_do(capsys):
    assert plan("--type", "g1-gpu-rtx6000-4", "--model", LLAMA_70B, "--context", "32k") == 1
    err = capsys.readouterr().err
    assert "No single VM holds it" in err and "131 GB of weights" in err
    assert "Try: --type g1-gpu-rtx6000-4 --nodes 2" in err


def test_nodes_shows_the_cluster_its_price_and_the_links_cost(capsys, nothing_written):
    assert plan("--type", "g1-gpu-rtx6000-4", "--model", LLAMA_70B, "--context", "32k", "--nodes", "2") == 0
    out = capsys.readouterr().out
    assert "$12.00/h" in out and "2 VMs at $6.00/h each" in out
    assert "TP 4 within each VM, PP 2 across VMs" in out
    assert "head 10.42.0.2, worker 10.42.0.3" in out and "vLLM waits for 8 GPUs" in out
    assert "1 link between VMs" in out and "--distributed-executor-backend ray" in out


def test_nodes_shows_every_nodes_compose_and_cloud_init(capsys):
    assert plan("--type", "g1-gpu-rtx6000-4", "--model", LLAMA_70B, "--context", "32k", "--nodes", "2",
                "--compose") == 0
    out = capsys.readouterr().out
    documents = [d for d in yaml.safe_load_all(out.split("# /opt/llm/.env")[0]) if d]
    assert [list(d["services"]) for d in documents] == [["vllm"], ["ray-worker"]]
    assert HF_TOKEN_PLACEHOLDER in out
    assert plan("--type", "g1-gpu-rtx6000-4", "--model", LLAMA_70B, "--nodes", "2", "--cloud-init") == 0
    out = capsys.readouterr().out
    assert out.count("#cloud-config") == 2 and out.count("ufw allow in on eth1 from 10.42.0.0/24") == 2


def test_too_few_vms_for_the_model_say_so(capsys):
    assert plan("--type", "g2-gpu-rtx4000a4-m", "--model", LLAMA_70B, "--context", "32k", "--nodes", "2") == 1
    assert "does not fit 2 VMs of g2-gpu-rtx4000a4-m" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        plan("--type", "g1-gpu-rtx6000-4", "--model", LLAMA_70B, "--nodes", "5")
