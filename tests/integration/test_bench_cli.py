"""`maider-tui bench ...` and `maider-tui recommend` with a store in a temporary home."""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json

import pytest

from maider_tui import catalog
from maider_tui.commands.bench import add_bench_parsers, bench_session, run_bench, run_recommend
from maider_tui.clock import SystemClock
from maider_tui.ops.events import EventRecorder
from maider_tui.ops.provision import LaunchPlan, provision
from maider_tui.settings import Settings
from maider_tui.sim.faults import SimFaults
from maider_tui.sim.vllm_behaviour import config_from_args, startup_outcome
from maider_tui.sim.vllm_server import SimVllmServer
from maider_tui.store import BenchRunRecord, SessionRecord
from tests.integration.simfix import sim_limits

DAY = 86_400.0
A1, A2, R2 = "g2-gpu-rtx4000a1-s", "g2-gpu-rtx4000a2-s", "g1-gpu-rtx6000-2"
M7, M32 = "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ"
M72 = "Qwen/Qwen2.5-72B-Instruct-AWQ"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="maider-tui")
    add_bench_parsers(parser.add_subparsers(dest="command"))
    return parser.parse_args(list(argv))


def add_runs(context) -> None:
    now = context.clock.now()
    for gpu, model, cat, tok_s, hourly, n in ((A1, M7, "7b", 70.0, 0.52, 3), (A2, M32, "30b", 38.0, 1.04, 1),
                                              (R2, M72, "70b", 45.0, 3.0, 2)):
        for i in range(n):
            context.store.add_bench_run(BenchRunRecord(
                timestamp=now - (i + 1) * DAY, gpu_type=gpu, gpu_count=1, total_vram=20.0, hourly_usd=hourly,
                model_id=model, model_category=cat,
                results_by_category={"coding": {"avg_tokens_per_sec": tok_s + 5}},
                summary={"avg_tokens_per_sec": tok_s, "p50_ttft_s": 0.1, "tests_passed": 12,
                         "tests_total": 12}), [])


@pytest.fixture
def context(make_context):
    ctx = make_context()
    add_runs(ctx)
    return ctx


def test_compare_table_sorted_and_filtered(context, capsys):
    assert run_bench(parse("bench", "compare"), context) == 0
    out = capsys.readouterr().out
    assert out.index(A1) < out.index(A2) < out.index(R2)  # efficiency 134.6, 36.5, 15.0
    assert "High" in out and "$0.0021" in out  # 0.52 / 3600 / 70 * 1000
    args = parse("bench", "compare", "--sort-by", "tokens_per_sec", "--model-category", "70b")
    assert run_bench(args, context) == 0
    out = capsys.readouterr().out
    assert R2 in out and A1 not in out


@pytest.mark.parametrize("fmt", ["json", "csv", "markdown"])
def test_compare_formats_to_stdout_and_file(context, capsys, tmp_path, fmt):
    assert run_bench(parse("bench", "compare", "--format", fmt, "--task-category", "coding"), context) == 0
    text = capsys.readouterr().out
    if fmt == "json":
        assert [r["tokens_per_sec"] for r in json.loads(text)] == [75.0, 43.0, 50.0]
    elif fmt == "csv":
        assert len(list(csv.DictReader(io.StringIO(text)))) == 3
    else:
        assert text.startswith("| GPU type |")
    target = tmp_path / f"out.{fmt}"
    assert run_bench(parse("bench", "compare", "-f", fmt, "-o", str(target)), context) == 0
    assert "Wrote 3 rows" in capsys.readouterr().out and target.exists()


def test_compare_to_a_bad_path_fails_on_stderr(context, capsys, tmp_path):
    args = parse("bench", "compare", "-f", "csv", "-o", str(tmp_path / "no" / "x.csv"))
    assert run_bench(args, context) == 1
    captured = capsys.readouterr()
    assert "Cannot write" in captured.err and captured.out == ""
    assert run_bench(parse("bench", "compare", "-o", "x.txt"), context) == 1


def test_status_shows_coverage(context, capsys):
    assert run_bench(parse("bench", "status"), context) == 0
    out = capsys.readouterr().out
    assert "Benchmarks: 6 runs" in out and "GPU types tested: 3/7" in out
    assert "Missing GPU types:" in out and "g1-gpu-rtx6000-1" in out and "Benchmark next:" in out


def test_export_then_import_into_another_home(context, make_context, capsys, tmp_path):
    path = tmp_path / "benchmark-database.json"
    assert run_bench(parse("bench", "export", str(path)), context) == 0
    assert "Exported 6 runs" in capsys.readouterr().out
    assert json.loads(path.read_text())["version"] == "1.0"
    assert run_bench(parse("bench", "import", str(path)), context) == 0
    out = capsys.readouterr().out
    assert "Imported 0 runs" in out and "6 already there, skipped" in out
    for run in context.store.bench_runs():
        context.store.delete_bench_run(run.id)
    assert run_bench(parse("bench", "import", str(path)), context) == 0
    assert "Imported 6 runs" in capsys.readouterr().out and len(context.store.bench_runs()) == 6


def test_import_of_a_malformed_file_imports_nothing(make_context, capsys, tmp_path):
    context = make_context()
    path = tmp_path / "bad.json"
    path.write_text('{"version": "1.0", "benchmarks": [{"id": "x", "gpu_count": "two"}]}')
    assert run_bench(parse("bench", "import", str(path)), context) == 1
    err = capsys.readouterr().err
    assert "benchmarks[0].timestamp: missing" in err and "nothing was imported" in err
    assert context.store.bench_runs() == []
    assert run_bench(parse("bench", "import", str(tmp_path / "none.json")), context) == 1
    assert "Cannot read" in capsys.readouterr().err


def test_recommend_json_and_table(context, capsys):
    args = parse("recommend", "--task", "coding", "--budget", "none", "--size", "balanced",
                 "--format", "json")
    assert run_recommend(args, context) == 0
    recs = json.loads(capsys.readouterr().out)
    assert [(r["gpu_type"], r["confidence"]) for r in recs] == [(A1, "High"), (R2, "Medium"), (A2, "Low")]
    assert recs[0]["tokens_per_sec"] == 75.0
    assert run_recommend(parse("recommend", "--budget", "over-3"), context) == 0
    out = capsys.readouterr().out
    assert "1. g1-gpu-rtx6000-3" in out or "1. g1-gpu-rtx6000-4" in out
    assert "(Estimated, no run yet)" in out and "roofline" in out


def test_bench_run_through_an_endpoint(make_context, capsys):
    context = make_context()  # a frozen clock: it stamps the run, real time measures it
    context.store.add_session(SessionRecord(name="s1", state="ready", gpu_type=A1, model=M7, hourly_usd=0.52))

    async def scenario():
        config = config_from_args([M7, "--served-model-name", "coder", "--max-model-len", "8192"])
        outcome = startup_outcome(config, catalog.gpu_type(A1), catalog.model(M7), faults=SimFaults())
        server = SimVllmServer(config, outcome)
        server.rate_override, server.ttft_override = 500.0, 0.02
        port = await server.start()
        try:
            return await bench_session(context, "s1", category="reasoning",
                                       endpoint=f"http://127.0.0.1:{port}/v1", max_tokens_scale=0.1)
        finally:
            await server.stop()

    assert asyncio.run(scenario()) == 0
    out = capsys.readouterr().out
    assert "[4/4] System design" in out and "4/4 tests passed" in out
    (run,) = context.store.bench_runs()
    assert run.session == "s1" and set(run.results_by_category) == {"reasoning"}
    assert run.timestamp == context.clock.now()
    assert run.summary["avg_tokens_per_sec"] == pytest.approx(500.0, rel=0.12)  # busy cores measure slower


async def test_bench_run_attaches_to_a_sim_session_over_ssh(sim_context, capsys):
    context = sim_context()
    context.clock = SystemClock()
    context.cloud_speed = 1000
    gpu = catalog.gpu_type(A1)
    limits = sim_limits(1000)
    handle = await provision(LaunchPlan(region=gpu.regions[0], gpu_type=gpu,
                                        config=catalog.fit(M7, gpu).to_vllm_config()),
                             provider=context.provider, store=context.store, paths=context.paths,
                             settings=Settings(), clock=SystemClock(), emit=EventRecorder(), hf_token=None,
                             limits=limits)
    await handle.close()  # bench run reconnects by itself, as after a restart
    code = await bench_session(context, handle.name, category="coding", max_tokens_scale=0.05)
    assert code == 0, capsys.readouterr().err
    (run,) = context.store.bench_runs()
    assert run.session == handle.name and run.gpu_type == A1 and run.model_id == M7
    assert run.summary["tests_total"] == 4 and run.summary["avg_tokens_per_sec"] > 0
    assert await bench_session(context, "ghost") == 1
    assert "Cannot connect to ghost" in capsys.readouterr().err


def test_bench_run_without_a_way_in_says_so(make_context, capsys):
    context = make_context()
    args = parse("bench", "run", "s1", "--category", "coding")
    assert (args.session, args.category, args.endpoint, args.sweep) == ("s1", "coding", None, False)
    assert run_bench(args, context) == 1  # no token, no --endpoint
    assert "No Linode token" in capsys.readouterr().err
    assert run_bench(parse("bench", "run", "ghost", "--endpoint", "http://127.0.0.1:9/v1"), context) == 1
    assert "no session named 'ghost'" in capsys.readouterr().err
    assert context.store.bench_runs() == []


@pytest.mark.parametrize("spelling", ["context-heavy", "context_heavy", "Context-Heavy"])
def test_every_command_takes_the_task_spelt_either_way(context, capsys, spelling):
    now = context.clock.now()
    context.store.add_bench_run(BenchRunRecord(
        timestamp=now - DAY, gpu_type=A2, gpu_count=1, total_vram=20.0, hourly_usd=1.04, model_id=M32,
        model_category="30b", results_by_category={"context_heavy": {"avg_tokens_per_sec": 33.0}},
        summary={"avg_tokens_per_sec": 38.0, "p50_ttft_s": 0.1, "tests_passed": 12, "tests_total": 12}), [])
    assert run_bench(parse("bench", "compare", "-f", "json", "-t", spelling), context) == 0
    assert [r["tokens_per_sec"] for r in json.loads(capsys.readouterr().out)] == [33.0]
    assert parse("bench", "run", "s", "--category", spelling).category == "context-heavy"
    args = parse("recommend", "--task", spelling, "--format", "json")
    assert args.task == "context-heavy"
    assert run_recommend(args, context) == 0
    assert M32 in capsys.readouterr().out


def test_a_task_typo_names_the_spellings_to_use(capsys):
    with pytest.raises(SystemExit):
        parse("bench", "compare", "-t", "contexty")
    err = capsys.readouterr().err
    assert "'contexty' is not a task category: use one of coding, context-heavy, reasoning" in err
