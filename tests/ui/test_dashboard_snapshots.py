"""Pictures of the dashboard with 1, 2, 4 and 8 GPUs and of its dialogs, at 80x24 and 120x40.

No live stream: the screen is built with `stream=False` and fed canned GPU snapshots and vLLM
metrics, on the frozen clock, so the picture never depends on timing.
"""

from __future__ import annotations

import pytest

from maider_tui import catalog
from maider_tui.app import MaiderApp
from maider_tui.models import VllmConfig
from maider_tui.ops.telemetry import VllmReading
from maider_tui.remote.gpu import GpuSample, GpuSnapshot
from maider_tui.remote.vllm import VllmMetrics
from maider_tui.sim.fixtures import HOST_KEY, FakeHandle, FakeLive, FakeWatchdog
from maider_tui.store import SessionRecord
from maider_tui.ui.screens.dashboard import DashboardScreen

PLANS = {
    1: ("g2-gpu-rtx4000a1-s", 0.52, "Qwen/Qwen2.5-Coder-14B-Instruct-AWQ", "NVIDIA RTX 4000 Ada Generation", 20475),
    2: ("g2-gpu-rtx4000a2-s", 1.04, "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ", "NVIDIA RTX 4000 Ada Generation", 20475),
    4: ("g1-gpu-rtx6000-4", 6.00, "Qwen/Qwen2.5-72B-Instruct-AWQ", "Quadro RTX 6000", 24576),
    # No plan has 8 GPUs: 8 are a session over two 4-GPU VMs (docs/multi-vm.md), its rows grouped by VM.
    8: ("g1-gpu-rtx6000-4", 12.00, "meta-llama/Llama-3.1-70B-Instruct", "Quadro RTX 6000", 24576),
}
NODES = {8: 2}
SIZES = [(80, 24), (120, 40)]


def size_id(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"
NAME = "qwen-20261122-093012"
MEMORY = (0.50, 0.74, 0.90, 0.97)  # one GPU per bar colour: ok, ok, warning, error


def snapshot_of(gpus: int, tick: int, name: str, total_mib: int) -> GpuSnapshot:
    samples = tuple(
        GpuSample(index=i, name=name, memory_used_mib=total_mib * MEMORY[i % len(MEMORY)],
                  memory_total_mib=total_mib, utilization_pct=float((tick * 7 + i * 13) % 100),
                  temperature_c=58.0 + i * 2, power_w=110.0 + i * 4)
        for i in range(gpus))
    return GpuSnapshot(float(tick), samples, per_node=gpus // NODES[gpus] if gpus in NODES else None)


def region_of(type_id: str) -> str:
    try:
        return catalog.gpu_type(type_id).regions[0]
    except catalog.UnknownGpuTypeError:
        return "us-east"


def build(context, clock, gpus: int, *, watchdog: bool = True) -> DashboardScreen:
    type_id, hourly, model, gpu_name, total = PLANS[gpus]
    record = context.store.add_session(SessionRecord(
        name=NAME, state="ready", stage="ready", region=region_of(type_id), gpu_type=type_id, gpu_count=gpus, model=model,
        hourly_usd=hourly, created_at=clock.now() - 3 * 3600 - 42 * 60, host_key=HOST_KEY,
        vllm_config={"model": model}, nodes=NODES.get(gpus, 1)))
    context.store.add_event(NAME, "ready", "ready in 6m 12s (1 heal: KV cache 32768 -> 23552)",
                            ts=clock.now() - 3 * 3600)
    context.store.add_event(NAME, "activity", "activity · idle timer reset", ts=clock.now() - 350)
    handle = FakeHandle(NAME, record, VllmConfig(model=model))
    return DashboardScreen(context, FakeLive(handle, FakeWatchdog() if watchdog else None, context.store), NAME, stream=False)


def feed(screen: DashboardScreen, gpus: int) -> None:
    _, _, _, gpu_name, total = PLANS[gpus]
    for tick in range(60):
        screen.show_telemetry(snapshot_of(gpus, tick, gpu_name, total))
    metrics = VllmMetrics(requests_running=1, requests_waiting=0, prompt_tokens_total=1_200_000,
                          generation_tokens_total=412_345, kv_cache_usage=0.23, reported=True)
    screen.show_metrics(VllmReading(10.0, metrics, 38.2))


def run_with(screen: DashboardScreen, gpus: int, *keys: str):
    async def run_before(pilot) -> None:
        await pilot.app.workers.wait_for_complete()
        pilot.app.push_screen(screen)
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()  # the session's history, read in a worker
        feed(screen, gpus)
        await pilot.app.workers.wait_for_complete()  # the token count kept in the record
        await pilot.pause()
        for key in keys:
            await pilot.press(key)
        await pilot.pause()

    return run_before


def sized(test):
    return pytest.mark.parametrize("size", SIZES, ids=size_id)(test)


@sized
@pytest.mark.parametrize("gpus", [1, 2, 4, 8])
def test_dashboard_gpus(snap_compare, make_context, clock, gpus, size):
    context = make_context()
    screen = build(context, clock, gpus)
    assert snap_compare(MaiderApp(context), terminal_size=size, run_before=run_with(screen, gpus))


@sized
def test_dashboard_watchdog_off(snap_compare, make_context, clock, size):
    context = make_context()
    screen = build(context, clock, 2, watchdog=False)
    assert snap_compare(MaiderApp(context), terminal_size=size, run_before=run_with(screen, 2))


@sized
def test_destroy_dialog(snap_compare, make_context, clock, size):
    context = make_context()
    screen = build(context, clock, 2)
    assert snap_compare(MaiderApp(context), terminal_size=size, run_before=run_with(screen, 2, "d"))


@sized
def test_model_switch_picker(snap_compare, make_context, clock, size):
    context = make_context()
    screen = build(context, clock, 2)
    assert snap_compare(MaiderApp(context), terminal_size=size, run_before=run_with(screen, 2, "m"))


@sized
def test_benchmark_run_dialog(snap_compare, make_context, clock, size):
    from maider_tui.ui.screens.bench_run import BenchRunScreen

    context = make_context()
    screen = build(context, clock, 2)
    before = run_with(screen, 2)

    async def run_before(pilot) -> None:
        await before(pilot)
        pilot.app.animation_level = "none"  # the idle progress bar's sweep would depend on timing
        await pilot.app.push_screen(BenchRunScreen(context, screen.live.get(NAME)))
        await pilot.pause()

    assert snap_compare(MaiderApp(context), terminal_size=size, run_before=run_before)


@sized
def test_dashboard_vllm_down(snap_compare, make_context, clock, size):
    """vLLM died after it was ready: the panel says so and which keys help."""
    context = make_context()
    screen = build(context, clock, 2)
    before = run_with(screen, 2)

    async def run_before(pilot) -> None:
        await before(pilot)
        screen.show_metrics(VllmReading(12.0, error="/health fails: the server is not serving"))
        await pilot.pause()

    assert snap_compare(MaiderApp(context), terminal_size=size, run_before=run_before)
