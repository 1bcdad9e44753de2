"""The VM's docker-compose.yml: valid against the compose spec, loopback-only, token-free, round-trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from maider_tui.deploy.compose import NCCL_ENV, SERVER_ENV, ComposeOptions, env_file_text, render, vllm_command
from maider_tui.models import VllmConfig
from maider_tui.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT.parent / "shared" / "schemas" / "compose-spec.json"

SINGLE = VllmConfig(model="Qwen/Qwen2.5-Coder-7B-Instruct", max_model_len=32768)
FULL = VllmConfig(
    model="Qwen/Qwen2.5-72B-Instruct-AWQ",
    served_model_name="qwen72b",
    tensor_parallel_size=2,
    pipeline_parallel_size=2,
    max_model_len=16384,
    gpu_memory_utilization=0.85,
    max_num_seqs=16,
    dtype="half",
    kv_cache_dtype="fp8",
    trust_remote_code=True,
    extra_args=("--enable-prefix-caching", "--load-format", "safetensors"),
    env={"VLLM_SLEEP_WHEN_IDLE": "0", "PYTORCH_ALLOC_CONF": "expandable_segments:True"},
)
ALL_ON = ComposeOptions(enable_openwebui=True, enable_hf_cache=True, enable_healthchecks=True,
                        enable_nccl_env=True)
ALL_OFF = ComposeOptions(enable_openwebui=False, enable_hf_cache=False, enable_healthchecks=False,
                         enable_nccl_env=False)
NO_NCCL = ComposeOptions(enable_nccl_env=False)


def services(config: VllmConfig, options: ComposeOptions | None = None) -> dict:
    return yaml.safe_load(render(config, options))["services"]


@pytest.fixture(scope="module")
def compose_validator():
    if not SCHEMA.exists():
        pytest.skip(f"no compose JSON schema beside the repo ({SCHEMA}): CI has ../shared, a clone may not")
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema)


@pytest.mark.parametrize("options", [
    ComposeOptions(),
    ALL_ON,
    ALL_OFF,
])
@pytest.mark.parametrize("config", [SINGLE, FULL])
def test_valid_against_the_compose_spec(compose_validator, config, options):
    document = yaml.safe_load(render(config, options))
    errors = sorted(compose_validator.iter_errors(document), key=str)
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_vllm_service_shape():
    vllm = services(FULL, ALL_ON)["vllm"]
    assert vllm["image"] == "vllm/vllm-openai:v0.11.0"
    assert vllm["ipc"] == "host"
    assert vllm["restart"] == "unless-stopped"
    assert vllm["env_file"] == [".env"]
    assert vllm["deploy"]["resources"]["reservations"]["devices"] == [
        {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert vllm["volumes"] == ["/opt/llm/hf-cache:/root/.cache/huggingface",
                               "/opt/llm/vllm-cache:/root/.cache/vllm"]
    health = vllm["healthcheck"]
    assert health["test"][:2] == ["CMD", "python3"] and "/health" in health["test"][-1]
    assert "curl" not in json.dumps(health)
    assert health["start_period"] == "20m"


def test_command_is_a_list_with_the_model_first_and_one_token_per_item():
    command = services(FULL)["vllm"]["command"]
    assert isinstance(command, list) and all(isinstance(item, str) for item in command)
    assert command[0] == FULL.model and "serve" not in command
    assert command == [
        FULL.model, "--served-model-name", "qwen72b", "--tensor-parallel-size", "2",
        "--pipeline-parallel-size", "2", "--max-model-len", "16384", "--gpu-memory-utilization", "0.85",
        "--max-num-seqs", "16", "--dtype", "half", "--kv-cache-dtype", "fp8", "--trust-remote-code",
        "--port", "8000", "--enable-prefix-caching", "--load-format", "safetensors",
    ]


def test_defaults_are_left_out_but_utilisation_is_always_there():
    command = vllm_command(VllmConfig(model="m/x"))
    assert command == ["m/x", "--tensor-parallel-size", "1", "--gpu-memory-utilization", "0.9",
                       "--port", "8000"]


def test_a_port_in_extra_args_is_not_doubled():
    command = vllm_command(VllmConfig(model="m/x", extra_args=("--port", "8001")))
    assert command.count("--port") == 1 and command[-2:] == ["--port", "8001"]


@pytest.mark.parametrize("config", [SINGLE, FULL, VllmConfig(model="m/x", gpu_memory_utilization=0.8 - 0.05)])
def test_round_trip_through_the_sims_parser(config):
    parse = pytest.importorskip("maider_tui.sim.vllm_behaviour").config_from_args
    vllm = services(config, NO_NCCL)["vllm"]
    parsed = parse(vllm["command"], vllm.get("environment", {}))
    # --port is passed explicitly, so the parser keeps it among the flags it does not model.
    assert parsed.extra_args[:2] == ("--port", "8000")
    # The server's own keep-alive is in every file: the parser reads it among the config's variables.
    assert {k: parsed.env[k] for k in SERVER_ENV} == SERVER_ENV
    env = {k: v for k, v in parsed.env.items() if k not in SERVER_ENV}
    assert parsed.replace(extra_args=parsed.extra_args[2:], env=env) == config
    # What the parser gives back renders to the very same file.
    assert render(parsed, NO_NCCL) == render(config, NO_NCCL)


def test_ports_only_on_loopback():
    both = services(FULL, ComposeOptions(enable_openwebui=True, vllm_port=8011, webui_port=3011))
    for name, service in both.items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)
    assert both["vllm"]["ports"] == ["127.0.0.1:8011:8000"]
    assert both["open-webui"]["ports"] == ["127.0.0.1:3011:8080"]


def test_no_token_in_the_compose_file():
    text = render(FULL, ALL_ON)
    assert "HF_TOKEN" not in text and "HUGGING_FACE_HUB_TOKEN" not in text and "hf_" not in text


def test_nccl_env_only_for_multi_gpu_layouts_and_when_enabled():
    assert services(SINGLE, ALL_ON)["vllm"]["environment"] == SERVER_ENV
    multi = VllmConfig(model="m/x", tensor_parallel_size=2)
    assert services(multi, ALL_ON)["vllm"]["environment"] == {**SERVER_ENV, **NCCL_ENV}
    pipeline_only = VllmConfig(model="m/x", pipeline_parallel_size=2)
    assert services(pipeline_only, ALL_ON)["vllm"]["environment"] == {**SERVER_ENV, **NCCL_ENV}
    assert services(multi, ComposeOptions(enable_nccl_env=False))["vllm"]["environment"] == SERVER_ENV


def test_the_server_keeps_an_idle_connection_longer_than_the_dashboards_poll_period():
    from maider_tui.ui.screens.dashboard import METRICS_S

    keep_alive = float(services(SINGLE)["vllm"]["environment"]["VLLM_HTTP_TIMEOUT_KEEP_ALIVE"])
    assert keep_alive > 2 * METRICS_S
    # A config (a model profile, the user) may still set its own.
    own = VllmConfig(model="m/x", env={"VLLM_HTTP_TIMEOUT_KEEP_ALIVE": "7"})
    assert services(own)["vllm"]["environment"]["VLLM_HTTP_TIMEOUT_KEEP_ALIVE"] == "7"


def test_config_env_wins_over_the_nccl_defaults():
    healed = VllmConfig(model="m/x", tensor_parallel_size=2, env={"NCCL_P2P_DISABLE": "1", "A": "b"})
    env = services(healed, ALL_ON)["vllm"]["environment"]
    assert env == {**SERVER_ENV, "NCCL_DEBUG": "WARN", "NCCL_IB_DISABLE": "1", "NCCL_P2P_DISABLE": "1", "A": "b"}
    assert all(isinstance(v, str) for v in env.values())


def test_open_webui_toggled():
    assert set(services(SINGLE, ComposeOptions(enable_openwebui=False))) == {"vllm"}
    webui = services(SINGLE, ComposeOptions(enable_openwebui=True))["open-webui"]
    assert webui["image"] == "ghcr.io/open-webui/open-webui:main"
    assert webui["environment"]["OPENAI_API_BASE_URL"] == "http://vllm:8000/v1"
    assert webui["depends_on"] == ["vllm"]


def test_options_switch_off_cache_and_healthcheck():
    vllm = services(SINGLE, ComposeOptions(enable_hf_cache=False, enable_healthchecks=False))["vllm"]
    assert "volumes" not in vllm and "healthcheck" not in vllm


def test_options_from_settings():
    settings = Settings.from_dict({
        "vllm": {"image": "vllm/vllm-openai:v0.11.2", "port": 8123},
        "compose": {"enable_openwebui": True, "webui_port": 3123, "enable_nccl_env": False,
                    "enable_hf_cache": False, "enable_healthchecks": False,
                    "openwebui_image": "ghcr.io/open-webui/open-webui:v0.6"},
    })
    assert ComposeOptions.from_settings(settings) == ComposeOptions(
        vllm_image="vllm/vllm-openai:v0.11.2", vllm_port=8123, enable_openwebui=True,
        openwebui_image="ghcr.io/open-webui/open-webui:v0.6", webui_port=3123, enable_hf_cache=False,
        enable_healthchecks=False, enable_nccl_env=False)


def test_env_file_holds_the_token_under_both_names():
    assert env_file_text("hf_abcDEF123\n").splitlines()[1:] == [
        "HF_TOKEN=hf_abcDEF123", "HUGGING_FACE_HUB_TOKEN=hf_abcDEF123"]
    assert "HF_TOKEN" not in env_file_text(None)
    with pytest.raises(ValueError) as info:
        env_file_text("hf_abc def")
    assert "hf_abc" not in str(info.value)  # never echo a token back
