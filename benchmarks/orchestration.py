"""Orchestration overhead: a launch's time to ready minus what the simulated cloud itself makes it wait.

The simulated cloud runs in another process (`maider-tui sim --speed SPEED`). Each run launches one
session (Qwen2.5-Coder-7B-AWQ on one RTX 4000 Ada, the default options) with the app's own ops code
(`LiveSessions.launch`: token check, record, keys, create, the bounded waits, compose up, tunnel,
aider files) and times it from the call to ready. The sim's own delays come from its timing model
(docs/simulator.md), on the critical path a launch cannot shorten:

    provisioning + booting (sim.world.boot_seconds) -> cloud-init (sim.vm.CLOUD_INIT_S, from boot)
    -> vLLM image pull (sim.docker.IMAGE_PULL_S) -> model download (GiB / DOWNLOAD_GB_PER_S)
    -> model load (sim.vllm_behaviour.startup_outcome's load_s for this model, GPU and config)

in sim seconds, divided by the speed. `overhead_s` = median over RUNS of (measured - delays). The
readiness polls run every ReadinessLimits.poll_s / speed, as in the demo; `poll_s` is printed. Each
stage's measured real seconds are printed too (`stage_*_s`, from the launch's events).

Prints `name=value` lines; the headline `overhead_s` is last. Exits 1 only when no launch reached
ready. Takes about a minute.

    .venv/bin/python benchmarks/orchestration.py [--speed 30] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._harness import SIM_TOKEN, MeasureError, SimProcess, default_plan, demo_paths, emit, temp_home  # noqa: E402

GPU = "g2-gpu-rtx4000a1-s"
MODEL = "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ"
SPEED = 30.0
RUNS = 3


def sim_delays_s(plan) -> dict[str, float]:
    """The sim's own delays on the launch's critical path, in sim seconds, by step."""
    from maider_tui import catalog
    from maider_tui.sim.docker import DOWNLOAD_GB_PER_S, IMAGE_PULL_S
    from maider_tui.sim.faults import SimFaults
    from maider_tui.sim.vllm_behaviour import startup_outcome
    from maider_tui.sim.vm import CLOUD_INIT_S
    from maider_tui.sim.world import World

    outcome = startup_outcome(plan.config, plan.gpu_type, catalog.model(plan.config.model), faults=SimFaults())
    if not outcome.ok:
        raise MeasureError(f"the sim would not start {plan.config.model}: {outcome}")
    return {"boot": World(1.0).boot_seconds(), "cloud_init": CLOUD_INIT_S, "image_pull": IMAGE_PULL_S["vllm"],
            "download": outcome.download_gb / DOWNLOAD_GB_PER_S, "load": outcome.load_s}


async def one_launch(sim: SimProcess, home: Path, run: int) -> tuple[float, dict[str, float]]:
    """Real seconds from launch() to ready, and the real seconds each stage took."""
    from maider_tui.clock import SystemClock
    from maider_tui.context import build_context
    from maider_tui.ops.events import ReadyEvent, StageEvent
    from maider_tui.ops.limits import ReadinessLimits
    from maider_tui.ops.live import LiveSessions

    paths = demo_paths(home)
    context = build_context(paths, demo=True, environ={"MAIDER_LINODE_TOKEN": SIM_TOKEN}, use_keyring=False)
    remote = sim.remote()
    context.provider = remote.provider(store=context.store)
    settings = context.settings.settings
    limits = ReadinessLimits.from_settings(settings.readiness).scaled(sim.speed)
    live = LiveSessions(store=context.store, paths=paths, settings=settings, clock=SystemClock(),
                        provider=lambda: context.provider, hf_token=lambda: None, limits=limits)
    marks: list[tuple[str, float]] = []

    def on_event(event) -> None:
        if isinstance(event, StageEvent):
            marks.append((event.stage, time.monotonic()))
        elif isinstance(event, ReadyEvent):
            marks.append(("ready", time.monotonic()))

    live.subscribe(on_event)
    plan = default_plan(next(t for t in (await context.provider.gpu_types()).items if t.id == GPU), MODEL)
    plan = dataclasses.replace(plan, name=f"orch-{run}")
    try:
        started = time.monotonic()
        await live.launch(plan)
        took = time.monotonic() - started
        stages = {}
        for (stage, at), (_, after) in zip(marks, marks[1:] + [("end", started + took)]):
            stages[stage] = stages.get(stage, 0.0) + after - at
        await live.destroy(plan.name)
        return took, stages
    finally:
        await live.close_all()
        context.store.close()
        remote.close()


def main(argv: list[str] | None = None) -> int:
    from maider_tui import catalog
    from maider_tui.ops.limits import ReadinessLimits

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=float, default=SPEED, help="the sim's speed (default 30)")
    parser.add_argument("--runs", type=int, default=RUNS, help="launches (default 3)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    delays = sim_delays_s(default_plan(catalog.gpu_type(GPU), MODEL))
    expected = sum(delays.values()) / args.speed
    measured, stage_sums = [], {}
    try:
        with temp_home() as home, SimProcess(speed=args.speed) as sim:
            for run in range(args.runs):
                took, stages = asyncio.run(one_launch(sim, home, run))
                measured.append(took)
                for stage, seconds in stages.items():
                    stage_sums.setdefault(stage, []).append(seconds)
    except Exception as exc:  # noqa: BLE001 - what stopped it is printed; the runs so far still count
        print(f"error={type(exc).__name__}: {exc}", file=sys.stderr)
        if not measured:
            return 1
    emit("speed", args.speed)
    emit("runs", len(measured))
    emit("poll_s", ReadinessLimits().scaled(args.speed).poll_s)
    for step, sim_s in delays.items():
        emit(f"sim_{step}_sim_s", sim_s)
    emit("sim_delays_s", expected)
    for stage, values in stage_sums.items():
        emit(f"stage_{stage}_s", statistics.median(values))
    emit("time_to_ready_s", statistics.median(measured))
    emit("overheads_s", ",".join(f"{m - expected:.2f}" for m in measured))
    emit("elapsed_s", time.monotonic() - started)
    emit("overhead_s", statistics.median(m - expected for m in measured))
    return 0


if __name__ == "__main__":
    sys.exit(main())
