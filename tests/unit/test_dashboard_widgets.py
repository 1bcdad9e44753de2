"""The dashboard's pure parts: bar colours, countdowns, cost projection, billing hour, ssh config."""

from __future__ import annotations

import pytest

from maider_tui.ops.session_files import known_hosts_line, merge_ssh_config, ssh_config_entry
from maider_tui.ui.widgets.cost_panel import (CostView, cost_lines, format_countdown, format_runtime, format_tokens,
                                              next_billed_hour_s, projected_total)
from maider_tui.ui.widgets.gpu_bars import _spark_char, bar_cells, memory_level, spark
from maider_tui.ui.widgets.watchdog_panel import WatchdogView, watchdog_lines

T0 = 1_795_351_260.0


@pytest.mark.parametrize("pct, level", [(50, "ok"), (85, "ok"), (90, "warning"), (95, "warning"),
                                        (97, "error"), (None, "ok")])
def test_memory_bar_colour(pct, level):
    assert memory_level(pct) == level


def test_bar_cells_and_spark():
    assert bar_cells(50, 20) == (10, 10)
    assert bar_cells(120, 10) == (10, 0)
    assert bar_cells(None, 4) == (0, 4)
    assert spark([0, 50, 100, None], 10) == "▁▅█ "
    assert spark(list(range(100)), 3) == "███"  # only the newest samples that fit


def test_a_sparkline_works_out_each_value_s_character_once():
    # A minute of history is redrawn every second; its values repeat: their characters are looked up.
    _spark_char.cache_clear()
    assert spark([40.0] * 60 + [None, 100.0], 62) == "▄" * 60 + " █"
    info = _spark_char.cache_info()
    assert info.misses == 3 and info.hits == 59


@pytest.mark.parametrize("seconds, text", [(0, "00:00"), (59.9, "00:59"), (350, "05:50"), (1450, "24:10"),
                                           (7500, "125:00"), (-5, "00:00"), (None, "—")])
def test_countdown(seconds, text):
    assert format_countdown(seconds) == text


def test_runtime_and_tokens():
    assert format_runtime(3 * 3600) == "3h 00m"
    assert format_runtime(12 * 60 + 5) == "12m"
    assert format_tokens(412_345) == "412k"
    assert format_tokens(1_500_000) == "1.5M"
    assert format_tokens(1_234) == "1.2k"
    assert format_tokens(900) == "900"


def test_projection_to_the_watchdog_deadline():
    # 3 h so far at $1.04/h, 24:10 left: $3.12 now, $3.54 at the deadline (the sketch's numbers).
    assert projected_total(1.04, T0 - 3 * 3600, T0, 1450) == pytest.approx(1.04 * (3 + 1450 / 3600))
    assert round(projected_total(1.04, T0 - 3 * 3600, T0, 1450), 2) == 3.54
    assert projected_total(1.04, T0, T0, None) is None


@pytest.mark.parametrize("elapsed, left", [(0, 3600), (42 * 60, 18 * 60), (3600, 3600), (3601, 3599)])
def test_next_billed_hour(elapsed, left):
    assert next_billed_hour_s(T0 - elapsed, T0) == left


def test_cost_lines():
    lines = cost_lines(CostView(1.04, T0 - 3 * 3600, T0, 1450, 412_000))
    assert lines[0] == "$1.04/h   so far $3.12 (3h 00m)"
    assert lines[1] == "to deadline $3.54 · next hour in 60m"
    assert lines[2] == "412k tokens · $0.0076 / 1K"
    assert cost_lines(CostView(1.04, T0, T0))[1].startswith("no deadline")
    # The cost per 1K tokens is as of the reading: a minute on, the meter moved but not that figure.
    read = CostView(1.04, T0 - 3 * 3600, T0 + 60, 1390, 412_000, tokens_at=T0)
    assert cost_lines(read)[0] == "$1.04/h   so far $3.14 (3h 01m)" and cost_lines(read)[2] == lines[2]
    assert cost_lines(CostView(1.04, T0 - 3 * 3600, T0 + 600, 850, 412_000))[2] == "412k tokens · $0.0080 / 1K"


def test_watchdog_lines():
    assert watchdog_lines(WatchdogView())[0] == "watchdog off"
    view = WatchdogView(off=False, state="warning", idle_s=1500, remaining_s=300)
    assert watchdog_lines(view) == ["idle 25:00 · destroys in 05:00", "warning · e extends"]

    class Dog:
        state, idle_s, remaining_s, unreachable = "watching", 10.0, 20.0, True

    assert "unreachable" in watchdog_lines(WatchdogView.of(Dog()))[1]

    class Kept(Dog):
        kept = True

    assert watchdog_lines(WatchdogView.of(Kept())) == ["kept 00:10 · destroys in 00:20",
                                                        "watching · no model serving · e extends"]
    assert watchdog_lines(WatchdogView.of(None, ended=True))[0] == "session ended"


def test_ssh_files():
    assert known_hosts_line("10.0.0.1", 22, "ssh-ed25519 AAAA comment") == "10.0.0.1 ssh-ed25519 AAAA\n"
    assert known_hosts_line("127.0.0.1", 2201, "ssh-ed25519 AAAA") == "[127.0.0.1]:2201 ssh-ed25519 AAAA\n"
    a = ssh_config_entry("a", "1.2.3.4", 22, "/k/a", "/k/a.known")
    b = ssh_config_entry("b", "5.6.7.8", 22, "/k/b", "/k/b.known")
    both = merge_ssh_config(merge_ssh_config("", "a", a), "b", b)
    assert both.count("Host maider-") == 2 and "StrictHostKeyChecking yes" in both
    moved = merge_ssh_config(both, "a", ssh_config_entry("a", "9.9.9.9", 22, "/k/a", "/k/a.known"))
    assert moved.count("Host maider-a\n") == 1 and "9.9.9.9" in moved and "1.2.3.4" not in moved
    assert "maider-a" not in merge_ssh_config(moved, "a", None)
