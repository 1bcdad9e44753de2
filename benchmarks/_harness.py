"""What the benchmark scripts share: `name=value` output, the app and its baseline under a
pseudo-terminal, the simulated cloud in another process, sessions launched ahead of the app, and
per-process CPU and memory read from /proc (Linux only).

Not a benchmark itself (the leading underscore). Every figure is measured against a baseline in the
same run, because the machines these run on are noisy.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import os
import pty
import re
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Iterator, Sequence
from typing import NamedTuple
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE_APP = Path(__file__).resolve().parent / "_baseline_app.py"
COLUMNS, ROWS = 120, 40
SIM_TOKEN = "sim-benchmark"
# Printed by the baseline app's first frame, and by the app's home screen (its sessions box title).
BASELINE_MARKER = "baseline-ready"
HOME_MARKER = "Sessions"
_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[PX^_][^\x1b]*\x1b\\|[@-Z\\-_])")


class MeasureError(RuntimeError):
    """The benchmark could not measure (the script exits non-zero)."""


# --- output ---------------------------------------------------------------------------------------

def emit(name: str, value: object) -> None:
    """One `name=value` line, flushed so a run cut short still shows what it measured."""
    if isinstance(value, float):
        value = f"{value:.4g}" if abs(value) < 1000 else f"{value:.1f}"
    print(f"{name}={value}", flush=True)


OVER_BUDGET = 2  # a script's exit status when it measured and its headline is over the budget


def emit_budget(name: str, value: float, budget: float) -> int:
    """The headline against its budget, as the last lines: `NAME_budget`, `within_budget` (1 or 0),
    then `NAME=value`. Returns the script's exit status: 0 within the budget, OVER_BUDGET over it."""
    met = value <= budget
    emit(f"{name}_budget", budget)
    emit("within_budget", int(met))
    emit(name, value)
    return 0 if met else OVER_BUDGET


def parse_figures(text: str) -> dict[str, str]:
    """The `name=value` lines of a benchmark's output (later lines win); other lines are ignored."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name and re.fullmatch(r"[A-Za-z_][\w.]*", name.strip()):
            found[name.strip()] = value.strip()
    return found


def median(values: Sequence[float]) -> float:
    if not values:
        raise MeasureError("nothing was measured")
    return statistics.median(values)


def strip_escapes(data: str) -> str:
    """Terminal output without its escape sequences: the text a screen draws."""
    return _ESCAPE.sub("", data)


# --- /proc ----------------------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (utime + stime of /proc/PID/stat)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) ": state is field 3
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuReading(NamedTuple):
    """A process's CPU so far, two ways: /proc/PID/stat's utime + stime, counted in clock ticks (10 ms:
    a process using 0.2 s a minute reads 20 +- 1 ticks), and each live thread's nanoseconds on a CPU
    from /proc/PID/task/TID/schedstat."""

    ticks_s: float
    thread_ns: dict[str, int]


def cpu_reading(pid: int) -> CpuReading:
    threads: dict[str, int] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            threads[tid] = int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # the thread ended meanwhile (or schedstat is not there): `cpu_between` sees it
    return CpuReading(cpu_seconds(pid), threads)


def cpu_between(before: CpuReading, after: CpuReading) -> tuple[float, bool]:
    """CPU seconds used between two readings, and whether to the nanosecond: the threads' counts when
    every thread of the first reading is in the second (a thread that ended took its count with it,
    and a thread started meanwhile counts whole), else the ticks."""
    if before.thread_ns and before.thread_ns.keys() <= after.thread_ns.keys():
        return sum(ns - before.thread_ns.get(tid, 0) for tid, ns in after.thread_ns.items()) / 1e9, True
    return after.ticks_s - before.ticks_s, False


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise MeasureError(f"no {key} in /proc/{pid}/status")


def peak_rss_mib(pid: int) -> float:
    """Peak resident set size (VmHWM) of a process, in MiB."""
    return _status_kib(pid, "VmHWM") / 1024


def rss_mib(pid: int) -> float:
    return _status_kib(pid, "VmRSS") / 1024


# --- a program under a pseudo-terminal ------------------------------------------------------------

class PtyProgram:
    """A program on a pty of COLUMNS x ROWS with TERM=xterm-256color; its output is read continuously
    (a terminal program blocks when nobody reads), and `wait_for` times when a text first appears."""

    def __init__(self, argv: Sequence[str], *, env: dict[str, str] | None = None,
                 cwd: str | Path | None = None) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        environ = {**os.environ, **(env or {}), "TERM": "xterm-256color", "COLUMNS": str(COLUMNS),
                   "LINES": str(ROWS)}
        environ.pop("TEXTUAL", None)
        self.started = time.monotonic()
        self.process = subprocess.Popen(list(argv), stdin=slave, stdout=slave, stderr=slave, env=environ,
                                        cwd=cwd, start_new_session=True, close_fds=True)
        os.close(slave)
        self._master = master
        self._raw = bytearray()
        self._text = ""
        self._lock = threading.Lock()
        self._seen = threading.Condition(self._lock)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._master, 65536)
            except OSError:
                chunk = b""
            with self._seen:
                if not chunk:
                    self._seen.notify_all()
                    return
                self._raw += chunk
                # Keep the decoded text of everything so far (a marker may straddle two reads).
                self._text = strip_escapes(self._raw.decode("utf-8", "replace"))
                self._seen.notify_all()

    @property
    def bytes_read(self) -> int:
        """Bytes the program wrote to its terminal so far."""
        with self._lock:
            return len(self._raw)

    def text(self) -> str:
        with self._lock:
            return self._text

    def wait_for(self, marker: str, timeout: float = 60.0, *, after: int = 0) -> float:
        """Seconds from start until `marker` appeared in the drawn text (looking from offset `after`)."""
        deadline = time.monotonic() + timeout
        with self._seen:
            while marker not in self._text[after:]:
                left = deadline - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not self._reader.is_alive()):
                    tail = self._text[-600:]
                    raise MeasureError(f"{marker!r} did not appear within {timeout:g} s; the screen ended "
                                       f"with: {tail!r}")
                self._seen.wait(min(left, 0.05))
            return time.monotonic() - self.started

    def send(self, keys: str | bytes) -> None:
        os.write(self._master, keys.encode() if isinstance(keys, str) else keys)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s: the program and anything it started."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        with contextlib.suppress(OSError):
            os.close(self._master)
        self._reader.join(2)


def compile_sources() -> None:
    """Byte-compile the package as `pip install` does, so no run pays for compiling a module that
    changed since the last one (with PYTHONDONTWRITEBYTECODE set, every run would)."""
    import compileall

    compileall.compile_dir(str(ROOT / "maider_tui"), quiet=1)


def app_argv(*extra: str) -> list[str]:
    return [sys.executable, "-m", "maider_tui", *extra]


def baseline_argv(mode: str) -> list[str]:
    """The minimal Textual app: `static` shows one Static; `clock` redraws a clock at 1 Hz."""
    return [sys.executable, str(BASELINE_APP), mode]


def app_env(home: Path, **extra: str) -> dict[str, str]:
    """An isolated MAIDER_HOME, no token from the environment and a keyring that holds nothing."""
    env = {k: v for k, v in os.environ.items() if k not in {"LINODE_TOKEN", "MAIDER_LINODE_TOKEN", "HF_TOKEN"}}
    env.update(MAIDER_HOME=str(home), PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
               MAIDER_SIM_TOKEN=SIM_TOKEN, **extra)
    return env


@contextlib.contextmanager
def temp_home() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="maider-bench-") as tmp:
        yield Path(tmp)


# --- the simulated cloud in its own process --------------------------------------------------------

class SimProcess:
    """`maider-tui sim` in another process, so its CPU and memory are not the app's."""

    def __init__(self, *, speed: float, big_plan: int | None = None, seed: int = 0) -> None:
        argv = [sys.executable, "-m", "maider_tui.sim", "--speed", str(speed), "--seed", str(seed)]
        if big_plan:
            argv += ["--big-plan", str(big_plan)]
        self.speed = speed
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                        env={**os.environ, "MAIDER_SIM_TOKEN": SIM_TOKEN},
                                        start_new_session=True)
        self.url = ""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("Simulated Linode API:"):
                self.url = line.split(":", 1)[1].strip()
                break
        if not self.url:
            self.stop()
            raise MeasureError("the simulated cloud did not start")
        # Drain its stdout in the background so it never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in self.process.stdout], daemon=True).start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def remote(self):
        from maider_tui.sim.remote import RemoteSim

        return RemoteSim(self.url, SIM_TOKEN)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)

    def __enter__(self) -> SimProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- sessions launched ahead of the app -----------------------------------------------------------

def demo_paths(home: Path):
    """The data directory `maider-tui --sim-url` uses under MAIDER_HOME=home."""
    from maider_tui.paths import AppPaths

    os.environ["MAIDER_HOME"] = str(home)
    return AppPaths.under(AppPaths.default().data_dir / "demo")


def default_plan(gpu_type, model_id: str = "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ"):
    """The plan the app would make for `model_id` on `gpu_type` (catalog.fit), with default options."""
    from maider_tui import catalog
    from maider_tui.deploy.compose import ComposeOptions
    from maider_tui.ops.provision import LaunchPlan

    config = catalog.fit(model_id, gpu_type).to_vllm_config()
    return LaunchPlan(region=gpu_type.regions[0], gpu_type=gpu_type, config=config, compose=ComposeOptions())


async def launch_sessions(sim: SimProcess, home: Path, count: int = 1, *, gpu_type_id: str = "g2-gpu-rtx4000a1-s",
                          model_id: str = "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ") -> list[str]:
    """Launch `count` sessions with the app's own ops code into `home`'s demo data, then let go of them
    (the VMs keep running, unwatched) so an app started on that home finds them ready."""
    from maider_tui.clock import SystemClock
    from maider_tui.context import build_context
    from maider_tui.ops.live import LiveSessions
    from maider_tui.ops.readiness import ReadinessLimits

    paths = demo_paths(home)
    context = build_context(paths, demo=True, environ={"MAIDER_LINODE_TOKEN": SIM_TOKEN}, use_keyring=False)
    remote = sim.remote()
    context.provider = remote.provider(store=context.store)
    types = await context.provider.gpu_types()
    gpu = next((t for t in types.items if t.id == gpu_type_id), None)
    if gpu is None:
        raise MeasureError(f"the simulated cloud offers no plan {gpu_type_id}")
    settings = context.settings.settings
    limits = ReadinessLimits.from_settings(settings.readiness).scaled(sim.speed)
    live = LiveSessions(store=context.store, paths=paths, settings=settings, clock=SystemClock(),
                        provider=lambda: context.provider, hf_token=lambda: None, limits=limits)
    try:
        plans = [dataclasses.replace(default_plan(gpu, model_id), name=f"bench-{i + 1}") for i in range(count)]
        done = await asyncio.gather(*(live.launch(plan) for plan in plans))
        return [session.name for session in done]
    finally:
        await live.close_all()
        context.store.close()
        remote.close()
