"""Start-up: process start to the first frame of the home screen, against a minimal Textual app.

Each program runs in a subprocess under a pseudo-terminal (120 x 40, TERM=xterm-256color); the clock
stops when a marker its first screen draws appears in the output: the sessions box title for the
app, the one Static of the baseline (`_baseline_app.py static`). Runs are interleaved, 7 each, and
the figures are medians. The app runs as a first-time user starts it: `maider-tui` with an empty
MAIDER_HOME, no token, a keyring that holds nothing. A second, smaller series (3 runs) times
`maider-tui --sim-url` against a simulated cloud in another process, the demo's path.

Prints `name=value` lines; the headline `startup_ratio` (app median / baseline median) is last, after
its budget (1.3) and `within_budget`. Exits 1 when it could not measure, 2 when it is over the budget.
Takes about half a minute.

    .venv/bin/python benchmarks/startup.py
"""

from __future__ import annotations

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
    emit,
    emit_budget,
    median,
    temp_home,
)

RUNS = 7
BUDGET_RATIO = 1.3  # the app's first frame against the bare Textual app's
SIM_RUNS = 3


def first_frame(argv: list[str], marker: str, env: dict[str, str] | None = None) -> float:
    program = PtyProgram(argv, env=env)
    try:
        return program.wait_for(marker, timeout=60)
    finally:
        program.stop()


def main() -> int:
    started = time.monotonic()
    compile_sources()
    app_times, base_times, sim_times = [], [], []
    try:
        first_frame(baseline_argv("static"), BASELINE_MARKER)  # warm the disk cache for both
        with temp_home() as home:
            first_frame(app_argv(), HOME_MARKER, app_env(home))
        for _ in range(RUNS):
            base_times.append(first_frame(baseline_argv("static"), BASELINE_MARKER))
            with temp_home() as home:
                app_times.append(first_frame(app_argv(), HOME_MARKER, app_env(home)))
        with SimProcess(speed=20) as sim:
            for _ in range(SIM_RUNS):
                with temp_home() as home:
                    sim_times.append(first_frame(app_argv("--sim-url", sim.url), HOME_MARKER, app_env(home)))
    except MeasureError as exc:
        print(f"error={exc}", file=sys.stderr)
        if not (app_times and base_times):
            return 1
    base, app = median(base_times), median(app_times)
    emit("runs", len(app_times))
    emit("baseline_first_frame_s", base)
    emit("app_first_frame_s", app)
    emit("baseline_all_s", ",".join(f"{t:.3f}" for t in base_times))
    emit("app_all_s", ",".join(f"{t:.3f}" for t in app_times))
    if sim_times:
        emit("sim_url_first_frame_s", median(sim_times))
        emit("sim_url_startup_ratio", median(sim_times) / base)
    emit("elapsed_s", time.monotonic() - started)
    return emit_budget("startup_ratio", app / base, BUDGET_RATIO)


if __name__ == "__main__":
    sys.exit(main())
