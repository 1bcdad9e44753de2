"""`docker` and `docker compose` as the simulated VM's shell runs them, printing what Docker prints.

Only the subcommands the app and a person debugging a VM use: compose up/down/stop/start/restart/
ps/logs/pull, and docker ps/logs/inspect/info/restart/stop. Messages follow Docker 28 / Compose v2.
"""

from __future__ import annotations

import asyncio
import json
import posixpath
import re
import time
from typing import TYPE_CHECKING, Any

from maider_tui.sim import ray
from maider_tui.sim.docker import COMPOSE_NAMES, IMAGE_PULL_S, ComposeError, Container, load_compose

if TYPE_CHECKING:
    from maider_tui.sim.vm import ShellIo, SimVm

_TEMPLATE = re.compile(r"\{\{\s*(json\s+)?\.([\w.]*)\s*\}\}")


def human_duration(seconds: float) -> str:
    """Docker's go-units HumanDuration."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s < 60:
        return "1 second" if s == 1 else f"{s} seconds"
    minutes = round(s / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(s / 3600)
    if hours == 1:
        return "About an hour"
    return f"{hours} hours" if hours < 48 else f"{hours // 24} days"


def _status(vm: SimVm, c: Container) -> str:
    if c.state == "running":
        health = {"healthy": " (healthy)", "starting": " (health: starting)", "unhealthy": " (unhealthy)"}
        return f"Up {human_duration(vm.now() - c.started_s)}{health.get(c.health, '')}"
    if c.state == "exited":
        return f"Exited ({c.exit_code}) {human_duration(vm.now() - c.finished_s)} ago"
    return "Created"


def _row(vm: SimVm, c: Container) -> dict[str, Any]:
    """A container as `docker compose ps --format json` describes it."""
    entry = ["vllm", "serve"] if c.service.kind == "vllm" else []  # the image's ENTRYPOINT
    if c.service.script is not None:
        entry = [str(a) for a in c.service.spec.get("entrypoint") or []]
    command = " ".join([*entry, *c.service.command])
    hosts = c.service.hosts
    ports = (", ".join(f"{hosts.get(p, '0.0.0.0')}:{p}->{t}/tcp" for p, t in c.service.ports)
             if c.state == "running" else "")
    created = time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC",
                            time.gmtime(vm.instance.created + c.created_s / vm.world.speed))
    return {
        "Command": json.dumps(command[:20] + "…" if len(command) > 20 else command, ensure_ascii=False),
        "CreatedAt": created, "ExitCode": c.exit_code, "Health": c.health, "ID": c.id[:12],
        "Image": c.service.image, "Labels": f"com.docker.compose.project={c.project}", "LocalVolumes": "0",
        "Mounts": "", "Name": c.name, "Names": c.name, "Networks": f"{c.project}_default", "Ports": ports,
        "Project": c.project,
        "Publishers": [{"URL": hosts.get(p, "0.0.0.0"), "TargetPort": t, "PublishedPort": p, "Protocol": "tcp"}
                       for p, t in c.service.ports],
        "RunningFor": f"{human_duration(vm.now() - c.created_s)} ago", "Service": c.service.name,
        "Size": "0B", "State": c.state, "Status": _status(vm, c),
    }


def _template(fmt: str, data: dict[str, Any]) -> str:
    def lookup(match: re.Match[str]) -> str:
        value: Any = data
        for part in filter(None, match[2].split(".")):
            value = value.get(part, "") if isinstance(value, dict) else ""
        return json.dumps(value) if match[1] else str(value)
    return _TEMPLATE.sub(lookup, fmt.replace("\\t", "\t").replace("\\n", "\n"))


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    cells = [[h for h, _ in columns]] + [[str(r[k]) for _, k in columns] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "".join("   ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() + "\n" for line in cells)


def _take(args: list[str], *names: str) -> str | None:
    """Remove `--name VALUE` / `--name=VALUE` / `-n VALUE` from args and return the value."""
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                value = args[i + 1]
                del args[i:i + 2]
                return value
            if arg.startswith(name + "=") and name.startswith("--"):
                del args[i]
                return arg.split("=", 1)[1]
    return None


def _flag(args: list[str], *names: str) -> bool:
    found = any(a in names for a in args)
    args[:] = [a for a in args if a not in names]
    return found


async def docker(vm: SimVm, argv: list[str], io: ShellIo, cwd: str) -> int:
    """Run `docker ARGV...`; returns the exit status."""
    args = list(argv)
    sub = args.pop(0) if args else "--help"
    if sub == "compose":
        return await compose(vm, args, io, cwd)
    engine = vm.docker
    if sub == "ps":
        show_all = _flag(args, "-a", "--all")
        quiet = _flag(args, "-q", "--quiet")
        fmt = _take(args, "--format")
        rows = [_row(vm, c) for c in engine.containers.values() if show_all or c.state == "running"]
        for r in rows:
            r.update(Names=r["Name"], CreatedAt=r["RunningFor"])
        if quiet:
            io.out("".join(r["ID"] + "\n" for r in rows))
        elif fmt:
            io.out("".join((json.dumps(r) if fmt == "json" else _template(fmt, r)) + "\n" for r in rows))
        else:
            io.out(_table(rows, [("CONTAINER ID", "ID"), ("IMAGE", "Image"), ("COMMAND", "Command"),
                                 ("CREATED", "CreatedAt"), ("STATUS", "Status"), ("PORTS", "Ports"),
                                 ("NAMES", "Names")]))
        return 0
    if sub in ("logs", "inspect", "restart", "stop", "start", "rm"):
        fmt = _take(args, "-f", "--format") if sub == "inspect" else None
        tail = _take(args, "--tail", "-n")
        follow = _flag(args, "-f", "--follow")
        _flag(args, "-t", "--timestamps", "--force")
        names = [a for a in args if not a.startswith("-")]
        missing = [n for n in names if n not in engine.containers]
        if not names or missing:
            io.err(f"Error response from daemon: No such container: {(missing or ['(none)'])[0]}\n")
            return 1
        containers = [engine.containers[n] for n in names]
        if sub == "logs":
            return await _logs(vm, containers, io, tail, follow, prefix=False)
        if sub == "inspect":
            return _inspect(vm, containers, io, fmt)
        for c in containers:
            if sub == "rm":
                await engine.remove(c)
            else:
                if sub != "start":
                    await engine.stop(c)
                if sub != "stop":
                    engine.start(c)
            io.out(c.name + "\n")
        return 0
    if sub == "exec":
        _flag(args, "-i", "--interactive", "-t", "--tty", "-it", "-d", "--detach", "--privileged")
        _take(args, "-e", "--env", "-w", "--workdir", "-u", "--user")
        if not args or args[0] not in engine.containers:
            io.err(f"Error response from daemon: No such container: {args[0] if args else '(none)'}\n")
            return 1
        return await exec_in(vm, engine.containers[args[0]], args[1:], io)
    if sub == "info":
        runtimes = {"io.containerd.runc.v2": {"path": "runc"},
                    "nvidia": {"path": "nvidia-container-runtime"}, "runc": {"path": "runc"}}
        fmt = _take(args, "-f", "--format")
        if fmt:
            io.out(_template(fmt, {"Runtimes": runtimes, "ServerVersion": "28.5.1"}) + "\n")
        else:
            io.out(f"Server:\n Containers: {len(engine.containers)}\n Server Version: 28.5.1\n"
                   " Runtimes: io.containerd.runc.v2 nvidia runc\n Default Runtime: runc\n")
        return 0
    io.err(f"docker: unknown command: docker {sub}\n\nRun 'docker --help' for more information\n")
    return 1


def _inspect(vm: SimVm, containers: list[Container], io: ShellIo, fmt: str | None) -> int:
    docs = []
    for c in containers:
        state = {"Status": c.state, "Running": c.state == "running", "ExitCode": c.exit_code}
        if c.health:
            state["Health"] = {"Status": c.health}
        docs.append({"Id": c.id, "Name": "/" + c.name, "State": state, "RestartCount": 0,
                     "Config": {"Image": c.service.image, "Cmd": c.service.command}})
    io.out("".join(_template(fmt, d) + "\n" for d in docs) if fmt else json.dumps(docs, indent=4) + "\n")
    return 0


async def _logs(vm: SimVm, containers: list[Container], io: ShellIo, tail: str | None, follow: bool,
                *, prefix: bool) -> int:
    width = max((len(f"{c.service.name}-1") for c in containers), default=0)

    def emit(c: Container, lines: list[str]) -> None:
        lead = f"{c.service.name}-1".ljust(width) + "  | " if prefix else ""
        io.out("".join(lead + line + "\n" for line in lines))

    count = int(tail) if tail and tail.isdigit() else None
    seen = {}
    for c in containers:
        lines = c.lines()
        emit(c, lines if count is None else lines[-count:] if count else [])
        seen[c.name] = len(lines)
    while follow and not io.closed and any(c.state != "exited" or len(c.lines()) > seen[c.name]
                                           for c in containers):
        await io.drain()
        await asyncio.sleep(0.05)
        for c in containers:
            lines = c.lines()
            emit(c, lines[seen[c.name]:])
            seen[c.name] = len(lines)
    return 0


async def compose(vm: SimVm, argv: list[str], io: ShellIo, cwd: str) -> int:
    """`docker compose [-f FILE] [--project-directory DIR] [-p NAME] SUBCOMMAND ...`."""
    args = list(argv)
    file, project_dir = _take(args, "-f", "--file"), _take(args, "--project-directory")
    name = _take(args, "-p", "--project-name")
    _take(args, "--ansi", "--progress", "--env-file")
    sub = args.pop(0) if args else "help"
    base = vm.files.norm(project_dir, cwd) if project_dir else None
    if file:
        path = vm.files.norm(file, cwd)
    else:
        where = base or vm.files.norm(cwd)
        path = next((posixpath.join(where, n) for n in COMPOSE_NAMES
                     if posixpath.join(where, n) in vm.files.files), "")
        if not path:
            io.err("no configuration file provided: not found\n")
            return 1
    try:
        files = {p: f.data for p, f in vm.files.files.items()}
        project, services = load_compose(files, path, base or posixpath.dirname(path))
    except ComposeError as exc:
        io.err(f"{exc}\n")
        return 1
    project = name or project
    engine = vm.docker
    if sub == "up":
        wait = _flag(args, "--wait")
        force = _flag(args, "--force-recreate")
        progress = []
        if project not in engine.networks:
            engine.networks.add(project)
            progress.append(f"Network {project}_default  Created")
        for service in services:
            old = engine.containers.get(service.container_name)
            same = old is not None and (old.service.spec, old.service.env) == (service.spec, service.env)
            if old and same and not force:
                if old.state != "running" or not old.task:
                    engine.start(old)
                progress.append(f"Container {old.name}  {'Running' if old.state == 'running' else 'Started'}")
                continue
            if old:
                await engine.remove(old)
                progress.append(f"Container {old.name}  Recreated")
            engine.start(engine.create(project, service))
            progress.append(f"Container {service.container_name}  Started")
        io.err(f"[+] Running {len(progress)}/{len(progress)}\n" + "".join(f" ✔ {p}\n" for p in progress))
        return await _wait_healthy(vm, engine.project_containers(project), io) if wait else 0
    containers = engine.project_containers(project)
    if sub in ("down", "stop", "restart", "start"):
        for c in containers:
            if sub == "down":
                await engine.remove(c)
            elif sub != "start":
                await engine.stop(c)
            if sub in ("restart", "start"):
                engine.start(c)
            verb = {"down": "Removed", "stop": "Stopped", "restart": "Started", "start": "Started"}[sub]
            io.err(f" ✔ Container {c.name}  {verb}\n")
        if sub == "down" and project in engine.networks:
            engine.networks.discard(project)
            io.err(f" ✔ Network {project}_default  Removed\n")
        return 0
    if sub == "ps":
        show_all = _flag(args, "-a", "--all")
        fmt = _take(args, "--format")
        quiet = _flag(args, "-q", "--quiet")
        wanted = [a for a in args if not a.startswith("-")]
        rows = [_row(vm, c) for c in containers
                if (show_all or c.state == "running") and (not wanted or c.service.name in wanted)]
        if quiet:
            io.out("".join(r["ID"] + "\n" for r in rows))
        elif fmt == "json":
            io.out("".join(json.dumps(r) + "\n" for r in rows))
        elif fmt:
            io.out("".join(_template(fmt, r) + "\n" for r in rows))
        else:
            io.out(_table(rows, [("NAME", "Name"), ("IMAGE", "Image"), ("COMMAND", "Command"),
                                 ("SERVICE", "Service"), ("CREATED", "RunningFor"), ("STATUS", "Status"),
                                 ("PORTS", "Ports")]))
        return 0
    if sub == "logs":
        tail = _take(args, "--tail", "-n")
        follow = _flag(args, "-f", "--follow")
        bare = _flag(args, "--no-log-prefix")
        _flag(args, "-t", "--timestamps", "--no-color")
        wanted = [a for a in args if not a.startswith("-")]
        chosen = [c for c in containers if not wanted or c.service.name in wanted]
        return await _logs(vm, chosen, io, tail, follow, prefix=not bare)
    if sub == "exec":
        _flag(args, "-T", "--no-TTY", "-d", "--detach", "--privileged")
        _take(args, "-e", "--env", "-w", "--workdir", "-u", "--user", "--index")
        if len(args) < 2:
            io.err('"docker compose exec" requires at least 2 arguments.\n')
            return 1
        found = next((c for c in containers if c.service.name == args[0]), None)
        if found is None or found.state != "running":
            io.err(f'service "{args[0]}" is not running\n')
            return 1
        return await exec_in(vm, found, args[1:], io)
    if sub == "pull":
        for service in services:
            if service.image not in vm.images:
                await vm.sleep(IMAGE_PULL_S[service.kind])
                vm.images.add(service.image)
            io.err(f" ✔ {service.name} Pulled\n")
        return 0
    io.err(f"unknown docker command: \"compose {sub}\"\n")
    return 1


async def exec_in(vm: SimVm, c: Container, argv: list[str], io: ShellIo) -> int:
    """A command run inside a running container: `ray status` (a Ray node's image has Ray), `true`."""
    if c.state != "running":
        io.err(f"Error response from daemon: container {c.id} is not running\n")
        return 1
    if argv[:2] == ["ray", "status"]:
        cluster = vm.world.ray.of(c)
        if cluster is None:
            io.err(ray.NO_INSTANCE + "\n")
            return 1
        io.out(ray.status_text(vm, cluster))
        return 0
    if argv[:1] == ["true"]:
        return 0
    io.err("OCI runtime exec failed: exec failed: unable to start container process: exec: "
           f"\"{argv[0] if argv else ''}\": executable file not found in $PATH: unknown\n")
    return 127


async def _wait_healthy(vm: SimVm, containers: list[Container], io: ShellIo) -> int:
    """`up --wait`: until every container is running and healthy (or has no health check)."""
    while not io.closed:
        if any(c.state == "exited" for c in containers):
            bad = next(c for c in containers if c.state == "exited")
            io.err(f"container {bad.name} exited ({bad.exit_code})\n")
            return 1
        if all(c.state == "running" and c.health in ("", "healthy") for c in containers):
            return 0
        await asyncio.sleep(0.05)
    return 1
