"""The simulated VM's Docker engine: Compose projects, containers and their lifecycle.

`docker compose up -d` reads the compose file the client uploaded, then each container runs in
the background: image pull, model download, then vLLM decides from its actual flags whether it
starts (`startup_outcome`), and a real `SimVllmServer` listens on a 127.0.0.1 port when it does.
The command line (`docker ...`) lives in `docker_cli.py`; this module is the daemon.
"""

from __future__ import annotations

import asyncio
import hashlib
import posixpath
import re
import shlex
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml
from aiohttp import web

from maider_tui.sim.node_script import run_script, script_of
from maider_tui.sim.vllm_behaviour import config_from_args, startup_outcome
from maider_tui.sim.vllm_server import SimVllmServer
from maider_tui.sim.webui import start_webui

if TYPE_CHECKING:
    from maider_tui.sim.vm import SimVm

IMAGE_PULL_S = {"vllm": 180.0, "webui": 60.0, "other": 20.0}
"""Sim seconds to pull and extract an image the VM does not have yet."""
DOWNLOAD_GB_PER_S = 0.2
WEBUI_START_S = 15.0
COMPOSE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
_VAR = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}|\$(\w+)")


class ComposeError(Exception):
    """A compose file Docker refuses; the message is what `docker compose` prints."""


@dataclass
class Service:
    """One service of a compose file, as the sim needs it."""

    name: str
    container_name: str
    image: str
    command: list[str]
    env: dict[str, str]
    ports: list[tuple[int, int]]  # (published on the VM, container port)
    restart: str
    gpus: int | None  # None: all of the VM's GPUs; 0: none
    spec: dict[str, Any]  # the service as written, to tell whether `up` must recreate it
    # Published port -> the VM address it listens on; Docker's default (no address) is every one.
    hosts: dict[int, str] = field(default_factory=dict)

    def exposed_ports(self) -> list[int]:
        """Published ports reachable from outside the VM (not on loopback): Docker bypasses ufw."""
        return [port for port, _ in self.ports if self.hosts.get(port, "0.0.0.0") not in LOOPBACK]

    @property
    def script(self) -> str | None:
        """The script of a `bash -c` entrypoint (a Ray node of a multi-VM session), else None."""
        return script_of(self.spec, self.command)

    @property
    def kind(self) -> str:
        if "vllm" in self.image or self.name == "vllm":
            return "vllm"
        return "webui" if "open-webui" in self.image or self.name == "open-webui" else "other"


@dataclass
class Container:
    """A container on the VM. Times are the VM's sim seconds."""

    service: Service
    project: str
    id: str
    created_s: float
    state: str = "created"  # created, running, exited
    health: str = ""  # starting, healthy, unhealthy, or "" without a health check
    exit_code: int = 0
    started_s: float = 0.0
    finished_s: float = 0.0
    logs: list[str] = field(default_factory=list)
    listen_port: int = 8000  # the port inside the container
    real_port: int | None = None  # where the sim serves it on 127.0.0.1
    server: SimVllmServer | None = None
    web: web.AppRunner | None = None
    task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.service.container_name

    def lines(self) -> list[str]:
        """The container's log: startup lines, then what the running server logged."""
        return self.logs + list(self.server.log_lines) if self.server else self.logs


def load_compose(files: dict[str, bytes], path: str, env_dir: str) -> tuple[str, list[Service]]:
    """Parse a compose file into (project name, services); ComposeError with Docker's wording."""
    if path not in files:
        raise ComposeError(f"open {path}: no such file or directory")
    dotenv = parse_env_file(files.get(posixpath.join(env_dir, ".env"), b""))
    try:
        doc = yaml.safe_load(files[path].decode())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ComposeError(f"yaml: {str(exc).splitlines()[0]}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict):
        raise ComposeError(f"{path}: services must be a mapping")
    doc = _interpolate(doc, dotenv)
    project = str(doc.get("name") or posixpath.basename(env_dir) or "default")
    services = []
    for name, spec in doc["services"].items():
        if not isinstance(spec, dict) or not spec.get("image"):
            raise ComposeError(f"service {name!r} has neither an image nor a build context specified: "
                               "invalid compose project")
        services.append(_service(project, str(name), spec, files, env_dir))
    return project, services


def parse_env_file(data: bytes) -> dict[str, str]:
    """KEY=VALUE lines (comments, blank lines and `export ` tolerated; quotes stripped)."""
    env = {}
    for raw in data.decode(errors="replace").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[key.strip()] = value
    return env


def _interpolate(value: Any, env: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _VAR.sub(lambda m: env.get(m[1] or m[3], m[2] or ""), value)
    if isinstance(value, list):
        return [_interpolate(v, env) for v in value]
    if isinstance(value, dict):
        return {k: _interpolate(v, env) for k, v in value.items()}
    return value


def _service(project: str, name: str, spec: dict[str, Any], files: dict[str, bytes], env_dir: str) -> Service:
    env: dict[str, str] = {}
    env_files = spec.get("env_file") or []
    for entry in [env_files] if isinstance(env_files, (str, dict)) else env_files:
        path = entry.get("path") if isinstance(entry, dict) else entry
        required = entry.get("required", True) if isinstance(entry, dict) else True
        full = posixpath.normpath(posixpath.join(env_dir, str(path)))
        if full not in files:
            if required:
                raise ComposeError(f"env file {full} not found: stat {full}: no such file or directory")
            continue
        env.update(parse_env_file(files[full]))
    environment = spec.get("environment") or {}
    if isinstance(environment, dict):
        env.update({str(k): "" if v is None else str(v) for k, v in environment.items()})
    else:
        env.update(dict(str(item).partition("=")[::2] for item in environment))
    command = spec.get("command") or []
    argv = shlex.split(command) if isinstance(command, str) else [str(c) for c in command]
    return Service(name, str(spec.get("container_name") or f"{project}-{name}-1"), str(spec["image"]), argv,
                   env, _ports(spec.get("ports") or []), str(spec.get("restart") or "no"),
                   _gpu_count(spec, env), spec, _port_hosts(spec.get("ports") or []))


LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _port_hosts(entries: list[Any]) -> dict[int, str]:
    """Published port -> host address, from the short ("127.0.0.1:8000:8000") or long form."""
    hosts = {}
    for entry in entries:
        if isinstance(entry, dict):
            target = int(entry.get("target", 0))
            hosts[int(entry.get("published", target))] = str(entry.get("host_ip") or "0.0.0.0")
            continue
        parts = str(entry).split("/")[0].rsplit(":", 2)
        try:
            hosts[int(parts[-2]) if len(parts) >= 2 else int(parts[-1])] = (
                parts[0].strip("[]") if len(parts) == 3 else "0.0.0.0")
        except ValueError:
            continue
    return hosts


def _ports(entries: list[Any]) -> list[tuple[int, int]]:
    ports = []
    for entry in entries:
        if isinstance(entry, dict):
            target = int(entry.get("target", 0))
            ports.append((int(entry.get("published", target)), target))
            continue
        parts = str(entry).split("/")[0].split(":")
        try:
            ports.append((int(parts[-2]) if len(parts) >= 2 else int(parts[-1]), int(parts[-1])))
        except ValueError:
            continue
    return ports


def _gpu_count(spec: dict[str, Any], env: dict[str, str]) -> int | None:
    """GPUs the container sees: a device reservation, `gpus:` or the nvidia runtime; else none."""
    visible: int | None = 0
    devices = (((spec.get("deploy") or {}).get("resources") or {}).get("reservations") or {}).get("devices")
    for device in devices or []:
        if isinstance(device, dict) and "gpu" in (device.get("capabilities") or []):
            count = device.get("count", "all")
            ids = device.get("device_ids")
            visible = len(ids) if ids else None if str(count) == "all" else int(count)
    if spec.get("gpus") is not None:
        gpus = spec["gpus"]
        visible = None if gpus == "all" else len(gpus) if isinstance(gpus, list) else int(gpus)
    if visible == 0 and spec.get("runtime") == "nvidia":
        visible = None
    cuda = env.get("CUDA_VISIBLE_DEVICES") or env.get("NVIDIA_VISIBLE_DEVICES")
    if visible != 0 and cuda and cuda not in ("all", "none", "void"):
        visible = len([d for d in cuda.split(",") if d.strip()])
    return visible


class DockerEngine:
    """dockerd on one VM: containers by name, and what runs inside them."""

    def __init__(self, vm: SimVm) -> None:
        self.vm = vm
        self.containers: dict[str, Container] = {}
        self.networks: set[str] = set()
        self._serial = 0

    def project_containers(self, project: str) -> list[Container]:
        return [c for c in self.containers.values() if c.project == project]

    def create(self, project: str, service: Service) -> Container:
        self._serial += 1
        digest = hashlib.sha256(f"{self.vm.instance.id}:{service.container_name}:{self._serial}".encode())
        container = Container(service, project, digest.hexdigest(), self.vm.now())
        self.containers[service.container_name] = container
        return container

    def start(self, container: Container) -> None:
        """Start the container's lifecycle in the background (pull, download, load, serve)."""
        if container.task and not container.task.done():
            return
        container.state, container.exit_code, container.health = "created", 0, ""
        container.task = asyncio.get_running_loop().create_task(self._run(container))

    async def stop(self, container: Container, *, exit_code: int = 0) -> None:
        """Stop the processes of a container (SIGTERM, then gone)."""
        task, container.task = container.task, None
        if task and not task.done() and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._halt(container)
        if container.state != "exited":
            container.state, container.exit_code, container.finished_s = "exited", exit_code, self.vm.now()
        container.health = ""

    async def remove(self, container: Container) -> None:
        await self.stop(container)
        self.containers.pop(container.name, None)

    def published_port(self, port: int) -> int | None:
        """The real port serving the VM's `port`, when a running container publishes it."""
        for c in self.containers.values():
            host_net = c.service.spec.get("network_mode") == "host" and port == c.listen_port
            if c.state == "running" and c.real_port and (host_net or (port, c.listen_port) in c.service.ports):
                return c.real_port
        return None

    def on_reboot(self) -> None:
        """Processes die with the OS; containers with a restart policy come back once Docker is up."""
        for c in list(self.containers.values()):
            asyncio.get_running_loop().create_task(self._reboot_one(c))

    async def _reboot_one(self, c: Container) -> None:
        was_running = c.state == "running"
        await self.stop(c, exit_code=255)
        policy = c.service.restart
        if policy == "always" or (policy == "unless-stopped" and was_running):
            while not self.vm.sshd_ready():
                await self.vm.sleep(5)
            self.start(c)

    async def shutdown(self) -> None:
        for c in list(self.containers.values()):
            await self.stop(c, exit_code=255)

    # --- what runs inside -------------------------------------------------------------------------

    async def _run(self, c: Container) -> None:
        image = c.service.image
        if image not in self.vm.images:
            await self.vm.sleep(IMAGE_PULL_S[c.service.kind])
            self.vm.images.add(image)
        c.state, c.started_s = "running", self.vm.now()
        script = c.service.script
        checked = c.service.kind != "other" and script is None  # the image's own check (vLLM's, WebUI's)
        c.health = "starting" if checked or "healthcheck" in c.service.spec else ""
        if script is not None:
            await run_script(self, c, script)
        elif c.service.kind == "vllm":
            await self._run_vllm(c)
        elif c.service.kind == "webui":
            await self.vm.sleep(WEBUI_START_S)
            c.web, c.real_port = await start_webui()
            c.listen_port, c.health = 8080, "healthy"
            c.logs.append("INFO:     Uvicorn running on http://0.0.0.0:8080 (Press CTRL+C to quit)")

    async def _run_vllm(self, c: Container) -> None:
        vm, args, env = self.vm, list(c.service.command), c.service.env
        c.listen_port = _flag_int(args, "--port", 8000)
        try:
            config = config_from_args(args, env)
        except (ValueError, SystemExit) as exc:
            c.logs += ["usage: vllm serve [model_tag] [options]", f"vllm serve: error: {exc}"]
            return await self._exit(c, 2)
        model, refusal = vm.world.hub.vllm_model(config.model, env)
        if vm.gpu_type is None or vm.gpu_type.family is None:
            c.logs.append("RuntimeError: Failed to infer device type")
            return await self._exit(c, 1)
        outcome = startup_outcome(config, vm.gpu_type, model, faults=vm.faults, env=env,
                                  gpus_visible=c.service.gpus, started_at=time.time(), hub_refusal=refusal)
        timed = list(zip(outcome.line_at_s, outcome.log_lines))
        early = [line for at, line in timed if at <= 0]  # banner and args print before the download
        c.logs += early
        if outcome.download_gb and config.model not in vm.downloaded:
            await vm.sleep(outcome.download_gb / DOWNLOAD_GB_PER_S)
            vm.downloaded.add(config.model)
        vm.gpus.ramp_memory(outcome.per_gpu_used_mib, vm.now(), outcome.load_s)
        started, clock = vm.now(), 0.0
        for at, line in timed[len(early):]:
            if at > clock:
                await vm.sleep(started + at - vm.now())
                clock = at
            c.logs.append(line)
        await vm.sleep(started + outcome.load_s - vm.now())
        if not outcome.ok:
            vm.gpus.release(vm.now())
            return await self._exit(c, 1)
        c.server = SimVllmServer(config, outcome, seed=vm.seed)
        c.real_port = await c.server.start("127.0.0.1", 0)
        c.health = "healthy"
        vm.gpus.utilization = c.server.utilization
        vm.gpus.faults = vm.faults  # validation's broken-GPU faults apply to a serving vLLM
        if vm.faults.nccl_warning_in_logs:
            c.logs.append("localhost:1:412 [1] transport/p2p.cc:275 NCCL WARN Cuda failure 'peer access is "
                          "not supported between these two devices'")
        vm.gpus.busy_gpus = min(vm.gpus.count, config.tensor_parallel_size * config.pipeline_parallel_size)
        crash_after = vm.faults.vllm_crash_after_s
        if crash_after is not None:
            await vm.sleep(crash_after)
            c.server.crash()  # /health turns 503: Docker's health check marks it unhealthy
            c.health = "unhealthy"

    async def _exit(self, c: Container, code: int) -> None:
        await self._halt(c)
        c.state, c.exit_code, c.finished_s, c.health = "exited", code, self.vm.now(), ""

    async def _halt(self, c: Container) -> None:
        server, c.server = c.server, None
        runner, c.web = c.web, None
        c.real_port = None
        if server is not None:
            c.logs += server.log_lines
            await server.stop()
        if runner is not None:
            await runner.cleanup()
        if c.service.kind == "vllm":
            self.vm.gpus.release(self.vm.now())
        self.vm.world.ray.container_stopped(c)


def _flag_int(args: list[str], flag: str, default: int) -> int:
    for i, arg in enumerate(args):
        value = arg.partition("=")[2] if arg.startswith(flag + "=") else (
            args[i + 1] if arg == flag and i + 1 < len(args) else None)
        if value is not None and value.isdigit():
            return int(value)
    return default
