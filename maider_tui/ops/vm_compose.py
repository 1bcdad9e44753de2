"""The compose project on a VM: its files uploaded (again after an SSH drop) and `docker compose up`,
which (re)creates vLLM whenever the compose file changed."""

from __future__ import annotations

from typing import Callable

from maider_tui.clock import Clock
from maider_tui.deploy.compose import COMPOSE_PATH, ENV_PATH, ComposeOptions, env_file_text, render
from maider_tui.models import VllmConfig
from maider_tui.ops.readiness import COMPOSE_CMD, ReadinessLimits, StageFailed, last_line
from maider_tui.remote.ssh import SshDropped, SshSession

UPLOAD_TRIES = 3  # an upload cut by an SSH drop is sent again once reconnected


async def put_file(ssh: SshSession, path: str, data: bytes, mode: int, *, clock: Clock, retry_s: float,
                   log: Callable[[str], None]) -> None:
    """`ssh.put` writes a temporary name and renames it, so an upload the connection dropped under
    left nothing at `path`: send it again once the session has reconnected."""
    for attempt in range(1, UPLOAD_TRIES + 1):
        try:
            await ssh.put(path, data, mode)
            return
        except SshDropped as exc:
            if attempt == UPLOAD_TRIES:
                raise
            log(f"Upload of {path} cut ({exc}); sending it again")
            await clock.sleep(retry_s)


async def put_env(ssh: SshSession, hf_token: str | None, *, clock: Clock, limits: ReadinessLimits,
                  log: Callable[[str], None]) -> None:
    """The `.env` beside the compose file (the Hugging Face token), mode 0600; StageFailed("upload") for
    a token that cannot go in it."""
    try:
        text = env_file_text(hf_token)
    except ValueError as exc:  # a mangled paste; the message never quotes the token
        raise StageFailed("upload", str(exc)) from None
    await put_file(ssh, ENV_PATH, text.encode(), 0o600, clock=clock, retry_s=limits.poll_s, log=log)


async def put_compose(ssh: SshSession, config: VllmConfig, options: ComposeOptions, *, clock: Clock,
                      limits: ReadinessLimits, log: Callable[[str], None]) -> None:
    """The compose file for `config` (no secret in it: `.env` has those)."""
    await put_file(ssh, COMPOSE_PATH, render(config, options).encode(), 0o644, clock=clock,
                   retry_s=limits.poll_s, log=log)


async def compose_up(ssh: SshSession, limits: ReadinessLimits, log: Callable[[str], None], *,
                     recreate: bool = False) -> None:
    """`docker compose up -d`, its last lines logged; StageFailed("compose_up") when it fails.
    `recreate`: every container anew even when its file is unchanged (a Ray cluster formed again)."""
    # `up` pulls the image on a real VM, which takes minutes: bounded by the vLLM limit.
    command = f"{COMPOSE_CMD} up -d" + (" --force-recreate" if recreate else "")
    result = await ssh.run(command, timeout=limits.vllm_s)
    for line in (result.stdout + result.stderr).splitlines()[-5:]:
        if line.strip():
            log(line.strip())
    if not result.ok:
        said = last_line(result.stderr or result.stdout) or f"exit {result.exit_status}"
        raise StageFailed("compose_up", f"docker compose up failed on the VM: {said}")
