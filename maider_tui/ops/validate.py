"""GPU validation of a live session: the seed's quick check (~30 s) and full validation (~5 min).

UI-free. Commands go over the session's SSH connection, requests through its tunnel, every wait
through the injected clock; `duration_scale` shrinks the 30 s load test so tests take milliseconds.
The verdicts themselves are pure and live in `validate_report`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .. import catalog
from ..clock import Clock
from ..models import GpuType, VllmConfig
from ..remote.gpu import GpuSample, parse_gpu_csv
from ..remote.vllm import StreamResult, VllmClient, VllmError
from ..words import plural
from .validate_report import (
    IDLE_UTIL_PCT, Finding, Measured, Throughput, ValidationReport, advice_finding, advise, idle_under_load,
    memory_balance, memory_findings, nccl_finding, parse_topology, tensor_parallel_from_logs, topology_finding,
    tp_finding,
)

if TYPE_CHECKING:
    from ..remote.ssh import SshSession

log = logging.getLogger(__name__)

GPU_FIELDS = ("index", "name", "memory.used", "memory.total", "utilization.gpu")
GPU_COMMAND = f"nvidia-smi --query-gpu={','.join(GPU_FIELDS)} --format=csv,noheader,nounits"
TOPO_COMMAND = "nvidia-smi topo -m"
LOG_COMMAND = "docker compose -f /opt/llm/docker-compose.yml logs --no-color --no-log-prefix --tail 5000 vllm"
QUICK_SECTIONS = ("gpus", "memory", "generation")
FULL_SECTIONS = ("hardware", "tensor parallel", "memory", "nccl", "throughput", "utilisation", "configuration")
LOAD_S, SAMPLE_S = 30.0, 2.0  # the seed's 30 s load test, sampled every 2 s
LOAD_STREAMS = 4  # concurrent requests that keep every GPU busy during the load test
PROMPT_SIZES = (128, 1024, 4096)
COMMAND_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ValidationProgress:
    """A section started or finished; `findings` are the section's verdicts once finished."""

    section: str
    index: int
    total: int
    state: Literal["started", "finished"]
    findings: tuple[Finding, ...] = ()


Progress = Callable[[ValidationProgress], None]
OwnRequests = Callable[[], AbstractContextManager[Any]]


class _Run:
    """One validation run: the report being filled, progress reporting, and the shared helpers."""

    def __init__(self, kind: Literal["quick", "full"], ssh: SshSession, *, local_port: int,
                 config: VllmConfig, gpu_type: GpuType | str, clock: Clock, session: str,
                 progress: Progress | None, sections: Sequence[str]) -> None:
        self.ssh, self.config, self.clock = ssh, config, clock
        self.gpu_type = _resolve(gpu_type)
        type_id = self.gpu_type.id if self.gpu_type else str(gpu_type)
        self.report = ValidationReport(kind, session, config.model, type_id, clock.now())
        self.endpoint = f"http://127.0.0.1:{local_port}/v1"
        self.model = config.served_model_name or config.model
        self.sections, self._progress = tuple(sections), progress or (lambda event: None)
        self.expected_busy = config.tensor_parallel_size * config.pipeline_parallel_size

    def started(self, section: str) -> None:
        self._progress(ValidationProgress(section, self.sections.index(section), len(self.sections), "started"))

    def finished(self, section: str, findings: Sequence[Finding]) -> None:
        self.report.findings.extend(findings)
        self._progress(ValidationProgress(section, self.sections.index(section), len(self.sections), "finished",
                                          tuple(findings)))

    async def gpus(self) -> list[GpuSample]:
        result = await self.ssh.run(GPU_COMMAND, timeout=COMMAND_TIMEOUT_S)
        return parse_gpu_csv(result.stdout, GPU_FIELDS) if result.ok else []

    def count_finding(self, samples: Sequence[GpuSample]) -> Finding:
        """GPU count against the plan (the seed's `a4` type once showed 1 GPU instead of 4)."""
        evidence = tuple(f"GPU {s.index}: {s.name} | {(s.memory_total_mib or 0) / 1024:.0f} GB" for s in samples)
        expected = self.gpu_type.gpus if self.gpu_type else None
        if expected is None:
            return Finding(self.sections[0], "warn", f"Found {plural(len(samples), 'GPU')}; the plan's count is unknown",
                           evidence)
        if len(samples) != expected:
            return Finding(self.sections[0], "fail", f"Found {plural(len(samples), 'GPU')}, but the plan has {expected}",
                           evidence or ("nvidia-smi listed no GPUs",))
        return Finding(self.sections[0], "pass", f"Found {plural(expected, 'GPU')}, as the plan promises", evidence)

    async def generate(self, client: VllmClient, prompt_tokens: int, max_tokens: int) -> Throughput:
        result = await _stream(client, self.model, _prompt(prompt_tokens), max_tokens)
        return Throughput(result.prompt_tokens or prompt_tokens, result.output_tokens, result.ttft_s, result.e2e_s)


def _resolve(gpu_type: GpuType | str) -> GpuType | None:
    if isinstance(gpu_type, GpuType):
        return gpu_type
    try:
        return catalog.gpu_type(gpu_type)
    except catalog.UnknownCatalogIdError:
        return None


def _prompt(tokens: int) -> list[dict[str, str]]:
    """A code-reading prompt of about `tokens` tokens (vLLM and the sim count ~4 characters a token)."""
    line = "def add_{i}(x):\n    return x + {i}\n"
    body: list[str] = []
    i = 0
    while sum(map(len, body)) < tokens * 4:
        body.append(line.format(i=i))
        i += 1
    return [{"role": "user", "content": "Explain this code briefly.\n\n" + "".join(body)}]


async def _stream(client: VllmClient, model: str, messages: list[dict[str, str]], max_tokens: int) -> StreamResult:
    result = None
    async for event in client.stream_chat(model, messages, max_tokens=max_tokens, extra={"ignore_eos": True}):
        if isinstance(event, StreamResult):
            result = event
    if result is None:
        raise VllmError("the stream ended without a result")
    return result


async def _sample_while(run: _Run, task: asyncio.Task[Any], interval_s: float) -> list[list[GpuSample]]:
    """nvidia-smi readings taken while `task` runs, one per `interval_s` (clock time)."""
    samples: list[list[GpuSample]] = []
    while not task.done():
        samples.append(await run.gpus())
        sleeper = asyncio.ensure_future(run.clock.sleep(interval_s))
        await asyncio.wait({task, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        sleeper.cancel()
    return samples


def _generation_findings(run: _Run, result: Throughput | None, error: str | None,
                         samples: Sequence[Sequence[GpuSample]]) -> list[Finding]:
    if result is None:
        return [Finding("generation", "fail", f"The test generation failed: {error}")]
    findings = [Finding("generation", "pass", f"Generated {result.output_tokens} tokens in {result.e2e_s:.1f}s "
                        f"({result.tok_s:.1f} tok/s)", (f"time to first token {result.ttft_s or 0:.2f}s",))]
    peak: dict[int, float] = {}
    for tick in samples:
        for s in tick:
            peak[s.index] = max(peak.get(s.index, 0.0), s.utilization_pct or 0.0)
    busy = [i for i in range(run.expected_busy) if peak.get(i, 0.0) >= IDLE_UTIL_PCT]
    idle = [i for i in range(run.expected_busy) if i in peak and i not in busy]
    if busy and idle:  # none busy at all means the samples missed the generation, not that GPUs idle
        findings.append(Finding("generation", "warn", f"{len(idle)} of {run.expected_busy} GPUs looked idle during "
                                "the generation", tuple(f"GPU {i}: peak {peak[i]:.0f}%" for i in sorted(peak))))
    return findings


def head_view(config: VllmConfig, nodes: int) -> VllmConfig:
    """What the head VM of a session over `nodes` VMs runs on its own GPUs: one pipeline stage over TP of
    them. Validation reads that VM (its nvidia-smi, its log), so it expects that much of it; the
    endpoint's throughput is the whole cluster's."""
    return config if nodes <= 1 else config.replace(pipeline_parallel_size=1)


async def quick_check(ssh: SshSession, *, local_port: int, config: VllmConfig, gpu_type: GpuType | str,
                      clock: Clock, own_requests: OwnRequests | None = None, session: str = "",
                      progress: Progress | None = None,
                      max_tokens: int = 100, sample_s: float = 0.5) -> ValidationReport:
    """GPU count, memory on every GPU, and one `max_tokens` generation with GPU utilisation sampled during it."""
    run = _Run("quick", ssh, local_port=local_port, config=config, gpu_type=gpu_type, clock=clock,
               session=session, progress=progress, sections=QUICK_SECTIONS)
    run.started("gpus")
    samples = await run.gpus()
    run.finished("gpus", [run.count_finding(samples)])
    run.started("memory")
    run.finished("memory", memory_findings(memory_balance(samples, run.expected_busy), run.expected_busy))
    run.started("generation")
    result, error, during = None, None, []
    with (own_requests or contextlib.nullcontext)():
        async with VllmClient(run.endpoint, clock=clock) as client:
            task = asyncio.ensure_future(run.generate(client, 32, max_tokens))
            during = await _sample_while(run, task, sample_s)
            try:
                result = task.result()
                run.report.throughput.append(result)
            except (VllmError, OSError) as exc:
                error = str(exc)
    run.finished("generation", _generation_findings(run, result, error, during))
    run.report.finished_at = clock.now()
    return run.report


async def full_validation(ssh: SshSession, *, local_port: int, config: VllmConfig, gpu_type: GpuType | str,
                          clock: Clock, own_requests: OwnRequests | None = None, session: str = "",
                          progress: Progress | None = None, duration_scale: float = 1.0, max_tokens: int = 128,
                          prompt_sizes: Sequence[int] = PROMPT_SIZES) -> ValidationReport:
    """The seed's seven sections: hardware and topology, TP in the logs, memory balance, NCCL, throughput
    at several prompt sizes, 30 s of per-GPU utilisation under load, and configuration advice."""
    run = _Run("full", ssh, local_port=local_port, config=config, gpu_type=gpu_type, clock=clock,
               session=session, progress=progress, sections=FULL_SECTIONS)
    run.started("hardware")
    samples = await run.gpus()
    topo_out = await ssh.run(TOPO_COMMAND, timeout=COMMAND_TIMEOUT_S)
    topo = parse_topology(topo_out.stdout if topo_out.ok else "")
    hardware = [run.count_finding(samples)]
    if len(samples) > 1:
        hardware.append(topology_finding(topo) if topo.links else Finding(
            "hardware", "warn", "nvidia-smi topo -m printed no GPU matrix", tuple(topo_out.stderr.splitlines()[:3])))
    run.finished("hardware", hardware)

    run.started("tensor parallel")
    logs = await ssh.run(LOG_COMMAND, timeout=COMMAND_TIMEOUT_S)
    log_text = logs.stdout + logs.stderr
    run.finished("tensor parallel", [tp_finding(tensor_parallel_from_logs(log_text), config, len(samples))])

    run.started("memory")
    balance = memory_balance(samples, run.expected_busy)
    run.finished("memory", memory_findings(balance, run.expected_busy))

    run.started("nccl")
    nccl = nccl_finding(log_text)
    run.finished("nccl", [nccl])

    limit = (config.max_model_len or 4096) - max_tokens - 64
    sizes = [s for s in prompt_sizes if s <= limit] or [min(prompt_sizes)]
    expected = catalog.estimate_decode_tok_s(config.model, run.gpu_type) if run.gpu_type else None
    with (own_requests or contextlib.nullcontext)():
        async with VllmClient(run.endpoint, clock=clock) as client:
            run.started("throughput")
            run.finished("throughput", await _throughput(run, client, sizes, max_tokens, expected))
            run.started("utilisation")
            run.finished("utilisation", await _utilisation(run, client, duration_scale))

    run.started("configuration")
    util = [sum(row[: run.expected_busy]) / max(1, min(run.expected_busy, len(row)))
            for _, row in run.report.utilisation]
    measured = Measured(
        gpu_count=len(samples), interconnect=topo.interconnect, nccl=nccl.status,
        idle_gpus=tuple(sorted(set(balance.idle) | set(idle_under_load(run.report.utilisation, run.expected_busy)))),
        spread_pct=balance.spread_pct, tok_s=run.report.throughput[0].tok_s if run.report.throughput else None,
        expected_tok_s=expected, mean_util_pct=sum(util) / len(util) if util else None)
    run.report.advice = advise(measured, config)
    run.finished("configuration", [advice_finding(run.report.advice)])
    run.report.finished_at = clock.now()
    return run.report


async def _throughput(run: _Run, client: VllmClient, sizes: Sequence[int], max_tokens: int,
                      expected: float | None) -> list[Finding]:
    results = []
    for size in sizes:
        try:
            results.append(await run.generate(client, size, max_tokens))
        except (VllmError, OSError) as exc:
            return [Finding("throughput", "fail", f"A {size}-token prompt failed: {exc}")]
    run.report.throughput.extend(results)
    evidence = tuple(f"{t.prompt_tokens} prompt tokens: {t.tok_s:.1f} tok/s, TTFT {t.ttft_s or 0:.2f}s"
                     for t in results)
    best = results[0].tok_s
    if expected:
        evidence += (f"roofline estimate for this model and GPU type: {expected:.0f} tok/s",)
        if best < 0.5 * expected:
            return [Finding("throughput", "warn", f"{best:.1f} tok/s is under half the {expected:.0f} tok/s "
                            "expected", evidence)]
    return [Finding("throughput", "pass", f"{best:.1f} tok/s on a short prompt", evidence)]


async def _utilisation(run: _Run, client: VllmClient, duration_scale: float) -> list[Finding]:
    """Keep LOAD_STREAMS requests running for LOAD_S (scaled) and sample every GPU every SAMPLE_S."""
    stop = asyncio.Event()

    async def load() -> None:
        while not stop.is_set():
            try:
                await run.generate(client, 64, 64)
            except (VllmError, OSError):
                await run.clock.sleep(SAMPLE_S * duration_scale)

    loaders = [asyncio.ensure_future(load()) for _ in range(LOAD_STREAMS)]
    try:
        await run.clock.sleep(min(0.5, SAMPLE_S) * duration_scale)  # let the first tokens start flowing
        end = run.clock.now() + LOAD_S * duration_scale
        while run.clock.now() < end:
            tick = await run.gpus()
            if tick:
                run.report.utilisation.append((run.clock.now(), tuple(s.utilization_pct or 0.0 for s in tick)))
            await run.clock.sleep(SAMPLE_S * duration_scale)
    finally:
        stop.set()
        for task in loaders:
            task.cancel()
        await asyncio.gather(*loaders, return_exceptions=True)
    rows = run.report.utilisation
    if not rows:
        return [Finding("utilisation", "warn", "No GPU readings under load")]
    idle = idle_under_load(rows, run.expected_busy)
    means = [sum(r[i] for _, r in rows) / len(rows) for i in range(len(rows[0][1]))]
    evidence = tuple(f"GPU {i}: mean {m:.0f}%, min {min(r[i] for _, r in rows):.0f}%, "
                     f"max {max(r[i] for _, r in rows):.0f}%" for i, m in enumerate(means))
    if idle:
        return [Finding("utilisation", "fail", f"{len(idle)} of {run.expected_busy} GPUs stayed idle under load",
                        evidence)]
    return [Finding("utilisation", "pass", f"Every GPU in use was busy under load ({len(rows)} samples)", evidence)]
