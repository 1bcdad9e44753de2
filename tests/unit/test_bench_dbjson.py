"""The seed's benchmark-database.json: import, export, a lossless round trip, and malformed files."""

from __future__ import annotations

import copy
import json

import pytest

from maider_tui.bench.aggregate import comparison_rows
from maider_tui.bench.dbjson import DatabaseFormatError, export_database, import_database, parse_database
from maider_tui.store import BenchResultRecord, BenchRunRecord, open_store

SEED_ENTRY = {
    "id": "0b7c2a5e-3f1d-4a8e-9c55-8d1f2e6a7b90",
    "timestamp": "2025-01-15T10:30:00.123456",
    "gpu_type": "g1-gpu-rtx6000-2",
    "gpu_count": 2,
    "vram_per_gpu": 48,
    "total_vram": 96,
    "hourly_cost": 3.00,
    "model_id": "Qwen/Qwen2.5-72B-Instruct-AWQ",
    "model_category": "70b",
    "vllm_config": {"tensor_parallel_size": 2, "max_model_len": 32768, "gpu_memory_utilization": 0.90},
    "results_by_category": {"coding": {"avg_tokens_per_sec": 45.3},
                            "context_heavy": {"avg_tokens_per_sec": 42.1},
                            "reasoning": {"avg_tokens_per_sec": 43.7}},
    "summary": {"avg_tokens_per_sec": 43.7, "cost_per_1k_tokens": 0.0242, "tests_passed": 12,
                "tests_total": 12},
    "tests": [{"name": "Simple function", "category": "coding", "tokens_per_sec": 46.0, "success": True}],
}


def database(*entries: dict) -> dict:
    return {"version": "1.0", "benchmarks": list(entries)}


def second_entry() -> dict:
    entry = copy.deepcopy(SEED_ENTRY)
    entry.update(id="run-2", timestamp="2025-02-01T08:00:00+00:00", gpu_type="g2-gpu-rtx4000a2-s",
                 hourly_cost=1.04, notes="kept as is")  # an unknown key must survive too
    return entry


@pytest.fixture
def store(tmp_path):
    with open_store(tmp_path / "state.db") as s:
        yield s


def write(tmp_path, data, name="db.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=2))
    return path


def test_import_then_export_gives_the_same_json(store, tmp_path):
    original = database(SEED_ENTRY, second_entry())
    report = import_database(write(tmp_path, original), store)
    assert report.imported == 2 and report.skipped == 0
    assert export_database(store, tmp_path / "out.json") == 2
    assert json.loads((tmp_path / "out.json").read_text()) == original


def test_imported_runs_are_stored_as_runs_and_compare(store, tmp_path):
    import_database(write(tmp_path, database(SEED_ENTRY)), store)
    (run,) = store.bench_runs()
    assert run.source == "imported" and run.hourly_usd == 3.0 and run.gpu_count == 2
    assert run.timestamp == pytest.approx(1736937000.123456)  # naive times are read as UTC
    (row,) = comparison_rows(store.bench_runs(), task_category="coding")
    assert row.tokens_per_sec == 45.3 and row.ttft_p50_s is None and row.confidence == "Low"


def test_duplicates_by_id_are_skipped(store, tmp_path):
    path = write(tmp_path, database(SEED_ENTRY, SEED_ENTRY))
    first = import_database(path, store)
    assert (first.imported, first.skipped) == (1, 1)  # the repeat within the file
    again = import_database(path, store)
    assert (again.imported, again.skipped) == (0, 2)  # both already in the store
    assert len(store.bench_runs()) == 1


def test_measured_runs_export_with_their_tests(store, tmp_path):
    run = BenchRunRecord(id="m1", timestamp=1_795_351_260.5, gpu_type="g2-gpu-rtx4000a1-s", vram_per_gpu=20.0,
                         total_vram=20.0, hourly_usd=0.52, model_id="m", model_category="7b",
                         summary={"avg_tokens_per_sec": 70.0})
    result = BenchResultRecord("m1", "coding_simple_function", "coding", True, 0.05, 70.0, 100, 1.5)
    store.add_bench_run(run, [result])
    export_database(store, tmp_path / "out.json")
    (entry,) = json.loads((tmp_path / "out.json").read_text())["benchmarks"]
    assert entry["timestamp"] == "2026-11-22T12:41:00.500000+00:00" and entry["hourly_cost"] == 0.52
    assert entry["vram_per_gpu"] == 20 and entry["tests"][0]["prompt_id"] == "coding_simple_function"
    # And back again into another store: the same entry.
    with open_store(tmp_path / "other.db") as other:
        import_database(tmp_path / "out.json", other)
        export_database(other, tmp_path / "again.json")
    assert json.loads((tmp_path / "again.json").read_text())["benchmarks"] == [entry]


def broken(path: str, value) -> dict:
    data = database(SEED_ENTRY, second_entry(), copy.deepcopy(SEED_ENTRY), copy.deepcopy(SEED_ENTRY))
    data["benchmarks"][3]["id"] = "run-4"
    target = data["benchmarks"][3]
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[key]
    if value is KeyError:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value
    return data


@pytest.mark.parametrize(("field", "value", "message"), [
    ("gpu_count", "two", 'benchmarks[3].gpu_count: expected a whole number, got "two"'),
    ("hourly_cost", None, "benchmarks[3].hourly_cost: expected a number, got null"),
    ("timestamp", "yesterday", "benchmarks[3].timestamp: not an ISO timestamp"),
    ("model_id", KeyError, "benchmarks[3].model_id: missing"),
    ("summary.tests_passed", "12", 'benchmarks[3].summary.tests_passed: expected a number, got "12"'),
    ("tests", {}, "benchmarks[3].tests: expected a list"),
    ("gpu_count", True, "benchmarks[3].gpu_count: expected a whole number, got true"),
])
def test_a_malformed_entry_says_where_and_imports_nothing(store, tmp_path, field, value, message):
    path = write(tmp_path, broken(field, value))
    with pytest.raises(DatabaseFormatError) as caught:
        import_database(path, store)
    assert str(caught.value).startswith(message)
    assert store.bench_runs() == []


def test_broken_json_gives_line_and_column(store, tmp_path):
    text = json.dumps(database(SEED_ENTRY), indent=2).replace('"gpu_count": 2,', '"gpu_count": 2,,')
    with pytest.raises(DatabaseFormatError) as caught:
        import_database(write(tmp_path, text), store)
    assert caught.value.where == "line 8, column 22"  # the second comma
    assert store.bench_runs() == []


@pytest.mark.parametrize(("data", "where"), [
    ([], "top level"), ({"version": "2.0", "benchmarks": []}, "version"),
    ({"version": "1.0", "benchmarks": {}}, "benchmarks"),
    ({"version": "1.0", "benchmarks": [3]}, "benchmarks[0]"),
])
def test_wrong_shapes(data, where):
    with pytest.raises(DatabaseFormatError) as caught:
        parse_database(json.dumps(data))
    assert caught.value.where == where


def test_a_store_failure_midway_undoes_the_import(store, tmp_path, monkeypatch):
    calls = []
    original = store.add_bench_run

    def flaky(run, results):
        calls.append(run.id)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return original(run, results)

    monkeypatch.setattr(store, "add_bench_run", flaky)
    with pytest.raises(RuntimeError):
        import_database(write(tmp_path, database(SEED_ENTRY, second_entry())), store)
    assert store.bench_runs() == []


def test_export_to_a_missing_folder_fails_cleanly(store, tmp_path):
    with pytest.raises(OSError):
        export_database(store, tmp_path / "nope" / "db.json")
    assert not (tmp_path / "nope").exists()
