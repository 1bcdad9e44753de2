"""`ray start` in a simulated container: a head registers its cluster, a worker joins one (or cannot).

The head's address (`--node-ip-address`) must be this VM's own and equal the container's `VLLM_HOST_IP`.
A worker reaches the head at `--address=IP:PORT` only from a VM in the head's VPC, while the head's
container runs, when NCCL_SOCKET_IFNAME / GLOO_SOCKET_IFNAME name an interface the VM has, and unless
the `vpc_blocked` fault drops the VPC's traffic; else it logs Ray's "Unable to connect to GCS" every 5 s
for a minute and exits 1. With `--block` the command stays in the foreground (the container's main
process) until the container stops, or exits 1 when the head goes away.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from maider_tui.sim import ray

if TYPE_CHECKING:
    from maider_tui.sim.docker import Container, DockerEngine
    from maider_tui.sim.vm import SimVm

START_S = 3.0  # sim seconds for the GCS, raylet and object store to come up
HEAD_LOST_S = 10.0  # a worker notices its head's GCS is gone (Ray waits longer; the sim keeps tests short)


def parse_flags(args: list[str]) -> dict[str, str]:
    """`--flag=value`, `--flag value` and bare switches (value "")."""
    flags: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("--"):
            continue
        name, eq, value = arg[2:].partition("=")
        if not eq and i < len(args) and not args[i].startswith("--") and name not in ("head", "block"):
            value, i = args[i], i + 1
        flags[name.replace("_", "-")] = value
    return flags


async def ray_start(engine: DockerEngine, c: Container, args: list[str], log: Callable[..., None]) -> int:
    vm, env = engine.vm, c.service.env
    flags = parse_flags(args)
    own = vm.world.vpcs.address_of(vm.instance.id) or vm.instance.ipv4[0]
    address = flags.get("node-ip-address") or env.get("VLLM_HOST_IP") or own
    mine = ray.vm_addresses(vm)
    bad = address if address not in mine else env.get("VLLM_HOST_IP", address)
    if bad != address or address not in mine:
        log(ray.cli_line(vm, "INFO", "scripts.py:865", f"Local node IP: {address}"), ray.ip_mismatch(vm, bad),
            f"ConnectionError: {bad} is not this node's Ray address (the node's addresses: "
            f"{', '.join(sorted(mine))}; --node-ip-address and VLLM_HOST_IP must name the same one).")
        return 1
    gpus = _gpus(vm, c, flags)
    if gpus is None:
        log(f"ray: error: --num-gpus: invalid value '{flags['num-gpus']}'")
        return 2
    node = ray.RayNode(vm, c, address, gpus, ray.node_id(vm, c))
    block = "block" in flags
    if "head" in flags:
        port = int(flags.get("port") or ray.DEFAULT_PORT)
        vpc = vm.world.vpcs.vpc_of(vm.instance.id)
        if vm.world.ray.find(vpc, address, port) is not None:
            log(f"ConnectionError: Ray is trying to start at {address}:{port}, but is already running at "
                f"{address}:{port}. Please specify a different port using the `--port` flag of `ray start` command.")
            return 1
        await vm.sleep(START_S)
        vm.world.ray.add(ray.RayCluster(vpc, port, node))
        log(*ray.started_lines(vm, address, port, head=True, block=block))
        return await _block(vm, c, None, log) if block else 0
    head = flags.get("address", "")
    if not head:
        log(ray.NO_INSTANCE)
        return 1
    host, _, port_text = head.rpartition(":") if ":" in head else (head, "", str(ray.DEFAULT_PORT))
    log(ray.cli_line(vm, "INFO", "scripts.py:1004", f"Local node IP: {address}"))
    for _attempt in range(ray.JOIN_ATTEMPTS):
        cluster = _reachable(vm, c, host, int(port_text) if port_text.isdigit() else ray.DEFAULT_PORT)
        if cluster is not None:
            await vm.sleep(START_S)
            cluster.workers.append(node)
            log(*ray.started_lines(vm, address, cluster.port, head=False, block=block))
            return await _block(vm, c, cluster, log) if block else 0
        await vm.sleep(ray.JOIN_RETRY_S)
        log(*ray.unreachable(vm, head))
    log(*ray.gave_up(vm))
    return 1


def _gpus(vm: SimVm, c: Container, flags: dict[str, str]) -> int | None:
    visible = vm.gpus.count if c.service.gpus is None else min(c.service.gpus, vm.gpus.count)
    if "num-gpus" not in flags:
        return visible
    try:
        return int(float(flags["num-gpus"]))
    except ValueError:
        return None


def _reachable(vm: SimVm, c: Container, host: str, port: int) -> ray.RayCluster | None:
    """The head's cluster, if this node can reach it over the VPC with the interfaces it was told to use."""
    env = c.service.env
    for name in ("NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME"):
        wanted = [i.strip().lstrip("=^") for i in env.get(name, "").split(",") if i.strip()]
        if any(i not in ray.interfaces(vm) for i in wanted):
            return None
    vpc = vm.world.vpcs.vpc_of(vm.instance.id)
    if vpc is None or vm.faults.vpc_blocked:
        return None
    return vm.world.ray.find(vpc, host, port)


async def _block(vm: SimVm, c: Container, cluster: ray.RayCluster | None, log: Callable[..., None]) -> int:
    """`--block`: Ray's processes stay in the foreground; a worker ends when its head is gone."""
    while True:
        await vm.sleep(1.0)
        if cluster is not None and not cluster.head.alive():
            await vm.sleep(HEAD_LOST_S)
            log(*ray.head_lost(vm))
            return 1
