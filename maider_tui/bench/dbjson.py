"""The seed's benchmark database (`benchmark-database.json`, version "1.0"): import into the store and
export in the same format, so data moves both ways without loss.

Lossless: what the store has no column for (the original ISO timestamp text, the `tests` list, keys
we do not know) is kept under `summary["_imported"]` and put back on export. A malformed file is
refused whole, with where it breaks: the JSON line and column, or a path such as
`benchmarks[3].gpu_count: expected a number`.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maider_tui.store import BenchResultRecord, BenchRunRecord

if TYPE_CHECKING:
    from maider_tui.store import Store

VERSION = "1.0"
KEPT = "_imported"  # summary key holding what has no column of its own
_NUMBER = (int, float)
# field -> (expected types, words for the error)
_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "id": ((str,), "a string"), "timestamp": ((str,), "an ISO timestamp string"),
    "gpu_type": ((str,), "a string"), "gpu_count": ((int,), "a whole number"),
    "vram_per_gpu": (_NUMBER, "a number"), "total_vram": (_NUMBER, "a number"),
    "hourly_cost": (_NUMBER, "a number"), "model_id": ((str,), "a string"),
    "model_category": ((str,), "a string"), "vllm_config": ((dict,), "an object"),
    "results_by_category": ((dict,), "an object"), "summary": ((dict,), "an object"),
}


class DatabaseFormatError(ValueError):
    """The file is not a benchmark database we can read; `where` says where it breaks."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where, self.problem = where, problem


@dataclass(frozen=True)
class ImportReport:
    imported: int
    skipped: int  # ids already in the store or repeated in the file
    ids: tuple[str, ...]


def parse_database(text: str) -> list[BenchRunRecord]:
    """Every entry of a database file as a run (source "imported"); DatabaseFormatError on the first fault."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise DatabaseFormatError(where, f"not valid JSON ({exc.msg})") from exc
    if not isinstance(data, dict):
        raise DatabaseFormatError("top level", "expected an object with version and benchmarks")
    version = data.get("version")
    if not isinstance(version, str) or version.split(".")[0] != VERSION.split(".")[0]:
        raise DatabaseFormatError("version", f'expected "{VERSION}", got {json.dumps(version)}')
    entries = data.get("benchmarks")
    if not isinstance(entries, list):
        raise DatabaseFormatError("benchmarks", "expected a list")
    return [_entry(e, f"benchmarks[{i}]") for i, e in enumerate(entries)]


def _entry(entry: Any, where: str) -> BenchRunRecord:
    if not isinstance(entry, dict):
        raise DatabaseFormatError(where, "expected an object")
    for name, (types, words) in _FIELDS.items():
        if name not in entry:
            raise DatabaseFormatError(f"{where}.{name}", "missing")
        value = entry[name]
        if isinstance(value, bool) or not isinstance(value, types):
            raise DatabaseFormatError(f"{where}.{name}", f"expected {words}, got {json.dumps(value)}")
    if not entry["id"]:
        raise DatabaseFormatError(f"{where}.id", "must not be empty")
    if entry["gpu_count"] < 1:
        raise DatabaseFormatError(f"{where}.gpu_count", f"expected at least 1, got {entry['gpu_count']}")
    tests = entry.get("tests", [])
    if not isinstance(tests, list):
        raise DatabaseFormatError(f"{where}.tests", f"expected a list, got {json.dumps(tests)}")
    for cat, figures in entry["results_by_category"].items():
        if not isinstance(figures, dict):
            raise DatabaseFormatError(f"{where}.results_by_category.{cat}", "expected an object")
    for key in ("avg_tokens_per_sec", "cost_per_1k_tokens", "tests_passed", "tests_total"):
        value = entry["summary"].get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, _NUMBER)):
            raise DatabaseFormatError(f"{where}.summary.{key}", f"expected a number, got {json.dumps(value)}")
    try:
        stamp = datetime.fromisoformat(entry["timestamp"])
    except ValueError as exc:
        problem = f"not an ISO timestamp: {entry['timestamp']!r}"
        raise DatabaseFormatError(f"{where}.timestamp", problem) from exc
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)  # the seed wrote naive times; UTC is the safe reading
    extra = {k: v for k, v in entry.items() if k not in _FIELDS and k != "tests"}
    kept = {"timestamp": entry["timestamp"], "tests": tests, "extra": extra}
    return BenchRunRecord(
        id=entry["id"], timestamp=stamp.timestamp(), session=None, gpu_type=entry["gpu_type"],
        gpu_count=entry["gpu_count"], vram_per_gpu=float(entry["vram_per_gpu"]),
        total_vram=float(entry["total_vram"]), hourly_usd=float(entry["hourly_cost"]),
        model_id=entry["model_id"], model_category=entry["model_category"], vllm_config=entry["vllm_config"],
        results_by_category=entry["results_by_category"], summary={**entry["summary"], KEPT: kept},
        source="imported")


def import_database(path: str | Path, store: Store) -> ImportReport:
    """Read the file at `path` and add its runs to `store`: all of them or, on any fault, none.

    Runs whose id the store (or an earlier entry of the file) already has are skipped.
    Raises DatabaseFormatError (malformed), OSError (unreadable) or the store's error.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DatabaseFormatError(f"byte {exc.start}", "not UTF-8 text") from exc
    runs = parse_database(text)
    seen: set[str] = set()
    added: list[str] = []
    skipped = 0
    try:
        for run in runs:
            if run.id in seen or store.get_bench_run(run.id) is not None:
                skipped += 1
                continue
            seen.add(run.id)
            store.add_bench_run(run, [])
            added.append(run.id)
    except BaseException:
        for run_id in added:  # one transaction per run: undo the ones already in
            store.delete_bench_run(run_id)
        raise
    return ImportReport(len(added), skipped, tuple(added))


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat()


def _test(result: BenchResultRecord) -> dict[str, Any]:
    return {"prompt_id": result.prompt_id, "category": result.category, "ok": result.ok,
            "ttft_s": result.ttft_s, "tokens_per_sec": result.tokens_per_sec,
            "output_tokens": result.output_tokens, "e2e_s": result.e2e_s, "error": result.error}


def entry_for(run: BenchRunRecord, results: list[BenchResultRecord]) -> dict[str, Any]:
    """One run as an entry of the seed's database; an imported run comes back as it was read."""
    summary = dict(run.summary or {})
    kept = summary.pop(KEPT, None) or {}
    entry: dict[str, Any] = {
        "id": run.id,
        "timestamp": kept.get("timestamp") or _iso(run.timestamp or 0.0),
        "gpu_type": run.gpu_type, "gpu_count": run.gpu_count,
        "vram_per_gpu": _number(run.vram_per_gpu), "total_vram": _number(run.total_vram),
        "hourly_cost": run.hourly_usd, "model_id": run.model_id, "model_category": run.model_category,
        "vllm_config": run.vllm_config, "results_by_category": run.results_by_category, "summary": summary,
        "tests": kept["tests"] if "tests" in kept else [_test(r) for r in results],
    }
    entry.update(kept.get("extra") or {})
    return entry


def export_database(store: Store, path: str | Path) -> int:
    """Write every run of `store` to `path` in the seed's format (oldest first); return how many.

    Written to a temporary file beside the target and renamed, so a failure leaves no half file.
    """
    runs = sorted(store.bench_runs(), key=lambda r: (r.timestamp or 0.0, r.id))
    data = {"version": VERSION, "benchmarks": [entry_for(r, store.bench_results(r.id)) for r in runs]}
    write_atomically(Path(path), json.dumps(data, indent=2) + "\n")
    return len(runs)


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename; OSError says why it could not."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give a file name")
    if not folder.is_dir():
        raise FileNotFoundError(f"the folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
