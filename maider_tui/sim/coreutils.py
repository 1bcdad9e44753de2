"""The file and text commands of the simulated VM's shell, over its in-memory disk.

Each takes (vm, argv, io, cwd) and returns an exit status, printing GNU coreutils' messages for
the cases a script meets (missing file, directory where a file was expected), plus the small
system commands (uptime, systemctl, ...) that only read the VM's state.
"""

from __future__ import annotations

import re
import stat as statmod
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from maider_tui.sim.vm import ShellIo, SimVm

Command = Callable[["SimVm", list[str], "ShellIo", str], Awaitable[int]]


def _split(argv: list[str]) -> tuple[set[str], list[str]]:
    """(-abc flags as single letters, operands); `--` ends the flags."""
    flags: set[str] = set()
    rest: list[str] = []
    for i, arg in enumerate(argv[1:], 1):
        if arg == "--":
            rest += argv[i + 1:]
            break
        if arg.startswith("-") and len(arg) > 1 and not rest:
            flags.update(arg[1:])
        else:
            rest.append(arg)
    return flags, rest


def read_text(vm: SimVm, path: str, cwd: str) -> str:
    """A file's text, /proc included; raises OSError like open() would."""
    full = vm.files.norm(path, cwd)
    virtual = vm.virtual_file(full)
    return virtual if virtual is not None else vm.files.read(full).decode(errors="replace")


def _oserror(io: ShellIo, prog: str, path: str, exc: OSError) -> int:
    reason = {IsADirectoryError: "Is a directory", NotADirectoryError: "Not a directory",
              FileExistsError: "File exists"}.get(type(exc), "No such file or directory")
    io.err(f"{prog}: {path}: {reason}\n")
    return 1


async def cat(vm: SimVm, argv: list[str], io: ShellIo, cwd: str) -> int:
    _, paths = _split(argv)
    status = 0
    if not paths:
        io.out(io.stdin)
    for path in paths:
        try:
            io.out(read_text(vm, path, cwd))
        except OSError as exc:
            status = _oserror(io, "cat", path, exc)
    return status


async def test(vm: SimVm, argv: list[str], io: ShellIo, cwd: str) -> int:
    args = argv[1:-1] if argv[0] == "[" and argv[-1:] == ["]"] else argv[1:]
    negate = bool(args) and args[0] == "!"
    args = args[1:] if negate else args
    result = False
    if len(args) == 2 and args[0] in ("-f", "-d", "-e", "-s", "-r", "-x"):
        path = vm.files.norm(args[1], cwd)
        is_file = path in vm.files.files or vm.virtual_file(path) is not None
        result = {"-f": is_file, "-d": vm.files.is_dir(path), "-e": is_file or vm.files.is_dir(path),
                  "-r": is_file, "-x": path in vm.files.files and bool(vm.files.files[path].mode & 0o111),
                  "-s": is_file and bool(read_text(vm, path, cwd))}[args[0]]
    elif len(args) == 3 and args[1] in ("=", "==", "!="):
        result = (args[0] == args[2]) == (args[1] != "!=")
    elif len(args) == 2 and args[0] in ("-n", "-z"):
        result = bool(args[1]) == (args[0] == "-n")
    elif len(args) == 1:
        result = bool(args[0])
    return 0 if result != negate else 1


async def stat(vm: SimVm, argv: list[str], io: ShellIo, cwd: str) -> int:
    args = argv[1:]
    fmt = None
    for flag in ("-c", "--format", "--printf"):
        if flag in args:
            i = args.index(flag)
            fmt, args = args[i + 1], args[:i] + args[i + 2:]
    status = 0
    for path in args:
        full = vm.files.norm(path, cwd)
        node = vm.files.files.get(full)
        if node is None and not vm.files.is_dir(full):
            io.err(f"stat: cannot statx '{path}': No such file or directory\n")
            status = 1
            continue
        mode, size = (node.mode, len(node.data)) if node else (0o755, 4096)
        kind = statmod.S_IFREG if node else statmod.S_IFDIR
        values = {"a": f"{mode:o}", "s": str(size), "n": path, "U": "root", "G": "root", "u": "0", "g": "0",
                  "A": statmod.filemode(kind | mode), "F": "regular file" if node else "directory"}
        if fmt is None:
            io.out(f"  File: {path}\n  Size: {size}\nAccess: ({mode:04o}/{values['A']})  Uid: (0/root)\n")
        else:
            io.out(re.sub(r"%(\w)", lambda m: values.get(m[1], m[0]), fmt) + "\n")
    return status


async def ls(vm: SimVm, argv: list[str], io: ShellIo, cwd: str) -> int:
    flags, paths = _split(argv)
    status = 0
    for path in paths or ["."]:
        full = vm.files.norm(path, cwd)
        try:
            if not vm.files.is_dir(full):
                vm.files.read(full)  # raises for a missing path
            names = vm.files.listdir(full) if vm.files.is_dir(full) else [path]
        except OSError:
            io.err(f"ls: cannot access '{path}': No such file or directory\n")
            status = 2
            continue
        names = [n for n in names if "a" in flags or not n.startswith(".")]
        if "l" in flags:
            for name in names:
                node = vm.files.files.get(vm.files.norm(name, full))
                kind, mode, size = ("-", node.mode, len(node.data)) if node else ("d", 0o755, 4096)
                io.out(f"{kind}{statmod.filemode(mode)[1:]} 1 root root {size:>6} Jan  1 00:00 {name}\n")
        else:
            io.out("".join(n + "\n" for n in names))
    return status


async def mkdir(vm: SimVm, argv: list[str], io: ShellIo, cwd: str) -> int:
    flags, paths = _split([a for i, a in enumerate(argv) if a != "-m" and (i == 0 or argv[i - 1] != "-m")])
    status = 0
    for path in paths:
        try:
            if "p" in flags and vm.files.is_dir(vm.files.norm(path, cwd)):
                continue
            vm.files.mkdir(vm.files.norm(path, cwd), parents="p" in flags)
        except OSError as exc:
            io.err(f"mkdir: cannot create directory '{path}': "
                   f"{'File exists' if isinstance(exc, FileExistsError) else 'No such file or directory'}\n")
            status = 1
    return status


async def touch(vm: SimVm, argv: list[str], io: ShellIo, cwd: str) -> int:
    _, paths = _split(argv)
    for path in paths:
        full = vm.files.norm(path, cwd)
        if full in vm.files.files or vm.files.is_dir(full):
            continue
        try:
            vm.files.write(full, b"")
        except OSError:
            io.err(f"touch: cannot touch '{path}': No such file or directory\n")
            return 1
    return 0


async def rm(vm: SimVm, argv: list[str], io: ShellIo, cwd: str) -> int:
    flags, paths = _split(argv)
    for path in paths:
        full = vm.files.norm(path, cwd)
        if "r" in flags and vm.files.is_dir(full):
            vm.files.files = {p: f for p, f in vm.files.files.items() if not p.startswith(full + "/")}
            vm.files.dirs = {d for d in vm.files.dirs if d != full and not d.startswith(full + "/")}
            continue
        try:
            vm.files.remove(full)
        except OSError as exc:
            if "f" not in flags or isinstance(exc, IsADirectoryError):
                return _oserror(io, "rm: cannot remove", f"'{path}'", exc)
    return 0


async def chmod(vm: SimVm, argv: list[str], io: ShellIo, cwd: str) -> int:
    _, args = _split(argv)
    if len(args) < 2 or not re.fullmatch(r"[0-7]{3,4}", args[0]):
        io.err("chmod: only octal modes are supported here\n")
        return 1
    for path in args[1:]:
        node = vm.files.files.get(vm.files.norm(path, cwd))
        if node is None:
            io.err(f"chmod: cannot access '{path}': No such file or directory\n")
            return 1
        node.mode = int(args[0], 8)
    return 0


async def mv(vm: SimVm, argv: list[str], io: ShellIo, cwd: str) -> int:
    _, args = _split(argv)
    if len(args) != 2:
        io.err("mv: missing file operand\n")
        return 1
    src, dst = vm.files.norm(args[0], cwd), vm.files.norm(args[1], cwd)
    if vm.files.is_dir(dst):
        dst = f"{dst}/{src.rsplit('/', 1)[-1]}"
    try:
        vm.files.rename(src, dst)
    except OSError:
        io.err(f"mv: cannot stat '{args[0]}': No such file or directory\n")
        return 1
    return 0


def _lines_arg(argv: list[str]) -> tuple[int, list[str]]:
    count, rest, i = 10, [], 1
    while i < len(argv):
        arg = argv[i]
        if arg == "-n" and i + 1 < len(argv):
            count, i = int(argv[i + 1].lstrip("+-")), i + 1
        elif re.fullmatch(r"-n?\d+", arg):
            count = int(arg.lstrip("-n"))
        else:
            rest.append(arg)
        i += 1
    return count, rest


async def head(vm: SimVm, argv: list[str], io: ShellIo, cwd: str) -> int:
    count, paths = _lines_arg(argv)
    text = "".join(read_text(vm, p, cwd) for p in paths) if paths else io.stdin
    lines = text.splitlines(keepends=True)
    io.out("".join(lines[-count:] if argv[0] == "tail" and count else [] if argv[0] == "tail"
                   else lines[:count]))
    return 0


async def grep(vm: SimVm, argv: list[str], io: ShellIo, cwd: str) -> int:
    flags, args = _split(argv)
    if not args:
        io.err("Usage: grep [OPTION]... PATTERNS [FILE]...\n")
        return 2
    pattern = re.compile(args[0] if flags & {"E", "P"} else args[0].replace("\\|", "|"),
                         re.IGNORECASE if "i" in flags else 0)
    try:
        text = "".join(read_text(vm, p, cwd) for p in args[1:]) if args[1:] else io.stdin
    except OSError:
        io.err(f"grep: {args[1]}: No such file or directory\n")
        return 2
    hits = [line for line in text.splitlines() if bool(pattern.search(line)) != ("v" in flags)]
    if "c" in flags:
        io.out(f"{len(hits)}\n")
    elif "q" not in flags:
        io.out("".join(line + "\n" for line in hits))
    return 0 if hits else 1


async def wc(vm: SimVm, argv: list[str], io: ShellIo, cwd: str) -> int:
    _, paths = _split(argv)
    text = "".join(read_text(vm, p, cwd) for p in paths) if paths else io.stdin
    io.out(f"{text.count(chr(10))}\n")
    return 0


async def echo(vm: SimVm, argv: list[str], io: ShellIo, cwd: str) -> int:
    args = argv[1:]
    newline = not (args and args[0] == "-n")
    args = [a for a in args if a not in ("-n", "-e")] if args and args[0] in ("-n", "-e") else args
    io.out(" ".join(args) + ("\n" if newline else ""))
    return 0


async def printf(vm: SimVm, argv: list[str], io: ShellIo, cwd: str) -> int:
    if len(argv) < 2:
        return 1
    fmt = argv[1].replace("\\n", "\n").replace("\\t", "\t")
    values = iter(argv[2:])
    io.out(re.sub(r"%[sd]", lambda _m: next(values, ""), fmt))
    return 0


async def tee(vm: SimVm, argv: list[str], io: ShellIo, cwd: str) -> int:
    flags, paths = _split(argv)
    for path in paths:
        try:
            vm.files.write(vm.files.norm(path, cwd), io.stdin.encode(), append="a" in flags)
        except OSError as exc:
            return _oserror(io, "tee", path, exc)
    io.out(io.stdin)
    return 0


# --- system commands ------------------------------------------------------------------------------


async def true_(vm: SimVm, argv: list[str], io: ShellIo, cwd: str) -> int:
    return 0


async def false_(vm: SimVm, argv: list[str], io: ShellIo, cwd: str) -> int:
    return 1


async def sleep_(vm: SimVm, argv: list[str], io: ShellIo, cwd: str) -> int:
    await vm.sleep(float(argv[1].rstrip("s")) if len(argv) > 1 else 0)
    return 0


async def uptime_(vm: SimVm, argv: list[str], io: ShellIo, cwd: str) -> int:
    up = int(vm.uptime_s())
    span = f"{up // 60} min" if up < 3600 else f"{up // 3600}:{up % 3600 // 60:02d}"
    io.out(f" {time.strftime('%H:%M:%S')} up {span},  0 users,  load average: 0.08, 0.03, 0.01\n")
    return 0


async def hostname_(vm: SimVm, argv: list[str], io: ShellIo, cwd: str) -> int:
    io.out(vm.instance.label + "\n")
    return 0


async def whoami_(vm: SimVm, argv: list[str], io: ShellIo, cwd: str) -> int:
    io.out("root\n")
    return 0


async def uname_(vm: SimVm, argv: list[str], io: ShellIo, cwd: str) -> int:
    io.out("6.8.0-85-generic\n" if "-r" in argv else "Linux\n")
    return 0


async def nproc_(vm: SimVm, argv: list[str], io: ShellIo, cwd: str) -> int:
    io.out(f"{(vm.gpu_type.vcpus if vm.gpu_type else None) or 4}\n")
    return 0


async def date_(vm: SimVm, argv: list[str], io: ShellIo, cwd: str) -> int:
    now = time.time()
    io.out(f"{int(now)}\n" if "+%s" in argv else time.strftime("%a %b %d %H:%M:%S UTC %Y\n", time.gmtime(now)))
    return 0


async def systemctl_(vm: SimVm, argv: list[str], io: ShellIo, cwd: str) -> int:
    verb = argv[1] if len(argv) > 1 else "status"
    units = [a.removesuffix(".service") for a in argv[2:] if not a.startswith("-")]
    known = {"docker": vm.has_docker(), "ssh": True, "sshd": True,
             "nvidia-persistenced": vm.has_driver(), "containerd": vm.has_docker()}
    if verb in ("is-active", "is-enabled"):
        up = all(known.get(u, False) for u in units)
        if "--quiet" not in argv and "-q" not in argv:
            io.out("".join(("active" if known.get(u) else "inactive") + "\n" for u in units)
                   if verb == "is-active" else "".join(("enabled" if known.get(u) else "disabled") + "\n"
                                                       for u in units))
        return 0 if up else 3
    missing = [u for u in units if u not in known]
    if missing:
        io.err(f"Failed to {verb} {missing[0]}.service: Unit {missing[0]}.service not found.\n")
        return 5
    return 0


COMMANDS: dict[str, Command] = {
    "cat": cat, "test": test, "[": test, "stat": stat, "ls": ls, "mkdir": mkdir, "touch": touch, "rm": rm,
    "chmod": chmod, "mv": mv, "head": head, "tail": head, "grep": grep, "wc": wc, "echo": echo,
    "printf": printf, "tee": tee, "true": true_, "false": false_, "sleep": sleep_, "uptime": uptime_,
    "hostname": hostname_, "whoami": whoami_, "uname": uname_, "nproc": nproc_, "date": date_,
    "systemctl": systemctl_,
}
