"""Ray inside the simulated VMs' containers: a cluster per head, its nodes, and what `ray` prints.

`ray start --head` in a container registers a head at the VM's VPC address; `ray start --address`
joins the head found at that address from a VM in the same VPC, while the head's container runs.
A node belongs to the cluster as long as its container runs on a VM that still exists, so a worker
VM deleted or a worker container stopped leaves the cluster at once (the head's vLLM then dies,
see `ray_vllm.py`). Wording and layout are Ray 2.x's own, as public issues quote them:
`ray start` (ray-project/kuberay#3214, ray-project/ray#26477), a worker that cannot reach the GCS
(ray-project/ray#33427 and #37107, ModalMinds/MM-EUREKA#54), the IP mismatch (ray-project/ray#31264),
`ray status` (vllm-project/vllm#5948 with Ray 2.24, ray-project/ray#35411).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from maider_tui.sim.docker import Container
    from maider_tui.sim.vm import SimVm

DEFAULT_PORT = 6379
KNOWN_INTERFACES = ("eth0", "eth1", "lo")  # the public interface, the VPC one, loopback
JOIN_RETRY_S = 5.0  # a worker tries the GCS again every 5 s ...
JOIN_ATTEMPTS = 12  # ... for a minute, then gives up
NO_INSTANCE = ("ConnectionError: Could not find any running Ray instance. Please specify the one to connect to by "
               "setting `--address` flag or `RAY_ADDRESS` environment variable.")
_RULE = "-" * 63


@dataclass
class RayNode:
    """One node of a cluster: the VM and container it runs in, its address and GPUs."""

    vm: SimVm
    container: Container
    address: str
    gpus: int
    node_id: str
    since: float = -1.0  # the container's start this node belongs to (a restarted container is a new node)

    def __post_init__(self) -> None:
        if self.since < 0:
            self.since = self.container.started_s

    def alive(self) -> bool:
        return (self.container.state == "running" and self.container.started_s == self.since
                and not self.vm.stopped and self.vm.world.get(self.vm.instance.id) is not None)


@dataclass
class RayCluster:
    """A head and the workers that joined it."""

    vpc_id: int | None
    port: int
    head: RayNode
    workers: list[RayNode] = field(default_factory=list)
    gpus_used: int = 0  # GPUs a serving vLLM's placement group holds, as `ray status` counts them

    def nodes(self) -> list[RayNode]:
        """The live nodes, the head first (none once the head is gone)."""
        if not self.head.alive():
            return []
        return [self.head, *(w for w in self.workers if w.alive())]

    def gpus(self) -> int:
        return sum(n.gpus for n in self.nodes())

    def lost_workers(self) -> list[RayNode]:
        return [w for w in self.workers if not w.alive()]


class RayClusters:
    """Every Ray cluster in the simulated world, found by (VPC, head address, port)."""

    def __init__(self) -> None:
        self.clusters: list[RayCluster] = []

    def find(self, vpc_id: int | None, address: str, port: int) -> RayCluster | None:
        return next((c for c in self.clusters if (c.vpc_id, c.head.address, c.port) == (vpc_id, address, port)
                     and c.head.alive()), None)

    def of(self, container: Container) -> RayCluster | None:
        """The live cluster this container is a node of."""
        for cluster in self.clusters:
            if any(n.container is container for n in cluster.nodes()):
                return cluster
        return None

    def headed_by(self, container: Container) -> RayCluster | None:
        return next((c for c in self.clusters if c.head.container is container), None)

    def add(self, cluster: RayCluster) -> None:
        self.clusters = [c for c in self.clusters if c.head.alive()]
        self.clusters.append(cluster)

    def container_stopped(self, container: Container) -> None:
        """A container stopped: a head takes its cluster with it, and the vLLM workers on every node."""
        for each in self.clusters:
            each.workers = [w for w in each.workers if w.container is not container]
        cluster = self.headed_by(container)
        if cluster is None:
            return
        for worker in cluster.workers:
            if worker.alive():
                worker.vm.gpus.release(worker.vm.now())
        self.clusters.remove(cluster)


def node_id(vm: SimVm, container: Container) -> str:
    """Ray's node id: 28 random bytes, hex (here a hash, so a run is reproducible)."""
    seed = f"{vm.seed}:{vm.instance.id}:{container.id}:{container.started_s}"
    return hashlib.blake2b(seed.encode(), digest_size=28).hexdigest()


def vm_addresses(vm: SimVm) -> set[str]:
    own = vm.world.vpcs.address_of(vm.instance.id)
    return {*vm.instance.ipv4, "127.0.0.1", *([own] if own else [])}


def interfaces(vm: SimVm) -> set[str]:
    """The VM's network interfaces: eth1 only when it joined a VPC."""
    joined = vm.world.vpcs.address_of(vm.instance.id) is not None
    return {"eth0", "lo", *(["eth1"] if joined else [])}


# --- what Ray prints -------------------------------------------------------------------------------

def py_stamp(vm: SimVm) -> str:
    """Python logging's asctime, as Ray's CLI logs it: `2026-01-01 00:00:00,000`."""
    now = vm.instance.created + vm.now()  # the VM's clock runs at sim speed
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now)) + f",{int(now * 1000) % 1000:03d}"


def cli_line(vm: SimVm, level: str, src: str, text: str) -> str:
    return f"{py_stamp(vm)}\t{level} {src} -- {text}"


def core_line(vm: SimVm, level: str, src: str, text: str, pid: int = 1) -> str:
    """A line of Ray's C++ core (glog style): `[2026-01-01 00:00:00,000 W 1 1] file.h:151: text`."""
    return f"[{py_stamp(vm)} {level} {pid} {pid}] {src}: {text}"


def started_lines(vm: SimVm, address: str, port: int, *, head: bool, block: bool) -> list[str]:
    """What `ray start` prints once its processes are up (a worker printed its node IP already)."""
    lines = [cli_line(vm, "INFO", "scripts.py:865", f"Local node IP: {address}")] if head else []
    lines += [cli_line(vm, "SUCC", "scripts.py:902", "-" * 20),
             cli_line(vm, "SUCC", "scripts.py:903", "Ray runtime started."),
             cli_line(vm, "SUCC", "scripts.py:904", "-" * 20)]
    if head:
        lines += [cli_line(vm, "INFO", "scripts.py:906", "Next steps"),
                  cli_line(vm, "INFO", "scripts.py:909", "To add another node to this Ray cluster, run"),
                  cli_line(vm, "INFO", "scripts.py:912", f"  ray start --address='{address}:{port}'")]
    if block:
        lines += [cli_line(vm, "INFO", "scripts.py:1047", "--block"),
                  cli_line(vm, "INFO", "scripts.py:1048", "This command will now block forever until terminated by "
                           "a signal."),
                  cli_line(vm, "INFO", "scripts.py:1051", "Running subprocesses are monitored and a message will be "
                           "printed if any of them terminate unexpectedly. Subprocesses exit with SIGTERM will be "
                           "treated as graceful, thus NOT reported.")]
    return lines


def ip_mismatch(vm: SimVm, address: str) -> str:
    return core_line(vm, "I", "global_state_accessor.cc:357", (
        f"This node has an IP address of {address}, while we can not find the matched Raylet address. This maybe "
        "come from when you connect the Ray cluster with a different IP address or connect a container."))


def unreachable(vm: SimVm, head: str) -> list[str]:
    """One failed attempt to reach the head's GCS."""
    return [core_line(vm, "W", "gcs_rpc_client.h:151", f"Failed to connect to GCS at address {head} within 5 "
                      "seconds."),
            cli_line(vm, "WARNING", "utils.py:1401", (
                f"Unable to connect to GCS (ray head) at {head}. Check that (1) Ray with matching version started "
                "successfully at the specified address, (2) this node can reach the specified address, and (3) "
                "there is no firewall setting preventing access."))]


def gave_up(vm: SimVm) -> list[str]:
    return [core_line(vm, "W", "gcs_client.cc:183", "Failed to get cluster ID from GCS server: TimedOut: Timed out "
                      "while waiting for GCS to become available."),
            "ConnectionError: Failed to connect to GCS. Please check `gcs_server.out` for more details."]


def head_lost(vm: SimVm) -> list[str]:
    """A worker's `ray start --block` when the head's GCS went away."""
    return [core_line(vm, "E", "gcs_rpc_client.h:554", (
                "Failed to connect to GCS within 60 seconds. GCS may have been killed. It's either GCS is terminated "
                "by `ray stop` or is killed unexpectedly. If it is killed unexpectedly, see the log file "
                "gcs_server.out. https://docs.ray.io/en/master/ray-observability/user-guides/configure-logging.html"
                "#logging-directory-structure. The program will terminate.")),
            cli_line(vm, "ERROR", "scripts.py:1084", "Some Ray subprocesses exited unexpectedly:"),
            cli_line(vm, "ERROR", "scripts.py:1091", "  raylet [exit code=1]"),
            cli_line(vm, "ERROR", "scripts.py:1100", "Remaining processes will be killed.")]


def status_text(vm: SimVm, cluster: RayCluster) -> str:
    """`ray status` as Ray 2.x prints it for a cluster started by hand (no autoscaler node types)."""
    nodes = cluster.nodes()
    cpus = sum(n.vm.gpu_type.vcpus or 8 if n.vm.gpu_type else 8 for n in nodes)
    memory_gib = sum((n.vm.gpu_type.memory_mb or 32768 if n.vm.gpu_type else 32768) for n in nodes) / 1024 * 0.7
    store_gib = memory_gib * 0.3 / 0.7
    stamp = py_stamp(vm).replace(",", ".") + "000"
    lines = [f"======== Autoscaler status: {stamp} ========", "Node status", _RULE, "Active:",
             *(f" 1 node_{n.node_id}" for n in nodes), "Pending:", " (no pending nodes)", "Recent failures:",
             " (no failures)", "", "Resources", _RULE, "Usage:",
             f" 0.0/{float(cpus)} CPU", f" {float(cluster.gpus_used)}/{float(sum(n.gpus for n in nodes))} GPU",
             f" 0B/{memory_gib:.2f}GiB memory", f" 0B/{store_gib:.2f}GiB object_store_memory", "",
             "Demands:", " (no resource demands)"]
    return "\n".join(lines) + "\n"
