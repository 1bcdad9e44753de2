"""The dashboard's compositor skips widgets in a partial update, and the terminal gets the same cells.

Every frame of a dashboard run (GPU samples, the countdown, vLLM readings, a toast over the panels,
the log toggled, a problem in the top bar, the body scrolled in the narrow layout) is rendered twice:
by Textual's own compositor and by `CullingCompositor`. What each would write to the terminal is
painted onto a grid of cells, and the two grids must be equal; the culling one must also have
rendered fewer widgets.
"""

from __future__ import annotations

import pytest
from rich.cells import cell_len
from rich.console import Console
from rich.segment import ControlType
from textual._compositor import Compositor

from maider_tui.app import MaiderApp
from maider_tui.ops.telemetry import VllmReading
from maider_tui.remote.vllm import VllmMetrics
from maider_tui.ui.culling import CullingCompositor
from tests.ui.test_dashboard_snapshots import PLANS, build, feed, snapshot_of


def paint(update) -> dict[tuple[int, int], tuple[str, object]]:
    """The cells an update writes: (x, y) -> (character, style)."""
    console = Console(width=200, height=100, force_terminal=True, color_system="truecolor")
    cells: dict[tuple[int, int], tuple[str, object]] = {}
    x = y = 0
    for segment in update.__rich_console__(console, console.options):
        if segment.control:
            for control in segment.control:
                if control[0] == ControlType.CURSOR_MOVE_TO:
                    x, y = control[1], control[2]
            continue
        if segment.text == "\n":
            x, y = 0, y + 1
            continue
        for character in segment.text:
            cells[x, y] = (character, segment.style)
            x += cell_len(character)
    return cells


class Checked:
    """Wraps the screen's compositor: each partial update is rendered both ways and compared."""

    def __init__(self, compositor: CullingCompositor, monkeypatch) -> None:
        self.frames = 0
        self.rendered = {"textual": 0, "culling": 0}
        self.compositor = compositor
        monkeypatch.setattr(compositor, "render_partial_update", self.render_partial_update)

    def render_partial_update(self):
        compositor = self.compositor
        dirty = set(compositor._dirty_regions)
        widgets = compositor.visible_widgets
        rendered: list[object] = []
        originals = {}
        for widget in widgets:
            originals[widget] = widget.render_lines
            widget.render_lines = lambda crop, _w=widget: rendered.append(_w) or originals[_w](crop)
        try:
            reference = Compositor.render_partial_update(compositor)
            self.rendered["textual"] += len(rendered)
            rendered.clear()
            compositor._dirty_regions.update(dirty)
            culled = CullingCompositor.render_partial_update(compositor)
            self.rendered["culling"] += len(rendered)
        finally:
            for widget in widgets:
                del widget.render_lines
        assert (reference is None) == (culled is None)
        if culled is not None:
            assert paint(culled) == paint(reference)
            self.frames += 1
        return culled


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
async def test_the_culling_compositor_writes_what_textual_s_writes(make_context, clock, monkeypatch, size):
    context = make_context()
    screen = build(context, clock, 4)
    _, _, _, gpu_name, total = PLANS[4]
    app = MaiderApp(context)
    async with app.run_test(size=size) as pilot:
        await app.workers.wait_for_complete()
        app.push_screen(screen)
        await pilot.pause()
        assert isinstance(screen._compositor, CullingCompositor)
        checked = Checked(screen._compositor, monkeypatch)
        feed(screen, 4)
        await pilot.pause()
        for tick in range(60, 72):
            clock.advance(1.0)
            screen.watchdog.idle_s += 1
            screen.watchdog.remaining_s -= 1
            screen.show_telemetry(snapshot_of(4, tick, gpu_name, total))
            if tick % 4 == 0:
                metrics = VllmMetrics(requests_running=tick % 3, kv_cache_usage=tick / 100, reported=True,
                                      generation_tokens_total=500_000 + tick * 1000)
                screen.show_metrics(VllmReading(float(tick), metrics, 30.0 + tick))
            if tick == 63:
                app.notify("A toast over the panels", timeout=30)
            if tick == 65:
                await pilot.press("l")  # the vLLM log instead of the events
            if tick == 66:
                screen._say_problem("Cannot connect: a problem in the top bar")
            if tick == 67:
                screen.query_one("#dash-body").scroll_end(animate=False)
            if tick == 69:
                screen.watchdog.state = "warning"
            await pilot.pause()
        assert checked.frames >= 10
        assert checked.rendered["culling"] < checked.rendered["textual"] / 2
