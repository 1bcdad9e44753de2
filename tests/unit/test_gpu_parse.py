"""nvidia-smi csv parsing and the telemetry reader, on real captured outputs and on hand-made edge cases."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest

from maider_tui.clock import ManualClock
from maider_tui.remote.gpu import (
    QUERY_FIELDS,
    GpuSample,
    TelemetryReader,
    _number,
    nvidia_smi_command,
    parse_gpu_csv,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


# ---- the three csv forms --------------------------------------------------------------------------

HEADER = ("index, name, memory.used [MiB], memory.total [MiB], utilization.gpu [%], temperature.gpu, "
          "power.draw [W]")
WITH_HEADER = HEADER + """
0, NVIDIA RTX 4000 Ada Generation, 18234 MiB, 20475 MiB, 97 %, 71, 128.45 W
1, NVIDIA RTX 4000 Ada Generation, 17990 MiB, 20475 MiB, 95 %, 69, 126.10 W
"""

NOHEADER_UNITS = """\
0, Quadro RTX 6000, 22001 MiB, 24576 MiB, 88 %, 80, 231.77 W
"""

NOHEADER_NOUNITS = """\
0, Quadro RTX 6000, 22001, 24576, 88, 80, 231.77
"""


def test_csv_with_header_and_units():
    gpus = parse_gpu_csv(WITH_HEADER)
    assert [g.index for g in gpus] == [0, 1]
    first = gpus[0]
    assert first == GpuSample(0, "NVIDIA RTX 4000 Ada Generation", 18234, 20475, 97, 71, 128.45)
    assert first.memory_used_gb == pytest.approx(18234 / 1024)
    assert first.memory_total_gb == pytest.approx(20475 / 1024)
    assert first.memory_pct == pytest.approx(100 * 18234 / 20475)


def test_noheader_with_units_and_noheader_nounits_agree():
    with_units = parse_gpu_csv(NOHEADER_UNITS)
    without_units = parse_gpu_csv(NOHEADER_NOUNITS)
    assert with_units == without_units
    assert with_units[0] == GpuSample(0, "Quadro RTX 6000", 22001, 24576, 88, 80, 231.77)


def test_noheader_follows_the_given_field_order():
    text = "65.5, 3, 1024, NVIDIA A40\n"
    fields = ["power.draw", "index", "memory.used", "name"]
    (gpu,) = parse_gpu_csv(text, fields=fields)
    assert (gpu.index, gpu.name, gpu.memory_used_mib, gpu.power_w) == (3, "NVIDIA A40", 1024, 65.5)
    assert gpu.memory_total_mib is None and gpu.memory_pct is None


def test_header_columns_map_with_or_without_unit_suffix_in_any_order():
    text = ("power.draw, name, index, memory.total [MiB], memory.used\n"
            "70.12 W, Tesla T4, 0, 15360 MiB, 0 MiB\n")
    (gpu,) = parse_gpu_csv(text)
    assert (gpu.index, gpu.name, gpu.power_w, gpu.memory_total_mib, gpu.memory_used_mib) == (
        0, "Tesla T4", 70.12, 15360, 0)


# ---- unavailable values, whitespace, line endings, junk --------------------------------------------

@pytest.mark.parametrize("missing", ["[N/A]", "[Not Supported]", "N/A", "[Unknown Error]", "",
                                     "[Requested functionality has been deprecated]"])
def test_unavailable_values_become_none(missing):
    (gpu,) = parse_gpu_csv(f"0, Tesla K80, 100, 11441, {missing}, 40, {missing}\n")
    assert gpu.utilization_pct is None and gpu.power_w is None
    assert gpu.temperature_c == 40 and gpu.memory_used_mib == 100


def test_blank_lines_crlf_and_extra_spaces():
    text = ("\r\n  0 ,  NVIDIA L4 ,  300 ,  23034 ,  3 ,  41 ,  16.2  \r\n\r\n\n"
            "1,NVIDIA L4,12,23034,0,38,11.9\r\n")
    gpus = parse_gpu_csv(text)
    assert [(g.index, g.name, g.memory_used_mib) for g in gpus] == [
        (0, "NVIDIA L4", 300), (1, "NVIDIA L4", 12)]


def test_repeated_headers_of_a_looping_csv_are_skipped():
    rows = ["0, Tesla V100-SXM2-16GB, 300 MiB, 16160 MiB, 0 %, 35, 41.00 W",
            "1, Tesla V100-SXM2-16GB, 310 MiB, 16160 MiB, 5 %, 36, 43.50 W"]
    text = "\n".join([HEADER, *rows, HEADER, *rows]) + "\n"
    gpus = parse_gpu_csv(text)
    assert [g.index for g in gpus] == [0, 1, 0, 1]
    assert all(g.name == "Tesla V100-SXM2-16GB" for g in gpus)


def test_malformed_lines_are_skipped_not_fatal():
    text = (
        "0, NVIDIA A10, 100, 23028, 1, 30, 20\n"
        "this is not csv at all\n"
        "1, NVIDIA A10, 100\n"                      # too few columns (a torn line)
        "x, NVIDIA A10, 100, 23028, 1, 30, 20\n"    # index is not a number
        "-1, NVIDIA A10, 100, 23028, 1, 30, 20\n"   # nor a valid index
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n"
        "2, NVIDIA A10, 200, 23028, 5, 33, 25\n"
    )
    assert [g.index for g in parse_gpu_csv(text)] == [0, 2]


def test_names_with_spaces_and_no_name_column():
    (gpu,) = parse_gpu_csv("0, 4096\n", fields=["index", "memory.used"])
    assert gpu.name == "" and gpu.memory_used_mib == 4096
    (named,) = parse_gpu_csv("0, NVIDIA GeForce RTX 3090 Ti\n", fields=["index", "name"])
    assert named.name == "NVIDIA GeForce RTX 3090 Ti"


def test_power_falls_back_to_instant_reading_when_power_draw_is_missing():
    text = "index, power.draw [W], power.draw.instant [W]\n0, [N/A], 61.20 W\n"
    assert parse_gpu_csv(text)[0].power_w == 61.2


def test_memory_helpers_are_none_when_unknown_or_zero():
    assert GpuSample(0, "x", memory_used_mib=10, memory_total_mib=0).memory_pct is None
    assert GpuSample(0, "x").memory_used_gb is None and GpuSample(0, "x").memory_total_gb is None
    assert GpuSample(0, "x", 2048, 8192).memory_used_gb == 2.0


@pytest.mark.parametrize(("cell", "value"), [
    ("18003", 18003.0), (" 103.21 ", 103.21), ("45 %", 45.0), ("-3", -3.0), ("1e3", 1000.0),
    ("5.", None), (".5", None), ("1_0", None), ("²", None), ("nan", None), ("[N/A]", None), ("", None),
])
def test_numbers_plain_digits_take_a_shortcut_that_agrees_with_the_pattern(cell, value):
    assert _number(cell) == value


def test_empty_input():
    assert parse_gpu_csv("") == [] and parse_gpu_csv("\n\r\n") == []


# ---- an 8-GPU box -----------------------------------------------------------------------------------

# Hand-made (not captured): the shape our own command prints on an 8x A100 VM, busy on 4 GPUs.
EIGHT_GPUS = "".join(
    f"{i}, NVIDIA A100-SXM4-80GB, {70000 + i if i < 4 else 4}, 81920, {99 if i < 4 else 0}, {60 + i}, "
    f"{380.5 if i < 4 else 61.0}\n"
    for i in range(8)
)


def test_eight_gpu_sample():
    gpus = parse_gpu_csv(EIGHT_GPUS)
    assert [g.index for g in gpus] == list(range(8))
    assert {g.name for g in gpus} == {"NVIDIA A100-SXM4-80GB"}
    assert [g.utilization_pct for g in gpus] == [99.0] * 4 + [0.0] * 4
    assert gpus[7].memory_total_gb == 80.0
    assert gpus[3].memory_used_mib == 70003 and gpus[5].power_w == 61.0


# ---- real outputs from public sources ---------------------------------------------------------------

def test_real_tesla_p100_csv_with_header_and_nounits():
    # netdata/netdata, src/go/plugin/go.d/modules/nvidia_smi/testdata/tesla-p100.csv
    # (commit 59522eb7b30226beddac1d7dad6598a330dc3b8a): `--format=csv,nounits`, so the header keeps
    # its `[MiB]` units while values have none; no index or memory.total column; fan.speed is [N/A].
    (gpu,) = parse_gpu_csv(fixture("nvidia_smi_tesla_p100_csv_nounits.csv"))
    assert gpu == GpuSample(index=0, name="Tesla P100-PCIE-16GB", memory_used_mib=0, memory_total_mib=None,
                            utilization_pct=0, temperature_c=37, power_w=28.16)


def test_real_l40s_full_query_with_every_field():
    # utkuozdemir/nvidia_gpu_exporter, internal/captures/linux-x86_64__nvidia-l40s__595.80.txt
    # (commit 0eee0d3187e2f014f1ba6736fd729a195e13a8c8), section "load :: query-gpu": all 202 fields of
    # driver 595.80 under load, `--format=csv`, with [N/A], N/A, an empty cell, a timestamp with spaces
    # and "[Requested functionality has been deprecated]".
    (gpu,) = parse_gpu_csv(fixture("nvidia_smi_l40s_full_query.csv"))
    assert gpu == GpuSample(index=0, name="NVIDIA L40S", memory_used_mib=1235, memory_total_mib=46068,
                            utilization_pct=9, temperature_c=54, power_w=110.23)


def test_real_gtx770_noheader_not_supported_with_gpu_name_alias():
    # tutulino/Megaminer issue #235: GeForce GTX 770, driver reports [Not Supported] for most fields.
    fields = ("gpu_name,utilization.gpu,utilization.memory,temperature.gpu,power.draw,power.limit,"
              "fan.speed,pstate,clocks.current.graphics,clocks.current.memory,power.max_limit,"
              "power.default_limit").split(",")
    (gpu,) = parse_gpu_csv(fixture("nvidia_smi_gtx770_noheader.csv"), fields=fields)
    assert gpu == GpuSample(index=0, name="GeForce GTX 770", temperature_c=52)


@pytest.mark.parametrize("name", ["nvidia_smi_i3pystatus_noheader_nounits.csv",
                                  "nvidia_smi_i3pystatus_noheader_nounits_old_driver.csv"])
def test_real_noheader_nounits_new_and_old_driver(name):
    # enkore/i3pystatus pull request #776: the same query printed [N/A] on a new driver where an older
    # one printed [Not Supported] (fan.speed column).
    fields = ["memory.total", "memory.free", "memory.used", "temperature.gpu", "fan.speed",
              "utilization.gpu", "utilization.memory"]
    (gpu,) = parse_gpu_csv(fixture(name), fields=fields)
    assert gpu == GpuSample(index=0, name="", memory_used_mib=0, memory_total_mib=2004,
                            utilization_pct=0, temperature_c=44)


def test_real_header_with_not_supported_value():
    # Lurkki14/tuxclocker issue #15 (GeForce GTX 650): `--query-gpu=utilization.gpu --format=csv`.
    (gpu,) = parse_gpu_csv(fixture("nvidia_smi_gt650_header_not_supported.csv"))
    assert gpu.index == 0 and gpu.utilization_pct is None


# ---- the command ------------------------------------------------------------------------------------

def test_nvidia_smi_command():
    assert nvidia_smi_command() == (
        "nvidia-smi --query-gpu=index,name,memory.used,memory.total,utilization.gpu,temperature.gpu,"
        "power.draw --format=csv,noheader,nounits -lms 1000"
    )
    assert nvidia_smi_command(500, ["index", "name"]).endswith("--query-gpu=index,name "
                                                               "--format=csv,noheader,nounits -lms 500")
    assert QUERY_FIELDS[0] == "index"


# ---- the telemetry reader ---------------------------------------------------------------------------

class FakeStream:
    """Stands in for the SSH layer's stream(): yields chunks and moves the manual clock between them."""

    def __init__(self, chunks: Iterable[str | float], clock: ManualClock) -> None:
        self.chunks = list(chunks)
        self.clock = clock

    def __aiter__(self) -> AsyncIterator[str]:
        return self._run()

    async def _run(self) -> AsyncIterator[str]:
        for chunk in self.chunks:
            if isinstance(chunk, float):
                self.clock.advance(chunk)  # a float means "a tick of time passes"
            else:
                yield chunk


def row(index: int, used: int = 1000) -> str:
    return f"{index}, NVIDIA A100-SXM4-80GB, {used}, 81920, 50, 60, 250.0\n"


async def collect(reader: TelemetryReader):
    return [snapshot async for snapshot in reader]


async def test_reader_groups_by_gpu_count_and_stamps_the_first_row(clock: ManualClock):
    start = clock.now()
    stream = FakeStream([row(0), row(1), 1.0, row(0, 2000), row(1, 2100), 1.0, row(0, 3000)], clock)
    snapshots = await collect(TelemetryReader(stream, gpu_count=2, clock=clock))
    assert [s.timestamp - start for s in snapshots] == [0.0, 1.0, 2.0]
    assert [[g.index for g in s.gpus] for s in snapshots] == [[0, 1], [0, 1], [0]]  # last one flushed at end
    assert snapshots[1].memory_used_mib == 4100 and snapshots[1].memory_total_mib == 2 * 81920


async def test_reader_without_gpu_count_splits_when_the_index_wraps(clock: ManualClock):
    stream = FakeStream([row(0), row(1), row(2), 1.0, row(0), row(1), row(2)], clock)
    snapshots = await collect(TelemetryReader(stream, clock=clock))
    assert [len(s.gpus) for s in snapshots] == [3, 3]
    assert snapshots[1].timestamp - snapshots[0].timestamp == 1.0


async def test_reader_tolerates_chunks_headers_junk_and_crlf(clock: ManualClock):
    stream = FakeStream([
        HEADER + "\r\n",
        row(0) + row(1),            # one SSH read carrying two lines
        "garbage\r\n", "\r\n",
        row(0).rstrip("\n"),        # a line without its ending
        row(1) + "\r\n",
    ], clock)
    snapshots = await collect(TelemetryReader(stream, gpu_count=2, clock=clock))
    assert [[g.index for g in s.gpus] for s in snapshots] == [[0, 1], [0, 1]]


async def test_reader_ignores_gpus_beyond_the_known_count(clock: ManualClock):
    stream = FakeStream([row(0), row(1), row(0), row(1)], clock)
    snapshots = await collect(TelemetryReader(stream, gpu_count=1, clock=clock))
    assert [[g.index for g in s.gpus] for s in snapshots] == [[0], [0]]


async def test_reader_on_an_empty_stream(clock: ManualClock):
    assert await collect(TelemetryReader(FakeStream([], clock), clock=clock)) == []
