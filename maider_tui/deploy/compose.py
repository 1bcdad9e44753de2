"""`/opt/llm/docker-compose.yml`: vLLM (and optionally Open WebUI) as the VM runs them. Pure: no I/O.

The file carries no secret. The Hugging Face token lives in `/opt/llm/.env` (mode 0600), which the
ops layer uploads over SFTP and compose reads through `env_file`; `env_file_text` builds that file
and is the only place the token is ever written out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from maider_tui.models import VllmConfig

if TYPE_CHECKING:
    from maider_tui.settings import Settings

LLM_DIR = "/opt/llm"
COMPOSE_PATH = f"{LLM_DIR}/docker-compose.yml"
ENV_PATH = f"{LLM_DIR}/.env"
CONTAINER_PORT = 8000  # vLLM inside the container; the host side is ComposeOptions.vllm_port
WEBUI_CONTAINER_PORT = 8080
# Multi-GPU reliability on PCIe cloud VMs: no InfiniBand here, P2P left on, warnings only.
NCCL_ENV = {"NCCL_DEBUG": "WARN", "NCCL_IB_DISABLE": "1", "NCCL_P2P_DISABLE": "0"}
# vLLM closes an idle HTTP connection after 5 s by default; the dashboard polls /metrics and /health
# every 5 s over one kept connection (VllmClient's), which a 5 s limit would close between polls.
SERVER_ENV = {"VLLM_HTTP_TIMEOUT_KEEP_ALIVE": "30"}
# Cold starts (download, torch.compile, CUDA graphs) take many minutes; failing health checks
# before then would mark a healthy start as broken.
HEALTH_START_PERIOD = "20m"


@dataclass(frozen=True)
class ComposeOptions:
    """What the compose file contains besides the vLLM flags (see `ComposeSettings`)."""

    vllm_image: str = "vllm/vllm-openai:v0.11.0"
    vllm_port: int = 8000
    enable_openwebui: bool = False
    openwebui_image: str = "ghcr.io/open-webui/open-webui:main"
    webui_port: int = 3000
    enable_hf_cache: bool = True
    enable_healthchecks: bool = True
    enable_nccl_env: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> ComposeOptions:
        """The options a `Settings` object (its `vllm` and `compose` groups) asks for."""
        vllm, compose = settings.vllm, settings.compose
        return cls(
            vllm_image=vllm.image,
            vllm_port=vllm.port,
            enable_openwebui=compose.enable_openwebui,
            openwebui_image=compose.openwebui_image,
            webui_port=compose.webui_port,
            enable_hf_cache=compose.enable_hf_cache,
            enable_healthchecks=compose.enable_healthchecks,
            enable_nccl_env=compose.enable_nccl_env,
        )


def vllm_command(config: VllmConfig) -> list[str]:
    """The `command:` list: the model first (the image's ENTRYPOINT is `vllm serve`), one item per token."""
    args = [config.model]
    if config.served_model_name:
        args += ["--served-model-name", config.served_model_name]
    args += ["--tensor-parallel-size", str(config.tensor_parallel_size)]
    if config.pipeline_parallel_size > 1:
        args += ["--pipeline-parallel-size", str(config.pipeline_parallel_size)]
    if config.max_model_len is not None:
        args += ["--max-model-len", str(config.max_model_len)]
    # Always explicit: vLLM's default has changed between releases (0.90, 0.92).
    args += ["--gpu-memory-utilization", _number(config.gpu_memory_utilization)]
    if config.max_num_seqs is not None:
        args += ["--max-num-seqs", str(config.max_num_seqs)]
    if config.dtype != "auto":
        args += ["--dtype", config.dtype]
    if config.kv_cache_dtype != "auto":
        args += ["--kv-cache-dtype", config.kv_cache_dtype]
    if config.trust_remote_code:
        args.append("--trust-remote-code")
    # A config read back from a compose file already carries its --port in extra_args.
    if not any(a == "--port" or a.startswith("--port=") for a in config.extra_args):
        args += ["--port", str(CONTAINER_PORT)]
    return args + list(config.extra_args)


def vllm_environment(config: VllmConfig, options: ComposeOptions) -> dict[str, str]:
    """The container's environment: the server's keep-alive, NCCL defaults on multi-GPU layouts, then the
    config's own env on top."""
    env: dict[str, str] = dict(SERVER_ENV)
    if options.enable_nccl_env and config.tensor_parallel_size * config.pipeline_parallel_size > 1:
        env.update(NCCL_ENV)
    # The config wins: healing may have set NCCL_P2P_DISABLE=1, a model profile its own variables.
    env.update({str(k): str(v) for k, v in config.env.items()})
    return env


def render(config: VllmConfig, options: ComposeOptions | None = None) -> str:
    """The docker-compose.yml for `config`, as YAML text. It never contains a token."""
    options = options or ComposeOptions()
    services: dict[str, Any] = {"vllm": _vllm_service(config, options)}
    if options.enable_openwebui:
        services["open-webui"] = _webui_service(options)
    header = (
        "# Written by maider-tui; re-rendered on every heal or model switch, so edits here are lost.\n"
        "# The Hugging Face token is in .env (mode 0600) beside this file, never here.\n"
    )
    import yaml  # only a launch or a model switch writes the file: an attached session never loads it

    return header + yaml.safe_dump({"services": services}, sort_keys=False, width=120)


def env_file_text(hf_token: str | None) -> str:
    """The content of `/opt/llm/.env`. Both names, since libraries differ in which one they read."""
    lines = ["# Secrets for the vLLM container; uploaded by maider-tui with mode 0600."]
    if hf_token:
        token = hf_token.strip()
        if any(ch in token for ch in "\r\n\"' #$"):
            raise ValueError("the Hugging Face token has characters a token never has; check what was pasted")
        lines += [f"HF_TOKEN={token}", f"HUGGING_FACE_HUB_TOKEN={token}"]
    return "\n".join(lines) + "\n"


def _vllm_service(config: VllmConfig, options: ComposeOptions) -> dict[str, Any]:
    service: dict[str, Any] = {
        "image": options.vllm_image,
        "command": vllm_command(config),
        "env_file": [".env"],
    }
    environment = vllm_environment(config, options)
    if environment:
        service["environment"] = environment
    service.update({
        # Bound to loopback: Docker-published ports bypass ufw; the client reaches them over SSH.
        "ports": [f"127.0.0.1:{options.vllm_port}:{CONTAINER_PORT}"],
        # PyTorch workers share tensors through /dev/shm; Docker's 64 MB default breaks TP > 1.
        "ipc": "host",
        "restart": "unless-stopped",
        "deploy": {"resources": {"reservations": {"devices": [
            {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]},
        ]}}},
    })
    if options.enable_hf_cache:
        service["volumes"] = [
            f"{LLM_DIR}/hf-cache:/root/.cache/huggingface",
            # torch.compile artifacts: a restart after a heal skips most of the compile time.
            f"{LLM_DIR}/vllm-cache:/root/.cache/vllm",
        ]
    if options.enable_healthchecks:
        url = f"http://127.0.0.1:{CONTAINER_PORT}/health"
        probe = f"import urllib.request; urllib.request.urlopen('{url}', timeout=5)"
        service["healthcheck"] = {
            # python3 is in every vLLM image; curl is not.
            "test": ["CMD", "python3", "-c", probe],
            "interval": "30s",
            "timeout": "10s",
            "retries": 5,
            "start_period": HEALTH_START_PERIOD,
        }
    return service


def _webui_service(options: ComposeOptions) -> dict[str, Any]:
    return {
        "image": options.openwebui_image,
        "environment": {
            "OPENAI_API_BASE_URL": f"http://vllm:{CONTAINER_PORT}/v1",
            "ENABLE_OLLAMA_API": "False",  # there is no Ollama here; skip its connection attempts
        },
        "ports": [f"127.0.0.1:{options.webui_port}:{WEBUI_CONTAINER_PORT}"],
        "volumes": [f"{LLM_DIR}/open-webui:/app/backend/data"],
        # Plain ordering, not service_healthy: `up -d` must return while vLLM is still loading.
        "depends_on": ["vllm"],
        "restart": "unless-stopped",
    }


def _number(value: float) -> str:
    """0.9 -> "0.9", 0.85 -> "0.85": short, and parsed back to the same float."""
    return repr(round(float(value), 4))
