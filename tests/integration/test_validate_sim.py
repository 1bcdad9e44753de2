"""Quick check and full validation on simulated VMs: healthy, one GPU idle, an NCCL warning, an unbalanced GPU.

Each test launches a 2x RTX 4000 Ada session on its own SimCloud (speed 1000, real SystemClock),
injects one fault, and validates at a tiny duration_scale with short generations: ~1-2 s each.
"""

from __future__ import annotations

import contextlib

import pytest

from maider_tui import catalog
from maider_tui.clock import SystemClock
from maider_tui.ops.events import EventRecorder
from maider_tui.ops.provision import LaunchPlan, provision
from maider_tui.ops.validate import FULL_SECTIONS, QUICK_SECTIONS, full_validation, quick_check
from maider_tui.ops.validate_table import utilisation_table
from maider_tui.settings import Settings
from maider_tui.sim import SimCloud
from maider_tui.store import open_store
from tests.integration.simfix import sim_limits

SPEED = 1000
LIMITS = sim_limits(SPEED)
TYPE_ID = "g2-gpu-rtx4000a2-s"
MODEL = "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ"
SCALE = 0.01  # the 30 s load test in 0.3 s


@pytest.fixture
async def session(paths):
    """A factory: set faults on a fresh SimCloud, launch one session, hand back (handle, counter of own blocks)."""
    stack = contextlib.ExitStack()
    store = open_store(paths.database)
    handles = []

    async def launch(**faults):
        sim = stack.enter_context(SimCloud(speed=SPEED, seed=5))
        for name, value in faults.items():
            setattr(sim.faults, name, value)
        gpu = catalog.gpu_type(TYPE_ID)
        plan = LaunchPlan(region=gpu.regions[0], gpu_type=gpu, config=catalog.fit(MODEL, gpu).to_vllm_config())
        handle = await provision(plan, provider=sim.provider(store), store=store, paths=paths, settings=Settings(),
                                 clock=SystemClock(), emit=EventRecorder(), hf_token=None, limits=LIMITS)
        handles.append(handle)
        return handle

    yield launch
    for handle in handles:
        await handle.close()
    stack.close()
    store.close()


def by_section(report):
    return {f.section: f.status for f in report.findings}


async def run(handle, kind, **kwargs):
    own = []

    @contextlib.contextmanager
    def own_requests():
        own.append("open")
        yield
        own.append("closed")

    events = []
    common = dict(local_port=handle.local_port, config=handle.config, gpu_type=TYPE_ID, clock=SystemClock(),
                  own_requests=own_requests, session=handle.name, progress=events.append)
    if kind == "quick":
        report = await quick_check(handle.ssh, max_tokens=24, sample_s=0.05, **common, **kwargs)
    else:
        report = await full_validation(handle.ssh, duration_scale=SCALE, max_tokens=24, prompt_sizes=(64, 512),
                                       **common, **kwargs)
    assert own and own[-1] == "closed"  # the requests ran inside the watchdog's own_requests block
    return report, events


async def test_healthy_quick_and_full_all_pass(session):
    handle = await session()
    quick, events = await run(handle, "quick")
    assert [e.section for e in events if e.state == "started"] == list(QUICK_SECTIONS)
    assert quick.status == "pass", quick.to_markdown()
    assert quick.throughput and quick.throughput[0].output_tokens == 24

    full, events = await run(handle, "full")
    assert [e.section for e in events if e.state == "finished"] == list(FULL_SECTIONS)
    assert full.status == "pass", full.to_markdown()
    assert set(by_section(full)) == set(FULL_SECTIONS)
    assert len(full.throughput) == 2
    assert full.utilisation and all(len(row) == 2 for _, row in full.utilisation)
    rows = [row for _, row in full.utilisation]
    assert all(sum(r[i] for r in rows) / len(rows) > 50 for i in range(2))  # both GPUs busy under load
    times = [at for at, _ in full.utilisation]
    assert all(a < b for a, b in zip(times, times[1:]))  # every sample stamped when it arrived
    stamps = [line.split("|")[0] for line in utilisation_table(full.utilisation)[2:]]
    assert len(set(stamps)) == len(stamps) > 1  # samples 3 ms apart still print different times
    # PCIe-only hardware: the seed's tuning suggestions, offered without calling the setup broken
    assert any("VLLM_ALLREDUCE_USE_SYMM_MEM=0" in a.setting for a in full.advice)
    markdown = full.to_markdown()
    assert "## GPU utilisation under load" in markdown and "PHB" in markdown


async def test_one_gpu_idle_fails(session):
    handle = await session(idle_gpus={1})
    quick, _ = await run(handle, "quick")
    assert by_section(quick)["memory"] == "fail"
    full, _ = await run(handle, "full")
    sections = by_section(full)
    assert sections["memory"] == "fail" and sections["utilisation"] == "fail"
    assert any(a.setting.startswith("--tensor-parallel-size") for a in full.advice)
    assert full.status == "fail"


async def test_nccl_warning_warns(session):
    handle = await session(nccl_warning_in_logs=True)
    full, _ = await run(handle, "full")
    nccl = next(f for f in full.findings if f.section == "nccl")
    assert nccl.status == "warn" and "NCCL WARN" in nccl.evidence[0]
    assert by_section(full)["memory"] == "pass"
    assert full.status == "warn"


async def test_unbalanced_gpu_warns(session):
    handle = await session(unbalanced_gpu=1)
    full, _ = await run(handle, "full")
    memory = next(f for f in full.findings if f.section == "memory")
    assert memory.status == "warn" and "30%" in memory.title
    assert full.status == "warn"
