"""The compose project on a VM: an upload cut by an SSH drop is sent again, a bad token never goes up."""

from __future__ import annotations

import pytest

from maider_tui.clock import FastClock
from maider_tui.deploy.compose import COMPOSE_PATH, ENV_PATH, ComposeOptions
from maider_tui.models import VllmConfig
from maider_tui.ops.readiness import ReadinessLimits, StageFailed
from maider_tui.ops.vm_compose import UPLOAD_TRIES, put_compose, put_env
from maider_tui.remote.ssh import SshDropped


class DroppingSsh:
    """An SSH session whose first `drops` uploads are cut."""

    def __init__(self, drops: int) -> None:
        self.drops, self.tries, self.files = drops, 0, {}

    async def put(self, path: str, data: bytes, mode: int) -> None:
        self.tries += 1
        if self.tries <= self.drops:
            raise SshDropped("connection lost")
        self.files[path] = (data, mode)


IO = {"clock": FastClock(10_000), "limits": ReadinessLimits()}


async def test_an_upload_cut_by_a_drop_is_sent_again():
    ssh, said = DroppingSsh(drops=UPLOAD_TRIES - 1), []
    config = VllmConfig(model="Qwen/Qwen2.5-Coder-7B-Instruct-AWQ")
    await put_compose(ssh, config, ComposeOptions(), log=said.append, **IO)
    assert ssh.tries == UPLOAD_TRIES and list(ssh.files) == [COMPOSE_PATH]
    assert ssh.files[COMPOSE_PATH][1] == 0o644 and b"vllm" in ssh.files[COMPOSE_PATH][0]
    assert said == [f"Upload of {COMPOSE_PATH} cut (connection lost); sending it again"] * (UPLOAD_TRIES - 1)


async def test_an_upload_cut_every_time_gives_up():
    ssh = DroppingSsh(drops=UPLOAD_TRIES)
    with pytest.raises(SshDropped):
        await put_env(ssh, "hf_abc", log=lambda _: None, **IO)
    assert ssh.tries == UPLOAD_TRIES and ssh.files == {}


async def test_the_env_file_is_private_and_a_mangled_token_never_goes_up():
    ssh = DroppingSsh(drops=0)
    await put_env(ssh, "hf_abc", log=lambda _: None, **IO)
    data, mode = ssh.files[ENV_PATH]
    assert mode == 0o600 and b"HF_TOKEN=hf_abc" in data
    with pytest.raises(StageFailed) as failed:
        await put_env(DroppingSsh(drops=0), "hf_abc\nEVIL=1", log=lambda _: None, **IO)
    assert failed.value.stage == "upload" and "hf_abc" not in failed.value.message
