"""A custom model in the demo, through the real app process: the wizard reads its config.json from the
sim's Hugging Face Hub (the address `--sim-url` gives), and the sim's vLLM loads it from the same Hub."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from maider_tui.paths import AppPaths
from maider_tui.sim import SimCloud
from maider_tui.store import open_store
from tests.proc import AppProcess, app_env


def session_states(db: Path, model: str) -> dict[str, str]:
    if not db.exists():
        return {}
    with open_store(db) as store:
        return {r.name: r.state for r in store.list_sessions() if r.model == model}


@pytest.mark.parametrize(("model", "env"), [
    ("Qwen/Qwen2.5-Coder-1.5B-Instruct", {}),
    # A gated one: the user's HF_TOKEN reaches the demo's wizard and, in the uploaded .env, its VM.
    ("meta-llama/Llama-3.2-3B-Instruct", {"HF_TOKEN": "hf_demoUserToken0123456789abcdefgh"}),
])
def test_a_custom_model_launches_to_ready_in_the_demo(tmp_path: Path, model: str, env: dict[str, str]):
    home = tmp_path / "home"
    db = AppPaths.under(home / "data" / "demo").database
    with SimCloud(speed=1000, seed=3) as sim, AppProcess(
            ["--sim-url", sim.linode_base_url], app_env(home, MAIDER_SIM_TOKEN=sim.token, **env)) as app:
        app.wait_for("Sessions")
        app.press("n")
        app.wait_for("30B-32B")
        for _ in range(10):  # down to the last tier, Custom, however early the keys arrive
            app.press("down")
            time.sleep(0.1)
        app.press("enter")
        app.wait_for("Model id", what="the custom model pane")
        app.press(model, "enter")
        app.wait_for("GPU regions (", what="the region step, once the sim's Hub gave the shape")
        assert "Could not reach Hugging Face" not in app.screen()
        app.press("enter")
        app.wait_for("GPU types in ")
        app.press("enter")
        app.wait_for("Models of ")
        app.press("enter")
        app.wait_for("Launch (enter)")
        app.press("enter")
        deadline = time.monotonic() + 30
        while "ready" not in session_states(db, model).values():
            states = session_states(db, model)
            assert "failed" not in states.values(), f"the launch failed:\n{app.screen()}"
            assert time.monotonic() < deadline, f"no ready session; the screen:\n{app.screen()}"
            time.sleep(0.05)
        assert sim.world.hub.requests[f"GET config.json {model}"] >= 2  # the wizard's read, then vLLM's
