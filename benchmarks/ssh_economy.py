"""SSH economy: SSH logins one session costs the VM over a launch, its dashboard, the idle watchdog, one
benchmark run and one model switch. The target is exactly 1: everything rides the session's one
connection (the tool this app replaces opened one per command).

Runs the app's own ops code (LiveSessions, the dashboard's telemetry stream and metrics poll, the
benchmark runner, the model switch) against an in-process simulated cloud at speed 300, and reads the
handshakes the VM's sshd counted. The 5 minutes of the target are compressed: the watchdog polls
every second instead of every minute and the dashboard runs for DASHBOARD_S real seconds, so it sees
more polls (DASHBOARD_S) than 5 minutes at the default poll would (5) and DASHBOARD_S telemetry ticks.
The baseline is the seed tool's way, one connection per command: the commands this run sent are
counted too (`commands_sent`), so `handshakes_saved` shows what the one connection spared.

Prints `name=value` lines; the headline `ssh_handshakes` is last, after its budget (1) and
`within_budget`. Exits 1 when it could not measure, 2 when it counted more than one. Takes about a minute.

    .venv/bin/python benchmarks/ssh_economy.py
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._harness import emit, emit_budget, temp_home  # noqa: E402

SPEED = 300.0
DASHBOARD_S = 20.0
MODEL = "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ"
SWITCH_TO = "Qwen/Qwen2.5-Coder-14B-Instruct-AWQ"


async def one_session(sim, home: Path) -> dict[str, float]:
    from benchmarks._harness import default_plan
    from maider_tui import catalog
    from maider_tui.bench.prompts import prompts_for
    from maider_tui.clock import SystemClock
    from maider_tui.ops.bench_run import BenchTarget, run_benchmark
    from maider_tui.ops.live import LiveSessions
    from maider_tui.ops.limits import ReadinessLimits
    from maider_tui.ops.telemetry import MetricsPoller, gpu_snapshots
    from maider_tui.paths import AppPaths
    from maider_tui.remote.vllm import VllmClient
    from maider_tui.settings import Settings, WatchdogSettings
    from maider_tui.store import open_store

    paths = AppPaths.under(home)
    store = open_store(paths.database)
    settings = Settings(watchdog=WatchdogSettings(poll_seconds=1))
    clock = SystemClock()
    live = LiveSessions(store=store, paths=paths, settings=settings, clock=clock,
                        provider=lambda: sim.provider(store=store), hf_token=lambda: None,
                        limits=ReadinessLimits().scaled(SPEED), notify=lambda title, message: None)
    figures: dict[str, float] = {}
    commands = {"n": 0}
    try:
        started = time.monotonic()
        session = await live.launch(default_plan(catalog.gpu_type("g2-gpu-rtx4000a1-s"), MODEL))
        figures["launch_s"] = time.monotonic() - started
        handle = session.handle
        vm_id = handle.record.instance_id
        figures["handshakes_after_launch"] = sim.ssh_handshakes(vm_id)
        ssh = handle.ssh
        for method in ("run", "stream", "put", "get"):
            # The seed tool opened a connection for each of these: count them for the comparison.
            def counted(*args, _real=getattr(ssh, method), **kwargs):
                commands["n"] += 1
                return _real(*args, **kwargs)

            setattr(ssh, method, counted)

        # The dashboard: the nvidia-smi stream and the /metrics poll, with the watchdog polling beside.
        ticks = {"n": 0}

        async def stream() -> None:
            async for _ in gpu_snapshots(ssh, gpu_count=handle.record.gpu_count, clock=clock):
                ticks["n"] += 1

        async with VllmClient(handle.endpoint, timeout=5.0) as client:
            poller = MetricsPoller(client.metrics, clock)

            async def poll() -> None:
                while True:
                    await poller.poll()
                    await asyncio.sleep(2.0)

            tasks = [asyncio.ensure_future(stream()), asyncio.ensure_future(poll())]
            await asyncio.sleep(DASHBOARD_S / 2)
            # One benchmark run through the session's tunnel, the watchdog held as the app does.
            watchdog = session.watchdog
            watchdog.hold("benchmark")
            try:
                outcome = await run_benchmark(BenchTarget.from_live(session), store=store, clock=clock,
                                              prompts=prompts_for("coding")[:4], max_tokens_scale=0.05)
            finally:
                watchdog.release()
            figures["benchmark_prompts_ok"] = sum(1 for r in outcome.results if r.ok)
            await asyncio.sleep(DASHBOARD_S / 2)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        figures["telemetry_ticks"] = ticks["n"]
        figures["watchdog_polls_at_least"] = int(DASHBOARD_S)
        # One model switch, on the same connection.
        started = time.monotonic()
        config = await live.switch_model(session.name, SWITCH_TO)
        figures["switch_s"] = time.monotonic() - started
        figures["switched"] = int(config.model == SWITCH_TO)
        figures["commands_sent"] = commands["n"]
        figures["ssh_handshakes"] = sim.ssh_handshakes(vm_id)
        await live.destroy(session.name)
    finally:
        await live.close_all()
        store.close()
    return figures


def main() -> int:
    from maider_tui.sim import SimCloud

    started = time.monotonic()
    try:
        with temp_home() as home, SimCloud(speed=SPEED) as sim:
            figures = asyncio.run(one_session(sim, home))
    except Exception as exc:  # noqa: BLE001 - whatever stopped it, the run measured nothing
        print(f"error={type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    headline = figures.pop("ssh_handshakes")
    for name, value in figures.items():
        emit(name, value)
    emit("seed_tool_handshakes_at_least", int(figures["commands_sent"]))
    emit("handshakes_saved", int(figures["commands_sent"] - headline))
    emit("elapsed_s", time.monotonic() - started)
    return emit_budget("ssh_handshakes", int(headline), 1)


if __name__ == "__main__":
    sys.exit(main())
