"""The pure half of GPU validation: findings, the report and its Markdown, and the judgements.

No I/O here: `ops.validate` runs the commands and requests and hands their output to these
functions, so topology parsing, memory balance and advice are tested on canned text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..models import VllmConfig
from ..remote.gpu import GpuSample
from .validate_table import utilisation_table
from ..words import plural

Status = Literal["pass", "warn", "fail"]
_RANK: dict[Status, int] = {"pass": 0, "warn": 1, "fail": 2}
SPREAD_LIMIT_PCT = 15.0  # the seed's rule: more spread than this across GPUs is worth a look
IDLE_MEMORY_PCT = 5.0  # a GPU holding a TP shard is far above this; an unused one sits near 0
IDLE_UTIL_PCT = 10.0  # under load a working GPU is busy well above this
SLOW_FRACTION = 0.5  # the seed: under half the expected rate means something is wrong
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_GPU_LABEL = re.compile(r"^GPU\d+$")


@dataclass(frozen=True)
class Finding:
    """One verdict: pass / warn / fail, a one-line title, and the evidence (numbers or log lines)."""

    section: str
    status: Status
    title: str
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class Advice:
    """A configuration change worth trying, and the measurement that suggests it."""

    setting: str  # "VLLM_ALLREDUCE_USE_SYMM_MEM=0", "--max-num-seqs 16" ...
    why: str
    problem: bool = False  # True when it answers a warn/fail, not just a tuning option


@dataclass(frozen=True)
class Throughput:
    """One measured generation: prompt size, output tokens, time to first token, decode rate."""

    prompt_tokens: int
    output_tokens: int
    ttft_s: float | None
    e2e_s: float

    @property
    def tok_s(self) -> float:
        """Decode tokens per second (after the first token), the rate a coder feels."""
        decode_s = self.e2e_s - (self.ttft_s or 0.0)
        if self.output_tokens <= 1 or decode_s <= 0:
            return self.output_tokens / self.e2e_s if self.e2e_s > 0 else 0.0
        return (self.output_tokens - 1) / decode_s


@dataclass
class ValidationReport:
    """What a quick check or a full validation found on one session."""

    kind: Literal["quick", "full"]
    session: str
    model: str
    gpu_type: str
    started_at: float
    findings: list[Finding] = field(default_factory=list)
    throughput: list[Throughput] = field(default_factory=list)
    utilisation: list[tuple[float, tuple[float, ...]]] = field(default_factory=list)  # (time, % per GPU)
    advice: list[Advice] = field(default_factory=list)
    finished_at: float | None = None

    @property
    def status(self) -> Status:
        """The worst status of any finding (pass when there is none yet)."""
        worst = max((_RANK[f.status] for f in self.findings), default=0)
        return next(s for s, r in _RANK.items() if r == worst)

    def counts(self) -> dict[str, int]:
        return {s: sum(f.status == s for f in self.findings) for s in _RANK}

    def to_markdown(self) -> str:
        """The report as Markdown, for a file the user can share (the seed's `> validation-report.txt`)."""
        from ..clock import utc_iso

        counts = self.counts()
        out = [f"# GPU validation ({self.kind}): {self.session}", "",
               f"- Model: `{self.model}`", f"- GPU type: `{self.gpu_type}`",
               f"- Started: {utc_iso(self.started_at)}",
               f"- Result: **{self.status}** ({counts['pass']} pass, {counts['warn']} warn, {counts['fail']} fail)",
               "", "## Findings", "", "| status | section | finding |", "|---|---|---|"]
        out += [f"| {f.status} | {f.section} | {_cell(f.title)} |" for f in self.findings]
        for f in self.findings:
            if f.evidence:
                out += ["", f"### {f.section}: {f.title}", "", "```", *f.evidence, "```"]
        if self.throughput:
            out += ["", "## Throughput", "", "| prompt tokens | output tokens | TTFT s | tok/s |", "|---:|---:|---:|---:|"]
            out += [f"| {t.prompt_tokens} | {t.output_tokens} | "
                    f"{'-' if t.ttft_s is None else f'{t.ttft_s:.2f}'} | {t.tok_s:.1f} |" for t in self.throughput]
        if self.utilisation:
            out += ["", "## GPU utilisation under load", "", *utilisation_table(self.utilisation, markdown=True)]
        if self.advice:
            out += ["", "## Configuration advice", ""]
            out += [f"- `{a.setting}`: {a.why}" for a in self.advice]
        return "\n".join(out) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def worst(statuses: Sequence[Status]) -> Status:
    """The most serious of `statuses` (pass for none)."""
    return max(statuses, key=lambda s: _RANK[s], default="pass")


# --- topology ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Topology:
    """`nvidia-smi topo -m` restricted to GPU-to-GPU links: `links[(i, j)]` is the legend code."""

    gpus: tuple[str, ...]
    links: dict[tuple[int, int], str]

    def kinds(self) -> set[str]:
        """The link classes present: `nvlink`, `pcie` (same socket) or `sys` (across sockets)."""
        return {link_kind(code) for code in self.links.values()}

    @property
    def interconnect(self) -> str:
        """The slowest path between any two GPUs: `single`, `nvlink`, `pcie` or `sys`."""
        kinds = self.kinds()
        for kind in ("sys", "pcie", "nvlink"):
            if kind in kinds:
                return kind
        return "single"


def link_kind(code: str) -> str:
    """NV# -> nvlink; SYS -> sys (crosses the CPU interconnect); PIX/PXB/PHB/NODE -> pcie."""
    code = code.upper()
    if code.startswith("NV"):
        return "nvlink"
    return "sys" if code == "SYS" else "pcie"


def parse_topology(text: str) -> Topology:
    """Parse the GPU matrix of `nvidia-smi topo -m` (tabs or spaces, NIC and mlx columns, ANSI codes).

    Rows missing from a truncated capture are skipped; each pair is read from whichever row has it.
    """
    header: list[str] | None = None
    rows: dict[int, list[str]] = {}
    for raw in _ANSI.sub("", text).splitlines():
        cells = raw.split()
        if not cells:
            continue
        if header is None:
            if _GPU_LABEL.match(cells[0]):
                header = [c for c in cells if _GPU_LABEL.match(c) or c.startswith(("NIC", "mlx"))]
            continue
        if _GPU_LABEL.match(cells[0]):
            rows[int(cells[0][3:])] = cells[1:1 + len(header)]
        elif cells[0].startswith("Legend"):
            break
    if header is None:
        return Topology((), {})
    gpus = tuple(c for c in header if _GPU_LABEL.match(c))
    links: dict[tuple[int, int], str] = {}
    for i, cells in rows.items():
        for col, code in zip(header, cells):
            if not _GPU_LABEL.match(col):
                continue
            j = int(col[3:])
            if i != j and code.upper() != "X":
                links.setdefault((min(i, j), max(i, j)), code)
    return Topology(gpus, links)


def topology_finding(topo: Topology) -> Finding:
    """Pass either way (an interconnect is hardware, not a mistake); the evidence names the links."""
    names = {"single": "one GPU: no interconnect to check", "nvlink": "NVLink between all GPUs",
             "pcie": "PCIe only, GPUs on the same CPU socket (no NVLink)",
             "sys": "PCIe only, some GPUs across CPU sockets (slowest all-reduce)"}
    evidence = tuple(f"GPU{i} <-> GPU{j}: {code} ({link_kind(code)})" for (i, j), code in sorted(topo.links.items()))
    return Finding("hardware", "pass", f"Topology: {names[topo.interconnect]}", evidence)


# --- memory and utilisation ----------------------------------------------------------------------

@dataclass(frozen=True)
class MemoryBalance:
    used_gb: tuple[float, ...]
    total_gb: tuple[float, ...]
    idle: tuple[int, ...]  # GPU indexes holding next to nothing
    spread_pct: float  # (max - min) / max of the GPUs that hold the model


def memory_balance(samples: Sequence[GpuSample], expected_busy: int) -> MemoryBalance:
    """Per-GPU memory and its spread; GPUs below IDLE_MEMORY_PCT among the first `expected_busy` are idle."""
    used = tuple((s.memory_used_mib or 0.0) / 1024 for s in samples)
    total = tuple((s.memory_total_mib or 0.0) / 1024 for s in samples)
    idle = tuple(s.index for s in samples[:expected_busy] if (s.memory_pct or 0.0) < IDLE_MEMORY_PCT)
    loaded = [u for s, u in zip(samples[:expected_busy], used) if s.index not in idle]
    spread = 100.0 * (max(loaded) - min(loaded)) / max(loaded) if len(loaded) > 1 and max(loaded) > 0 else 0.0
    return MemoryBalance(used, total, idle, spread)


def memory_findings(balance: MemoryBalance, expected_busy: int) -> list[Finding]:
    """Idle GPUs fail (tensor parallelism not working); a spread over 15% warns; else pass."""
    lines = tuple(f"GPU {i}: {u:.1f} GB / {t:.1f} GB ({100 * u / t if t else 0:.0f}%)"
                  + (" - IDLE" if i in balance.idle else "")
                  for i, (u, t) in enumerate(zip(balance.used_gb, balance.total_gb)))
    if balance.idle:
        busy = expected_busy - len(balance.idle)
        return [Finding("memory", "fail", f"{len(balance.idle)} of {expected_busy} GPUs hold no model "
                        f"(only {busy} loaded): tensor parallelism is not working", lines)]
    if balance.spread_pct > SPREAD_LIMIT_PCT:
        return [Finding("memory", "warn", f"Memory differs by {balance.spread_pct:.0f}% across GPUs "
                        f"(over {SPREAD_LIMIT_PCT:.0f}%): partial TP initialisation?", lines)]
    return [Finding("memory", "pass", f"Similar memory on every GPU (spread {balance.spread_pct:.0f}%)", lines)]


def idle_under_load(utilisation: Sequence[tuple[float, tuple[float, ...]]], expected_busy: int) -> tuple[int, ...]:
    """GPUs among the first `expected_busy` whose mean utilisation stayed under IDLE_UTIL_PCT."""
    if not utilisation:
        return ()
    count = min(expected_busy, len(utilisation[0][1]))
    means = [sum(row[i] for _, row in utilisation) / len(utilisation) for i in range(count)]
    return tuple(i for i, m in enumerate(means) if m < IDLE_UTIL_PCT)


# --- logs ----------------------------------------------------------------------------------------

_TP = re.compile(r"tensor_parallel_size['\"]?\s*[=:]\s*(\d+)")
_NCCL = re.compile(r"NCCL", re.IGNORECASE)
_NCCL_BAD = re.compile(r"NCCL\s+WARN|NCCL error|ncclSystemError|ncclInternalError|ncclUnhandled", re.IGNORECASE)
_NCCL_ERROR = re.compile(r"NCCL error|RuntimeError", re.IGNORECASE)


def tensor_parallel_from_logs(log_text: str) -> int | None:
    """The last tensor_parallel_size vLLM logged (its args dict or engine config line), or None."""
    found = _TP.findall(log_text)
    return int(found[-1]) if found else None


def tp_finding(logged: int | None, config: VllmConfig, gpu_count: int) -> Finding:
    """The logged TP x PP against the GPUs: equal passes, fewer warns (GPUs paid for, unused)."""
    tp = logged if logged is not None else config.tensor_parallel_size
    used = tp * config.pipeline_parallel_size
    where = "in the vLLM log" if logged is not None else "in the config (not found in the log)"
    evidence = (f"tensor_parallel_size={tp} {where}", f"pipeline_parallel_size={config.pipeline_parallel_size}",
                f"GPUs on the VM: {gpu_count}")
    if used == gpu_count:
        status: Status = "pass" if logged is not None else "warn"
        return Finding("tensor parallel", status, f"Tensor parallel size ({tp}) matches the GPU count ({gpu_count})",
                       evidence)
    if used < gpu_count:
        return Finding("tensor parallel", "warn", f"vLLM uses {used} of {gpu_count} GPUs (tensor parallel {tp})",
                       evidence)
    return Finding("tensor parallel", "fail", f"Tensor parallel size {tp} exceeds the {gpu_count} GPUs", evidence)


def nccl_finding(log_text: str) -> Finding:
    """NCCL errors fail, NCCL WARN lines warn, quiet logs pass; the evidence is the lines themselves."""
    bad = [line.strip() for line in log_text.splitlines() if _NCCL_BAD.search(line)]
    errors = [line for line in bad if _NCCL_ERROR.search(line)]
    if errors:
        return Finding("nccl", "fail", f"{plural(len(errors), 'NCCL error line')} in the vLLM log", tuple(errors[:5]))
    if bad:
        return Finding("nccl", "warn", f"{plural(len(bad), 'NCCL warning')} in the vLLM log", tuple(bad[:5]))
    seen = [line.strip() for line in log_text.splitlines() if _NCCL.search(line)][:2]
    return Finding("nccl", "pass", "No NCCL errors or warnings in the vLLM log", tuple(seen))


# --- advice --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Measured:
    """What the full validation measured, the input of `advise`."""

    gpu_count: int
    interconnect: str = "single"  # Topology.interconnect
    idle_gpus: tuple[int, ...] = ()
    spread_pct: float = 0.0
    nccl: Status = "pass"
    tok_s: float | None = None  # decode rate of the shortest prompt
    expected_tok_s: float | None = None  # the catalog's roofline estimate
    mean_util_pct: float | None = None  # under load, over the GPUs in use


def advise(measured: Measured, config: VllmConfig) -> list[Advice]:
    """The seed's tuning suggestions that what was measured calls for, skipping ones already set."""
    env, args = config.env, " ".join(config.extra_args)
    out: list[Advice] = []
    if measured.idle_gpus:
        out.append(Advice(f"--tensor-parallel-size {measured.gpu_count}",
                          f"{'GPU' if len(measured.idle_gpus) == 1 else 'GPUs'} {', '.join(map(str, measured.idle_gpus))} sit idle: tensor parallelism must "
                          "match the GPUs (check the TP size in the log, then restart vLLM)", True))
    elif measured.spread_pct > SPREAD_LIMIT_PCT:
        out.append(Advice("restart vLLM (h heals, m switches back to the same model)",
                          f"memory differs by {measured.spread_pct:.0f}% across GPUs: a partial TP "
                          "initialisation usually clears on a restart", True))
    if measured.nccl != "pass" and measured.gpu_count > 1:
        missing = [f"{k}={v}" for k, v in (("NCCL_DEBUG", "WARN"), ("NCCL_IB_DISABLE", "1"),
                                           ("NCCL_P2P_DISABLE", "0")) if k not in env]
        setting = " ".join(missing) if missing else "NCCL_P2P_DISABLE=1"
        out.append(Advice(setting, "NCCL complained in the log: set the NCCL environment (or turn "
                          "peer-to-peer off when it is already set)", True))
    slow = (measured.tok_s is not None and measured.expected_tok_s
            and measured.tok_s < SLOW_FRACTION * measured.expected_tok_s)
    if slow:
        busy = measured.mean_util_pct is not None and measured.mean_util_pct >= 80
        why = (f"{measured.tok_s:.1f} tok/s is under half the {measured.expected_tok_s:.0f} tok/s estimate"
               + (" with busy GPUs: they wait on each other" if busy else ""))
        if "--max-num-seqs" not in args and config.max_num_seqs != 1:
            out.append(Advice("--max-num-seqs 1", why + "; less batching lowers synchronisation", True))
        if "--enable-chunked-prefill" not in args:
            out.append(Advice("--enable-chunked-prefill", why, True))
    if measured.gpu_count > 1 and measured.interconnect in ("pcie", "sys"):
        if env.get("VLLM_ALLREDUCE_USE_SYMM_MEM") != "0":
            out.append(Advice("VLLM_ALLREDUCE_USE_SYMM_MEM=0", "no NVLink: the symmetric-memory all-reduce "
                              "hurts on PCIe"))
        if (config.max_num_seqs or 256) > 16 and "--max-num-seqs" not in args:
            out.append(Advice("--max-num-seqs 16", "vLLM's default of 256 sequences causes TTFT spikes over PCIe"))
    return out


def advice_finding(advice: Sequence[Advice]) -> Finding:
    """Warn when a suggestion answers a problem found; optional tuning alone still passes."""
    if not advice:
        return Finding("configuration", "pass", "The configuration fits what was measured")
    status: Status = "warn" if any(a.problem for a in advice) else "pass"
    return Finding("configuration", status, f"{plural(len(advice), 'suggestion')} for this setup",
                   tuple(f"{a.setting}: {a.why}" for a in advice))


def write_report(path: Path, text: str) -> None:
    """Write a report's Markdown `text` to `path`. A missing folder or a folder in the way fails before
    anything is written (OSError; ValueError for a NUL in the name); a temporary name, then a rename:
    never half a report."""
    from .session_files import write_private

    if path.is_dir():
        raise IsADirectoryError(21, "it is a folder", str(path))
    if not path.parent.is_dir():
        raise FileNotFoundError(2, "its folder does not exist", str(path.parent))
    write_private(path, text)
