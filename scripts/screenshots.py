"""Regenerate the pictures in screenshots/ (shown by the README) by driving the demo as a user would.

Run: .venv/bin/python scripts/screenshots.py

Every picture comes from one run of the real demo (`maider-tui --demo`: the simulated cloud, its VMs
over SSH and its vLLM over HTTP, in a throw-away home), driven through its keys: no test fixture, no
hand-made session. Each screen is checked before it is saved: a Python traceback or a bordered panel
with no text inside stops the script with a non-zero exit that names the screen and what was seen.
The old pictures are removed first, so the folder holds only what this run took.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import os
import re
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "screenshots"
SIZE = (120, 40)
SPEED = 20.0  # the demo's own default: stages pass as a user sees them, a launch takes about a minute
LAUNCH_TIMEOUT_S = 240.0
MID_WAY = ("cloud_init", "upload", "compose_up", "vllm")  # the provisioning picture's stages

# --- what a picture must not show ----------------------------------------------------------------

_TEXT = re.compile(r'<text class="[^"]*" x="(?P<x>[\d.]+)" y="[\d.]+" textLength="[\d.]+" '
                   r'clip-path="url\(#[\w-]+-line-(?P<line>\d+)\)">(?P<text>[^<]*)</text>')
_CHAR_WIDTH = 12.2  # Rich's SVG export: 0.61 of its 20 px font per cell
_TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^\s*File \"[^\"]+\", line \d+", re.M)
TOP_LEFT, TOP_RIGHT, BOTTOM_LEFT, BOTTOM_RIGHT = "┌╭┏╔", "┐╮┓╗", "└╰┗╚", "┘╯┛╝"
VERTICAL, HORIZONTAL = "│┃║", "─━═"


def svg_lines(svg: str) -> list[str]:
    """The terminal's text, one string per row, from a Rich/Textual SVG screenshot."""
    rows: dict[int, dict[int, str]] = {}
    for m in _TEXT.finditer(svg):
        column = round(float(m["x"]) / _CHAR_WIDTH)
        text = html.unescape(m["text"]).replace("\xa0", " ")
        row = rows.setdefault(int(m["line"]), {})
        for i, char in enumerate(text):
            row[column + i] = char
    return ["".join(row.get(c, " ") for c in range(max(row, default=-1) + 1)) for _, row in sorted(rows.items())]


def empty_panels(lines: list[str]) -> list[str]:
    """The bordered panels with no letter or digit inside, each named by its title (or its place)."""
    grid = [line.ljust(max(map(len, lines), default=0)) for line in lines]
    found = []
    for top, line in enumerate(grid):
        for left, char in enumerate(line):
            if char not in TOP_LEFT:
                continue
            bottom = top + 1
            while bottom < len(grid) and grid[bottom][left] in VERTICAL:
                bottom += 1
            if bottom >= len(grid) or grid[bottom][left] not in BOTTOM_LEFT:
                continue
            right = left + 1
            while right < len(line) and grid[bottom][right] in HORIZONTAL:
                right += 1
            if right >= len(line) or grid[bottom][right] not in BOTTOM_RIGHT or right - left < 3:
                continue
            if bottom - top < 2:
                continue  # a border with no inside at all (a rule, a one-line box) holds nothing to miss
            inside = "".join(grid[r][left + 1:right] for r in range(top + 1, bottom))
            if not any(c.isalnum() for c in inside):
                title = line[left + 1:right].strip("".join(HORIZONTAL) + " " + TOP_RIGHT)
                found.append(title or f"the panel at row {top + 1}, column {left + 1}")
    return found


def problems(lines: list[str]) -> list[str]:
    """What a picture must not show: a Python traceback, a bordered panel with nothing in it."""
    text = "\n".join(lines)
    said = []
    match = _TRACEBACK.search(text)
    if match:
        said.append(f"a Python traceback: {match.group(0).strip()!r}")
    said += [f"an empty panel: {title!r}" for title in empty_panels(lines)]
    return said


class BadScreen(Exception):
    """A screen showed what no picture may show; the message says which screen and what."""


# --- driving the demo ------------------------------------------------------------------------------


class Shooter:
    """The demo app under a Pilot: keys in, checked pictures out."""

    def __init__(self, app: Any, pilot: Any, sim: Any) -> None:
        self.app, self.pilot, self.sim = app, pilot, sim
        self.taken: list[Path] = []

    async def settle(self, seconds: float = 0.3) -> None:
        await self.pilot.pause()
        await asyncio.sleep(seconds)
        await self.pilot.pause()

    async def press(self, *keys: str) -> None:
        for key in keys:
            await self.pilot.press(key)
            await self.settle(0.1)

    async def until(self, what: str, ready: Callable[[], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline:
                raise BadScreen(f"waited {timeout:.0f} s for {what}; the screen is {self.screen_name()}")
            await self.pilot.pause(0.1)

    def screen_name(self) -> str:
        return type(self.app.screen).__name__

    def on(self, name: str) -> bool:
        return self.screen_name() == name

    async def shoot(self, name: str, *, quiet: bool = True) -> None:
        """Check the screen and save it as screenshots/`name`.svg; `quiet` clears the toasts first."""
        if quiet:
            self.app.clear_notifications()
        await self.settle()
        svg = self.app.export_screenshot()
        found = problems(svg_lines(svg))
        if found:
            raise BadScreen(f"{name}.svg ({self.screen_name()}) shows {'; '.join(found)}")
        path = OUT / f"{name}.svg"
        path.write_text(svg, encoding="utf-8")
        self.taken.append(path)
        print(path.relative_to(ROOT), flush=True)


async def launch_defaults(s: Shooter, *, pictures: bool, gpu_type: str | None = None,
                          capability: str | None = None, model: str | None = None) -> str:
    """`n`, then enter through the wizard's defaults (a picture of each step when `pictures`; down to
    `capability`, `gpu_type` or `model` on its step when given), then enter launches; the new session's name."""
    await s.press("n")
    await s.until("the wizard", lambda: s.on("WizardScreen"))
    wizard = s.app.screen
    wanted = {"wizard-capability": capability, "wizard-gpu-type": gpu_type, "wizard-model": model}
    for step in ("wizard-capability", "wizard-region", "wizard-gpu-type", "wizard-model"):
        await s.until(f"{step} to load", lambda: wizard.highlighted() is not None, timeout=30)
        if (choice := wanted.get(step)) is not None:
            for _ in range(20):
                if wizard.highlighted().id == choice:
                    break
                await s.press("down")
            else:
                raise BadScreen(f"the wizard offers no {choice} (it shows {wizard.highlighted().id})")
        if pictures:
            await s.shoot(step)
        await s.press("enter")
    if pictures:
        await s.shoot("wizard-review")
    name = wizard.query_one("#name").value
    await s.press("enter")
    return name


def state(app: Any, name: str) -> str | None:
    record = app.context.store.get_session(name)
    return record.state if record is not None else None


def stage(app: Any, name: str) -> str | None:
    record = app.context.store.get_session(name)
    return record.stage if record is not None else None


async def shoot_dashboard(s: Shooter, name: str, what: str, picture: str) -> None:
    """Wait for the launch of `name` (`what`, in the messages) to be ready, picture its dashboard, go back."""
    await s.until(f"{what} to be ready", lambda: state(s.app, name) in ("ready", "failed"), timeout=LAUNCH_TIMEOUT_S)
    if state(s.app, name) != "ready":
        raise BadScreen(f"the launch of {what} ended {state(s.app, name)}")
    await s.until("its dashboard", lambda: s.on("DashboardScreen"), timeout=30)
    await s.settle(4.0)  # a few telemetry samples for the bars and sparklines
    await s.shoot(picture)
    await s.press("escape")


async def tour(s: Shooter) -> None:
    app = s.app
    await s.until("the sessions screen", lambda: s.on("HomeScreen"))
    await s.shoot("home-first-run")
    await s.press("b")
    await s.until("the benchmarks screen", lambda: s.on("BenchmarksScreen"))
    await s.shoot("benchmarks-empty")
    await s.press("escape")

    # The custom-model form, then back out of the wizard.
    await s.press("n")
    await s.until("the wizard", lambda: s.on("WizardScreen"))
    await s.until("the capabilities", lambda: app.screen.highlighted() is not None)
    await s.press("down", "down", "enter")
    await s.shoot("wizard-custom-model")
    await s.press("escape", "escape")
    await s.until("the sessions screen", lambda: s.on("HomeScreen"), timeout=10)

    # A launch with the defaults, as the README's first steps say.
    name = await launch_defaults(s, pictures=True)
    await s.until("the provisioning screen", lambda: s.on("ProvisioningScreen"), timeout=30)
    await s.until("the driver install", lambda: stage(app, name) in MID_WAY, timeout=LAUNCH_TIMEOUT_S)
    await s.shoot("provisioning")
    await s.until("the session to be ready", lambda: state(app, name) in ("ready", "failed"),
                  timeout=LAUNCH_TIMEOUT_S)
    if state(app, name) != "ready":
        raise BadScreen(f"the default launch ended {state(app, name)}")
    await s.until("the dashboard", lambda: s.on("DashboardScreen"), timeout=30)
    await s.settle(4.0)  # a few telemetry samples for the bars and sparklines
    await s.shoot("dashboard")

    await s.press("d")
    await s.until("the destroy dialog", lambda: s.on("ConfirmDialog"), timeout=10)
    await s.shoot("destroy-dialog")
    await s.press("n")

    await s.press("v")
    await s.until("the validation screen", lambda: s.on("ValidationScreen"), timeout=10)
    screen = app.screen
    await s.until("the validation to finish", lambda: screen.report is not None and not screen.running,
                  timeout=120)
    await s.shoot("validation")
    await s.press("escape")

    # One benchmark category (the whole suite streams in real time for minutes).
    await s.until("the dashboard", lambda: s.on("DashboardScreen"), timeout=10)
    await s.press("b")
    await s.until("the benchmark dialog", lambda: s.on("BenchRunScreen"), timeout=10)
    bench = app.screen
    await s.press("down", "space", "enter")  # Coding
    await s.until("the benchmark to finish", lambda: bench.outcome is not None or (
        not bench.running and bench.lines and bench.lines[-1].startswith("failed")), timeout=300)
    if bench.outcome is None:
        raise BadScreen(f"the benchmark failed: {bench.lines[-1]}")
    await s.shoot("benchmark-run")
    await s.press("escape")

    await s.until("the dashboard", lambda: s.on("DashboardScreen"), timeout=10)
    await s.press("escape")
    await s.until("the sessions screen", lambda: s.on("HomeScreen"), timeout=10)
    await s.shoot("home")
    await s.press("b")
    await s.until("the benchmarks screen", lambda: s.on("BenchmarksScreen"), timeout=10)
    await s.shoot("benchmarks")
    await s.press("R")
    await s.until("the recommend screen", lambda: s.on("RecommendScreen"), timeout=10)
    await s.shoot("recommend")
    await s.press("escape")
    await s.until("the benchmarks screen", lambda: s.on("BenchmarksScreen"), timeout=10)
    await s.press("escape")

    # A second session, on four GPUs.
    await s.until("the sessions screen", lambda: s.on("HomeScreen"), timeout=10)
    four = await launch_defaults(s, pictures=False, gpu_type="g2-gpu-rtx4000a4-m")
    await shoot_dashboard(s, four, "the 4-GPU session", "dashboard-4-gpus")

    # A model no single VM holds: a 70B at 16 bits over several VMs of the default plan.
    await s.until("the sessions screen", lambda: s.on("HomeScreen"), timeout=10)
    several = await launch_defaults(s, pictures=False, capability="70B+", model="meta-llama/Llama-3.1-70B-Instruct")
    await s.until("its provisioning", lambda: s.on("ProvisioningScreen"), timeout=30)
    await s.until("the Ray cluster forming", lambda: stage(app, several) == "vllm", timeout=LAUNCH_TIMEOUT_S)
    await s.shoot("provisioning-several-vms")
    await shoot_dashboard(s, several, "the session over several VMs", "dashboard-several-vms")

    # A launch that fails: the demo's vLLM refuses the model's architecture.
    await s.until("the sessions screen", lambda: s.on("HomeScreen"), timeout=10)
    faults = s.sim.faults
    model = "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ"
    faults.unsupported_models.add(model)
    failed = await launch_defaults(s, pictures=False)
    await s.until("the launch to fail", lambda: state(app, failed) in ("failed", "ready"), timeout=LAUNCH_TIMEOUT_S)
    faults.unsupported_models.discard(model)
    await s.until("the failure on screen", lambda: s.on("ProvisioningScreen"), timeout=10)
    await s.shoot("provisioning-failed")
    await s.press("d")
    await s.until("the destroy dialog", lambda: s.on("ConfirmDialog"), timeout=10)
    await s.press("y")
    await s.until("the failed VM to be destroyed", lambda: state(app, failed) in ("destroyed", "ended"),
                  timeout=60)

    await s.until("the sessions screen", lambda: s.on("HomeScreen"), timeout=30)
    app.clear_notifications()  # the toasts of the screen below a dialog stay drawn under it
    await s.settle()
    await s.press("q")
    await s.until("the quit dialog", lambda: s.on("QuitDialog"), timeout=10)
    await s.shoot("quit-dialog")
    await s.press("escape")
    await app.live.destroy(name)
    await app.live.destroy(four)
    await app.live.destroy(several)


async def broken_database(s: Shooter) -> None:
    """A demo started on a database file that is not one: the app asks before moving it aside."""
    await s.until("the question about the database", lambda: s.on("ConfirmDialog"), timeout=30)
    await s.shoot("broken-database")


async def demo(speed: float, drive: Callable[[Shooter], Awaitable[None]], *,
               database: bytes | None = None) -> list[Path]:
    """Start the demo as `maider-tui --demo` does, in a throw-away home (its database file holding
    `database` when given), and `drive` it; the pictures taken."""
    with tempfile.TemporaryDirectory() as home:
        os.environ["MAIDER_HOME"] = home  # the demo's home under it, as `maider-tui --demo` makes it
        os.environ["HOME"] = home  # paths on screen read ~/data/demo/..., not a temporary folder's name
        from maider_tui.app import MaiderApp
        from maider_tui.commands.home import app_paths, demo_cloud, demo_context, prepare

        args = argparse.Namespace(demo=True, sim_url=None, sim_speed=speed, config=None, command=None)
        paths = app_paths(True)
        if database is not None:
            paths.data_dir.mkdir(parents=True)
            paths.database.write_bytes(database)
        with demo_cloud(args) as (sim, speed):
            if not prepare(paths):
                raise BadScreen("the demo's home could not be made")
            app = MaiderApp(demo_context(args, paths, sim, speed))
            async with app.run_test(size=SIZE, notifications=True) as pilot:
                shooter = Shooter(app, pilot, sim)
                await drive(shooter)
            if app.context.store is not None:
                app.context.store.close()
            return shooter.taken


async def run(speed: float) -> list[Path]:
    os.environ["TZ"] = "UTC"
    for key in [k for k in os.environ if k.startswith("MAIDER_")]:
        del os.environ[key]  # the user's settings and tokens play no part
    taken = await demo(speed, tour)
    taken += await demo(speed, broken_database, database=b"this is not a database at all" * 10)
    return taken


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=float, default=SPEED, help="the simulated cloud's speed")
    args = parser.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("*.svg"):
        old.unlink()
    try:
        taken = asyncio.run(run(args.speed))
    except BadScreen as exc:
        print(f"screenshots: {exc}", file=sys.stderr)
        return 1
    print(f"{len(taken)} pictures in {OUT.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
