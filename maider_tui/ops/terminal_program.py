"""A program the user runs in this terminal (an SSH shell, aider), with the last lines of its error
output kept: while it runs the app is suspended, so what it printed is gone from view once the app
draws again, and the app has to say it."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass, field

TAIL_BYTES = 4096  # the end of the error output kept; what came before is only on the terminal


@dataclass(frozen=True)
class ProgramOutcome:
    code: int
    stderr_tail: list[str] = field(default_factory=list)  # the last non-blank lines it wrote on stderr


async def run_program(argv: list[str], *, keep_lines: int = 3) -> ProgramOutcome:
    """Run `argv` on this terminal; its stderr still reaches the terminal and its last `keep_lines`
    non-blank lines are returned too (0: stderr is left alone, for a program that draws on it)."""
    if keep_lines <= 0:
        process = await asyncio.create_subprocess_exec(*argv)
        return ProgramOutcome(await process.wait())
    process = await asyncio.create_subprocess_exec(*argv, stderr=asyncio.subprocess.PIPE)
    assert process.stderr is not None
    kept = b""
    while chunk := await process.stderr.read(1024):
        _to_terminal(chunk)
        kept = (kept + chunk)[-TAIL_BYTES:]
    code = await process.wait()
    lines = [line.strip() for line in kept.decode(errors="replace").splitlines() if line.strip()]
    return ProgramOutcome(code, lines[-keep_lines:])


def _to_terminal(chunk: bytes) -> None:
    try:
        os.write(sys.__stderr__.fileno() if sys.__stderr__ is not None else 2, chunk)
    except OSError:
        pass  # no terminal to show it on: the kept lines still say it
