"""Memory: the app's peak resident set with 4 live sessions open, against a minimal Textual app.

The simulated cloud runs in another process (`maider-tui sim`); 4 sessions (Qwen2.5-Coder-7B-AWQ on
one RTX 4000 Ada each) are launched beforehand with the app's own ops code. `maider-tui --sim-url`
then starts under a pseudo-terminal and, as at every start, connects to each ready session (SSH,
tunnel, watchdog); the script waits until the sim has counted the app's login on all 4 VMs, opens
the first session's dashboard (Enter) for DASHBOARD_S seconds, and reads VmHWM (peak RSS) from
/proc for the app and for the baseline (`_baseline_app.py static`, running at the same time).

Prints `name=value` lines; the headline `app_peak_rss_mib` is last, against its budget of
BUDGET_MIB (`rss_ratio`, app peak / baseline peak, is printed for information). Exits 1 only when
it could not measure. Takes about 40 seconds.

    .venv/bin/python benchmarks/memory.py
"""

from __future__ import annotations

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
    emit,
    launch_sessions,
    peak_rss_mib,
    rss_mib,
    temp_home,
)

SESSIONS = 4
BUDGET_MIB = 100  # peak RSS with SESSIONS live sim sessions, pydantic-settings in use
SPEED = 300.0
DASHBOARD_S = 10.0


def wait_attached(sim: SimProcess, logins_before: dict[int, int], timeout: float = 60) -> float:
    """Seconds until every VM counted one more SSH login than before the app started (the app's)."""
    remote = sim.remote()
    started = time.monotonic()
    try:
        while time.monotonic() - started < timeout:
            if all(remote.ssh_handshakes(vm) > n for vm, n in logins_before.items()):
                return time.monotonic() - started
            time.sleep(0.2)
    finally:
        remote.close()
    raise MeasureError(f"the app did not connect to all {len(logins_before)} sessions within {timeout:g} s")


def main() -> int:
    started = time.monotonic()
    compile_sources()
    app = base = None
    try:
        with temp_home() as home, SimProcess(speed=SPEED) as sim:
            t0 = time.monotonic()
            names = asyncio.run(launch_sessions(sim, home, SESSIONS))
            emit("launch_s", time.monotonic() - t0)
            remote = sim.remote()
            vms = remote.stats()["instances"]
            logins = {vm: remote.ssh_handshakes(vm) for vm in vms}
            remote.close()
            if len(vms) != SESSIONS:
                raise MeasureError(f"{len(vms)} VMs running, {SESSIONS} expected")
            base = PtyProgram(baseline_argv("static"))
            base.wait_for(BASELINE_MARKER, timeout=60)
            app = PtyProgram(app_argv("--sim-url", sim.url), env=app_env(home))
            app.wait_for(HOME_MARKER, timeout=60)
            emit("attach_all_s", wait_attached(sim, logins))
            app.wait_for(names[0], timeout=30)
            app.send("\r")  # the first session's dashboard
            time.sleep(DASHBOARD_S)
            if app.process.poll() is not None:
                raise MeasureError("the app ended")
            app_peak, base_peak = peak_rss_mib(app.pid), peak_rss_mib(base.pid)
            app_now, base_now = rss_mib(app.pid), rss_mib(base.pid)
    except MeasureError as exc:
        print(f"error={exc}", file=sys.stderr)
        return 1
    finally:
        for program in (app, base):
            if program is not None:
                program.stop()
    emit("sessions", SESSIONS)
    emit("app_rss_mib", app_now)
    emit("baseline_rss_mib", base_now)
    emit("baseline_peak_rss_mib", base_peak)
    emit("elapsed_s", time.monotonic() - started)
    emit("rss_ratio", app_peak / base_peak)
    emit("budget_mib", BUDGET_MIB)
    emit("app_peak_rss_mib", app_peak)
    return 0


if __name__ == "__main__":
    sys.exit(main())
