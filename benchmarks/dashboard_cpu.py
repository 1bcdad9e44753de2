"""Dashboard CPU: what the app costs while it shows the dashboard of an 8-GPU VM, in percent of one core;
the budget is 2 %. A minimal Textual app redrawing a clock at 1 Hz runs beside it, for information.

The simulated cloud runs in another process (`maider-tui sim --big-plan 8`, a sim-only plan with 8
RTX 4000 Ada: Linode sells at most 4). A session on it (Qwen2.5-Coder-32B, tensor parallel 8) is
launched beforehand with the app's own ops code; then `maider-tui --sim-url` starts under a
pseudo-terminal, attaches to the session at start-up (its watchdog polling at the default period),
and Enter opens the dashboard: one `nvidia-smi -lms 1000` stream of 8 GPUs, the /metrics poll, the
1 Hz clock. Once all 8 GPU rows are drawn, and after WARMUP_S more, the CPU seconds (each thread's
nanoseconds on a CPU from /proc/PID/task/TID/schedstat; utime + stime, in 10 ms ticks, when a thread
ended in the window) of the app process and of the baseline (`_baseline_app.py clock`, started at
the same time, same terminal size) are read over the same WINDOW_S window, and those of the same dashboard
fed canned data (`_canned_dashboard.py`: the app's own screen given a new 8-GPU snapshot and
countdown each second and a vLLM reading every 5 s, with no SSH, HTTP, watchdog or cloud behind it).
The ratios are printed for information only: `cpu_ratio` (app / clock), `canned_ratio` what
drawing the dashboard costs against the clock, `app_over_canned` what getting the data costs on top.

Prints `name=value` lines; the headline `cpu_pct_of_core` (app CPU seconds / window, in percent) is
last, after its budget (`cpu_pct_of_core_budget`) and `within_budget`. Exits 1 when it could not
measure, 2 when the app is over the budget. About 1.5 minutes.

    .venv/bin/python benchmarks/dashboard_cpu.py [--window 60]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._harness import (  # noqa: E402
    compile_sources,
    BASELINE_MARKER,
    HOME_MARKER,
    MeasureError,
    PtyProgram,
    SimProcess,
    app_argv,
    app_env,
    baseline_argv,
    cpu_between,
    cpu_reading,
    emit,
    emit_budget,
    launch_sessions,
    rss_mib,
    temp_home,
)

SPEED = 200.0
GPUS = 8
PLAN = f"g2-gpu-rtx4000a{GPUS}-sim"
MODEL = "Qwen/Qwen2.5-Coder-32B-Instruct"
WINDOW_S = 60.0
BUDGET_PCT_OF_CORE = 2.0
WARMUP_S = 5.0
LAST_GPU_ROW = f"{GPUS - 1} RTX 4000 Ada"  # drawn once the stream's first 8-GPU snapshot arrived
CANNED_APP = Path(__file__).with_name("_canned_dashboard.py")


def open_dashboard(sim: SimProcess, home: Path, name: str) -> PtyProgram:
    app = PtyProgram(app_argv("--sim-url", sim.url), env=app_env(home))
    try:
        app.wait_for(HOME_MARKER, timeout=60)
        app.wait_for(name, timeout=30)
        mark = len(app.text())
        app.send("\r")  # Enter on the (only) session row: its dashboard
        app.wait_for(LAST_GPU_ROW, timeout=60, after=mark)
    except MeasureError:
        app.stop()
        raise
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=WINDOW_S, help="seconds measured (default 60)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    compile_sources()
    base = app = canned = None
    try:
        with temp_home() as home, SimProcess(speed=SPEED, big_plan=GPUS) as sim:
            t0 = time.monotonic()
            [name] = asyncio.run(launch_sessions(sim, home, 1, gpu_type_id=PLAN, model_id=MODEL))
            emit("launch_s", time.monotonic() - t0)
            base = PtyProgram(baseline_argv("clock"))
            base.wait_for(BASELINE_MARKER, timeout=60)
            canned = PtyProgram([sys.executable, str(CANNED_APP), str(home / "canned")])
            canned.wait_for(LAST_GPU_ROW, timeout=60)
            app = open_dashboard(sim, home, name)
            time.sleep(WARMUP_S)
            pids = {"app": app.pid, "baseline": base.pid, "sim": sim.pid, "canned": canned.pid}
            before = {name: cpu_reading(pid) for name, pid in pids.items()}
            out_before, base_out_before = app.bytes_read, base.bytes_read
            t1 = time.monotonic()
            time.sleep(args.window)
            used = {name: cpu_between(before[name], cpu_reading(pid)) for name, pid in pids.items()}
            app_cpu, base_cpu, sim_cpu, canned_cpu = (used[name][0] for name in pids)
            app_out, base_out = app.bytes_read - out_before, base.bytes_read - base_out_before
            window = time.monotonic() - t1
            app_rss, base_rss = rss_mib(app.pid), rss_mib(base.pid)
            if any(program.process.poll() is not None for program in (app, base, canned)):
                raise MeasureError("the app, the baseline or the canned dashboard ended during the window")
    except MeasureError as exc:
        print(f"error={exc}", file=sys.stderr)
        return 1
    finally:
        for program in (app, base, canned):
            if program is not None:
                program.stop()
    emit("gpus", GPUS)
    emit("window_s", window)
    # 1: every figure to the nanosecond (threads' schedstat); 0: some in 10 ms ticks (a thread ended).
    emit("cpu_ns_precise", int(all(precise for _, precise in used.values())))
    emit("app_cpu_s", app_cpu)
    emit("baseline_cpu_s", base_cpu)
    emit("baseline_cpu_pct_of_core", 100 * base_cpu / window)
    emit("sim_cpu_s", sim_cpu)
    emit("canned_cpu_s", canned_cpu)
    emit("canned_ratio", canned_cpu / base_cpu if base_cpu > 0 else float("inf"))
    emit("app_over_canned", app_cpu / canned_cpu if canned_cpu > 0 else float("inf"))
    emit("app_terminal_bytes_per_s", app_out / window)
    emit("baseline_terminal_bytes_per_s", base_out / window)
    emit("app_rss_mib", app_rss)
    emit("baseline_rss_mib", base_rss)
    emit("cpu_ratio", app_cpu / base_cpu if base_cpu > 0 else float("inf"))
    emit("elapsed_s", time.monotonic() - started)
    return emit_budget("cpu_pct_of_core", 100 * app_cpu / window, BUDGET_PCT_OF_CORE)


if __name__ == "__main__":
    sys.exit(main())
