"""Files a session keeps on the user's machine: its SSH client key and the aider files.

The client key is an SSH key made for this one VM (never a token); it is written 0600 because a
session must be able to reconnect after the app restarts. Tokens are never written here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..paths import AppPaths


def session_dir(paths: AppPaths, name: str) -> Path:
    return paths.sessions_dir / name


def write_private(path: Path, data: str | bytes) -> None:
    """Write a file readable by the user only, atomically (temp name, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    raw = data.encode() if isinstance(data, str) else data
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, raw)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def client_key_path(paths: AppPaths, name: str) -> Path:
    return session_dir(paths, name) / "id_ed25519"


def host_key_path(paths: AppPaths, name: str) -> Path:
    """The VM's host key, made here and handed to cloud-init; kept so a resumed launch that must
    create the VM again (or links the one a dead run created) uses the same pinned key."""
    return session_dir(paths, name) / "host_ed25519"


def aider_metadata(served_name: str, max_model_len: int, max_output_tokens: int | None = None) -> dict:
    """`.aider.model.metadata.json` content: the limits aider needs (else it says "0 of 0 tokens")."""
    output = max_output_tokens or min(8192, max(1024, max_model_len // 4))
    return {
        f"openai/{served_name}": {
            "max_tokens": output,
            "max_input_tokens": max_model_len - output,
            "max_output_tokens": output,
            "input_cost_per_token": 0.0,
            "output_cost_per_token": 0.0,
            "litellm_provider": "openai",
            "mode": "chat",
        }
    }


def aider_env(endpoint: str, served_name: str) -> str:
    """The env file a user sources before running aider against the session's endpoint."""
    # vLLM runs without an API key behind the SSH tunnel; aider still wants one set.
    return (
        f"export OPENAI_API_BASE={endpoint}\n"
        "export OPENAI_API_KEY=local-vllm-no-key\n"
        f"export AIDER_MODEL=openai/{served_name}\n"
    )


def write_aider_files(paths: AppPaths, name: str, *, endpoint: str, served_name: str,
                      max_model_len: int) -> tuple[Path, Path]:
    """Write `aider-env` and `.aider.model.metadata.json` for the session; returns their paths."""
    folder = session_dir(paths, name)
    env_path = folder / "aider-env"
    meta_path = folder / ".aider.model.metadata.json"
    write_private(env_path, aider_env(endpoint, served_name))
    write_private(meta_path, json.dumps(aider_metadata(served_name, max_model_len), indent=2) + "\n")
    return env_path, meta_path


def aider_command(paths: AppPaths, name: str) -> str:
    """The one line a user runs to code against the session."""
    folder = session_dir(paths, name)
    return (f"source {folder / 'aider-env'} && aider --model \"$AIDER_MODEL\" "
            f"--model-metadata-file {folder / '.aider.model.metadata.json'}")
