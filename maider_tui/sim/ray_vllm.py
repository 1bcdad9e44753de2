"""`vllm serve` on a Ray head: a start over the whole cluster, decided from the real flags, and its death.

With `--distributed-executor-backend ray` the world size (TP x PP) may span the cluster's GPUs; more ranks
than the cluster has fail in vLLM's placement group check ("The number of required GPUs exceeds the total
number of available GPUs in the placement group.", vllm-project/vllm#26028, #4655). Without the Ray
flag, vLLM counts this VM's GPUs only and refuses a larger world size with its "World size (N) is larger
than the number of available GPUs" message. Otherwise the start is `startup_outcome`'s over the cluster's
GPUs, whose per-GPU memory is the fit planner's per-stage figure (weights and KV cache of one stage:
`catalog.sizes` with TP and PP, as `catalog.cluster.fit_nodes`), shown by every node's nvidia-smi; workers
log as Ray actors (`RayWorkerWrapper pid=N, ip=ADDR`). Decode speed is the plan's: one VM's at this TP,
less the links' share (`catalog.cluster.link_cost`).

Once serving, a worker node lost (its VM deleted, its container stopped) kills the engine as Ray and vLLM
do: Ray's ActorDiedError in the engine, vLLM's EngineDeadError in the API server, /health failing, and
the container exiting 1, within a few sim seconds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import time
from typing import TYPE_CHECKING

from maider_tui.catalog.cluster import link_cost
from maider_tui.models import VllmConfig
from maider_tui.sim import ray
from maider_tui.sim.vllm_behaviour import StartupOutcome, config_from_args, extra_option, startup_outcome
from maider_tui.sim.vllm_logs import API, ENGINE, VllmLog, engine_failure
from maider_tui.sim.vllm_server import SimVllmServer

if TYPE_CHECKING:
    from maider_tui.sim.docker import Container, DockerEngine
    from maider_tui.sim.vm import SimVm

NODE_DEATH_S = 5.0  # Ray marks a node dead after missed health checks; the engine's next step fails on it
SHUTDOWN_S = 2.0  # from EngineDeadError to the API server's exit
_WORKER = re.compile(r"^\(Worker_TP(\d+) pid=(\d+)\)")
_ENGINE_INIT = "Initializing a V1 LLM engine"
PLACEMENT = ("ValueError: The number of required GPUs exceeds the total number of available GPUs in the "
             "placement group.")


async def serve(engine: DockerEngine, c: Container, args: list[str]) -> int:
    """Run `vllm serve ARGS` in container `c` until it exits; returns its exit status."""
    vm, env = engine.vm, c.service.env
    try:
        config = config_from_args(args, env)
    except (ValueError, SystemExit) as exc:
        c.logs += ["usage: vllm serve [model_tag] [options]", f"vllm serve: error: {exc}"]
        return 2
    port = extra_option(config, "--port")
    c.listen_port = int(port) if port and port.isdigit() else 8000
    model, refusal = vm.world.hub.vllm_model(config.model, env)
    if vm.gpu_type is None or vm.gpu_type.family is None:
        c.logs.append("RuntimeError: Failed to infer device type")
        return 1
    local = vm.gpus.count if c.service.gpus is None else min(c.service.gpus, vm.gpus.count)
    cluster = vm.world.ray.of(c) if extra_option(config, "--distributed-executor-backend") == "ray" else None
    nodes = cluster.nodes() if cluster else []
    total = sum(n.gpus for n in nodes) if cluster else local
    world = config.tensor_parallel_size * config.pipeline_parallel_size
    outcome = startup_outcome(config, vm.gpu_type, model, faults=vm.faults, env=env,
                              gpus_visible=max(total, world) if cluster else local, started_at=time.time(),
                              hub_refusal=refusal)
    if cluster is not None:
        outcome = _on_ray(vm, outcome, cluster, nodes, config.tensor_parallel_size, world, total)
        if outcome.ok and model is not None:
            link = link_cost(model, config.pipeline_parallel_size - 1, outcome.decode_tok_s)
            decode = outcome.decode_tok_s * (1 - link.decode_penalty)
            outcome = dataclasses.replace(outcome, decode_tok_s=decode, prefill_tok_s=outcome.prefill_tok_s
                                          * decode / max(outcome.decode_tok_s, 1e-9))
    return await _play(engine, c, config, outcome, nodes or [ray.RayNode(vm, c, "", local, "")], cluster)


def _on_ray(vm: SimVm, outcome: StartupOutcome, cluster: ray.RayCluster, nodes: list[ray.RayNode], tp: int,
            world: int, total: int) -> StartupOutcome:
    """The outcome's log as a Ray start writes it, or the placement group failure."""
    lines, at = list(outcome.log_lines), list(outcome.line_at_s)
    cut = next((i + 1 for i, line in enumerate(lines) if _ENGINE_INIT in line), 0)
    if not cut:
        return outcome  # it failed before the engine, and so before Ray
    engine = f"({ENGINE}) "
    head = f"{cluster.head.address}:{cluster.port}"
    joined = [engine + ray.cli_line(vm, "INFO", "worker.py:1654", f"Connecting to existing Ray cluster at address: "
                                    f"{head}..."),
              engine + ray.cli_line(vm, "INFO", "worker.py:1832", "Connected to Ray cluster."),
              f"{engine}INFO {time.strftime('%m-%d %H:%M:%S', time.gmtime())} [ray_utils.py:345] No current "
              "placement group found. Creating a new placement group."]
    t = at[cut - 1]
    if world > total:
        log = VllmLog(time.time(), now=t + 1.0)
        engine_failure(log, [("v1/executor/ray_executor.py", 97, "_init_executor",
                              "initialize_ray_cluster(self.parallel_config)"),
                             ("v1/executor/ray_utils.py", 380, "initialize_ray_cluster", "raise ValueError(")],
                       [PLACEMENT], world, None)
        return dataclasses.replace(
            outcome, ok=False, kind="tensor_parallel", log_lines=tuple(lines[:cut] + joined + log.lines),
            line_at_s=tuple(at[:cut] + [t] * len(joined) + log.at_s), per_gpu_used_mib=(0,) * total,
            load_s=log.now, download_gb=0.0, evidence=PLACEMENT, kv_cache_tokens=0)

    def actor(line: str) -> str:
        match = _WORKER.match(line)
        if not match:
            return line
        node = nodes[min(int(match[1]) // tp, len(nodes) - 1)] if nodes else cluster.head
        where = "" if node is cluster.head else f", ip={node.address}"
        return f"(RayWorkerWrapper pid={match[2]}{where})" + line[match.end():]

    rest = [actor(line) for line in lines[cut:]]
    return dataclasses.replace(outcome, log_lines=tuple(lines[:cut] + joined + rest),
                               line_at_s=tuple(at[:cut] + [t] * len(joined) + at[cut:]))


async def _play(engine: DockerEngine, c: Container, config: VllmConfig, outcome: StartupOutcome,
                nodes: list[ray.RayNode], cluster: ray.RayCluster | None) -> int:
    """The start as time passes: download, weights into every node's GPUs, the log, then serve or exit."""
    vm = engine.vm
    timed = list(zip(outcome.line_at_s, outcome.log_lines))
    early = [line for at, line in timed if at <= 0]
    c.logs += early
    if outcome.download_gb and config.model not in vm.downloaded:
        from maider_tui.sim.docker import DOWNLOAD_GB_PER_S

        await vm.sleep(outcome.download_gb / DOWNLOAD_GB_PER_S)
        vm.downloaded.add(config.model)
    if cluster is not None and outcome.ok:
        cluster.gpus_used = sum(n.gpus for n in nodes)  # the placement group holds every GPU from engine init
    used, offset = list(outcome.per_gpu_used_mib), 0
    for node in nodes:
        node.vm.gpus.ramp_memory(used[offset:offset + node.gpus], node.vm.now(), outcome.load_s)
        offset += node.gpus
    started, clock = vm.now(), 0.0
    for at, line in timed[len(early):]:
        if at > clock:
            await vm.sleep(started + at - vm.now())
            clock = at
        if lost := _lost(nodes):  # a stage's node went while the engine started: its actors died with it
            c.logs += dead_engine(vm, lost[0])
            _release(nodes)
            return 1
        c.logs.append(line)
    await vm.sleep(started + outcome.load_s - vm.now())
    if not outcome.ok or _lost(nodes):
        if _lost(nodes):
            c.logs += dead_engine(vm, _lost(nodes)[0])
        _release(nodes)
        return 1
    server = SimVllmServer(config, outcome, seed=vm.seed)
    c.server = server
    c.real_port = await server.start("127.0.0.1", 0)
    c.health = "healthy"
    for node in nodes:
        node.vm.gpus.utilization = server.utilization
        node.vm.gpus.busy_gpus = node.gpus
    if cluster is None:
        while True:
            await vm.sleep(3600)
    lose_after = vm.faults.ray_worker_lost_after_s
    ready_at = vm.now()
    while not (lost := _lost(nodes)):
        await vm.sleep(1.0)
        if lose_after is not None and len(nodes) > 1 and vm.now() - ready_at >= lose_after:
            vm.world.vanish(nodes[-1].vm.instance.id)  # the fault: the last stage's VM is deleted
    await vm.sleep(NODE_DEATH_S)
    server.crash()  # /health answers 503 until the API server exits
    c.health = "unhealthy"
    c.logs += server.log_lines[:-4]  # the access log; the crash's own lines are replaced by Ray's
    c.server = None
    c.logs += dead_engine(vm, lost[0])
    await vm.sleep(SHUTDOWN_S)
    await server.stop()
    c.real_port = None
    c.logs += [f"({API}) INFO:     {line}" for line in ("Shutting down", "Waiting for application shutdown.",
                                                          "Application shutdown complete.",
                                                          "Finished server process [1]")]
    _release(nodes)
    return 1


def _lost(nodes: list[ray.RayNode]) -> list[ray.RayNode]:
    """The workers (every node but this head) that are gone."""
    return [n for n in nodes[1:] if not n.alive()]


def _release(nodes: list[ray.RayNode]) -> None:
    for node in nodes:
        node.vm.gpus.release(node.vm.now())


def dead_engine(vm: SimVm, node: ray.RayNode) -> list[str]:
    """The engine's end when a pipeline stage's node is gone: Ray's ActorDiedError, then EngineDeadError."""
    stamp = time.strftime("%m-%d %H:%M:%S", time.gmtime(vm.instance.created + vm.now()))
    actor = hashlib.blake2b(node.node_id.encode(), digest_size=16).hexdigest()

    def err(proc: str, src: str, text: str) -> str:
        return f"({proc}) ERROR {stamp} [{src}] {text}"

    body = ["EngineCore encountered a fatal error.", "Traceback (most recent call last):",
            '  File "/usr/local/lib/python3.12/dist-packages/vllm/v1/engine/core.py", line 701, in run_engine_core',
            "    engine_core.run_busy_loop()",
            '  File "/usr/local/lib/python3.12/dist-packages/vllm/v1/executor/ray_executor.py", line 408, in '
            "execute_model", "    return refs[0].get()",
            "ray.exceptions.ActorDiedError: The actor died unexpectedly before finishing this task.",
            "\tclass_name: RayWorkerWrapper", f"\tactor_id: {actor}", f"\tip: {node.address}",
            f"The actor is dead because its node has died. Node Id: {node.node_id}"]
    return ([err(ENGINE, "core.py:710", line) for line in body]
            + [err(API, "async_llm.py:480", "AsyncLLM output_handler failed."),
               err(API, "async_llm.py:480", "vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an "
                   "issue. See stack trace (above) for the root cause.")])
