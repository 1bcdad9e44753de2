"""What the benchmarks screen shows, as text: table cells, chart labels, the coverage pane, the empty state.

Pure functions of the domain's rows and reports (no widgets), so the screen file stays about keys.
"""

from __future__ import annotations

from datetime import datetime, timezone

from rich.text import Text

from ...bench.aggregate import ComparisonRow
from ...bench.coverage import CoverageReport

# (column key, header); the key is the ComparisonRow field a click on the header sorts by. The GPU label
# carries the count ("RTX4000x2"), so the sweep's PEAK takes the width a GPUS column would.
COLUMNS = (
    ("gpu_type", "GPU"), ("total_vram", "VRAM"), ("model_id", "MODEL"),
    ("tokens_per_sec", "TOK/S"), ("ttft_p50_s", "TTFT"), ("cost_per_1k_tokens", "$/1K"),
    ("hourly_usd", "$/H"), ("cost_efficiency", "EFF."), ("peak_tok_s", "PEAK"), ("runs", "RUNS"),
    ("confidence", "CONF"),
)
# Confidence has no order of its own: it follows the run count.
SORT_ALIAS = {"confidence": "runs"}
SORT_CYCLE = ("cost_efficiency", "tokens_per_sec", "cost_per_1k_tokens", "ttft_p50_s", "hourly_usd",
              "peak_tok_s", "runs", "gpu_type", "model_id", "gpu_count", "total_vram")
SORT_WORDS = {"cost_efficiency": "efficiency", "tokens_per_sec": "tok/s", "cost_per_1k_tokens": "$/1K",
              "ttft_p50_s": "TTFT", "hourly_usd": "$/h", "runs": "runs", "gpu_type": "GPU",
              "model_id": "model", "gpu_count": "GPUs", "total_vram": "VRAM", "model_category": "category",
              "last_run": "last run", "peak_tok_s": "peak tok/s"}
TASKS = (None, "coding", "context_heavy", "reasoning")
# Confidence -> theme variable: High green, Medium yellow, Low red, as the issue asks.
CONFIDENCE_VARS = {"High": "success", "Medium": "warning", "Low": "error", "Estimated": "primary"}

EMPTY_MESSAGE = (
    "No benchmark runs yet.\n\n"
    "Run one on a live session: open its dashboard and press b,\n"
    "or from a shell:  maider-tui bench run SESSION\n\n"
    "Already have the old tool's benchmark-database.json? Press i to import it."
)


def gpu_label(gpu_type: str) -> str:
    """"RTX4000x2" (card x count, as in SCREENS.md) for a plan the catalog knows, else the Linode type id.

    Table columns are scarce at 80 and 120 columns; "Quadro" and "Ada" tell no Linode plans apart.
    """
    from ... import catalog

    try:
        plan = catalog.gpu_type(gpu_type)
    except Exception:  # noqa: BLE001 - an imported plan the catalog does not know
        return gpu_type
    card = plan.short_name.split("x ", 1)[-1]
    return card.replace("Quadro ", "").replace(" Ada", "").replace(" ", "") + f"x{plan.gpus}"


def model_label(model_id: str) -> str:
    """The repo name without its owner, "-Instruct" and the "Qwen2.5-" family prefix most share.

    Table columns are scarce at 80 and 120 columns: "Coder-32B-AWQ" says what the full name says.
    """
    return model_id.split("/")[-1].replace("-Instruct", "").removeprefix("Qwen2.5-")


def colour(colours: dict[str, str], variable: str) -> str:
    """A theme variable's colour for a Rich style; "" for values Rich cannot parse ("auto 60%")."""
    value = colours.get(variable, "")
    return value if value.startswith("#") else ""


def row_cells(row: ComparisonRow, colours: dict[str, str]) -> list[object]:
    """One table row; the confidence cell coloured from the theme's `colours` (variable -> colour)."""
    conf_style = colour(colours, CONFIDENCE_VARS.get(row.confidence, ""))
    return [
        gpu_label(row.gpu_type), f"{row.total_vram:.0f} GB", model_label(row.model_id),
        f"{row.tokens_per_sec:.1f}", "—" if row.ttft_p50_s is None else f"{row.ttft_p50_s:.2f} s",
        "—" if row.cost_per_1k_tokens is None else f"{row.cost_per_1k_tokens:.4f}", f"{row.hourly_usd:.2f}",
        "—" if row.cost_efficiency is None else f"{row.cost_efficiency:.1f}", peak_cell(row), str(row.runs),
        Text(row.confidence or "—", style=f"bold {conf_style}".strip()),
    ]


def peak_cell(row: ComparisonRow) -> str:
    """The concurrency sweep's best total tok/s and at how many requests in parallel: "1199 @8"."""
    return "—" if row.peak_tok_s is None else f"{row.peak_tok_s:.0f} @{row.peak_concurrency}"


def chart_bars(rows: list[ComparisonRow], metric: str) -> list[tuple[str, float | None]]:
    """(label, value) per configuration for the chart; `metric` is tokens_per_sec, cost_efficiency or
    peak_tok_s (whose label says at how many requests in parallel)."""
    def label(r: ComparisonRow) -> str:
        parallel = f" @{r.peak_concurrency}" if metric == "peak_tok_s" and r.peak_concurrency else ""
        return f"{gpu_label(r.gpu_type)} {model_label(r.model_id)}{parallel}"

    return [(label(r), getattr(r, metric)) for r in rows]


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d")


def _age(days: float) -> str:
    return "today" if days < 1 else f"{days:.0f}d ago"


def coverage_text(report: CoverageReport, colours: dict[str, str]) -> Text:
    """The coverage pane: totals, types tested, configurations, missing types, confidence, what next."""
    warn = colour(colours, "warning")
    muted = "dim"  # the theme's text-muted is "auto 60%", which Rich cannot draw
    text = Text()
    text.append(f"{report.total_runs} run{'s' if report.total_runs != 1 else ''}", style="bold")
    text.append(f" · {len(report.gpu_types_tested)}/{report.gpu_types_total} GPU types\n")
    if report.last_run is not None:
        text.append(f"last run {_day(report.last_run)}\n", style=muted)
    text.append("\nConfigurations\n", style="bold")
    for c in report.configurations:
        text.append(f" {gpu_label(c.gpu_type)} {model_label(c.model_id)}\n")
        line = f"  {c.runs} run{'s' if c.runs != 1 else ''} · {_age(c.age_days)}"
        text.append(line + ", stale\n" if c.stale else line + "\n",
                    style=f"bold {warn}".strip() if c.stale else muted)
    stale = report.stale
    text.append(f"stale: {len(stale) if stale else 'none'}\n", style=warn if stale else muted)
    text.append("\nConfidence\n", style="bold")
    for level, count in report.confidence_breakdown.items():
        text.append(f" {level} ", style=colour(colours, CONFIDENCE_VARS.get(level, "")))
        text.append(f"{count}\n")
    if report.missing:
        text.append("\nNever benchmarked\n", style="bold")
        for m in report.missing:
            text.append(f" {gpu_label(m.gpu_type)} ${m.hourly_usd:.2f}/h\n")
    if report.next:
        text.append("\nBenchmark next\n", style="bold")
        for i, s in enumerate(report.next, 1):
            model = f" {model_label(s.model_id)}" if s.model_id else ""
            text.append(f" {i}. {gpu_label(s.gpu_type)}{model}\n")
            text.append(f"    {s.reason}\n", style=muted)
    text.rstrip()
    return text
