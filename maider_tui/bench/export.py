"""The comparison table as CSV, JSON or Markdown, as text or written to a file the user names."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

from maider_tui.bench.aggregate import ComparisonRow
from maider_tui.bench.dbjson import write_atomically

FORMATS = ("csv", "json", "markdown")
# (field, header) in table order; the Markdown and CSV columns.
COLUMNS = (
    ("gpu_type", "GPU type"), ("gpu_count", "GPUs"), ("total_vram", "VRAM (GB)"), ("model_id", "Model"),
    ("model_category", "Category"), ("tokens_per_sec", "Tokens/s"), ("ttft_p50_s", "TTFT p50 (s)"),
    ("cost_per_1k_tokens", "Cost/1K ($)"), ("hourly_usd", "$/h"), ("cost_efficiency", "Efficiency"),
    ("peak_tok_s", "Peak tokens/s"), ("peak_concurrency", "Peak at (parallel)"), ("runs", "Runs"), ("confidence", "Confidence"), ("tests_passed", "Passed"), ("tests_total", "Tests"),
)


class ExportError(Exception):
    """The export could not be written; the message says why and nothing was written."""


def _cell(name: str, value: object) -> str:
    if value is None:
        return ""
    if name == "cost_per_1k_tokens":
        return f"{value:.4f}"
    if name in ("tokens_per_sec", "cost_efficiency", "total_vram", "peak_tok_s"):
        return f"{value:.1f}"
    if name in ("hourly_usd",):
        return f"{value:.2f}"
    if name == "ttft_p50_s":
        return f"{value:.3f}"
    return str(value)


def render_csv(rows: Sequence[ComparisonRow]) -> str:
    """CSV with a header row; raw numbers (full precision) for spreadsheets."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([name for name, _ in COLUMNS])
    for row in rows:
        values = row.as_dict()
        writer.writerow(["" if values[name] is None else values[name] for name, _ in COLUMNS])
    return out.getvalue()


def render_json(rows: Sequence[ComparisonRow]) -> str:
    """A JSON list of row objects, full precision."""
    return json.dumps([row.as_dict() for row in rows], indent=2) + "\n"


def render_markdown(rows: Sequence[ComparisonRow]) -> str:
    """A GitHub-flavoured Markdown table, numbers rounded as on screen."""
    lines = ["| " + " | ".join(h for _, h in COLUMNS) + " |",
             "|" + "|".join("---:" if n not in ("gpu_type", "model_id", "model_category", "confidence")
                            else "---" for n, _ in COLUMNS) + "|"]
    for row in rows:
        values = row.as_dict()
        lines.append("| " + " | ".join(_cell(n, values[n]).replace("|", "\\|") for n, _ in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def render(rows: Sequence[ComparisonRow], fmt: str) -> str:
    """Rows in one of FORMATS; ValueError for another."""
    renderers = {"csv": render_csv, "json": render_json, "markdown": render_markdown, "md": render_markdown}
    if fmt not in renderers:
        raise ValueError(f"unknown export format {fmt!r}; use {', '.join(FORMATS)}")
    return renderers[fmt](rows)


def export_rows(rows: Sequence[ComparisonRow], path: str | Path, fmt: str) -> Path:
    """Write the rows to `path`; ExportError (nothing written) when the path cannot take it."""
    text = render(rows, fmt)
    target = Path(path).expanduser()
    try:
        write_atomically(target, text)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ExportError(f"Cannot write {target}: {reason}. Choose another path.") from exc
    return target
