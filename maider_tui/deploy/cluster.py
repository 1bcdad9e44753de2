"""A session over several VMs: each node's docker-compose.yml, for vLLM on a Ray cluster. Pure: no I/O.

The layout follows vLLM's multi-node serving (its `examples/online_serving/run_cluster.sh`): every
node runs the vLLM image with host networking, the GPUs, the Hugging Face cache and `VLLM_HOST_IP`
set to its own VPC address; the head starts `ray start --head`, each worker `ray start --address`;
once Ray counts every GPU, the head runs `vllm serve` with TP = GPUs per node, PP = nodes and the Ray
executor. NCCL and Gloo are pinned to the VPC interface, so their traffic never takes the public one.

Each node first fetches the model's files into its own cache (each pipeline stage loads its layers
from its own disk), all nodes at once, while the VMs wait for each other.

The head's service keeps the single-VM name `vllm`, so readiness, logs, healing and the dashboard
read it as they read one VM's; workers run `ray-worker`. Nothing listens on a public address: vLLM
binds 127.0.0.1 (the app reaches it over SSH), Ray and NCCL are let in by ufw from the subnet only
(deploy/cloud_init.PrivateNetwork), and Ray's dashboard is off.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any

from maider_tui.deploy.cloud_init import PrivateNetwork, block_dumper
from maider_tui.deploy.compose import (CONTAINER_PORT, HEALTH_START_PERIOD, LLM_DIR, ComposeOptions,
                                       vllm_command, vllm_environment)
from maider_tui.models import VllmConfig

VPC_INTERFACE = "eth1"  # the create call lists the public interface first (eth0), the VPC one second
RAY_PORT = 6379
HEAD_SERVICE = "vllm"
WORKER_SERVICE = "ray-worker"
WAIT_LINE = "maider: waiting for the Ray cluster"  # the head's log says it while workers join


@dataclass(frozen=True)
class Node:
    index: int  # 0 is the head
    address: str  # its VPC address
    gpus: int

    @property
    def role(self) -> str:
        return "head" if self.index == 0 else "worker"


@dataclass(frozen=True)
class ClusterLayout:
    """The session's nodes in order (the head first) and the VPC subnet they share."""

    nodes: tuple[Node, ...]
    subnet: str

    def __post_init__(self) -> None:
        if len(self.nodes) < 2:
            raise ValueError("a cluster has a head and at least one worker")
        if [n.index for n in self.nodes] != list(range(len(self.nodes))):
            raise ValueError("nodes are numbered 0 (the head), 1, 2 ... in order")
        if len({n.gpus for n in self.nodes}) != 1:
            raise ValueError("every node of a cluster has the same GPUs (one plan)")

    @property
    def head(self) -> Node:
        return self.nodes[0]

    @property
    def total_gpus(self) -> int:
        return sum(n.gpus for n in self.nodes)

    @property
    def private_network(self) -> PrivateNetwork:
        return PrivateNetwork(VPC_INTERFACE, self.subnet)


def cluster_config(config: VllmConfig, layout: ClusterLayout) -> VllmConfig:
    """The config a cluster serves: TP within a node, PP across nodes, Ray as the executor, and the
    API on loopback (host networking has no port publishing to bind it there)."""
    extra, args = [], list(config.extra_args)
    while args:  # drop our own flags (and their values) if a cluster config comes round again
        arg = args.pop(0)
        if arg in ("--distributed-executor-backend", "--host"):
            args = args[1:]
        else:
            extra.append(arg)
    extra += ["--distributed-executor-backend", "ray", "--host", "127.0.0.1"]
    return config.replace(tensor_parallel_size=min(config.tensor_parallel_size, layout.head.gpus),
                          pipeline_parallel_size=len(layout.nodes), extra_args=tuple(extra))


def node_environment(node: Node, config: VllmConfig, options: ComposeOptions) -> dict[str, str]:
    """A node's container environment: vLLM's own, then this node's address and the VPC interface."""
    env = vllm_environment(config, options)
    env.update({
        "VLLM_HOST_IP": node.address,
        "NCCL_SOCKET_IFNAME": VPC_INTERFACE,
        "GLOO_SOCKET_IFNAME": VPC_INTERFACE,
        "NCCL_IB_DISABLE": "1",  # no InfiniBand between Linode VMs
    })
    return env


def fetch_line(model: str) -> str:
    """Fetch the model's files into this node's cache (the token, if any, comes from .env)."""
    code = f"from huggingface_hub import snapshot_download; snapshot_download({json.dumps(model)})"
    return f"python3 -c {shlex.quote(code)}"


def head_script(config: VllmConfig, layout: ClusterLayout) -> str:
    """The head's shell script: fetch, start Ray's head, wait for every GPU, then serve."""
    head, gpus = layout.head, layout.total_gpus
    check = ('import ray, sys; ray.init(address="auto", logging_level="ERROR"); '
             f'sys.exit(0 if ray.cluster_resources().get("GPU", 0) >= {gpus} else 1)')
    return "\n".join([
        "set -e",
        fetch_line(config.model),
        f"ray start --head --port={RAY_PORT} --node-ip-address={head.address} --num-gpus={head.gpus} "
        "--include-dashboard=false --disable-usage-stats",
        f"until python3 -c {shlex.quote(check)}; do echo '{WAIT_LINE}: {gpus} GPUs'; sleep 5; done",
        "exec vllm serve " + shlex.join(vllm_command(config)),
    ])


def worker_script(config: VllmConfig, node: Node, layout: ClusterLayout) -> str:
    """A worker's shell script: fetch, then join the head's Ray cluster and stay in the foreground."""
    return "\n".join([
        "set -e",
        fetch_line(config.model),
        f"exec ray start --block --address={layout.head.address}:{RAY_PORT} --node-ip-address={node.address} "
        f"--num-gpus={node.gpus} --disable-usage-stats",
    ])


def render_node(config: VllmConfig, node: Node, layout: ClusterLayout, options: ComposeOptions | None = None) -> str:
    """The docker-compose.yml of one node (`config` as `cluster_config` gives it). No token in it."""
    import yaml

    options = options or ComposeOptions()
    script = head_script(config, layout) if node.role == "head" else worker_script(config, node, layout)
    service: dict[str, Any] = {
        "image": options.vllm_image,
        "entrypoint": ["/bin/bash", "-c"],
        "command": [script],
        "env_file": [".env"],
        "environment": node_environment(node, config, options),
        # Ray and NCCL open many ports between the nodes; ufw admits the subnet only.
        "network_mode": "host",
        "ipc": "host",
        "shm_size": "10.24gb",  # run_cluster.sh's figure: Ray's object store lives in /dev/shm
        "restart": "unless-stopped",
        "deploy": {"resources": {"reservations": {"devices": [
            {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]},
        ]}}},
    }
    if options.enable_hf_cache:
        service["volumes"] = [f"{LLM_DIR}/hf-cache:/root/.cache/huggingface",
                              f"{LLM_DIR}/vllm-cache:/root/.cache/vllm"]
    if node.role == "head" and options.enable_healthchecks:
        probe = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{CONTAINER_PORT}/health', timeout=5)"
        service["healthcheck"] = {"test": ["CMD", "python3", "-c", probe], "interval": "30s", "timeout": "10s",
                                  "retries": 5, "start_period": HEALTH_START_PERIOD}
    name = HEAD_SERVICE if node.role == "head" else WORKER_SERVICE
    header = (f"# Written by maider-tui: node {node.index} ({node.role}) of {len(layout.nodes)}, "
              f"{node.address} on the session's VPC.\n"
              "# The Hugging Face token is in .env (mode 0600) beside this file, never here.\n")
    body = yaml.dump({"services": {name: service}}, Dumper=block_dumper(), sort_keys=False, width=4096)
    return header + body
