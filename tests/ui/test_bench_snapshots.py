"""Pictures of the benchmarks screens on a frozen clock and fixed runs: comparison, empty, recommend."""

from __future__ import annotations

import pytest

from .test_benchmarks import BenchApp, add_runs

SIZES = [(80, 24), (120, 40)]


def _opening(method: str):
    async def run_before(pilot) -> None:
        await pilot.app.workers.wait_for_complete()
        getattr(pilot.app, method)()
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_comparison(snap_compare, make_context, clock, size):
    context = make_context()
    add_runs(context.store, clock.now())
    assert snap_compare(BenchApp(context), terminal_size=size, run_before=_opening("open_benchmarks"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_comparison_empty(snap_compare, make_context, size):
    assert snap_compare(BenchApp(make_context()), terminal_size=size, run_before=_opening("open_benchmarks"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_recommend_form(snap_compare, make_context, clock, size):
    context = make_context()
    add_runs(context.store, clock.now())
    assert snap_compare(BenchApp(context), terminal_size=size, run_before=_opening("open_recommend"))
