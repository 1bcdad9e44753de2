"""The simulated VM's GPUs and what `nvidia-smi` prints about them.

Memory follows the model load, utilisation follows the vLLM server's running requests, and
temperature and power lag behind the load like real silicon does (first-order smoothing in sim
seconds). Jitter is a hash of (seed, GPU, second), so a run is reproducible from its seed.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from maider_tui.models import GpuFamily

DRIVER_VERSION = "580.95.05"
CUDA_VERSION = "13.0"

# family id -> (idle watts, power limit watts); the limits are the cards' board power.
_POWER: dict[str, tuple[float, float]] = {"rtx4000-ada": (12.0, 130.0), "quadro-rtx6000": (24.0, 260.0)}
_IDLE_MIB = 1.0  # a GPU with persistence mode on and no process shows 1MiB used
_TEMP_IDLE, _TEMP_HOT = 32.0, 76.0
_TEMP_TAU_S, _POWER_TAU_S = 40.0, 2.0  # sim seconds: heat is slow, power follows load at once


@dataclass(frozen=True)
class GpuReading:
    """One GPU at one instant, in nvidia-smi's units."""

    index: int
    name: str
    uuid: str
    bus_id: str
    memory_used_mib: int
    memory_total_mib: int
    utilization_pct: int
    temperature_c: int
    power_w: float
    power_limit_w: float
    pstate: str
    fan_pct: int
    persistence: bool


class SimGpus:
    """The GPUs of one VM. `now` is always the VM's sim time in seconds."""

    def __init__(self, family: GpuFamily | None, count: int, *, seed: int, instance_id: int) -> None:
        self.family = family
        self.count = count if family is not None else 0
        self.persistence = False
        self.utilization: Callable[[], float] = lambda: 0.0  # 0-100, set while vLLM serves
        self.busy_gpus = 0  # GPUs a running vLLM uses (tensor x pipeline parallel)
        self._seed = f"{seed}:{instance_id}"
        self._mem_from = [_IDLE_MIB] * self.count
        self._mem_to = [_IDLE_MIB] * self.count
        self._ramp = (0.0, 0.0)  # sim start, sim end of the current memory ramp
        idle_w = _POWER.get(family.id, (20.0, 200.0))[0] if family else 0.0
        self._temp = [_TEMP_IDLE + self._noise(i, 0, "t0") * 2 for i in range(self.count)]
        self._power = [idle_w] * self.count
        self._last = 0.0
        self.faults: Any = None  # the VM's SimFaults, attached once a vLLM runs (idle or unbalanced GPUs)

    def _noise(self, index: int, second: int, kind: str) -> float:
        """Deterministic jitter in [-1, 1] for this GPU and second."""
        digest = hashlib.blake2b(f"{self._seed}:{index}:{second}:{kind}".encode(), digest_size=4).digest()
        return int.from_bytes(digest, "big") / 0x7FFFFFFF - 1.0

    def memory_used(self, now: float) -> list[float]:
        """Per-GPU MiB in use, along the current ramp."""
        start, end = self._ramp
        frac = 1.0 if now >= end or end <= start else max(0.0, (now - start) / (end - start))
        return [a + (b - a) * frac for a, b in zip(self._mem_from, self._mem_to)]

    def ramp_memory(self, targets: Sequence[float], now: float, over_s: float) -> None:
        """Move memory from where it is to `targets` MiB (per GPU; missing ones idle) over `over_s`."""
        current = self.memory_used(now)
        wanted = [max(_IDLE_MIB, float(targets[i])) if i < len(targets) else _IDLE_MIB
                  for i in range(self.count)]
        total = self.family.vram_mib if self.family else 0
        self._mem_from, self._mem_to = current, [min(w, total) for w in wanted]
        self._ramp = (now, now + max(0.0, over_s))

    def release(self, now: float) -> None:
        """A process exited: its memory is freed at once."""
        self.busy_gpus = 0
        self.utilization = lambda: 0.0
        self.ramp_memory([], now, 0.0)

    def sample(self, now: float) -> list[GpuReading]:
        """Read every GPU at sim time `now`; temperature and power move toward the load."""
        if self.family is None:
            return []
        idle_w, limit_w = _POWER.get(self.family.id, (20.0, 200.0))
        dt = max(0.0, now - self._last)
        self._last = max(self._last, now)
        second = int(now)
        memory = self.memory_used(now)
        util_all = max(0.0, min(100.0, self.utilization()))
        readings = []
        idle_gpus, unbalanced = self._faulty()
        for i in range(self.count):
            busy = i < self.busy_gpus and i not in idle_gpus
            util = util_all if busy else 0.0
            if i in idle_gpus and self.busy_gpus:
                memory[i] = _IDLE_MIB
            elif i == unbalanced and self.busy_gpus:
                memory[i] *= 0.7
            if util > 0:
                util = max(0.0, min(100.0, util + self._noise(i, second, "u") * 3))
            loaded = memory[i] > 64  # a resident model keeps clocks up even when idle
            power_target = idle_w + (0.1 * (limit_w - idle_w) if loaded else 0.0) + \
                (0.82 * (limit_w - idle_w) * util / 100)
            temp_target = _TEMP_IDLE + (5.0 if loaded else 0.0) + (_TEMP_HOT - _TEMP_IDLE - 5.0) * util / 100
            self._power[i] += (power_target - self._power[i]) * _approach(dt, _POWER_TAU_S)
            self._temp[i] += (temp_target - self._temp[i]) * _approach(dt, _TEMP_TAU_S)
            power = min(limit_w, max(idle_w * 0.8, self._power[i] + self._noise(i, second, "p") * 1.5))
            temp = self._temp[i] + self._noise(i, second, "c") * 0.6
            readings.append(GpuReading(
                index=i, name=self.family.name, uuid=self._uuid(i), bus_id=f"00000000:00:{i + 2:02X}.0",
                memory_used_mib=round(memory[i]), memory_total_mib=self.family.vram_mib,
                utilization_pct=round(util), temperature_c=round(temp), power_w=round(power, 2),
                power_limit_w=limit_w, pstate="P2" if util > 0 else ("P8" if not loaded else "P2"),
                fan_pct=max(30, min(100, round(30 + (temp - 45) * 1.6))), persistence=self.persistence,
            ))
        return readings

    def _faulty(self) -> tuple[set[int], int | None]:
        """The injected faults that change what nvidia-smi reports (none before a vLLM runs)."""
        if self.faults is None:
            return set(), None
        return set(self.faults.idle_gpus), self.faults.unbalanced_gpu

    def _uuid(self, index: int) -> str:
        h = hashlib.blake2b(f"{self._seed}:{index}:uuid".encode(), digest_size=16).hexdigest()
        return f"GPU-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _approach(dt: float, tau: float) -> float:
    """Fraction of the gap a first-order system closes in `dt`."""
    return 1.0 if tau <= 0 else 1.0 - pow(2.718281828, -dt / tau)


# --- nvidia-smi output ---------------------------------------------------------------------------

def _plain(text: str) -> tuple[str, str, str]:
    return "", text, text


# field -> (header unit or "", value with units, value without units)
_FIELDS: dict[str, Callable[[GpuReading], tuple[str, str, str]]] = {
    "index": lambda r: ("", str(r.index), str(r.index)),
    "name": lambda r: ("", r.name, r.name),
    "gpu_name": lambda r: ("", r.name, r.name),
    "uuid": lambda r: ("", r.uuid, r.uuid),
    "gpu_uuid": lambda r: ("", r.uuid, r.uuid),
    "pci.bus_id": lambda r: ("", r.bus_id, r.bus_id),
    "driver_version": lambda r: ("", DRIVER_VERSION, DRIVER_VERSION),
    "count": lambda r: ("", "", ""),  # filled in by query_csv
    "persistence_mode": lambda r: _plain("Enabled" if r.persistence else "Disabled"),
    "pstate": lambda r: ("", r.pstate, r.pstate),
    "memory.used": lambda r: ("MiB", f"{r.memory_used_mib} MiB", str(r.memory_used_mib)),
    "memory.total": lambda r: ("MiB", f"{r.memory_total_mib} MiB", str(r.memory_total_mib)),
    "memory.free": lambda r: ("MiB", f"{r.memory_total_mib - r.memory_used_mib} MiB",
                              str(r.memory_total_mib - r.memory_used_mib)),
    "utilization.gpu": lambda r: ("%", f"{r.utilization_pct} %", str(r.utilization_pct)),
    "utilization.memory": lambda r: ("%", f"{r.utilization_pct // 2} %", str(r.utilization_pct // 2)),
    "temperature.gpu": lambda r: ("", str(r.temperature_c), str(r.temperature_c)),
    "power.draw": lambda r: ("W", f"{r.power_w:.2f} W", f"{r.power_w:.2f}"),
    "power.limit": lambda r: ("W", f"{r.power_limit_w:.2f} W", f"{r.power_limit_w:.2f}"),
    "fan.speed": lambda r: ("%", f"{r.fan_pct} %", str(r.fan_pct)),
}


_INVALID = "Invalid combination of input arguments."


class NvidiaSmiError(ValueError):
    """A command line nvidia-smi refuses; the message is what it prints."""


def query_csv(readings: Sequence[GpuReading], fields: Sequence[str], *, header: bool, units: bool) -> str:
    """`--query-gpu=FIELDS --format=csv[,noheader][,nounits]` for one sampling tick."""
    for name in fields:
        if name not in _FIELDS:
            raise NvidiaSmiError(f'Field "{name}" is not a valid field to query.')
    lines = []
    if header:
        cols = []
        for name in fields:
            unit = _FIELDS[name](readings[0])[0] if readings else ""
            cols.append(f"{name} [{unit}]" if unit else name)
        lines.append(", ".join(cols))
    for r in readings:
        cells = []
        for name in fields:
            _, with_units, bare = _FIELDS[name](r)
            cells.append(str(len(readings)) if name == "count" else (with_units if units else bare))
        lines.append(", ".join(cells))
    return "\n".join(lines) + "\n"


def table(readings: Sequence[GpuReading], processes: Sequence[tuple[int, int, str, int]], *,
          wall_time: float | None = None) -> str:
    """The default `nvidia-smi` screen; `processes` are (gpu, pid, name, MiB)."""
    bar = "+-----------------------------------------+------------------------+----------------------+"
    wide = "+" + "-" * 89 + "+"
    stamp = time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(wall_time or time.time()))
    out = [f"{stamp}       ", wide,
           f"| NVIDIA-SMI {DRIVER_VERSION}{'':14}Driver Version: {DRIVER_VERSION}{'':6}"
           f"CUDA Version: {CUDA_VERSION}     |",
           bar,
           "| GPU  Name                 Persistence-M | Bus-Id          Disp.A | Volatile Uncorr. ECC |",
           "| Fan  Temp   Perf          Pwr:Usage/Cap |           Memory-Usage | GPU-Util  Compute M. |",
           "|                                         |                        |               MIG M. |",
           "|" + bar[1:-1].replace("-", "=").replace("+", "+") + "|"]
    for r in readings:
        name = r.name if len(r.name) <= 28 else r.name[:24] + "..."
        ecc = "Off" if "Ada" in r.name else "N/A"
        out.append(f"| {r.index:>3}  {name:<28}{'On' if r.persistence else 'Off':>6} |"
                   f"   {r.bus_id} Off |{ecc:>21} |")
        usage = f"{r.power_w:.0f}W / {r.power_limit_w:>4.0f}W"
        memory = f"{r.memory_used_mib}MiB / {r.memory_total_mib:>6}MiB"
        out.append(f"| {r.fan_pct:>3}%  {r.temperature_c:>3}C    {r.pstate:<3}{usage:>22} |"
                   f" {memory:>22} | {r.utilization_pct:>6}%      Default |")
        out.append(f"|{'':41}|{'':24}|{'N/A':>21} |")
        out.append(bar)
    if not readings:
        return "No devices were found\n"
    out += ["", wide, "| Processes:" + " " * 78 + "|",
            "|  GPU   GI   CI              PID   Type   Process name                        GPU Memory |",
            "|        ID   ID                                                               Usage      |",
            "|" + "=" * 89 + "|"]
    if not processes:
        out.append("|  No running processes found" + " " * 61 + "|")
    for gpu, pid, pname, mib in processes:
        out.append(f"| {gpu:>4}   N/A  N/A  {pid:>15}      C   {pname:<34}{mib:>8}MiB |")
    out.append(wide)
    return "\n".join(out) + "\n"


def topology(count: int) -> str:
    """`nvidia-smi topo -m`: PCIe only (no NVLink on these plans); pairs share a host bridge."""
    names = [f"GPU{i}" for i in range(count)]
    lines = ["\t" + "\t".join(names) + "\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID"]
    half = max(1, (count + 1) // 2) if count > 2 else count
    for i in range(count):
        cells = ["X" if i == j else ("PHB" if i // half == j // half else "SYS") for j in range(count)]
        node = i // half
        lines.append(f"{names[i]}\t" + "\t".join(cells) + f"\t0-{max(1, 4 * count) - 1}\t{node}\t\tN/A")
    lines += ["", "Legend:", "",
              "  X    = Self",
              "  SYS  = Connection traversing PCIe as well as the SMP interconnect between NUMA nodes "
              "(e.g., QPI/UPI)",
              "  NODE = Connection traversing PCIe as well as the interconnect between PCIe Host Bridges "
              "within a NUMA node",
              "  PHB  = Connection traversing PCIe as well as a PCIe Host Bridge (typically the CPU)",
              "  PXB  = Connection traversing multiple PCIe bridges (without traversing the PCIe Host "
              "Bridge)",
              "  PIX  = Connection traversing at most a single PCIe bridge",
              "  NV#  = Connection traversing a bonded set of # NVLinks"]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class NvidiaSmiCall:
    """What one nvidia-smi command line asks for."""

    mode: str  # "table", "query", "list", "topo", "persistence"
    fields: tuple[str, ...] = ()
    header: bool = True
    units: bool = True
    interval_s: float | None = None  # real seconds between blocks when looping
    gpu_ids: tuple[int, ...] | None = None


def parse_args(argv: Sequence[str]) -> NvidiaSmiCall:
    """Parse an nvidia-smi command line (without the program name); NvidiaSmiError on misuse."""
    if list(argv[:1]) == ["topo"]:
        if "-m" not in argv and "--matrix" not in argv:
            raise NvidiaSmiError(f"{_INVALID} Please run 'nvidia-smi topo -h' for help.")
        return NvidiaSmiCall("topo")
    mode, fmt = "table", ""
    fields: tuple[str, ...] = ()
    interval: float | None = None
    ids: tuple[int, ...] | None = None
    args = list(argv)
    while args:
        arg = args.pop(0)
        key, _, inline = arg.partition("=")

        def value() -> str:
            if inline:
                return inline
            if not args:
                raise NvidiaSmiError(f'Option "{key}" requires a value.')
            return args.pop(0)
        if key in ("--query-gpu", "-q-gpu"):
            mode, fields = "query", tuple(f.strip() for f in value().split(",") if f.strip())
        elif key == "--format":
            fmt = value()
        elif key in ("-lms", "--loop-ms"):
            interval = _positive(value()) / 1000
        elif key in ("-l", "--loop"):
            interval = _positive(value())
        elif key in ("-i", "--id"):
            ids = tuple(int(x) for x in value().split(",") if x.strip().isdigit())
        elif key in ("-L", "--list-gpus"):
            mode = "list"
        elif key in ("-pm", "--persistence-mode"):
            mode, fields = "persistence", (value(),)
        else:
            raise NvidiaSmiError(f"{_INVALID} Please run 'nvidia-smi -h' for help.\n"
                                 f"Unknown option: {arg}")
    if mode == "query" and not fmt.startswith("csv"):
        raise NvidiaSmiError('Option "--format" is required with "--query-gpu".')
    for name in fields if mode == "query" else ():
        if name not in _FIELDS:
            raise NvidiaSmiError(f'Field "{name}" is not a valid field to query.')
    flags = set(fmt.split(",")[1:])
    return NvidiaSmiCall(mode, fields, "noheader" not in flags, "nounits" not in flags, interval, ids)


def _positive(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise NvidiaSmiError(f'Invalid value "{text}".') from None
    if number <= 0:
        raise NvidiaSmiError(f'Invalid value "{text}".')
    return number
