"""One simulated GPU VM: its files, its boot and cloud-init timeline, its GPUs and its Docker services.

Everything lives in memory, as it would on the remote machine: nothing of a VM touches the user's
disk. Durations are sim seconds; a real wait is sim / speed. The shell (`shell.py`) and the Docker
engine (`docker.py`) read and change this state.
"""

from __future__ import annotations

import asyncio
import hashlib
import posixpath
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncssh
import yaml

from maider_tui.sim.docker import DockerEngine
from maider_tui.sim.faults import SimFaults
from maider_tui.sim.gpus import SimGpus
from maider_tui.sim.vllm_server import SimVllmServer
from maider_tui.sim.world import REBOOT_S, SimInstance, World

SSHD_AFTER_S = 8.0
"""Sim seconds from "running" until sshd accepts connections (cloud-init's ssh module runs first)."""
CLOUD_INIT_S = 300.0
"""Sim seconds cloud-init takes (apt, driver, Docker, toolkit), times faults.slow_boot_factor."""
DRIVER_AT, DOCKER_AT = 0.55, 0.75
"""Fractions of the cloud-init run after which nvidia-smi and docker exist."""

_STAGES = (("init-local", 0.0, 0.02), ("init", 0.02, 0.1), ("modules-config", 0.1, 0.3),
           ("modules-final", 0.3, 1.0))
"""cloud-init's stages as fractions of its run: apt, the driver and Docker are all in modules-final."""
_BASE_DIRS = ("/", "/root", "/opt", "/etc", "/var", "/var/log", "/tmp", "/home", "/usr", "/usr/bin")


class ShellIo:
    """Where a command writes: the SSH channel, or a buffer when redirected or piped."""

    def __init__(self, out: Callable[[str], None], err: Callable[[str], None], *,
                 drain: Callable[[], Awaitable[None]] | None = None,
                 closed: Callable[[], bool] | None = None, stdin: str = "") -> None:
        self.out, self.err, self.stdin = out, err, stdin
        self._drain = drain
        self._closed = closed or (lambda: False)

    @classmethod
    def buffer(cls, stdin: str = "", err: Callable[[str], None] | None = None) -> tuple[ShellIo, list[str]]:
        """An Io that collects stdout (stderr too, unless `err` is given) into the returned list."""
        parts: list[str] = []
        return cls(parts.append, err or parts.append, stdin=stdin), parts

    async def drain(self) -> None:
        if self._drain is not None:
            await self._drain()

    @property
    def closed(self) -> bool:
        """True once the client went away: a looping command stops."""
        return self._closed()


@dataclass
class MemFile:
    data: bytes
    mode: int = 0o644
    mtime: float = field(default_factory=time.time)


class MemFs:
    """The VM's disk: a dict of absolute path -> file, plus a set of directories."""

    def __init__(self) -> None:
        self.files: dict[str, MemFile] = {}
        self.dirs: set[str] = set(_BASE_DIRS)

    @staticmethod
    def norm(path: str, cwd: str = "/root") -> str:
        return posixpath.normpath(posixpath.join(cwd, path or "."))

    def is_dir(self, path: str) -> bool:
        return self.norm(path) in self.dirs

    def exists(self, path: str) -> bool:
        path = self.norm(path)
        return path in self.files or path in self.dirs

    def read(self, path: str) -> bytes:
        path = self.norm(path)
        if path in self.dirs:
            raise IsADirectoryError(path)
        if path not in self.files:
            raise FileNotFoundError(path)
        return self.files[path].data

    def write(self, path: str, data: bytes, mode: int | None = None, *, append: bool = False) -> None:
        path = self.norm(path)
        parent = posixpath.dirname(path)
        if parent not in self.dirs:
            raise FileNotFoundError(parent)
        if path in self.dirs:
            raise IsADirectoryError(path)
        old = self.files.get(path)
        body = (old.data if old and append else b"") + data
        self.files[path] = MemFile(body, mode if mode is not None else (old.mode if old else 0o644))

    def mkdir(self, path: str, *, parents: bool = False) -> None:
        path = self.norm(path)
        if path in self.files:
            raise FileExistsError(path)
        parent = posixpath.dirname(path)
        if parent not in self.dirs:
            if not parents:
                raise FileNotFoundError(parent)
            self.mkdir(parent, parents=True)
        self.dirs.add(path)

    def remove(self, path: str) -> None:
        path = self.norm(path)
        if path not in self.files:
            raise IsADirectoryError(path) if path in self.dirs else FileNotFoundError(path)
        del self.files[path]

    def rename(self, old: str, new: str) -> None:
        old, new = self.norm(old), self.norm(new)
        if old not in self.files:
            raise FileNotFoundError(old)
        if posixpath.dirname(new) not in self.dirs:
            raise FileNotFoundError(new)
        self.files[new] = self.files.pop(old)

    def listdir(self, path: str) -> list[str]:
        path = self.norm(path)
        if path not in self.dirs:
            raise NotADirectoryError(path) if path in self.files else FileNotFoundError(path)
        names = {posixpath.basename(p) for p in (*self.files, *self.dirs)
                 if p != "/" and posixpath.dirname(p) == path}
        return sorted(names)


def parse_user_data(text: str | None) -> dict[str, Any]:
    """The cloud-config mapping of the user-data; {} for none, a script, or YAML we cannot read."""
    if not text or not text.lstrip().startswith("#cloud-config"):
        return {}
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def host_key_from(cloud_config: dict[str, Any]) -> asyncssh.SSHKey:
    """The ed25519 host key cloud-init's `ssh_keys` pins, else a fresh one (like an image's own key)."""
    keys = cloud_config.get("ssh_keys")
    private = keys.get("ed25519_private") if isinstance(keys, dict) else None
    if isinstance(private, str):
        try:
            return asyncssh.import_private_key(private)
        except (asyncssh.KeyImportError, ValueError):
            pass  # cloud-init skips a key it cannot read, and sshd falls back to generated keys
    return asyncssh.generate_private_key("ssh-ed25519")


class SimVm:
    """A GPU VM behind one instance: files, boot clock, GPUs and the Docker services on it."""

    def __init__(self, world: World, instance: SimInstance, *, seed: int = 0) -> None:
        self.world = world
        self.instance = instance
        self.faults: SimFaults = world.faults
        self.seed = seed
        self.files = MemFs()
        self.cloud_config = parse_user_data(instance.user_data)
        self.host_key = host_key_from(self.cloud_config)
        self.gpu_type = world.gpu_type(instance.type)
        family = self.gpu_type.family if self.gpu_type else None
        self.gpus = SimGpus(family, self.gpu_type.gpus if self.gpu_type else 0, seed=seed,
                            instance_id=instance.id)
        self.cloud_init_s = CLOUD_INIT_S * self.faults.slow_boot_factor
        self.boot_at = world.boot_seconds()  # sim seconds after create when the OS (last) came up
        self.first_boot_at = self.boot_at
        self.boot_count = 1
        self.boot_id = self._new_boot_id()
        self.images: set[str] = set()  # pulled images survive a reboot, like the Docker cache
        self.downloaded: set[str] = set()  # models in the HF cache on disk
        self.stopped = False
        self._cloud_init_written = False
        self.docker = DockerEngine(self)
        self._seed_files()

    # --- time -------------------------------------------------------------------------------------

    def now(self) -> float:
        """Sim seconds since the instance was created."""
        return self.world.sim_seconds_since(self.instance.created)

    async def sleep(self, sim_s: float) -> None:
        """Wait `sim_s` sim seconds (sim / speed real seconds)."""
        await asyncio.sleep(max(0.0, sim_s) / self.world.speed)

    def uptime_s(self) -> float:
        return max(0.0, self.now() - self.boot_at)

    def sshd_ready(self) -> bool:
        """sshd answers once the OS is up, cloud-init's ssh module has run and no reboot is under way."""
        return (not self.stopped and self.world.status(self.instance) == "running"
                and self.uptime_s() >= SSHD_AFTER_S)

    # --- boot and cloud-init ----------------------------------------------------------------------

    def cloud_init_progress(self) -> float:
        """0-1 through the first boot's cloud-init run; later boots find it done."""
        if self.boot_count > 1:
            return 1.0
        return min(1.0, max(0.0, self.now() - self.first_boot_at) / max(self.cloud_init_s, 1e-9))

    def cloud_init_status(self) -> str:
        """"running" or "done", as `cloud-init status` says."""
        done = self.cloud_init_progress() >= 1.0
        if done:
            self._finish_cloud_init()
        return "done" if done else "running"

    def cloud_init_report(self) -> dict[str, Any]:
        """`cloud-init status --format json`: the summary keys plus the per-stage objects."""
        status = self.cloud_init_status()
        progress = self.cloud_init_progress()
        began = self.instance.created + self.first_boot_at / self.world.speed  # epoch seconds
        stages: dict[str, dict[str, Any]] = {}
        latest, current = began, None
        for name, start, end in _STAGES:
            started = progress >= start
            finished = progress >= end
            at = [began + f * self.cloud_init_s / self.world.speed for f in (start, end)]
            stages[name] = {"errors": [], "recoverable_errors": {}, "start": at[0] if started else None,
                            "finished": at[1] if finished else None}
            latest = at[1] if finished else at[0] if started else latest
            current = name if started and not finished else current
        return {"boot_status_code": "enabled-by-generator", "datasource": "akamai", "detail": "DataSourceAkamai",
                "errors": [], "extended_status": status, "status": status, "recoverable_errors": {},
                "last_update": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(latest)),
                "stage": current, **stages}

    async def wait_cloud_init(self) -> None:
        remaining = (1.0 - self.cloud_init_progress()) * self.cloud_init_s
        await self.sleep(remaining)
        self._finish_cloud_init()

    def has_driver(self) -> bool:
        return self.gpus.count > 0 and self.cloud_init_progress() >= DRIVER_AT

    def has_docker(self) -> bool:
        return self.cloud_init_progress() >= DOCKER_AT

    def _finish_cloud_init(self) -> None:
        # write_files is all the VM side needs of the user-data: runcmd installs software the sim has.
        if self._cloud_init_written:
            return
        self._cloud_init_written = True
        for entry in self.cloud_config.get("write_files") or []:
            if not isinstance(entry, dict) or not entry.get("path"):
                continue
            content = entry.get("content", "")
            data = content.encode() if isinstance(content, str) else bytes(content or b"")
            try:
                mode = int(str(entry.get("permissions", "0644")), 8)
                self.files.mkdir(posixpath.dirname(self.files.norm(entry["path"])), parents=True)
                self.files.write(entry["path"], data, mode, append=bool(entry.get("append")))
            except (OSError, ValueError):
                continue
        self.files.mkdir("/opt/llm", parents=True)
        log = self.files.files.get("/var/log/cloud-init-output.log")
        stamp = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
        text = (log.data.decode() if log else "") + (
            f"Cloud-init v. 25.1.4-0ubuntu0~24.04.1 finished at {stamp}. Datasource DataSourceAkamai.  "
            f"Up {self.uptime_s():.2f} seconds\n")
        self.files.write("/var/log/cloud-init-output.log", text.encode(), 0o640)

    def reboot(self) -> None:
        """The OS restarts: processes die, memory clears, boot_id changes; files and images stay."""
        self.boot_count += 1
        self.boot_at = self.now() + REBOOT_S * self.faults.slow_boot_factor  # when the OS is back
        self.boot_id = self._new_boot_id()
        self.gpus.persistence = False
        self.docker.on_reboot()

    def _new_boot_id(self) -> str:
        digest = hashlib.blake2b(f"{self.seed}:{self.instance.id}:{self.boot_count}".encode(), digest_size=16)
        return str(uuid.UUID(bytes=digest.digest(), version=4))

    def _seed_files(self) -> None:
        self.files.mkdir("/etc/ssh", parents=True)
        self.files.write("/etc/hostname", f"{self.instance.label}\n".encode())
        self.files.write("/etc/os-release", b'PRETTY_NAME="Ubuntu 24.04.3 LTS"\nNAME="Ubuntu"\n'
                         b'VERSION_ID="24.04"\nID=ubuntu\n')
        self.files.write("/var/log/cloud-init-output.log", b"Cloud-init v. 25.1.4 running 'init' at boot\n",
                         0o640)
        for key in self.instance.authorized_keys:
            self.files.mkdir("/root/.ssh", parents=True)
            self.files.write("/root/.ssh/authorized_keys", (key.strip() + "\n").encode(), 0o600, append=True)

    def virtual_file(self, path: str) -> str | None:
        """Files the kernel makes up on the spot (/proc), or None."""
        if path == "/proc/sys/kernel/random/boot_id":
            return self.boot_id + "\n"
        if path == "/proc/uptime":
            return f"{self.uptime_s():.2f} {self.uptime_s() * 3.7:.2f}\n"
        return None

    # --- services reached through port forwards and curl ------------------------------------------

    def service_port(self, port: int) -> int | None:
        """The real 127.0.0.1 port behind the VM's local `port`, or None when nothing listens there."""
        if self.stopped or not self.sshd_ready():
            return None
        return self.docker.published_port(port)

    @property
    def vllm(self) -> SimVllmServer | None:
        """The vLLM server running on this VM, if one is up (tests read its counters)."""
        return next((c.server for c in self.docker.containers.values() if c.server), None)

    async def close(self) -> None:
        """The VM is gone: stop every service it ran."""
        self.stopped = True
        await self.docker.shutdown()
