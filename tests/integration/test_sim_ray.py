"""A multi-VM session's nodes on the simulated cloud: Ray's head and workers in each VM's docker, the
cluster they form over the VPC, vLLM served across it, and what happens when a node cannot join or goes."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
import yaml

from maider_tui.catalog.cluster import fit_nodes
from maider_tui.cloud.base import CreateSpec, VpcJoin
from maider_tui.cloud.vpcs import node_address
from maider_tui.deploy.cluster import WAIT_LINE, ClusterLayout, Node, cluster_config, render_node
from maider_tui.deploy.compose import COMPOSE_PATH, ENV_PATH, env_file_text
from maider_tui.models import VllmConfig
from maider_tui.remote.ssh import SshSession, generate_keypair
from maider_tui.sim import SimCloud
from tests.integration.simfix import ssh_when_up
from tests.integration.simfix import module_sim
from tests.integration.test_destroy_recover import make_provider

sim, clean_faults = module_sim(seed=37)
HOST = generate_keypair("ray-host")
CLIENT = generate_keypair("ray-client")
MODEL = "meta-llama/Llama-3.1-70B-Instruct"
FOUR_GPUS = "g1-gpu-rtx6000-4"
REGION = "us-east"
COMPOSE = f"docker compose -f {COMPOSE_PATH}"
PLAN = fit_nodes(MODEL, FOUR_GPUS, 2, max_model_len=32768)


@dataclass
class Cluster:
    ids: list[int]
    ssh: list[SshSession]
    layout: ClusterLayout
    config: VllmConfig

    async def close(self) -> None:
        for ssh in self.ssh:
            await ssh.close()


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < end, f"never happened: {what}"
        await asyncio.sleep(0.05)


async def connect(sim: SimCloud, vm_id: int) -> SshSession:
    return await ssh_when_up(sim.ssh_address(vm_id), CLIENT.private_pem, HOST.public_line)


async def make_cluster(sim: SimCloud, name: str, *, env: dict[str, str] | None = None, up: bool = True) -> Cluster:
    """Two VMs of four GPUs in one VPC, each with its node's compose and .env, `up -d` on each
    (the head first). `env` overrides the worker's environment."""
    provider = make_provider(sim)
    network = await provider.vpcs.create(name, REGION, f"maider-tui session {name}")
    user_data = "#cloud-config\n" + yaml.safe_dump(
        {"ssh_keys": {"ed25519_private": HOST.private_pem, "ed25519_public": HOST.public_line}})
    layout = ClusterLayout(tuple(Node(i, node_address(network.cidr, i), 4) for i in range(2)), network.cidr)
    config = cluster_config(PLAN.report.to_vllm_config(), layout)
    ids = []
    for node in layout.nodes:
        vm = await provider.create(CreateSpec(label=f"{name}-{node.index}", region=REGION, type=FOUR_GPUS,
                                              image="linode/ubuntu24.04", authorized_keys=[CLIENT.public_line],
                                              user_data=user_data, vpc=VpcJoin(network.subnet_id, node.address)))
        ids.append(vm.id)
    sessions = [await connect(sim, i) for i in ids]
    for ssh, node in zip(sessions, layout.nodes):
        compose = render_node(config, node, layout)
        if node.role == "worker" and env:
            doc = yaml.safe_load(compose)
            doc["services"]["ray-worker"]["environment"].update(env)
            compose = yaml.safe_dump(doc)
        assert (await ssh.run("cloud-init status --wait", timeout=30)).ok
        await ssh.put(COMPOSE_PATH, compose.encode(), 0o644)
        await ssh.put(ENV_PATH, env_file_text(None).encode(), 0o600)
    if up:
        for ssh in sessions:
            result = await ssh.run(f"{COMPOSE} up -d")
            assert result.ok, result.stderr
    return Cluster(ids, sessions, layout, config)


async def logs(ssh: SshSession, service: str) -> str:
    return (await ssh.run(f"{COMPOSE} logs --no-log-prefix {service}")).stdout


async def healthy(ssh: SshSession) -> bool:
    out = (await ssh.run(f"{COMPOSE} ps -a --format '{{{{.Service}}}} {{{{.State}}}} {{{{.Health}}}}'")).stdout
    return "vllm running healthy" in out


async def gpu_memory(ssh: SshSession) -> list[int]:
    out = (await ssh.run("nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits")).stdout
    return [int(v) for v in out.split()]


async def test_two_vms_form_one_ray_cluster_and_serve_the_model_across_it(sim: SimCloud):
    cluster = await make_cluster(sim, "ray-serve")
    head, worker = cluster.ssh
    try:
        async def running() -> bool:  # the image pulled: the model downloads, Ray is not started yet
            return (await head.run(f"{COMPOSE} ps --format '{{{{.State}}}}'")).stdout.strip() == "running"

        await until(running, "the head's container running")
        before = await head.run(f"{COMPOSE} exec -T vllm ray status")
        assert before.exit_status == 1 and "Could not find any running Ray instance" in before.stderr
        await until(lambda: healthy(head), "the head's vLLM healthy")

        for ssh, service in ((head, "vllm"), (worker, "ray-worker")):
            status = await ssh.run(f"{COMPOSE} exec -T {service} ray status")
            assert status.ok, status.stderr
            text = status.stdout
            assert text.startswith("======== Autoscaler status: ")
            active = text.split("Active:\n")[1].split("Pending:")[0]
            assert len(re.findall(r"^ 1 node_[0-9a-f]{56}$", active, re.M)) == 2
            assert "\nResources\n" in text and re.search(r"^ 8\.0/8\.0 GPU$", text, re.M)

        head_log = await logs(head, "vllm")
        assert "Ray runtime started." in head_log and "ray start --address='10.42.0.2:6379'" in head_log
        assert "Connecting to existing Ray cluster at address: 10.42.0.2:6379..." in head_log
        assert "tensor_parallel_size=4, pipeline_parallel_size=2" in head_log
        assert "(RayWorkerWrapper pid=" in head_log and "ip=10.42.0.3)" in head_log
        assert "Ray runtime started." in await logs(worker, "ray-worker")
        for vm_id in cluster.ids:  # each node downloaded the model for itself
            assert MODEL in sim.vm(vm_id).downloaded

        # Every GPU of both VMs holds a stage's share: the planner's per-GPU figure, within its budget.
        for ssh in cluster.ssh:
            used = await gpu_memory(ssh)
            assert len(used) == 4
            assert all(u / 1024 >= PLAN.report.weights_per_gpu_gb for u in used), used
            assert all(u / 1024 <= PLAN.report.usable_gb + 0.5 for u in used), used

        local = await head.forward(8000)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{local}", timeout=10) as http:
            models = (await http.get("/v1/models")).json()
            assert [m["id"] for m in models["data"]] == [cluster.config.served_model_name or MODEL]
            reply = await http.post("/v1/chat/completions", json={
                "model": models["data"][0]["id"], "max_tokens": 8,
                "messages": [{"role": "user", "content": "hello"}]})
            assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"]

        # The head goes: the worker's raylet loses the GCS and `ray start --block` ends non-zero.
        assert (await head.run(f"{COMPOSE} down")).ok
        assert max(await gpu_memory(worker)) < 64  # the head's Ray actors on it are gone

        async def worker_exited() -> bool:
            out = (await worker.run(f"{COMPOSE} ps -a --format '{{{{.State}}}} {{{{.ExitCode}}}}'")).stdout
            return out.strip() == "exited 1"

        await until(worker_exited, "the worker ending with its head")
        assert "Failed to connect to GCS within 60 seconds" in await logs(worker, "ray-worker")
    finally:
        await cluster.close()


@pytest.mark.parametrize("why", ["wrong-interface", "vpc-blocked"])
async def test_a_worker_that_cannot_reach_the_head_gives_up_and_the_head_keeps_waiting(sim: SimCloud, why: str):
    env = {"NCCL_SOCKET_IFNAME": "ens5", "GLOO_SOCKET_IFNAME": "ens5"} if why == "wrong-interface" else None
    sim.faults.vpc_blocked = why == "vpc-blocked"
    cluster = await make_cluster(sim, f"ray-{why}", env=env)
    head, worker = cluster.ssh
    try:
        async def worker_exited() -> bool:
            out = (await worker.run(f"{COMPOSE} ps -a --format '{{{{.State}}}} {{{{.ExitCode}}}}'")).stdout
            return out.strip() == "exited 1"

        await until(worker_exited, "the worker giving up")
        worker_log = await logs(worker, "ray-worker")
        assert "Unable to connect to GCS (ray head) at 10.42.0.2:6379" in worker_log
        assert "(2) this node can reach the specified address" in worker_log
        assert "Failed to get cluster ID from GCS server" in worker_log
        head_log = await logs(head, "vllm")
        assert f"{WAIT_LINE}: 8 GPUs" in head_log and "Ray runtime started." in head_log
        assert "Initializing a V1 LLM engine" not in head_log
        status = await head.run(f"{COMPOSE} exec -T vllm ray status")
        assert re.search(r"^ 0\.0/4\.0 GPU$", status.stdout, re.M), status.stdout
        assert not await healthy(head)
    finally:
        await cluster.close()


VERB = {"container-stopped": "stop", "container-restarted": "restart"}


@pytest.mark.parametrize("loss", ["vm-deleted", *VERB])
async def test_losing_the_worker_node_kills_the_heads_engine(sim: SimCloud, loss: str):
    cluster = await make_cluster(sim, f"ray-{loss}")
    head, worker = cluster.ssh
    try:
        await until(lambda: healthy(head), "the head's vLLM healthy")
        local = await head.forward(8000)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{local}", timeout=5) as http:
            assert (await http.get("/health")).status_code == 200
            if loss == "vm-deleted":
                await make_provider(sim).destroy(cluster.ids[1])
            else:  # a restarted container is a new Ray node: the stage the engine had is gone all the same
                assert (await worker.run(f"{COMPOSE} {VERB[loss]}")).ok

            async def exited() -> bool:
                out = (await head.run(f"{COMPOSE} ps -a --format '{{{{.State}}}} {{{{.ExitCode}}}}'")).stdout
                return out.strip() == "exited 1"

            await until(exited, "the head's container exiting")
            with pytest.raises(httpx.HTTPError):
                (await http.get("/health")).raise_for_status()
        head_log = await logs(head, "vllm")
        assert "ray.exceptions.ActorDiedError: The actor died unexpectedly before finishing this task." in head_log
        assert "The actor is dead because its node has died." in head_log
        assert "vllm.v1.engine.exceptions.EngineDeadError" in head_log
        assert max(await gpu_memory(head)) < 64  # the engine's memory is freed
    finally:
        await cluster.close()


async def test_the_worker_lost_fault_deletes_the_last_stages_vm_and_the_engine_dies(sim: SimCloud):
    sim.faults.ray_worker_lost_after_s = 30
    cluster = await make_cluster(sim, "ray-fault")
    head = cluster.ssh[0]
    try:
        async def exited() -> bool:
            out = (await head.run(f"{COMPOSE} ps -a --format '{{{{.State}}}} {{{{.ExitCode}}}}'")).stdout
            return out.strip() == "exited 1"

        await until(exited, "the head's container exiting")
        assert sim.world.get(cluster.ids[1]) is None and sim.world.vanished >= 1
        head_log = await logs(head, "vllm")
        assert "Uvicorn running on" in head_log and "EngineDeadError" in head_log
    finally:
        await cluster.close()
