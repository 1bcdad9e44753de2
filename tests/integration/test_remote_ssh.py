"""The app's SSH client (`remote/ssh.py`) against a sim VM: commands, streams, SFTP, forwards, reconnects."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import pytest
import yaml

from maider_tui.remote.ssh import RemoteFileError, SshDropped, SshSession, generate_keypair
from maider_tui.sim import SimCloud
from tests.integration.simfix import ssh_when_up

HOST = generate_keypair("host")
CLIENT = generate_keypair("client")
MODEL = "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ"
COMPOSE = yaml.safe_dump({"services": {
    "vllm": {"image": "vllm/vllm-openai:v0.11.0", "command": [MODEL, "--max-model-len", "8192"],
             "ports": ["127.0.0.1:8000:8000"], "gpus": "all"},
    "open-webui": {"image": "ghcr.io/open-webui/open-webui:main", "ports": ["127.0.0.1:3000:8080"]},
}}).encode()


async def connect(sim: SimCloud, vm_id: int, **kwargs) -> SshSession:
    return await ssh_when_up(sim.ssh_address(vm_id), CLIENT.private_pem, HOST.public_line, timeout=10, **kwargs)


async def wait_for(predicate, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < end, "condition not reached in time"
        await asyncio.sleep(0.03)


async def get_status(url: str) -> int:
    async with httpx.AsyncClient(timeout=5) as http:
        return (await http.get(url)).status_code


@pytest.fixture(scope="module")
def sim():
    with SimCloud(speed=1000, seed=3) as cloud:
        yield cloud


@pytest.fixture(scope="module")
def vm_id(sim):
    """A VM with vLLM and Open WebUI up, prepared over SSH once for the module."""
    user_data = "#cloud-config\n" + yaml.safe_dump(
        {"ssh_keys": {"ed25519_private": HOST.private_pem, "ed25519_public": HOST.public_line}})
    vm = sim.world.create("remote-tests", "us-ord", "g2-gpu-rtx4000a1-s", "linode/ubuntu24.04",
                          authorized_keys=[CLIENT.public_line], user_data=user_data).id

    async def prepare() -> None:
        ssh = await connect(sim, vm)
        await ssh.run("cloud-init status --wait")
        await ssh.put("/opt/llm/docker-compose.yml", COMPOSE, 0o644)
        assert (await ssh.run("docker compose -f /opt/llm/docker-compose.yml up -d")).exit_status == 0
        await ssh.run("docker compose -f /opt/llm/docker-compose.yml up -d --wait", timeout=20)
        await ssh.close()

    asyncio.run(prepare())
    return vm


async def test_run_stream_put_get(sim, vm_id):
    ssh = await connect(sim, vm_id)
    result = await ssh.run("echo out; echo err >&2; false")
    assert (result.exit_status, result.stdout, result.stderr, result.ok) == (1, "out\n", "err\n", False)
    # Whole lines as they arrive, joined by newlines; a last partial line comes at the end.
    chunks = [chunk async for chunk in ssh.stream("printf 'a\\nb\\nc\\n'")]
    assert "\n".join(chunks).splitlines() == ["a", "b", "c"] and ssh.last_exit_status == 0
    assert all(not chunk.endswith(("\n", "\r")) for chunk in chunks)
    assert "\n".join([chunk async for chunk in ssh.stream("printf 'a\\nb'")]) == "a\nb"
    await ssh.put("/root/notes.txt", b"hello", mode=0o640)
    assert await ssh.get("/root/notes.txt") == b"hello"
    assert (await ssh.run("stat -c %a /root/notes.txt")).stdout == "640\n"
    with pytest.raises(RemoteFileError, match="no such file"):
        await ssh.get("/root/absent")
    with pytest.raises(RemoteFileError):
        await ssh.put("/no/such/dir/file", b"x")
    await ssh.close()
    assert ssh.state == "closed"


async def test_forward_reaches_vllm_and_open_webui_only(sim, vm_id):
    ssh = await connect(sim, vm_id)
    vllm_port = await ssh.forward(8000)
    webui_port = await ssh.forward(3000)
    assert await get_status(f"http://127.0.0.1:{vllm_port}/health") == 200
    assert await get_status(f"http://127.0.0.1:{webui_port}/") == 200
    assert ssh.forwards() == {8000: vllm_port, 3000: webui_port}
    closed_port = await ssh.forward(5432)  # nothing listens there on the VM: the tunnel is refused
    with pytest.raises(httpx.TransportError):
        await get_status(f"http://127.0.0.1:{closed_port}/")
    listening = {s.getsockname()[0] for s in ssh._forwards[8000].sockets}
    assert listening == {"127.0.0.1"}
    await ssh.close()


async def test_requested_local_port_in_use_falls_back(sim, vm_id):
    ssh = await connect(sim, vm_id)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        port = await ssh.forward(8000, local_port=busy)
        assert port != busy
        assert await get_status(f"http://127.0.0.1:{port}/health") == 200
    await ssh.close()


async def test_reconnects_after_a_drop_and_the_forward_works_again(sim, vm_id):
    states: list[str] = []
    sim.faults.ssh_drop_after_s = 0.4
    try:
        ssh = await connect(sim, vm_id, backoff=(0.05, 0.1))
        ssh.on_state(states.append)
        port = await ssh.forward(8000)
        assert await get_status(f"http://127.0.0.1:{port}/health") == 200
        handshakes = sim.ssh_handshakes(vm_id)
        with pytest.raises(SshDropped):
            async for _ in ssh.stream("nvidia-smi --query-gpu=index --format=csv,noheader -lms 50"):
                pass
        sim.faults.ssh_drop_after_s = None  # the next connection stays up

        async def back() -> bool:
            return ssh.state == "connected" and "reconnecting" in states
        await wait_for(back)
    finally:
        sim.faults.ssh_drop_after_s = None
    assert states[:2] == ["reconnecting", "connected"]
    assert sim.ssh_handshakes(vm_id) > handshakes
    assert (await ssh.run("echo again")).stdout == "again\n"
    assert await get_status(f"http://127.0.0.1:{port}/health") == 200  # same local port as before
    await ssh.close()


async def test_closing_with_a_tunnel_open_logs_no_error(sim, vm_id, caplog):
    """A client still connected through a forward when the session closes: its tunnel just ends."""
    ssh = await connect(sim, vm_id)
    port = await ssh.forward(8000)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")  # keep-alive: the tunnel stays open
    await writer.drain()
    assert b"200" in await reader.readline()
    with caplog.at_level("ERROR", logger="asyncio"):
        await ssh.close()
        await asyncio.sleep(0.05)  # a logged "Exception in callback" would come now
    assert not [r for r in caplog.records if r.name == "asyncio"], caplog.text
    await asyncio.wait_for(reader.read(), 5)  # the rest of the answer, then the end: no hang
    assert reader.at_eof()
    writer.close()


async def test_a_cancel_that_lands_as_a_command_ends_is_never_lost(sim, vm_id):
    """A cancelled command must end cancelled, even when the cancel arrives in the very step the command
    finished: Python 3.11's asyncio.wait_for returns the result then, and a cancelled model switch once
    ran on for two minutes. Cancels are spread over every step of a command's life to land there."""
    ssh = await connect(sim, vm_id)
    lost = []
    try:
        for steps in range(400):
            task = asyncio.ensure_future(ssh.run("true"))
            for _ in range(steps % 80):
                await asyncio.sleep(0)
            if task.done():
                continue
            task.cancel()
            try:
                await task
                lost.append(steps)  # the cancel was swallowed: the caller would run on
            except asyncio.CancelledError:
                pass
    finally:
        await ssh.close()
    assert not lost, f"cancels lost after {lost} loop steps"
