"""The simulated VM's shell: what an SSH exec request runs.

Enough of bash for the commands a client sends: quoting, `&&` / `||` / `;` chains, pipes, `>`,
`>>`, `2>&1` and `< file` redirections, `sh -c` / `bash -lc` wrappers, `cd`, `VAR=x` prefixes and
`sudo`. Unknown programs answer 127 and "command not found" as bash does.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aiohttp

from maider_tui.sim import gpus as smi
from maider_tui.sim.coreutils import COMMANDS as FILE_COMMANDS
from maider_tui.sim.docker_cli import docker
from maider_tui.sim.vm import ShellIo

if TYPE_CHECKING:
    from maider_tui.sim.vm import SimVm

_OPERATORS = ("&&", "||", ";", "|", "&")
_CURL_VALUES = {"-o": "o", "--output": "o", "-w": "w", "--write-out": "w", "-X": "X", "--request": "X",
                "-m": "m", "--max-time": "m", "-H": "H", "--header": "H", "-d": "d", "--data": "d",
                "--connect-timeout": "c"}
_CURL_LONG = {"--silent": "s", "--fail": "f", "--show-error": "S", "--include": "i"}


class ShellSyntaxError(ValueError):
    pass


@dataclass
class Simple:
    """One command: its words and its redirections (fd, operator, target)."""

    argv: list[str] = field(default_factory=list)
    redirects: list[tuple[int, str, str]] = field(default_factory=list)


def tokenize(text: str) -> list[tuple[str, str]]:
    """Words, operators and redirections as ("word" | "op" | "redir", text), bash's quoting rules."""
    tokens: list[tuple[str, str]] = []
    word: list[str] = []
    started = quoted = False
    i, n = 0, len(text)

    def flush() -> None:
        nonlocal started, quoted
        if started:
            tokens.append(("word", "".join(word)))
        word.clear()
        started = quoted = False

    while i < n:
        ch = text[i]
        if ch in " \t\n":
            flush()
        elif ch == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise ShellSyntaxError("unexpected EOF while looking for matching `''")
            word.append(text[i + 1:end])
            started = quoted = True
            i = end
        elif ch == '"':
            i += 1
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n and text[i + 1] in '"\\$`':
                    i += 1
                word.append(text[i])
                i += 1
            if i >= n:
                raise ShellSyntaxError('unexpected EOF while looking for matching `"\'')
            started = quoted = True
        elif ch == "\\" and i + 1 < n:
            word.append(text[i + 1])
            started = True
            i += 1
        elif ch == "#" and not started:
            break
        elif ch in "<>":
            fd = "".join(word) if started and not quoted and "".join(word).isdigit() else ""
            if fd:
                word.clear()
                started = False
            flush()
            op = ch
            if text.startswith(">>", i) or text.startswith(">&", i):
                op, i = text[i:i + 2], i + 1
            tokens.append(("redir", f"{fd or ('0' if ch == '<' else '1')}{op}"))
        elif ch in "&|;":
            flush()
            if text.startswith("&>", i):
                tokens.append(("redir", "&>"))
                i += 1
            else:
                op = text[i:i + 2] if text[i:i + 2] in _OPERATORS else ch
                tokens.append(("op", op))
                i += len(op) - 1
        else:
            word.append(ch)
            started = True
        i += 1
    flush()
    return tokens


def parse(text: str) -> list[tuple[str, list[Simple]]]:
    """[(connector before it, pipeline)], the connector of the first being ";"."""
    items: list[tuple[str, list[Simple]]] = []
    connector, pipeline, current = ";", [], Simple()
    tokens = tokenize(text)
    i = 0
    while i < len(tokens):
        kind, value = tokens[i]
        if kind == "word":
            current.argv.append(value)
        elif kind == "redir":
            if value.endswith(">&") and i + 1 < len(tokens) and tokens[i + 1][1].isdigit():
                current.redirects.append((int(value[0]), ">&", tokens[i + 1][1]))
            elif i + 1 < len(tokens) and tokens[i + 1][0] == "word":
                fd = -1 if value == "&>" else int(value[0])
                current.redirects.append((fd, value.lstrip("0123456789&") or ">", tokens[i + 1][1]))
            else:
                raise ShellSyntaxError("syntax error near unexpected token `newline'")
            i += 1
        else:
            if not current.argv:
                raise ShellSyntaxError(f"syntax error near unexpected token `{value}'")
            pipeline.append(current)
            current = Simple()
            if value != "|":
                items.append((connector, pipeline))
                connector, pipeline = value, []
        i += 1
    if current.argv:
        pipeline.append(current)
    if pipeline:
        items.append((connector, pipeline))
    return items


class Shell:
    """One exec request's bash: runs a command line against a SimVm, writing to `io`."""

    def __init__(self, vm: SimVm, io: ShellIo, cwd: str = "/root") -> None:
        self.vm, self.io, self.cwd = vm, io, cwd

    async def run(self, command: str, io: ShellIo | None = None) -> int:
        io = io or self.io
        try:
            items = parse(command)
        except ShellSyntaxError as exc:
            io.err(f"bash: -c: line 1: {exc}\n")
            return 2
        status = 0
        for connector, pipeline in items:
            if (connector == "&&" and status != 0) or (connector == "||" and status == 0):
                continue
            status = await self._pipeline(pipeline, io)
        return status

    async def _pipeline(self, pipeline: list[Simple], io: ShellIo) -> int:
        stdin, status = io.stdin, 0
        for n, cmd in enumerate(pipeline):
            if n == len(pipeline) - 1:
                last = ShellIo(io.out, io.err, drain=io.drain, closed=lambda: io.closed, stdin=stdin)
                return await self._simple(cmd, last)
            piped, parts = ShellIo.buffer(stdin, err=io.err)
            status = await self._simple(cmd, piped)
            stdin = "".join(parts)
        return status

    async def _simple(self, cmd: Simple, io: ShellIo) -> int:
        out: list[str] = []
        err: list[str] = []
        sinks = {1: io.out, 2: io.err}
        files: dict[int, tuple[str, bool]] = {}
        stdin = io.stdin
        for fd, op, target in cmd.redirects:
            if op == ">&":
                sinks[fd] = sinks.get(int(target), io.out)
            elif op == "<":
                try:
                    stdin = self.vm.files.read(self.vm.files.norm(target, self.cwd)).decode()
                except OSError:
                    io.err(f"bash: {target}: No such file or directory\n")
                    return 1
            else:
                for each in (1, 2) if fd == -1 else (fd,):
                    files[each] = (target, op == ">>")
                    sinks[each] = (out if each == 1 else err).append
        status = await self._exec(cmd.argv, ShellIo(sinks[1], sinks[2], drain=io.drain,
                                                   closed=lambda: io.closed, stdin=stdin))
        for fd, (target, append) in files.items():
            if target == "/dev/null":
                continue
            try:
                text = "".join(out if fd == 1 else err)
                self.vm.files.write(self.vm.files.norm(target, self.cwd), text.encode(), append=append)
            except OSError:
                io.err(f"bash: {target}: No such file or directory\n")
                return 1
        return status

    async def _exec(self, argv: list[str], io: ShellIo) -> int:
        while argv and (re.fullmatch(r"[A-Za-z_]\w*=.*", argv[0]) or argv[0] in ("sudo", "exec", "command")):
            argv = argv[1:]
        if not argv:
            return 0
        prog = argv[0]
        if prog in ("sh", "bash", "/bin/sh", "/bin/bash"):
            flag = next((i for i, a in enumerate(argv[1:], 1) if a.startswith("-") and "c" in a), None)
            if flag is None or flag + 1 >= len(argv):
                io.err(f"{prog}: this simulated VM runs commands only with -c\n")
                return 2
            return await Shell(self.vm, io, self.cwd).run(argv[flag + 1])
        if prog == "cd":
            target = self.vm.files.norm(argv[1] if len(argv) > 1 else "/root", self.cwd)
            if not self.vm.files.is_dir(target):
                io.err(f"bash: cd: {argv[1]}: No such file or directory\n")
                return 1
            self.cwd = target
            return 0
        if prog == "timeout" and len(argv) > 2:
            try:
                async with asyncio.timeout(float(argv[1].rstrip("s")) / self.vm.world.speed):
                    return await self._exec(argv[2:], io)
            except TimeoutError:
                return 124
        handler = FILE_COMMANDS.get(prog)
        if handler is not None:
            return await handler(self.vm, argv, io, self.cwd)
        method = getattr(self, "cmd_" + prog.replace("-", "_"), None)
        installed = {"nvidia-smi": self.vm.has_driver, "docker": self.vm.has_docker}.get(prog, lambda: True)
        if method is None or not installed():
            io.err(f"bash: {prog}: command not found\n")
            return 127
        return await method(argv, io)

    # --- commands that need the shell (streaming, waiting) ----------------------------------------

    async def cmd_docker(self, argv: list[str], io: ShellIo) -> int:
        return await docker(self.vm, argv[1:], io, self.cwd)

    async def cmd_cloud_init(self, argv: list[str], io: ShellIo) -> int:
        if len(argv) < 2 or argv[1] != "status":
            io.err("usage: cloud-init [-h] [--version] [--debug] [--force] {status,...} ...\n")
            return 2
        fmt = next((a.split("=", 1)[1] for a in argv if a.startswith("--format=")), "tabular")
        if "--format" in argv and argv.index("--format") + 1 < len(argv):
            fmt = argv[argv.index("--format") + 1]
        wait = "--wait" in argv or "-w" in argv
        while wait and self.vm.cloud_init_status() != "done" and not io.closed:
            if fmt == "tabular":
                io.out(".")  # cloud-init prints a dot every 0.25 s while it waits
                await io.drain()
            remaining = (1.0 - self.vm.cloud_init_progress()) * self.vm.cloud_init_s / self.vm.world.speed
            await asyncio.sleep(min(0.25, remaining))
        doc = self.vm.cloud_init_report()
        if fmt == "json":
            io.out(json.dumps(doc, indent=2, sort_keys=True) + "\n")
            return 0
        io.out(f"{chr(10) if wait else ''}status: {doc['status']}\n")
        if "--long" in argv or "-l" in argv:
            io.out(f"extended_status: {doc['extended_status']}\nboot_status_code: {doc['boot_status_code']}\n"
                   f"last_update: {doc['last_update']}\ndetail: {doc['detail']}\nerrors: []\n"
                   "recoverable_errors: {}\n")
        return 0

    async def cmd_nvidia_smi(self, argv: list[str], io: ShellIo) -> int:
        try:
            call = smi.parse_args(argv[1:])
        except smi.NvidiaSmiError as exc:
            io.out(f"{exc}\n")
            return 2
        gpus = self.vm.gpus
        if call.mode == "topo":
            io.out(smi.topology(gpus.count))
            return 0
        if call.mode == "persistence":
            gpus.persistence = call.fields[0] in ("1", "ENABLED", "enabled")
            word = "Enabled" if gpus.persistence else "Disabled"
            io.out("".join(f"{word} persistence mode for GPU {r.bus_id}.\n"
                           for r in gpus.sample(self.vm.now())))
            io.out("All done.\n")
            return 0
        header = call.header
        while True:
            readings = [r for r in gpus.sample(self.vm.now())
                        if call.gpu_ids is None or r.index in call.gpu_ids]
            if call.mode == "list":
                io.out("".join(f"GPU {r.index}: {r.name} (UUID: {r.uuid})\n" for r in readings))
            elif call.mode == "query":
                io.out(smi.query_csv(readings, call.fields, header=header, units=call.units))
                header = False  # a looping query prints its header once
            else:
                name = "VLLM::Worker" if gpus.busy_gpus > 1 else "VLLM::EngineCore"
                procs = [(r.index, 2811 + r.index, name, r.memory_used_mib - 1)
                         for r in readings if r.memory_used_mib > 64]
                io.out(smi.table(readings, procs))
            if call.interval_s is None or io.closed:
                return 0
            await io.drain()
            await asyncio.sleep(call.interval_s)
            if io.closed:
                return 0

    async def cmd_curl(self, argv: list[str], io: ShellIo) -> int:
        opts: dict[str, str] = {}
        flags: set[str] = set()
        url = ""
        args = iter(argv[1:])
        for arg in args:
            if arg in _CURL_VALUES:
                opts[_CURL_VALUES[arg]] = next(args, "")
            elif arg.startswith("--"):
                flags.add(_CURL_LONG.get(arg, arg))
            elif arg.startswith("-"):
                flags.update(arg[1:])
            else:
                url = arg
        silent = "s" in flags and "S" not in flags
        match = re.match(r"^(?:http://)?(localhost|127\.0\.0\.1|0\.0\.0\.0)(?::(\d+))?(/.*)?$", url)
        if not match:
            if not silent:
                io.err(f"curl: (6) Could not resolve host: {url.split('/')[2] if '//' in url else url}\n")
            return 6
        port = int(match[2] or 80)
        real = self.vm.service_port(port)
        if real is None:
            if not silent:
                io.err(f"curl: (7) Failed to connect to {match[1]} port {port} after 0 ms: "
                       "Couldn't connect to server\n")
            return 7
        method = opts.get("X") or ("POST" if "d" in opts else "GET")
        try:
            async with aiohttp.ClientSession() as http, http.request(
                    method, f"http://127.0.0.1:{real}{match[3] or '/'}", data=opts.get("d"),
                    headers={"Content-Type": "application/json"} if "d" in opts else None) as resp:
                body, status = await resp.text(), resp.status
        except aiohttp.ClientError:
            if not silent:
                io.err("curl: (56) Recv failure: Connection reset by peer\n")
            return 56
        if "f" in flags and status >= 400:
            if not silent:
                io.err(f"curl: (22) The requested URL returned error: {status}\n")
            body = ""
        target = opts.get("o")
        if target and target != "/dev/null":
            self.vm.files.write(self.vm.files.norm(target, self.cwd), body.encode())
        elif not target:
            io.out(body)
        if "w" in opts:
            io.out(opts["w"].replace("%{http_code}", str(status)).replace("\\n", "\n"))
        return 22 if "f" in flags and status >= 400 else 0
