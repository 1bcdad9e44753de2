"""The validation screen's utilisation drawing: blocks on a fixed 0–100% scale, and a table whose
columns line up and whose times tell samples apart."""

from __future__ import annotations

from maider_tui.ops.validate_table import sample_stamps, utilisation_table
from maider_tui.ui.widgets.util_chart import LEVELS, spark

T0 = 1_795_351_260.0  # 12:41:00 UTC


def test_spark_scales_zero_to_a_hundred_not_between_the_gpus_own_min_and_max():
    drawn = spark([91.0, 95.0, 100.0], width=10)
    assert drawn == "▇██"  # 91% is near the top: not the lowest bar because it is this GPU's minimum
    assert spark([50.0], width=10) == LEVELS[4]
    assert spark([0.0, 3.0, 100.0], width=10) == " ▁█"  # idle is blank; any work draws at least a sliver


def test_spark_puts_several_samples_in_one_cell_by_their_peak_when_narrow():
    values = [10.0, 100.0, 10.0, 10.0, 50.0, 10.0]
    assert spark(values, width=3) == "█" + LEVELS[1] + LEVELS[4]
    assert len(spark([80.0] * 200, width=40)) == 40


def test_table_header_lines_up_with_its_rows():
    rows = [(T0 + 2 * i, (85.0 + i, 100.0 - i)) for i in range(3)]
    lines = utilisation_table(rows)
    assert lines[0].index("|") == lines[2].index("|")  # "Time" is as wide as "12:41:00"
    bars = [[i for i, ch in enumerate(line) if ch == "|"] for line in (lines[0], *lines[2:])]
    assert all(b == bars[0] for b in bars)
    assert len(lines[1]) == len(lines[0])
    assert lines[2].startswith("12:41:00 |") and lines[0].startswith("Time     |")


def test_samples_under_a_second_apart_each_get_their_own_time():
    times = [T0 + 0.1 * i for i in range(14)]  # the demo's 20x cloud: 2 s samples come 0.1 s apart
    stamps = sample_stamps(times)
    assert len(set(stamps)) == 14 and stamps[0] == "12:41:00.0" and stamps[13] == "12:41:01.3"
    assert sample_stamps([T0, T0 + 2, T0 + 4]) == ["12:41:00", "12:41:02", "12:41:04"]
    lines = utilisation_table([(t, (90.0,)) for t in times])
    assert len({line.split("|")[0] for line in lines[2:]}) == 14
    assert lines[0].index("|") == lines[2].index("|")


def test_markdown_table_keeps_its_shape():
    lines = utilisation_table([(T0, (85.0, 80.0))], markdown=True)
    assert lines == ["| Time | GPU0 | GPU1 | Avg |", "|---|---:|---:|---:|", "| 12:41:00 | 85% | 80% | 82% |"]
