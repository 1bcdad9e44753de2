"""The app's own dashboard of an 8-GPU session fed canned data at 1 Hz, with no data source behind it.

No VM, SSH, HTTP or cloud: the screen `dashboard_cpu.py` measures, built as the snapshot tests build
it (`stream=False`, on `maider_tui.sim.fixtures`), given once a second a GPU snapshot whose
utilisation, temperature and power change, a watchdog countdown one second on, and every 5 s a vLLM
reading. What it costs is what drawing the dashboard costs.

    python benchmarks/_canned_dashboard.py HOME
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from maider_tui.app import MaiderApp  # noqa: E402
from maider_tui.clock import SystemClock  # noqa: E402
from maider_tui.context import build_context  # noqa: E402
from maider_tui.models import VllmConfig  # noqa: E402
from maider_tui.ops.telemetry import VllmReading  # noqa: E402
from maider_tui.paths import AppPaths  # noqa: E402
from maider_tui.remote.gpu import GpuSample, GpuSnapshot  # noqa: E402
from maider_tui.remote.vllm import VllmMetrics  # noqa: E402
from maider_tui.sim.fixtures import HOST_KEY, FakeHandle, FakeLive, FakeWatchdog  # noqa: E402
from maider_tui.store import SessionRecord  # noqa: E402
from maider_tui.ui.screens.dashboard import DashboardScreen  # noqa: E402

GPUS = 8
NAME = "canned-dashboard"
MODEL = "Qwen/Qwen2.5-Coder-32B-Instruct"
TOTAL_MIB = 20475


class CannedDashboard(MaiderApp):
    def on_ready(self) -> None:
        now = self.context.clock.now()
        record = self.context.store.add_session(SessionRecord(
            name=NAME, state="ready", stage="ready", region="us-ord", gpu_type="g2-gpu-rtx4000a8-sim",
            gpu_count=GPUS, model=MODEL, hourly_usd=4.16, created_at=now - 600, host_key=HOST_KEY,
            vllm_config={"model": MODEL}))
        self.watchdog = FakeWatchdog(idle_s=0.0, remaining_s=1800.0)
        live = FakeLive(FakeHandle(NAME, record, VllmConfig(model=MODEL, tensor_parallel_size=GPUS)), self.watchdog,
                        self.context.store)
        self.dashboard = DashboardScreen(self.context, live, NAME, stream=False)
        self.push_screen(self.dashboard)
        self.ticks = 0
        self.set_interval(1.0, self.tick)

    def tick(self) -> None:
        self.ticks += 1
        self.watchdog.idle_s += 1
        self.watchdog.remaining_s -= 1
        t = self.ticks
        samples = tuple(GpuSample(index=i, name="NVIDIA RTX 4000 Ada Generation", memory_used_mib=18_000 + i,
                                  memory_total_mib=TOTAL_MIB, utilization_pct=float((t * 7 + i * 13) % 100),
                                  temperature_c=55.0 + (t + i) % 7, power_w=100.0 + (t * 3 + i) % 20)
                        for i in range(GPUS))
        self.dashboard.show_telemetry(GpuSnapshot(float(t), samples))
        if t % 5 == 0:
            metrics = VllmMetrics(requests_running=1, generation_tokens_total=1000 * t, reported=True)
            self.dashboard.show_metrics(VllmReading(float(t), metrics, 38.2))


if __name__ == "__main__":
    CannedDashboard(build_context(AppPaths.under(Path(sys.argv[1])), clock=SystemClock(), environ={})).run()
