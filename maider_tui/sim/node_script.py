"""A container whose entrypoint is `bash -c SCRIPT`: the script's lines run in order, as bash runs them.

What a multi-VM session's nodes run (the vLLM image with `entrypoint: ["/bin/bash", "-c"]`): `set -e`,
a `python3 -c` that fetches the model with huggingface_hub's `snapshot_download`, `ray start` (head or
worker, `ray.py`), an `until python3 -c '...cluster_resources()...'; do echo ...; sleep 5; done` wait, and
`exec vllm serve ...` (`ray_vllm.py`). Also `echo`, `sleep`, `true`, `false`. Anything else is "command
not found" (127). Under `set -e` a failing line ends the container with its exit code; an `exec`'d
program's exit code is the container's.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING

from maider_tui.catalog.sizes import GIB, weight_bytes
from maider_tui.sim import ray

if TYPE_CHECKING:
    from maider_tui.sim.docker import Container, DockerEngine
    from maider_tui.sim.vm import SimVm

_FETCH = re.compile(r"snapshot_download\(\s*(['\"])(.+?)\1")
_GPUS_AT_LEAST = re.compile(r"cluster_resources\(\)\.get\(\s*['\"]GPU['\"]\s*,\s*0\s*\)\s*>=\s*(\d+)")
_SHELLS = ("/bin/bash", "bash", "/bin/sh", "sh", "/usr/bin/bash")


def script_of(spec: dict[str, object], command: list[str]) -> str | None:
    """The script of a service whose entrypoint is `bash -c` (or `sh -c`), else None."""
    entry = spec.get("entrypoint")
    argv = shlex.split(entry) if isinstance(entry, str) else [str(a) for a in entry] if isinstance(entry, list) else []
    if len(argv) >= 2 and argv[0] in _SHELLS and argv[1] == "-c":
        rest = argv[2:] + command
        return rest[0] if rest else ""
    return None


@dataclass
class _Run:
    engine: DockerEngine
    c: Container
    errexit: bool = False
    line: int = 0

    @property
    def vm(self) -> SimVm:
        return self.engine.vm

    def log(self, *lines: str) -> None:
        self.c.logs.extend(lines)


def split_commands(line: str) -> list[list[str]]:
    """A line's commands separated by `;` (quoted `;` stays in its word)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";")
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token and set(token) == {";"}:
            commands.append([])
        else:
            commands[-1].append(token)
    return [c for c in commands if c]


async def run_script(engine: DockerEngine, c: Container, script: str) -> None:
    """Run the script to its end (or its `exec`'d program's), then the container exits with its status."""
    run = _Run(engine, c)
    status = 0
    for number, text in enumerate(script.splitlines(), 1):
        run.line = number
        if not text.strip() or text.strip().startswith("#"):
            continue
        try:
            commands = split_commands(text)
        except ValueError:
            run.log(f"/bin/bash: -c: line {number}: unexpected EOF while looking for matching quote")
            return await engine._exit(c, 2)
        if commands and commands[0][0] == "until":
            status = await _until(run, commands)
        else:
            for argv in commands:
                if argv[0] == "exec":
                    status = await _command(run, argv[1:]) if len(argv) > 1 else 0
                    return await engine._exit(c, status)
                status = await _command(run, argv)
                if status and run.errexit:
                    break
        if status and run.errexit:
            break
    await engine._exit(c, status)


async def _until(run: _Run, commands: list[list[str]]) -> int:
    """`until COND; do BODY; done` on one line."""
    cond = commands[0][1:]
    try:
        do = next(i for i, argv in enumerate(commands) if argv[0] == "do")
        done = next(i for i, argv in enumerate(commands) if argv == ["done"])
    except StopIteration:
        run.log(f"/bin/bash: -c: line {run.line}: syntax error: unexpected end of file")
        return 2
    cond = cond + [w for argv in commands[1:do] for w in argv]
    body = [commands[do][1:], *commands[do + 1:done]]
    status = 0
    while await _command(run, cond) != 0:  # set -e does not apply to the condition
        for argv in filter(None, body):
            status = await _command(run, argv)
            if status and run.errexit:
                return status
    return 0


async def _command(run: _Run, argv: list[str]) -> int:
    prog, args = argv[0], argv[1:]
    if prog == "set":
        if "-e" in args or ("-o" in args and "errexit" in args):
            run.errexit = True
        if "+e" in args:
            run.errexit = False
        return 0
    if prog == "echo":
        run.log(" ".join(a for a in args if a != "-e"))
        return 0
    if prog == "sleep":
        try:
            await run.vm.sleep(float(args[0].rstrip("s")))
        except (IndexError, ValueError):
            run.log("sleep: missing operand")
            return 1
        return 0
    if prog in ("true", ":"):
        return 0
    if prog == "false":
        return 1
    if prog in ("python3", "python") and args[:1] == ["-c"] and len(args) > 1:
        return await _python(run, args[1])
    if prog == "ray" and args[:1] == ["start"]:
        from maider_tui.sim.ray_start import ray_start

        return await ray_start(run.engine, run.c, args[1:], run.log)
    if prog == "vllm" and args[:1] == ["serve"]:
        from maider_tui.sim.ray_vllm import serve

        return await serve(run.engine, run.c, args[1:])
    run.log(f"/bin/bash: line {run.line}: {prog}: command not found")
    return 127


async def _python(run: _Run, code: str) -> int:
    """The two programs a node runs with `python3 -c`: the model fetch and the cluster's GPU count."""
    fetch = _FETCH.search(code)
    if fetch:
        return await _fetch(run, fetch[2])
    wanted = _GPUS_AT_LEAST.search(code)
    if wanted:
        cluster = run.vm.world.ray.of(run.c)
        if cluster is None:
            run.log("Traceback (most recent call last):", '  File "<string>", line 1, in <module>', ray.NO_INSTANCE)
            return 1
        return 0 if cluster.gpus() >= int(wanted[1]) else 1
    return 0


async def _fetch(run: _Run, model_id: str) -> int:
    """huggingface_hub's snapshot_download into this VM's cache: every node downloads its own copy."""
    vm = run.vm
    spec, refusal = vm.world.hub.vllm_model(model_id, run.c.service.env)
    if spec is None:
        error = ("huggingface_hub.errors.GatedRepoError: 401 Client Error." if refusal == "gated" else
                 "huggingface_hub.errors.RepositoryNotFoundError: 401 Client Error.")
        why = (f"Cannot access gated repo for url https://huggingface.co/api/models/{model_id}/revision/main."
               if refusal == "gated" else
               f"Repository Not Found for url: https://huggingface.co/api/models/{model_id}/revision/main.")
        run.log("Traceback (most recent call last):", '  File "<string>", line 1, in <module>', error,
                "(Request ID: Root=1-6752f1a0-3c8e2d7b1f0a4e5d6c7b8a90)", "", why)
        return 1
    shards = max(1, round(weight_bytes(spec).total / GIB / 4.6))
    files = shards + 7  # the shards, their index, config, generation config, tokenizer files, README, LICENSE
    if model_id not in vm.downloaded:
        from maider_tui.sim.docker import DOWNLOAD_GB_PER_S

        took = weight_bytes(spec).total / GIB / DOWNLOAD_GB_PER_S
        await vm.sleep(took)
        vm.downloaded.add(model_id)
        minutes, seconds = divmod(round(took), 60)
        run.log(f"Fetching {files} files: 100%|██████████| {files}/{files} [{minutes:02d}:{seconds:02d}<00:00, "
                f"{files / max(took, 1):.2f}it/s]")
    else:
        run.log(f"Fetching {files} files: 100%|██████████| {files}/{files} [00:00<00:00, {files * 40}.00it/s]")
    return 0
