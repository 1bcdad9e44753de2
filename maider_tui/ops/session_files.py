"""Files a session keeps on the user's machine: its SSH client key, the aider files and the ssh files.

The client key is an SSH key made for this one VM (never a token); it is written 0600 because a
session must be able to reconnect after the app restarts. Tokens are never written here.

The ssh files let the system's `ssh` reach the VM as the app does, host key pinned: the session's
`known_hosts` and its `Host maider-<session>` entry in `<data dir>/ssh_config`, written once the VM
has an address and removed when the session ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
from collections.abc import Iterator
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


# --- reaching the VM with the system's ssh ---------------------------------------------------------

def ssh_config_path(paths: AppPaths) -> Path:
    return paths.data_dir / "ssh_config"


def known_hosts_path(paths: AppPaths, name: str) -> Path:
    return session_dir(paths, name) / "known_hosts"


def ssh_alias(name: str) -> str:
    return f"maider-{name}"


def known_hosts_line(host: str, port: int, host_key: str) -> str:
    """A known_hosts line pinning the VM's host key; OpenSSH writes non-22 ports as `[host]:port`."""
    key_type, key_data = host_key.split()[:2]
    where = host if port == 22 else f"[{host}]:{port}"
    return f"{where} {key_type} {key_data}\n"


def ssh_config_entry(session: str, host: str, port: int, key_path: str, known_hosts: str) -> str:
    """The `Host maider-<session>` block that makes `ssh -F <data dir>/ssh_config maider-<session>` work."""
    return (f"Host {ssh_alias(session)}\n"
            f"    HostName {host}\n"
            f"    Port {port}\n"
            "    User root\n"
            f"    IdentityFile \"{key_path}\"\n"
            "    IdentitiesOnly yes\n"
            f"    UserKnownHostsFile \"{known_hosts}\"\n"
            "    StrictHostKeyChecking yes\n")


def merge_ssh_config(existing: str, session: str, entry: str | None) -> str:
    """`existing` with the session's block replaced by `entry` (or removed when None); others kept."""
    blocks: list[str] = []
    current: list[str] = []
    for line in existing.splitlines(keepends=True):
        if line.startswith("Host ") and current:
            blocks.append("".join(current))
            current = []
        current.append(line)
    if current:
        blocks.append("".join(current))
    mine = f"Host {ssh_alias(session)}\n"
    kept = [b for b in blocks if not b.startswith(mine)]
    if entry is not None:
        kept.append(entry)
    return "".join(b if b.endswith("\n") else b + "\n" for b in kept)


@contextlib.contextmanager
def _ssh_config_locked(paths: AppPaths) -> Iterator[Path]:
    """ssh_config is shared by every session and every app process: one read-modify-write at a time."""
    config = ssh_config_path(paths)
    config.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(config.with_name("ssh_config.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield config
    finally:
        os.close(fd)  # closing releases the lock


def write_ssh_files(paths: AppPaths, name: str, *, host: str, port: int, host_key: str) -> Path:
    """Pin the VM's host key in the session's known_hosts and (re)write its `Host maider-<session>`
    entry; returns the known_hosts path. Called whenever the session gets or changes its address."""
    known_hosts = known_hosts_path(paths, name)
    write_private(known_hosts, known_hosts_line(host, port, host_key))
    entry = ssh_config_entry(name, host, port, str(client_key_path(paths, name)), str(known_hosts))
    with _ssh_config_locked(paths) as config:
        existing = config.read_text() if config.exists() else ""
        merged = merge_ssh_config(existing, name, entry)
        if merged != existing:
            write_private(config, merged)
    return known_hosts


def remove_ssh_entry(paths: AppPaths, name: str) -> None:
    """Drop the session's `Host maider-<session>` entry (its VM is gone); other sessions' entries stay."""
    with contextlib.suppress(FileNotFoundError):
        known_hosts_path(paths, name).unlink()
    if not ssh_config_path(paths).exists():
        return
    with _ssh_config_locked(paths) as config:
        existing = config.read_text() if config.exists() else ""
        merged = merge_ssh_config(existing, name, None)
        if merged != existing:
            write_private(config, merged)


def ssh_argv(paths: AppPaths, name: str) -> list[str] | None:
    """`ssh` reaching the session's VM with its pinned host key and its own key (so it works under
    `-o BatchMode=yes`), or None while the session has no ssh_config entry (no address yet, or ended)."""
    config = ssh_config_path(paths)
    try:
        present = f"Host {ssh_alias(name)}\n" in config.read_text()
    except OSError:
        return None
    return ["ssh", "-F", str(config), ssh_alias(name)] if present else None


def ssh_command(paths: AppPaths, name: str) -> str | None:
    """`ssh_argv` as one line to paste in a shell."""
    argv = ssh_argv(paths, name)
    return shlex.join(argv) if argv is not None else None
