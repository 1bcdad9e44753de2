"""A session's log reads in the order things happened: the stored stages and the live log lines of a
launch on the sim (the Linode account, compose's output) merged by time, the token check included."""

from __future__ import annotations

from maider_tui import catalog
from maider_tui.clock import SystemClock
from maider_tui.ops.events import EventRecorder, LogEvent, StageEvent, session_history
from maider_tui.ops.provision import LaunchPlan, provision
from maider_tui.settings import Settings
from maider_tui.sim import SimCloud
from maider_tui.store import open_store
from tests.integration.simfix import sim_limits

SPEED = 1000
TYPE_ID = "g2-gpu-rtx4000a2-s"
MODEL = "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ"


def positions(lines: list[str], *wanted: str) -> list[int]:
    """The index of the first line starting with each of `wanted` (a missing one fails the test)."""
    found = []
    for prefix in wanted:
        hits = [i for i, line in enumerate(lines) if line.startswith(prefix)]
        assert hits, f"no line starts with {prefix!r} in {lines}"
        found.append(hits[0])
    return found


ORDER = ("Checking the Linode token", "Linode account: ", "Recording the session", "Renting 2x RTX 4000 Ada",
         "Starting vLLM (docker compose up)", "[+] Running", "Waiting for vLLM to load", "ready at ")


async def test_a_launch_log_lists_the_token_check_and_its_lines_in_the_order_they_happened(paths):
    store = open_store(paths.database)
    events = EventRecorder()
    with SimCloud(speed=SPEED, seed=5) as sim:
        gpu = catalog.gpu_type(TYPE_ID)
        plan = LaunchPlan(region=gpu.regions[0], gpu_type=gpu, config=catalog.fit(MODEL, gpu).to_vllm_config())
        handle = await provision(plan, provider=sim.provider(store), store=store, paths=paths, settings=Settings(),
                                 clock=SystemClock(), emit=events, hf_token=None, limits=sim_limits(SPEED))
        try:
            # every log line carries the time it appeared, in the order emitted
            logs = events.of(LogEvent)
            assert logs and all(e.ts is not None for e in logs)
            assert [e.ts for e in logs] == sorted(e.ts for e in logs)
            # the token check, emitted before the session's row existed, is in the stored history too
            stored = store.events(handle.name)
            assert stored[0].message == "Checking the Linode token"
            assert stored[0].ts <= stored[1].ts
            assert [e.message for e in events.of(StageEvent)][0] == "Checking the Linode token"

            lines = [message for message, _ in session_history(store, handle.name, events.events)]
            at = positions(lines, *ORDER)
            assert at == sorted(at), lines
            assert len(lines) == len(set(lines))  # nothing twice
        finally:
            await handle.close()
            store.close()
