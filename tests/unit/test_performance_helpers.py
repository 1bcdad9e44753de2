"""The benchmarks' pure helpers and the pieces the performance work added; no timing is asserted here."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

import pytest
from rich.text import Text
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.screen import Screen
from textual.visual import visualize
from textual.widgets import Static

from maider_tui.app import MaiderApp
from maider_tui.remote.gpu import GpuSample, GpuSnapshot
from maider_tui.sim.linode_api import all_types
from maider_tui.sim.world import World
from maider_tui.ui.screens.home import HomeScreen
from maider_tui.ui.widgets.gpu_bars import GpuBars
from maider_tui.ui.widgets.lines import LinePanel
from maider_tui.ui.widgets.patch import patch, size_may_change

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
SCRIPTS = ("startup", "dashboard_cpu", "memory", "ssh_economy", "bench_accuracy", "orchestration")
HEADLINES = {"startup": "startup_ratio", "dashboard_cpu": "cpu_pct_of_core",
             "memory": "app_peak_rss_mib", "ssh_economy": "ssh_handshakes", "bench_accuracy": "ttft_error_ms", "orchestration": "overhead_s"}


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_figures_are_read_from_name_value_lines():
    harness = load("_harness")
    out = "launch_s=2.5\nnoise without equals\nerror: x = 3\nstartup_ratio=1.2\nstartup_ratio=1.1\n"
    assert harness.parse_figures(out) == {"launch_s": "2.5", "startup_ratio": "1.1"}


def test_cpu_is_counted_to_the_nanosecond_unless_a_thread_ended():
    harness = load("_harness")
    before = harness.CpuReading(1.0, {"10": 2_000_000_000, "11": 500_000_000})
    later = harness.CpuReading(1.3, {"10": 2_250_000_000, "11": 500_000_000, "12": 40_000_000})
    assert harness.cpu_between(before, later) == (pytest.approx(0.29), True)  # a new thread counts whole
    ended = harness.CpuReading(1.3, {"10": 2_250_000_000})
    assert harness.cpu_between(before, ended) == (pytest.approx(0.3), False)  # thread 11 took its count
    own = harness.cpu_reading(__import__("os").getpid())
    assert own.ticks_s > 0 and own.thread_ns and all(ns > 0 for ns in own.thread_ns.values())


def test_escape_sequences_are_stripped_from_terminal_output():
    harness = load("_harness")
    drawn = "\x1b[?1049h\x1b[1;1H\x1b[38;2;1;2;3mSess\x1b[0mions\x1b]0;title\x07 ok"
    assert harness.strip_escapes(drawn) == "Sessions ok"


def test_the_headline_is_judged_by_its_budget_and_printed_last(capsys):
    harness = load("_harness")
    assert harness.emit_budget("cpu_pct_of_core", 0.81, 2.0) == 0
    assert harness.emit_budget("cpu_pct_of_core", 2.5, 2.0) == harness.OVER_BUDGET != 1  # 1: not measured
    out = capsys.readouterr().out
    assert out.splitlines()[-3:] == ["cpu_pct_of_core_budget=2", "within_budget=0", "cpu_pct_of_core=2.5"]
    assert harness.parse_figures(out)["within_budget"] == "0"


@pytest.mark.parametrize("name", ["startup", "dashboard_cpu", "memory", "ssh_economy"])
def test_the_budgeted_benchmarks_end_on_their_budget_not_a_ratio(name):
    source = (BENCHMARKS / f"{name}.py").read_text()
    assert f'return emit_budget("{HEADLINES[name]}"' in source


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_benchmark_has_a_main_and_documents_its_headline(name):
    module = load(name)
    assert callable(module.main)
    assert HEADLINES[name] in module.__doc__ or HEADLINES[name] in (BENCHMARKS / f"{name}.py").read_text()


def test_the_sim_offers_a_big_plan_only_when_asked():
    assert World().gpu_type("g2-gpu-rtx4000a8-sim") is None
    world = World(big_plan_gpus=8)
    plan = world.gpu_type("g2-gpu-rtx4000a8-sim")
    assert plan is not None and plan.gpus == 8 and plan.family is not None
    assert world.offered(plan.id, plan.regions[0])
    listed = {t["id"]: t for t in all_types(world)}
    assert listed[plan.id]["gpus"] == 8
    assert plan.id not in {t["id"] for t in all_types(World())}


class _Statics(App[None]):
    def compose(self) -> ComposeResult:
        yield Static("12.0 GB", id="fixed")
        yield Static("58°C", id="auto")
        yield GpuBars(2, id="gpus")

    def on_mount(self) -> None:
        self.query_one("#fixed").styles.width = 30
        self.query_one("#auto").styles.width = "auto"


async def test_patch_lays_out_only_when_the_size_can_change():
    app = _Statics()
    async with app.run_test(size=(60, 8)) as pilot:
        fixed, auto = app.query_one("#fixed", Static), app.query_one("#auto", Static)
        assert not size_may_change(fixed, visualize(fixed, "12.0 GB"), visualize(fixed, "13.5 GB  90%"))
        assert size_may_change(fixed, visualize(fixed, "12.0 GB"), visualize(fixed, "12.0 GB\n90%"))
        assert not size_may_change(auto, visualize(auto, "58°C"), visualize(auto, "61°C"))  # as wide
        assert size_may_change(auto, visualize(auto, "58°C"), visualize(auto, "101°C"))  # wider: auto width
        await pilot.pause()
        layouts = []  # Textual publishes this signal after each layout pass of the screen
        app.screen.screen_layout_refresh_signal.subscribe(app.screen, lambda _screen: layouts.append(1))
        patch(fixed, "13.5 GB")
        await pilot.pause()
        assert str(fixed.render()) == "13.5 GB" and layouts == []
        patch(auto, "101°C")
        for _ in range(100):  # a loaded machine may need more than one pass of the loop for the layout
            await pilot.pause()
            if auto.size.width == 5:
                break
        assert str(auto.render()) == "101°C" and auto.size.width == 5 and layouts


async def test_the_gpu_panel_draws_two_lines_a_gpu_and_redraws_only_what_changed():
    app = _Statics()
    async with app.run_test(size=(60, 8)) as pilot:
        bars = app.query_one(GpuBars)
        await pilot.pause()
        assert bars.waiting and bars.size.height == 1 + 2 * 2  # the waiting line, then a row per GPU
        gpus = [GpuSample(i, "NVIDIA RTX 4000 Ada Generation", 10240, 20475, 13, 58, 110) for i in range(2)]
        bars.show(GpuSnapshot(0.0, tuple(gpus)), [(10.0, 20.0)] * 2)
        await pilot.pause()
        assert not bars.waiting and bars.size.height == 4
        lines = ["".join(s.text for s in bars.render_line(y)) for y in range(4)]
        assert lines[0].startswith("0 RTX 4000 Ada") and lines[0].rstrip().endswith("GB  50%")
        assert lines[1].startswith("  util  13% ") and lines[1].rstrip().endswith("58°C  110 W")
        assert lines[2].startswith("1 RTX 4000 Ada")
        drawn = dict(bars._lines)
        # GPU 1 warms up; GPU 0 is unchanged: its lines are not drawn again.
        warmer = dataclasses.replace(gpus[1], temperature_c=61)
        bars.show(GpuSnapshot(1.0, (gpus[0], warmer)), [(10.0, 20.0)] * 2)
        assert bars._lines[0] is drawn[0] and bars._lines[1] is drawn[1]
        assert 3 not in bars._lines  # GPU 1's second line waits to be drawn anew
        await pilot.pause()
        assert "61°C" in "".join(s.text for s in bars.render_line(3))
        before = dict(bars._lines)
        bars.show(GpuSnapshot(2.0, (gpus[0], warmer)), [(10.0, 20.0)] * 2)
        assert bars._lines == before  # an equal snapshot redraws nothing


async def test_a_gpu_sample_repaints_only_the_gpu_lines_whose_text_changed(monkeypatch):
    app = _Statics()
    async with app.run_test(size=(60, 8)) as pilot:
        bars = app.query_one(GpuBars)
        gpus = [GpuSample(i, "NVIDIA RTX 4000 Ada Generation", 10240, 20475, 13, 58, 110) for i in range(2)]
        bars.show(GpuSnapshot(0.0, tuple(gpus)), [(10.0,)] * 2)
        await pilot.pause()
        drawn: list[int] = []
        draw = bars._draw
        monkeypatch.setattr(bars, "_draw", lambda y, width: drawn.append(y) or draw(y, width))
        refreshes: list[int] = []
        refresh = bars.refresh
        monkeypatch.setattr(bars, "refresh", lambda *regions, **kw: refreshes.append(len(regions)) or refresh(
            *regions, **kw))
        # Both GPUs' utilisation moves (its line: 1 and 3); only GPU 1's memory moves (its line: 2).
        busier = [dataclasses.replace(gpus[0], utilization_pct=40),
                  dataclasses.replace(gpus[1], utilization_pct=41, memory_used_mib=15000)]
        bars.show(GpuSnapshot(1.0, tuple(busier)), [(10.0, 40.0), (10.0, 41.0)])
        assert refreshes == [3]  # one refresh for the three lines
        await pilot.pause()
        assert sorted(drawn) == [1, 2, 3]
        assert "util  40%" in "".join(s.text for s in bars.render_line(1))
        assert "14.6/20.0 GB" in "".join(s.text for s in bars.render_line(2))
        drawn.clear()
        hotter = [busier[0], dataclasses.replace(busier[1], temperature_c=70)]
        bars.show(GpuSnapshot(2.0, tuple(hotter)), [(10.0, 40.0), (10.0, 41.0)])
        await pilot.pause()
        assert drawn == [3]  # only GPU 1's heat changed: its memory line is not drawn again


class _Panels(App[None]):
    CSS = ".panel { border: round $primary 60%; border-title-color: $text-primary; padding: 0 1; width: 40; }"
    LINES = ["idle 00:05 · destroys in 29:55", "", ("no tokens generated yet", "dim"),
             "a line long enough to wrap onto the next one"]

    def compose(self) -> ComposeResult:
        plain = [line if isinstance(line, str) else line[0] for line in self.LINES]
        text = Text("\n").join([Text(plain[0]), Text(plain[1]), Text(plain[2], style="dim"), Text(plain[3])])
        yield Static(text, id="static", classes="panel", markup=False)
        yield LinePanel(*self.LINES, id="lines", classes="panel")

    def on_mount(self) -> None:
        for panel in self.query(".panel"):
            panel.border_title = "Watchdog"


def _drawn(widget) -> list[list[tuple[str, object]]]:
    """The widget's lines, border included, as (text, style) segments."""
    strips = widget.render_lines(Region(0, 0, *widget.outer_size))
    return [[(segment.text, segment.style) for segment in strip] for strip in strips]


async def test_a_line_panel_draws_what_a_static_draws():
    app = _Panels()
    async with app.run_test(size=(70, 16)) as pilot:
        await pilot.pause()
        static, lines = app.query_one("#static"), app.query_one("#lines", LinePanel)
        assert lines.outer_size == static.outer_size and lines.size.height == 5  # the long line wraps
        assert _drawn(lines) == _drawn(static)
        assert static.auto_links and not lines.auto_links  # the same cells without link styling each line
        assert str(lines.render()) == str(static.render())  # what layout measures and a selection copies


async def test_a_line_panel_repaints_only_the_lines_that_changed():
    app = _Panels()
    async with app.run_test(size=(70, 16)) as pilot:
        await pilot.pause()
        panel = app.query_one("#lines", LinePanel)
        rendered: list[int] = []
        render_line = panel.render_line  # what Textual calls for a content line not in its cache
        panel.render_line = lambda y: rendered.append(y) or render_line(y)
        shown = list(_Panels.LINES)
        panel.show_lines(["idle 00:06 · destroys in 29:54", *shown[1:]])
        await pilot.pause()
        assert rendered == [0]  # the first content line (below the border): not the others
        refreshes: list[int] = []
        refresh = panel.refresh
        panel.refresh = lambda *regions, **kw: refreshes.append(len(regions)) or refresh(*regions, **kw)
        panel.show_lines(["idle 00:07 · destroys in 29:53", "-", ("no tokens generated yet", "dim"), shown[3]])
        assert refreshes == [2]  # one refresh for the two lines that changed
        del panel.refresh
        await pilot.pause()
        panel.show_lines(["idle 00:06 · destroys in 29:54", *shown[1:]])
        await pilot.pause()
        rendered.clear()
        panel.show_lines(["idle 00:06 · destroys in 29:54", *shown[1:]])
        panel.show_lines(["idle 00:06 · destroys in 29:54", "", ("no tokens generated yet", ""), shown[3]])
        await pilot.pause()
        assert rendered == [2]  # equal lines repaint nothing; a line whose style alone changed repaints
        assert panel.lines[2] == "no tokens generated yet"


async def test_a_line_panel_lays_out_again_when_a_line_wraps_or_the_count_changes():
    app = _Panels()
    async with app.run_test(size=(70, 16)) as pilot:
        await pilot.pause()
        panel = app.query_one("#lines", LinePanel)
        panel.show_lines(["idle 00:05 · destroys in 29:55 and now it does not fit", "", "x", "short"])
        await pilot.pause()
        assert panel.size.height == 5
        assert "".join(s.text for s in panel.render_line(1)).startswith("now it does not fit")
        panel.show_lines(["one", "two"])
        await pilot.pause()
        assert panel.size.height == 2
        assert ["".join(s.text for s in panel.render_line(y)).rstrip() for y in range(2)] == ["one", "two"]


async def test_the_sessions_table_does_not_tick_under_another_screen(make_context, monkeypatch):
    app = MaiderApp(make_context())
    async with app.run_test() as pilot:
        await pilot.pause()
        home = app.screen
        assert isinstance(home, HomeScreen)
        calls = []
        monkeypatch.setattr(home, "refresh_sessions", lambda: calls.append(1))
        home._ticker.stop()  # the ticks are called here: a real one on a slow machine would add a call
        home._tick()
        assert calls == [1]
        await app.push_screen(Screen())
        await pilot.pause()
        home._tick()
        assert calls == [1]  # hidden: not redrawn
        app.pop_screen()
        await pilot.pause()
        assert len(calls) == 2  # redrawn on return


def test_starting_the_app_imports_neither_ssh_nor_the_cloud_client_nor_the_commands():
    import subprocess

    script = ("import sys; from maider_tui import cli; cli._parse([]); import maider_tui.app, maider_tui.context; "
              "print(sorted(m for m in ('asyncssh', 'linode_api4', 'aiohttp', 'yaml') if m in sys.modules)); "
              "print(sorted(m for m in sys.modules if m.startswith('maider_tui.commands.')))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["[]", "['maider_tui.commands.argtypes']"]  # no command's module


def test_the_catalog_types_and_the_cloud_client_load_no_pydantic():
    """`--sim-url` and an account with a token build the cloud client before the first frame; its
    catalog types are plain dataclasses, and pydantic comes only with a vLLM config or the settings."""
    import subprocess

    script = ("import sys; import maider_tui.cloud.linode, maider_tui.catalog, maider_tui.sim.remote; "
              "first = 'pydantic' in sys.modules; from maider_tui.models import VllmConfig; "
              "print(first, VllmConfig(model='m').model, 'pydantic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "m", "True"]


def test_the_first_frame_is_drawn_before_settings_and_the_keyring_load(tmp_path):
    """Settings (and pydantic with them) and the keyring load only once the sessions screen has been drawn."""
    import subprocess

    script = """
import asyncio, sys
from maider_tui.app import MaiderApp
from maider_tui.context import build_context
from maider_tui.paths import AppPaths

async def main():
    context = build_context(AppPaths.under(sys.argv[1]), environ={})
    app = MaiderApp(context)
    load, seen = context.load, []
    def watched_load():
        seen.append((app._first_frame.is_set(), type(app.screen).__name__,
                     sorted(m for m in ("maider_tui.settings", "keyring", "pydantic", "pydantic_settings")
                            if m in sys.modules)))
        return load()
    context.load = watched_load
    async with app.run_test() as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        stack = len(app.screen_stack)
    print(seen, stack, "maider_tui.settings" in sys.modules and "pydantic_settings" in sys.modules)

asyncio.run(main())
"""
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    # Loaded once, after the first frame, over the sessions screen (the bottom of the stack).
    assert out.stdout.strip().splitlines()[-1] == "[(True, 'HomeScreen', [])] 1 True"


async def test_a_vllm_reading_is_drawn_with_the_next_gpu_sample_not_in_a_frame_of_its_own(make_context, clock):
    from maider_tui.ops.telemetry import VllmReading
    from maider_tui.remote.vllm import VllmMetrics
    from maider_tui.ui.messages import TelemetryStatus
    from tests.ui.test_dashboard_snapshots import PLANS, build, snapshot_of

    context = make_context()
    screen = build(context, clock, 2)
    app = MaiderApp(context)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        app.push_screen(screen)
        await pilot.pause()
        screen.stream = True  # as when live, without a VM: only what is posted here is shown
        _, _, _, gpu_name, total = PLANS[2]
        screen.show_telemetry(snapshot_of(2, 0, gpu_name, total))
        states = []
        screen.watch(screen, "state", lambda new: states.append(new), init=False)
        reading = VllmReading(10.0, VllmMetrics(requests_running=3, reported=True), 38.2)
        screen.show_metrics(reading)  # a sample came just now: the reading waits for the next one
        assert states == [] and screen.state.vllm is None
        clock.advance(1.0)
        screen.show_telemetry(snapshot_of(2, 1, gpu_name, total))
        assert len(states) == 1 and states[0].vllm is reading and states[0].gpu is not None
        # The clock's tick between two samples draws nothing, not even a waiting reading: it would be
        # a frame between two samples' frames.
        later = VllmReading(15.0, VllmMetrics(requests_running=1, reported=True), 12.0)
        screen.show_metrics(later)
        clock.advance(0.5)
        screen._tick()
        assert len(states) == 1 and screen.state.vllm is reading
        # With no sample to ride (the stream stalled), the tick draws it.
        clock.advance(1.0)
        screen._tick()
        assert len(states) == 2 and screen.state.vllm is later
        # A status the screen already shows changes nothing: no new state, no frame.
        screen.on_telemetry_status(TelemetryStatus(screen.state.tunnel))
        assert len(states) == 2
        screen.on_telemetry_status(TelemetryStatus("reconnecting"))
        assert len(states) == 3 and states[-1].tunnel == "reconnecting"


def test_an_attached_session_does_not_import_yaml():
    """Attaching to a running session and watching it (SSH, tunnel, watchdog, dashboard telemetry) loads
    the launch modules it borrows from, but not YAML: only a launch or a model switch writes YAML."""
    import subprocess

    script = ("import sys; import maider_tui.ops.live, maider_tui.ops.provision, maider_tui.ops.readiness, "
              "maider_tui.ops.watchdog, maider_tui.ops.telemetry, maider_tui.ops.session_files, "
              "maider_tui.deploy.compose, maider_tui.deploy.cloud_init; print('yaml' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


class _RenderedLines:
    """Which content lines of which widgets Textual draws anew, rather than takes from its line
    cache: the calls of each widget's `render_line` (the Line API; y below the top border)."""

    def __init__(self, monkeypatch) -> None:
        from textual.widget import Widget

        self.lines: dict[str, list[int]] = {}
        for cls in (Widget, LinePanel, GpuBars):
            monkeypatch.setattr(cls, "render_line", self._spy(cls.render_line))

    def _spy(self, render_line):
        def line_rendered(widget, y):
            self.lines.setdefault(widget.id or type(widget).__name__, []).append(y)
            return render_line(widget, y)
        return line_rendered


async def _show_fed(app, pilot, screen) -> None:
    """Push the 2-GPU dashboard `screen` over the sessions screen and give it its first data."""
    from tests.ui.test_dashboard_snapshots import feed

    await app.workers.wait_for_complete()
    app.push_screen(screen)
    await pilot.pause()
    feed(screen, 2)
    await pilot.pause()


async def test_a_dashboard_second_repaints_only_the_panel_lines_that_changed(make_context, clock,
                                                                            monkeypatch):
    from maider_tui.ops.telemetry import VllmReading
    from tests.ui.test_dashboard_snapshots import PLANS, build, snapshot_of

    context = make_context()
    screen = build(context, clock, 2)
    app = MaiderApp(context)
    async with app.run_test(size=(120, 40)) as pilot:
        await _show_fed(app, pilot, screen)
        cost, dog = screen.query_one("#cost"), screen.query_one("#watchdog")
        cost_before = str(cost.render()).split("\n")
        rendered = _RenderedLines(monkeypatch)
        clock.advance(1.0)
        screen.watchdog.idle_s += 1
        screen.watchdog.remaining_s -= 1
        _, _, _, gpu_name, total = PLANS[2]
        screen.show_telemetry(snapshot_of(2, 60, gpu_name, total))
        await pilot.pause()
        # Of each panel's content lines: the watchdog's countdown line, the cost lines that moved.
        assert rendered.lines.pop("watchdog") == [0] and str(dog.render()).startswith("idle 05:51")
        cost_after = str(cost.render()).split("\n")
        changed = [y for y, (a, b) in enumerate(zip(cost_before, cost_after)) if a != b]
        assert rendered.lines.pop("cost", []) == changed
        assert rendered.lines.pop("GpuBars") == [1, 3]  # the utilisation lines; memory did not move
        assert set(rendered.lines) <= {"top-right"}  # nothing else but the clock, were its minute to turn
        # A minute of samples and no vLLM reading: the meter moves, the cost per 1K tokens does not
        # (it is as of the last reading, so it does not repaint every second).
        clock.advance(60.0)
        screen.show_telemetry(snapshot_of(2, 61, gpu_name, total))
        await pilot.pause()
        later = str(cost.render()).split("\n")
        assert later[0] != cost_after[0] and later[2] == cost_after[2] == "412k tokens · $0.0093 / 1K"
        screen.show_metrics(VllmReading(20.0, screen.state.vllm.metrics, 1.0))
        clock.advance(1.0)
        screen.show_telemetry(snapshot_of(2, 62, gpu_name, total))
        await pilot.pause()
        assert str(cost.render()).split("\n")[2] == "412k tokens · $0.0094 / 1K"  # a reading brings it up to date


async def test_a_vllm_reading_repaints_the_load_line_and_lays_nothing_out(make_context, clock, monkeypatch):
    from maider_tui.ops.telemetry import VllmReading
    from maider_tui.remote.vllm import VllmMetrics
    from tests.ui.test_dashboard_snapshots import build

    context = make_context()
    screen = build(context, clock, 2)
    app = MaiderApp(context)
    async with app.run_test(size=(120, 40)) as pilot:
        await _show_fed(app, pilot, screen)
        layouts = []  # Textual publishes this signal after each layout pass of the screen
        screen.screen_layout_refresh_signal.subscribe(screen, lambda _screen: layouts.append(1))
        rendered = _RenderedLines(monkeypatch)
        # A longer load line than the last one (more requests, a faster rate): the panel's size is the same.
        metrics = VllmMetrics(requests_running=12, requests_waiting=3, generation_tokens_total=412_345,
                              kv_cache_usage=0.5, reported=True)
        screen.show_metrics(VllmReading(15.0, metrics, 1234.5))
        await pilot.pause()
        assert "running 12 · waiting 3 · 1234.5 tok/s" in str(screen.query_one("#vllm").render())
        assert rendered.lines["vllm"] == [1]  # below the model line
        assert layouts == []


async def test_the_clock_turning_a_minute_repaints_the_top_bar_s_clock_and_lays_nothing_out():
    from maider_tui.ui.widgets.top_bar import TopBar

    class Bar(App[None]):
        def compose(self) -> ComposeResult:
            yield TopBar()

    app = Bar()
    async with app.run_test(size=(80, 5)) as pilot:
        bar = app.query_one(TopBar)
        bar.status = "2 live"
        bar.set_time(1_795_351_260.0)
        await pilot.pause()
        left, right = bar.query_one("#top-left", Static), bar.query_one("#top-right", Static)
        refreshed: list[tuple[str, bool]] = []
        for static in (left, right):
            refresh = static.refresh
            static.refresh = lambda *regions, _refresh=refresh, _id=static.id, **kw: (
                refreshed.append((_id, kw.get("layout", False))) or _refresh(*regions, **kw))
        before = str(right.render())
        bar.set_time(1_795_351_260.0 + 60)
        await pilot.pause()
        assert str(right.render()) != before and str(right.render()).startswith("2 live   ")
        assert refreshed == [("top-right", False)]  # the title is as it was; the clock as wide as before
        refreshed.clear()
        bar.status = "3 live · 1 failed"
        await pilot.pause()
        assert refreshed[0] == ("top-right", True)  # a wider text: the bar is laid out again


def test_start_up_freezes_what_it_made_once_after_the_first_frame(tmp_path):
    """The objects start-up made leave the garbage collector's reach: after the first frame, once."""
    import subprocess

    script = """
import asyncio, gc, sys
from maider_tui.app import MaiderApp
from maider_tui.context import build_context
from maider_tui.paths import AppPaths

async def main():
    seen = []
    freeze = gc.freeze
    for run in range(2):
        app = MaiderApp(build_context(AppPaths.under(sys.argv[1]), environ={}))
        gc.freeze = lambda app=app: seen.append(app._first_frame.is_set()) or freeze()
        async with app.run_test() as pilot:
            await pilot.pause()
            await app.workers.wait_for_complete()
    print(seen, gc.get_freeze_count() > 1000)

asyncio.run(main())
"""
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[True] True"  # the second app in the process does not
