"""A multi-VM session's node files: each compose valid, Ray and vLLM started as vLLM's multi-node docs do,
nothing public, the firewall open to the VPC only."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from maider_tui.catalog.cluster import fit_nodes
from maider_tui.deploy import cloud_init
from maider_tui.deploy.cluster import (HEAD_SERVICE, RAY_PORT, VPC_INTERFACE, WAIT_LINE, WORKER_SERVICE,
                                       ClusterLayout, Node, cluster_config, head_script, render_node,
                                       worker_script)
from maider_tui.deploy.compose import ComposeOptions
from maider_tui.remote.ssh import generate_keypair
from tests.unit.test_compose import SCHEMA

LAYOUT = ClusterLayout((Node(0, "10.42.0.2", 4), Node(1, "10.42.0.3", 4)), "10.42.0.0/24")
PLAN = fit_nodes("meta-llama/Llama-3.1-70B-Instruct", "g1-gpu-rtx6000-4", 2, max_model_len=32768)
CONFIG = cluster_config(PLAN.report.to_vllm_config(), LAYOUT)


def service(node: Node, options: ComposeOptions | None = None) -> tuple[str, dict]:
    [(name, body)] = yaml.safe_load(render_node(CONFIG, node, LAYOUT, options))["services"].items()
    return name, body


def test_the_served_config_splits_tp_within_and_pp_across_vms():
    assert (CONFIG.tensor_parallel_size, CONFIG.pipeline_parallel_size) == (4, 2)
    args = list(CONFIG.extra_args)
    assert args[args.index("--distributed-executor-backend") + 1] == "ray"
    assert args[args.index("--host") + 1] == "127.0.0.1"
    assert cluster_config(CONFIG, LAYOUT) == CONFIG  # applying it twice changes nothing


@pytest.mark.parametrize("node", LAYOUT.nodes, ids=["head", "worker"])
def test_each_nodes_compose_is_valid_against_the_compose_spec(node):
    if not SCHEMA.exists():
        pytest.skip("no compose JSON schema beside the repository")
    import jsonschema

    jsonschema.Draft7Validator(json.loads(SCHEMA.read_text())).validate(yaml.safe_load(render_node(CONFIG, node, LAYOUT)))


def test_the_head_waits_for_every_gpu_then_serves_with_ray():
    name, head = service(LAYOUT.head)
    assert name == HEAD_SERVICE and head["network_mode"] == "host" and "ports" not in head
    env = head["environment"]
    assert env["VLLM_HOST_IP"] == "10.42.0.2"
    assert env["NCCL_SOCKET_IFNAME"] == env["GLOO_SOCKET_IFNAME"] == VPC_INTERFACE and env["NCCL_IB_DISABLE"] == "1"
    lines = head["command"][0].splitlines()
    assert lines[0] == "set -e" and 'snapshot_download("meta-llama/Llama-3.1-70B-Instruct")' in lines[1]
    assert lines[2].startswith(f"ray start --head --port={RAY_PORT} --node-ip-address=10.42.0.2 --num-gpus=4")
    assert "--include-dashboard=false" in lines[2]
    assert lines[3].startswith("until ") and ">= 8 else 1" in lines[3] and WAIT_LINE in lines[3]
    assert lines[4].startswith("exec vllm serve meta-llama/Llama-3.1-70B-Instruct --tensor-parallel-size 4 "
                               "--pipeline-parallel-size 2")
    assert "healthcheck" in head


def test_a_worker_joins_the_heads_address_on_the_vpc_and_stays_up():
    name, worker = service(LAYOUT.nodes[1])
    assert name == WORKER_SERVICE and worker["environment"]["VLLM_HOST_IP"] == "10.42.0.3"
    last = worker["command"][0].splitlines()[-1]
    assert last == ("exec ray start --block --address=10.42.0.2:6379 --node-ip-address=10.42.0.3 --num-gpus=4 "
                    "--disable-usage-stats")
    assert "healthcheck" not in worker and "vllm serve" not in worker["command"][0]


@pytest.mark.parametrize("node", LAYOUT.nodes, ids=["head", "worker"])
def test_each_script_is_valid_bash(node):
    script = head_script(CONFIG, LAYOUT) if node.role == "head" else worker_script(CONFIG, node, LAYOUT)
    assert subprocess.run(["bash", "-n", "-c", script], capture_output=True).returncode == 0


def test_no_token_and_no_public_listener_in_any_node_file():
    for node in LAYOUT.nodes:
        text = render_node(CONFIG, node, LAYOUT, ComposeOptions(enable_openwebui=True))
        assert "hf_" not in text and "HF_TOKEN" not in text
        body = yaml.safe_load(text)["services"]
        assert "open-webui" not in body  # a cluster serves the API only
        assert all("ports" not in s for s in body.values())


def test_the_firewall_admits_the_vpc_subnet_on_its_interface_only():
    host = generate_keypair("host")
    lines = cloud_init.runcmd(private_network=LAYOUT.private_network)
    allow = f"ufw allow in on {VPC_INTERFACE} from 10.42.0.0/24"
    assert allow in lines and lines.index(allow) < lines.index("ufw --force enable")
    assert lines.index("ufw default deny incoming") < lines.index(allow)
    assert not any("ufw allow in on" in line for line in cloud_init.runcmd())
    text = cloud_init.render(host_key_private=host.private_pem, host_key_public=host.public_line,
                             private_network=LAYOUT.private_network)
    assert allow in text
    with pytest.raises(ValueError):
        cloud_init.PrivateNetwork("eth1", "8.8.8.0/24")
    with pytest.raises(ValueError):
        cloud_init.PrivateNetwork("eth1; rm -rf /", "10.0.0.0/24")


def test_a_layout_is_a_head_and_workers_of_one_plan():
    with pytest.raises(ValueError):
        ClusterLayout((Node(0, "10.42.0.2", 4),), "10.42.0.0/24")
    with pytest.raises(ValueError):
        ClusterLayout((Node(0, "10.42.0.2", 4), Node(1, "10.42.0.3", 2)), "10.42.0.0/24")
    assert LAYOUT.total_gpus == 8 and LAYOUT.head.role == "head"
