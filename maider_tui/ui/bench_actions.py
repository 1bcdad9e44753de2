"""App-level benchmark actions: the comparison screen, the recommend form, a run on a live session.

A mixin of MaiderApp (like SessionActions), so the sessions screen and the dashboard open the same thing.
"""

from __future__ import annotations

from typing import Any


class BenchActions:
    """Needs `self.context` (AppContext) and `self.live` (LiveSessions or None)."""

    def open_benchmarks(self) -> None:
        """Show the comparison table of every benchmark run."""
        from .screens.benchmarks import BenchmarksScreen

        self.push_screen(BenchmarksScreen(self.context))

    def open_recommend(self) -> None:
        """Show the recommend form (task, budget, size -> the top 3)."""
        from .screens.recommend import RecommendScreen

        self.push_screen(RecommendScreen(self.context))

    def run_benchmark_on(self, name: str, **options: Any) -> None:
        """Open the run-benchmark dialog for live session `name`; `options` go to BenchRunScreen."""
        from .screens.bench_run import BenchRunScreen

        live = self.live.get(name) if self.live is not None else None
        if live is None or live.handle is None:
            self.notify(f"{name} is not connected: open its dashboard and reconnect (r) first.",
                        title="Benchmark", severity="warning")
            return
        self.push_screen(BenchRunScreen(self.context, live, **options))

    def refresh_benchmarks(self) -> None:
        """A run was stored: every open comparison screen reads the runs again."""
        from .screens.benchmarks import BenchmarksScreen

        for screen in self.screen_stack:
            if isinstance(screen, BenchmarksScreen):
                screen.refresh_data()
