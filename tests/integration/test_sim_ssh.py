"""The simulated GPU VM over real SSH: keys, nvidia-smi, cloud-init, Docker Compose, vLLM, SFTP.

Every VM here is made through the world with the client's key in authorized_keys and a pinned
host key in its cloud-init user-data, as the app makes them; the client is the app's SshSession.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from maider_tui.remote.gpu import QUERY_FIELDS, TelemetryReader, parse_gpu_csv
from maider_tui.remote.ssh import AuthRefused, HostKeyMismatch, SshSession, SshUnreachable, generate_keypair
from maider_tui.remote.vllm import VllmClient
from maider_tui.sim import SimCloud, SimFaults

HOST = generate_keypair("host")
CLIENT = generate_keypair("client")
SMALL_MODEL = "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ"


def user_data(host=HOST) -> str:
    return "#cloud-config\n" + yaml.safe_dump(
        {"ssh_keys": {"ed25519_private": host.private_pem, "ed25519_public": host.public_line}})


def compose_file(model: str, *, util: float = 0.9, max_len: int = 8192) -> bytes:
    service = {
        "image": "vllm/vllm-openai:v0.11.0",
        "command": [model, "--max-model-len", str(max_len), "--gpu-memory-utilization", str(util)],
        "env_file": [".env"], "ports": ["127.0.0.1:8000:8000"], "ipc": "host", "restart": "unless-stopped",
        "deploy": {"resources": {"reservations": {"devices": [
            {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]}}},
    }
    return yaml.safe_dump({"services": {"vllm": service}}).encode()


def make_vm(sim: SimCloud, label: str, plan: str = "g2-gpu-rtx4000a2-s", region: str = "us-ord") -> int:
    return sim.world.create(label, region, plan, "linode/ubuntu24.04", authorized_keys=[CLIENT.public_line],
                            user_data=user_data()).id


async def session(sim: SimCloud, vm_id: int, *, key=CLIENT, host_key: str = HOST.public_line,
                  deadline_s: float = 10.0) -> SshSession:
    """Connect as soon as the VM's sshd answers (it refuses while the VM boots)."""
    host, port = sim.ssh_address(vm_id)
    ssh = SshSession(host, port, client_keys=[key.private_pem], known_host_key=host_key, backoff=(0.05,))
    end = time.monotonic() + deadline_s
    while True:
        try:
            await ssh.connect()
            return ssh
        except SshUnreachable:
            if time.monotonic() > end:
                raise
            await asyncio.sleep(0.02)


async def until(predicate, timeout: float = 10.0, step: float = 0.03):
    end = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        assert time.monotonic() < end, "condition not reached in time"
        await asyncio.sleep(step)


@pytest.fixture(scope="module")
def sim():
    with SimCloud(speed=1000, seed=7) as cloud:
        yield cloud


@pytest.fixture(scope="module")
def vm_id(sim):
    return make_vm(sim, "ssh-tests")


async def test_refused_while_booting_then_answers(sim):
    vm = make_vm(sim, "booting-vm")
    host, port = sim.ssh_address(vm)
    early = SshSession(host, port, client_keys=[CLIENT.private_pem], known_host_key=HOST.public_line)
    with pytest.raises(SshUnreachable):
        await early.connect()
    ssh = await session(sim, vm)
    assert (await ssh.run("true")).exit_status == 0
    await ssh.close()


async def test_wrong_client_key_is_refused(sim, vm_id):
    with pytest.raises(AuthRefused):
        await session(sim, vm_id, key=generate_keypair("stranger"))


async def test_wrong_host_key_is_refused(sim, vm_id):
    before = sim.ssh_handshakes(vm_id)
    with pytest.raises(HostKeyMismatch, match="man-in-the-middle"):
        await session(sim, vm_id, host_key=generate_keypair("impostor").public_line)
    assert sim.ssh_handshakes(vm_id) == before  # we never authenticated to the impostor


async def test_nvidia_smi_csv_forms_parse(sim, vm_id):
    ssh = await session(sim, vm_id)
    await ssh.run("cloud-init status --wait")
    fields = ",".join(QUERY_FIELDS)
    for fmt in ("csv", "csv,noheader", "csv,noheader,nounits", "csv,nounits"):
        result = await ssh.run(f"nvidia-smi --query-gpu={fields} --format={fmt}")
        assert result.exit_status == 0, result.stderr
        gpus = parse_gpu_csv(result.stdout, QUERY_FIELDS)
        assert [g.index for g in gpus] == [0, 1]  # the x2 plan has two GPUs
        assert {g.name for g in gpus} == {"NVIDIA RTX 4000 Ada Generation"}
        assert all(g.memory_total_mib == 20475 and 25 <= g.temperature_c <= 45 for g in gpus)
        assert all(g.power_w is not None and g.power_w < 130 for g in gpus)
    table = await ssh.run("nvidia-smi")
    assert "NVIDIA RTX 4000 Ada Gene" in table.stdout and "20475MiB" in table.stdout
    topo = await ssh.run("nvidia-smi topo -m")
    assert "PHB" in topo.stdout and "NV1" not in topo.stdout
    bad = await ssh.run("nvidia-smi --query-gpu=bogus.field --format=csv")
    assert bad.exit_status != 0 and "not a valid field" in bad.stdout
    await ssh.close()


async def test_quadro_plan_reports_its_gpu(sim):
    vm = make_vm(sim, "quadro-vm", plan="g1-gpu-rtx6000-1", region="us-east")
    ssh = await session(sim, vm)
    await ssh.run("cloud-init status --wait")
    result = await ssh.run("nvidia-smi --query-gpu=index,name,memory.total --format=csv")
    gpus = parse_gpu_csv(result.stdout)
    assert [(g.name, g.memory_total_mib) for g in gpus] == [("Quadro RTX 6000", 24576)]
    await ssh.close()


async def test_nvidia_smi_lms_streams_samples(sim, vm_id):
    ssh = await session(sim, vm_id)
    await ssh.run("cloud-init status --wait")
    snapshots = []
    async for snap in TelemetryReader(ssh.stream("nvidia-smi --query-gpu=" + ",".join(QUERY_FIELDS)
                                                 + " --format=csv,noheader,nounits -lms 40"), gpu_count=2):
        snapshots.append(snap)
        if len(snapshots) == 4:
            break
    assert len(snapshots) == 4 and all(len(s.gpus) == 2 for s in snapshots)
    assert (await ssh.run("echo after")).stdout == "after\n"  # the stream's channel closed cleanly
    await ssh.close()


async def test_cloud_init_progression():
    with SimCloud(speed=1000, faults=SimFaults(slow_boot_factor=2)) as sim:
        ssh = await session(sim, make_vm(sim, "slow-boot"))
        first = await ssh.run("cloud-init status")
        assert (first.exit_status, first.stdout) == (0, "status: running\n")
        assert (await ssh.run("nvidia-smi")).exit_status == 127  # no driver yet
        waited = await ssh.run("cloud-init status --wait --format json", timeout=20)
        doc = json.loads(waited.stdout[waited.stdout.index("{"):])
        assert doc["status"] == doc["extended_status"] == "done"
        assert {"boot_status_code", "detail", "errors", "recoverable_errors", "last_update",
                "datasource"} <= set(doc)
        assert (await ssh.run("nvidia-smi -L || nvidia-smi")).exit_status == 0
        assert (await ssh.run("systemctl is-active docker")).stdout == "active\n"
        await ssh.close()


async def _container(ssh: SshSession) -> dict | None:
    out = (await ssh.run("docker compose -f /opt/llm/docker-compose.yml ps -a --format json")).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    return rows[0] if rows else None


async def test_compose_up_serves_vllm_through_a_forward(sim):
    vm = make_vm(sim, "vllm-good", plan="g2-gpu-rtx4000a1-s")
    ssh = await session(sim, vm)
    await ssh.run("cloud-init status --wait")
    missing = await ssh.run("docker compose -f /opt/llm/docker-compose.yml up -d")
    assert missing.exit_status == 1 and "no such file or directory" in missing.stderr
    await ssh.put("/opt/llm/.env", b"HF_TOKEN=hf_test\n", 0o600)
    await ssh.put("/opt/llm/docker-compose.yml", compose_file(SMALL_MODEL), 0o644)
    up = await ssh.run("cd /opt/llm && docker compose up -d")
    assert up.exit_status == 0 and "llm-vllm-1" in up.stderr
    refused = await ssh.run("curl -s -o /dev/null -w '%{http_code}' http://localhost:8000/health")
    assert refused.exit_status == 7  # nothing listens while the image pulls and the model loads

    async def healthy():
        row = await _container(ssh)
        return row if row and row["Health"] == "healthy" else None
    row = await until(healthy)
    assert row["State"] == "running" and row["Name"] == "llm-vllm-1"
    curl = await ssh.run("curl -sf http://localhost:8000/v1/models")
    assert json.loads(curl.stdout)["data"][0]["id"] == SMALL_MODEL
    port = await ssh.forward(8000)
    async with VllmClient(f"http://127.0.0.1:{port}") as client:
        assert await client.health()
        assert [m.id for m in await client.models()] == [SMALL_MODEL]
        answer = await client.complete_chat(SMALL_MODEL, [{"role": "user", "content": "hi"}], max_tokens=8)
        assert answer.completion_tokens == 8
    assert sim.vm(vm).vllm.generation_tokens_total == 8  # the VM's own server answered
    gpus = parse_gpu_csv((await ssh.run("nvidia-smi --query-gpu=index,memory.used --format=csv")).stdout)
    assert gpus[0].memory_used_mib > 10_000  # weights + KV cache reservation
    assert "llm-vllm-1" in (await ssh.run("docker ps")).stdout
    await ssh.close()


async def test_compose_up_with_a_model_too_big_exits_with_oom(sim):
    vm = make_vm(sim, "vllm-oom", plan="g2-gpu-rtx4000a1-s")
    ssh = await session(sim, vm)
    await ssh.run("cloud-init status --wait")
    await ssh.put("/opt/llm/.env", b"HF_TOKEN=hf_test\n", 0o600)
    await ssh.put("/opt/llm/docker-compose.yml", compose_file("Qwen/Qwen2.5-Coder-32B-Instruct"), 0o644)
    assert (await ssh.run("docker compose --project-directory /opt/llm up -d")).exit_status == 0

    async def exited():
        row = await _container(ssh)
        return row if row and row["State"] == "exited" else None
    row = await until(exited)
    assert row["ExitCode"] == 1 and row["Status"].startswith("Exited (1)")
    assert (await ssh.run("docker compose -f /opt/llm/docker-compose.yml ps -q")).stdout == ""  # not running
    logs = await ssh.run("docker logs --tail 40 llm-vllm-1")
    assert "CUDA out of memory" in logs.stdout
    memory = parse_gpu_csv((await ssh.run("nvidia-smi --query-gpu=index,memory.used --format=csv")).stdout)
    assert memory[0].memory_used_mib < 100  # the dead process freed its memory
    await ssh.close()


async def test_sftp_put_get_and_mode(sim, vm_id):
    ssh = await session(sim, vm_id)
    await ssh.run("mkdir -p /opt/llm")
    await ssh.put("/opt/llm/.env", b"HF_TOKEN=hf_secret\n", 0o600)
    assert (await ssh.run("stat -c %a /opt/llm/.env")).stdout == "600\n"
    assert await ssh.get("/opt/llm/.env") == b"HF_TOKEN=hf_secret\n"
    assert (await ssh.run("cat /opt/llm/.env")).stdout == "HF_TOKEN=hf_secret\n"
    assert (await ssh.run("test -f /opt/llm/.env")).exit_status == 0
    assert (await ssh.run("test -f /opt/llm/missing")).exit_status == 1
    await ssh.put("/opt/llm/.env", b"HF_TOKEN=hf_rotated\n", 0o600)  # replaces in one rename
    assert (await ssh.run("cat /opt/llm/.env")).stdout == "HF_TOKEN=hf_rotated\n"
    assert ".tmp" not in (await ssh.run("ls -a /opt/llm")).stdout  # no half-written upload left behind
    await ssh.close()


async def test_unknown_command_answers_127(sim, vm_id):
    ssh = await session(sim, vm_id)
    result = await ssh.run("frobnicate --now")
    assert result.exit_status == 127
    assert result.stderr == "bash: frobnicate: command not found\n"
    chained = await ssh.run("sh -c 'echo one && frobnicate; echo two'")
    assert chained.stdout == "one\ntwo\n" and chained.exit_status == 0
    await ssh.close()


async def test_vm_files_never_touch_the_disk(sim, vm_id, tmp_path: Path):
    marker = f"marker-{os.getpid()}-{time.time_ns()}".encode()
    temp_root = Path(tempfile.gettempdir())
    before_tmp = set(temp_root.iterdir())
    before_here = sorted(p for p in tmp_path.rglob("*"))
    ssh = await session(sim, vm_id)
    await ssh.put("/root/probe.bin", marker, 0o600)
    assert (await ssh.run("cat /root/probe.bin")).stdout.encode() == marker
    await ssh.close()
    assert sorted(p for p in tmp_path.rglob("*")) == before_here
    for entry in set(temp_root.iterdir()) - before_tmp:  # others may write to /tmp: just not our bytes
        if entry.is_file() and entry.stat().st_size < 1 << 20:
            assert marker not in entry.read_bytes()
    assert marker in sim.vm(vm_id).files.read("/root/probe.bin")
