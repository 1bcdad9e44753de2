"""One sim VM running `bash -c` node scripts: set -e, Ray's head refusing an address that is not its own,
and vLLM refusing a world size the GPUs it can use cannot hold (with and without the Ray executor)."""

from __future__ import annotations

import pytest
import yaml

from maider_tui.cloud.base import CreateSpec, VpcJoin
from maider_tui.cloud.vpcs import node_address
from maider_tui.deploy.cluster import ClusterLayout, Node, cluster_config, render_node
from maider_tui.deploy.compose import COMPOSE_PATH, ENV_PATH, env_file_text
from maider_tui.remote.ssh import SshSession
from maider_tui.sim import SimCloud
from tests.integration.simfix import module_sim
from tests.integration.test_destroy_recover import make_provider
from tests.integration.test_sim_ray import CLIENT, COMPOSE, FOUR_GPUS, HOST, PLAN, REGION, connect, until

sim, clean_faults = module_sim(seed=38)


@pytest.fixture(scope="module")
def node(sim: SimCloud):
    """A four-GPU VM alone in a VPC, at node 0's address, with the head's compose as a template."""
    import asyncio

    async def make() -> tuple[int, str]:
        provider = make_provider(sim)
        network = await provider.vpcs.create("scripts", REGION, "")
        address = node_address(network.cidr, 0)
        user_data = "#cloud-config\n" + yaml.safe_dump(
            {"ssh_keys": {"ed25519_private": HOST.private_pem, "ed25519_public": HOST.public_line}})
        vm = await provider.create(CreateSpec(label="scripts-0", region=REGION, type=FOUR_GPUS,
                                              image="linode/ubuntu24.04", authorized_keys=[CLIENT.public_line],
                                              user_data=user_data, vpc=VpcJoin(network.subnet_id, address)))
        layout = ClusterLayout((Node(0, address, 4), Node(1, node_address(network.cidr, 1), 4)), network.cidr)
        return vm.id, render_node(cluster_config(PLAN.report.to_vllm_config(), layout), layout.head, layout)

    return asyncio.run(make())


async def run_script(sim: SimCloud, node: tuple[int, str], edit) -> tuple[int, str]:  # noqa: ANN001
    """Recreate the head's service with its script (and environment) changed by `edit(service)`; wait
    for the container to exit; returns (exit code, log)."""
    vm_id, template = node
    doc = yaml.safe_load(template)
    edit(doc["services"]["vllm"])
    ssh: SshSession = await connect(sim, vm_id)
    try:
        assert (await ssh.run("cloud-init status --wait", timeout=30)).ok
        await ssh.put(COMPOSE_PATH, yaml.safe_dump(doc).encode(), 0o644)
        await ssh.put(ENV_PATH, env_file_text(None).encode(), 0o600)
        assert (await ssh.run(f"{COMPOSE} up -d --force-recreate")).ok

        async def exited() -> bool:
            out = (await ssh.run(f"{COMPOSE} ps -a --format '{{{{.State}}}}'")).stdout
            return out.strip() == "exited"

        await until(exited, "the container exiting")
        code = (await ssh.run(f"{COMPOSE} ps -a --format '{{{{.ExitCode}}}}'")).stdout.strip()
        return int(code), (await ssh.run(f"{COMPOSE} logs --no-log-prefix vllm")).stdout
    finally:
        await ssh.close()


def script(*lines: str):  # noqa: ANN201
    def edit(service: dict) -> None:
        service["command"] = ["\n".join(lines)]
    return edit


async def test_set_e_ends_the_script_at_the_first_failing_line(sim, node):
    code, log = await run_script(sim, node, script("set -e", "echo first", "false", "echo never"))
    assert (code, log) == (1, "first\n")
    code, log = await run_script(sim, node, script("echo first", "false", "echo reached"))
    assert (code, log) == (0, "first\nreached\n")
    code, log = await run_script(sim, node, script("set -e", "nvcc --version", "echo never"))
    assert code == 127 and "nvcc: command not found" in log and "never" not in log


async def test_a_head_whose_address_is_not_its_own_fails_like_ray(sim, node):
    def elsewhere(service: dict) -> None:
        service["environment"]["VLLM_HOST_IP"] = "10.42.0.9"

    code, log = await run_script(sim, node, elsewhere)
    assert code == 1
    assert "This node has an IP address of 10.42.0.9, while we can not find the matched Raylet address" in log
    assert "Initializing a V1 LLM engine" not in log


def serve_at_once(*, ray_flag: bool):  # noqa: ANN201
    """The head's script without the wait for every GPU (and, optionally, without the Ray executor)."""
    def edit(service: dict) -> None:
        lines = [line for line in service["command"][0].splitlines() if not line.startswith("until ")]
        if not ray_flag:
            lines[-1] = lines[-1].replace(" --distributed-executor-backend ray", "")
        service["command"] = ["\n".join(lines)]
    return edit


async def test_more_ranks_than_the_clusters_gpus_fail_in_the_placement_group(sim, node):
    code, log = await run_script(sim, node, serve_at_once(ray_flag=True))
    assert code == 1
    assert "Connecting to existing Ray cluster at address: 10.42.0.2:6379..." in log
    assert ("ValueError: The number of required GPUs exceeds the total number of available GPUs in the placement "
            "group.") in log


async def test_without_the_ray_executor_vllm_counts_this_vms_gpus_only(sim, node):
    code, log = await run_script(sim, node, serve_at_once(ray_flag=False))
    assert code == 1
    assert "World size (8) is larger than the number of available GPUs (4) in this node" in log
    assert "Connecting to existing Ray cluster" not in log
