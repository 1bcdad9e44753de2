"""The validation screen: on a real simulated session (quick, full, export), and pictures of a canned report.

The live test launches one 2x RTX 4000 Ada session on the SimCloud (speed 1000, SystemClock) and
validates it with short generations; the snapshots show a fixed report on the frozen clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from maider_tui import catalog
from maider_tui.app import MaiderApp
from maider_tui.clock import SystemClock
from maider_tui.ops.provision import LaunchPlan
from maider_tui.ops.validate_report import Advice, Finding, Throughput, ValidationReport
from maider_tui.ops.watchdog import Watchdog, metrics_from_tunnel
from maider_tui.settings import WatchdogSettings
from maider_tui.ui.screens.validation import ValidationScreen

TYPE_ID = "g2-gpu-rtx4000a2-s"
MODEL = "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ"
FAST = {"quick": {"max_tokens": 16, "sample_s": 0.05},
        "full": {"max_tokens": 16, "prompt_sizes": (64,), "duration_scale": 0.01}}


ValidatingApp = MaiderApp  # the app opens the validation screen (ValidationRequested)


async def until(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@pytest.fixture
def clock():
    return SystemClock()  # the sim runs in real time (sped up): validation needs a clock that moves


async def test_validation_on_a_sim_session_shows_findings_and_exports(sim_context, sim_cloud, tmp_path):
    context = sim_context()
    context.cloud_speed = 1000.0
    app = ValidatingApp(context)
    async with app.run_test(size=(120, 40)) as pilot:
        gpu = catalog.gpu_type(TYPE_ID)
        live = await app.live.launch(LaunchPlan(region=gpu.regions[0], gpu_type=gpu,
                                                config=catalog.fit(MODEL, gpu).to_vllm_config()))
        name = live.handle.name
        if live.watchdog is None:
            live.watchdog = Watchdog(name, metrics=metrics_from_tunnel(live.handle.local_port),
                                     destroy=lambda: app.live.destroy(name), store=context.store, clock=context.clock,
                                     settings=WatchdogSettings(), notify=lambda *a: None)
        own = []
        real_own = live.watchdog.own_requests

        @contextlib.contextmanager
        def spy():
            own.append(name)
            with real_own():
                yield

        live.watchdog.own_requests = spy
        try:
            app.open_validation(name, run_options=FAST)
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, ValidationScreen)
            await until(lambda: screen.report is not None and not screen.running)
            assert screen.report.kind == "quick" and screen.report.status == "pass"
            text = str(screen.query_one("#val-findings").render())
            assert "✓ pass" in text and "Found 2 GPUs" in text and "tok/s" in text
            assert own  # the test generation ran as the app's own traffic

            await pilot.press("f")
            await until(lambda: screen.report.kind == "full" and not screen.running)
            assert {f.section for f in screen.report.findings} >= {"hardware", "nccl", "utilisation"}
            assert screen.query_one("#val-util").display
            chart = str(screen.query_one("#val-chart").render()).splitlines()
            assert [line[:4] for line in chart] == ["GPU0", "GPU1"] and all("█" in line or "▇" in line for line in chart)

            await pilot.press("x")
            await pilot.pause()
            bad = tmp_path / "no-such-folder" / "report.md"
            screen.query_one("#val-path").value = str(bad)
            await pilot.press("enter")
            await until(lambda: "Nothing written" in screen.message_text)
            assert not bad.parent.exists()

            good = tmp_path / "report.md"
            screen.query_one("#val-path").value = str(good)
            await pilot.press("enter")
            await until(good.exists)
            assert good.read_text().startswith(f"# GPU validation (full): {name}")
            assert "written to" in screen.message_text

            await pilot.press("escape")
            await pilot.pause()
            assert not isinstance(app.screen, ValidationScreen)
        finally:
            await app.live.destroy(name)


def canned(clock) -> ValidationReport:
    start = clock.now()
    report = ValidationReport("full", "qwen-20261122-093012", "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ",
                              "g2-gpu-rtx4000a2-s", start, finished_at=start + 300)
    report.findings += [
        Finding("hardware", "pass", "Found 2 GPUs, as the plan promises",
                ("GPU 0: NVIDIA RTX 4000 Ada Generation | 20 GB", "GPU 1: NVIDIA RTX 4000 Ada Generation | 20 GB")),
        Finding("hardware", "pass", "Topology: PCIe only, GPUs on the same CPU socket (no NVLink)",
                ("GPU0 <-> GPU1: PHB (pcie)",)),
        Finding("tensor parallel", "pass", "Tensor parallel size (2) matches the GPU count (2)"),
        Finding("memory", "warn", "Memory differs by 30% across GPUs (over 15%): partial TP initialisation?",
                ("GPU 0: 18.0 GB / 20.0 GB (90%)", "GPU 1: 12.6 GB / 20.0 GB (63%)")),
        Finding("nccl", "fail", "1 NCCL error line in the vLLM log",
                ("RuntimeError: NCCL error: unhandled system error (run with NCCL_DEBUG=INFO for details)",)),
        Finding("throughput", "pass", "31.8 tok/s on a short prompt", ("128 prompt tokens: 31.8 tok/s, TTFT 0.21s",)),
        Finding("utilisation", "pass", "Every GPU in use was busy under load (15 samples)"),
        Finding("configuration", "warn", "2 suggestions for this setup"),
    ]
    report.throughput.append(Throughput(128, 128, 0.21, 4.2))
    report.utilisation += [(start + 2 * i, (85.0 + (i * 7) % 14, 80.0 + (i * 5) % 17)) for i in range(15)]
    report.advice += [Advice("VLLM_ALLREDUCE_USE_SYMM_MEM=0", "no NVLink: the symmetric-memory all-reduce hurts on PCIe"),
                      Advice("restart vLLM (h heals, m switches back to the same model)",
                             "memory differs by 30% across GPUs", True)]
    return report


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
def test_validation_snapshot(snap_compare, make_context, clock, size):
    context = make_context()
    from maider_tui.clock import ManualClock

    report = canned(ManualClock(start=1_795_351_260.0))

    async def run_before(pilot) -> None:
        await pilot.app.workers.wait_for_complete()
        pilot.app.push_screen(ValidationScreen(context, None, report.session, report=report))
        await pilot.pause()

    assert snap_compare(MaiderApp(context), terminal_size=size, run_before=run_before)
