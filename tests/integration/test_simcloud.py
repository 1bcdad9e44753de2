"""SimCloud as the app meets it: its own thread and loop, LinodeProvider over real HTTP, SSH to its VMs."""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
import threading
import time

import pytest
import yaml

from maider_tui.cloud.base import CreateSpec
from maider_tui.remote.ssh import SshSession, generate_keypair
from maider_tui.sim import SimCloud, SimFaults
from maider_tui.commands.sim import main as sim_main
from tests.integration.simfix import ssh_when_up

HOST = generate_keypair("host")
CLIENT = generate_keypair("client")


def spec(label: str) -> CreateSpec:
    user_data = "#cloud-config\n" + yaml.safe_dump(
        {"ssh_keys": {"ed25519_private": HOST.private_pem, "ed25519_public": HOST.public_line}})
    return CreateSpec(label=label, region="us-ord", type="g2-gpu-rtx4000a1-s", image="linode/ubuntu24.04",
                      authorized_keys=[CLIENT.public_line], user_data=user_data)


async def login(address: tuple[str, int], deadline_s: float = 10.0) -> SshSession:
    return await ssh_when_up(address, CLIENT.private_pem, HOST.public_line, timeout=deadline_s)


def refuses(address: tuple[str, int]) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(address) != 0


async def test_provider_round_trip_and_ssh():
    with SimCloud(speed=1000, seed=1) as sim:
        assert sim.linode_base_url.startswith("http://127.0.0.1:") and sim.linode_base_url.endswith("/v4")
        provider = sim.provider()
        assert (await provider.whoami()).username
        vm = await provider.create(spec("sim-session"))
        assert vm.label == "sim-session" and "maider" in vm.tags
        assert [v.id for v in await provider.list()] == [vm.id]
        address = provider.ssh_endpoint(vm)
        assert address == sim.ssh_address(vm.id) and address[0] == "127.0.0.1"

        async def running() -> bool:
            return (await provider.get(vm.id)).status == "running"
        end = time.monotonic() + 10
        while not await running():
            assert time.monotonic() < end
            await asyncio.sleep(0.05)
        first = await login(address)
        second = await login(address)
        assert (await first.run("hostname")).stdout == "sim-session\n"
        assert sim.ssh_handshakes(vm.id) == 2  # one per connection, not per command
        await first.run("true")
        assert sim.ssh_handshakes(vm.id) == 2
        await first.close()
        await second.close()
        assert sim.vm(vm.id).instance.label == "sim-session"

        assert await provider.destroy(vm.id) is True
        assert await provider.destroy(vm.id) is False  # already gone: not an error
        assert await provider.list() == []
        await asyncio.sleep(0.1)
        assert refuses(address)
        with pytest.raises(LookupError):
            sim.ssh_address(vm.id)


async def test_vanished_vm_stops_answering():
    with SimCloud(speed=1000, faults=SimFaults(vm_vanish_after_s=200)) as sim:
        vm = await sim.provider().create(spec("doomed"))
        address = sim.ssh_address(vm.id)
        ssh = await login(address)
        end = time.monotonic() + 5
        while sim.world.vanished == 0:  # the VM's own sshd notices the fault; no API call needed
            assert time.monotonic() < end
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.1)
        assert refuses(address)
        await ssh.close()


def test_clean_start_and_close():
    sim = SimCloud(speed=1000).start()
    assert any(t.name == "maider-sim" for t in threading.enumerate())
    vm = sim.world.create("from-a-test", "us-ord", "g2-gpu-rtx4000a1-s", "linode/ubuntu24.04")
    address = sim.ssh_address(vm.id)  # made on this thread, already known to the loop
    base = sim.linode_base_url.split("//")[1].split("/")[0].split(":")
    sim.close()
    sim.close()  # a second close is harmless
    assert not any(t.name == "maider-sim" for t in threading.enumerate())
    assert refuses((base[0], int(base[1]))) and refuses(address)


def test_python_m_sim_prints_url_and_token():
    stop = threading.Event()
    out = io.StringIO()

    def run() -> None:
        with contextlib.redirect_stdout(out):
            sim_main(["--speed", "50"], stop=stop)
    thread = threading.Thread(target=run)
    thread.start()
    end = time.monotonic() + 10
    while "Token:" not in out.getvalue():
        assert time.monotonic() < end
        time.sleep(0.02)
    stop.set()
    thread.join(10)
    text = out.getvalue()
    assert "http://127.0.0.1:" in text and "/v4" in text and "Token: sim-" in text
    assert "Simulated Hugging Face Hub" in text and "/hf" in text


def test_sim_after_the_apps_options_runs_the_sim_not_the_app(tmp_path):
    """`maider-tui --demo sim` (the app's option first) is still the `sim` command."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "MAIDER_HOME": str(tmp_path), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([sys.executable, "-m", "maider_tui", "--demo", "sim"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        end = time.monotonic() + 20
        while not any(line.startswith("Token: sim-") for line in lines) and time.monotonic() < end:
            time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(10)
    assert lines and lines[0].startswith("Simulated Linode API: http://127.0.0.1:"), lines[:3]
