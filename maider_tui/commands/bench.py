"""`maider-tui bench run|compare|status|import|export` and `maider-tui recommend`.

The same functions the screens call; tests pass their own context (a store in a temporary home).
Results go to stdout, errors to stderr with a non-zero exit.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
from typing import TYPE_CHECKING, Any

from maider_tui.bench.aggregate import SORT_KEYS, ComparisonRow, comparison_rows
from maider_tui.bench.prompts import TASK_NAMES, category_name
from maider_tui.bench.recommend import BUDGETS, SIZES, TASKS, recommend
from maider_tui.words import plural


from . import argtypes
from .common import Out, provider_or_say, say_error

if TYPE_CHECKING:
    from maider_tui.store import SessionRecord, Store


def add_bench_parsers(subparsers: Any) -> None:
    """Add `bench` (with its actions) and `recommend` to the `maider-tui` command line."""
    bench = subparsers.add_parser("bench", help="run, compare and move benchmarks",
                                  description="Benchmark sessions and compare GPU + model configurations.")
    sub = bench.add_subparsers(dest="bench_command", metavar="ACTION", required=True)
    run = sub.add_parser("run", help="benchmark a ready session and store the run",
                         description="Run the 12-prompt suite (or one category) against a session's vLLM "
                                     "and store it as one run. Ctrl-C stops it and stores nothing.")
    run.add_argument("session", metavar="SESSION", help="the session to benchmark")
    run.add_argument("--category", "-c", default="all", type=argtypes.one_of(("all", *TASK_NAMES), "category"),
                     metavar="{" + ",".join(("all", *TASK_NAMES)) + "}", help="prompts to run")
    run.add_argument("--endpoint", metavar="URL",
                     help="benchmark this OpenAI endpoint (e.g. an open tunnel) instead of connecting "
                          "over SSH")
    run.add_argument("--sweep", action="store_true", help="also measure 1, 4 and 8 parallel requests")
    compare = sub.add_parser("compare", help="compare configurations (tokens/s, cost/1K, efficiency)")
    compare.add_argument("--gpu-type", "-g", metavar="T", help="only this GPU type")
    compare.add_argument("--model-category", "-m", metavar="M", help="only this model category (7b ... 70b)")
    compare.add_argument("--task-category", "-t", metavar="C", type=argtypes.one_of(TASK_NAMES, "task category"),
                         help=f"figures of one task category ({', '.join(TASK_NAMES)})")
    compare.add_argument("--sort-by", "-s", default="cost_efficiency", choices=tuple(SORT_KEYS),
                         metavar="COLUMN",
                         help="tokens_per_sec, cost_per_1k_tokens, cost_efficiency (default), ...")
    compare.add_argument("--format", "-f", default="table", choices=("table", "json", "csv", "markdown"))
    compare.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of the terminal")
    sub.add_parser("status", help="coverage: what is measured, stale or missing, and what to run next")
    imp = sub.add_parser("import", help="import runs: the runs of a benchmark-database.json (the old tool's format)")
    imp.add_argument("file", metavar="FILE")
    exp = sub.add_parser("export", help="export runs: every run to a benchmark-database.json (the old tool's format)")
    exp.add_argument("file", metavar="FILE")
    rec = subparsers.add_parser("recommend", help="the best GPU + model for a task, budget and size",
                                description="Top 3 configurations from your benchmarks, with estimates from "
                                            "the catalog where nothing was measured.")
    rec.add_argument("--task", default="mixed", type=argtypes.one_of(tuple(TASKS), "task"),
                     metavar="{" + ",".join(TASKS) + "}")
    rec.add_argument("--budget", default="none", choices=tuple(BUDGETS),
                     help="$/h band; $1.00 and $3.00 count as 1-3")
    rec.add_argument("--size", default="balanced", choices=SIZES)
    rec.add_argument("--format", "-f", default="table", choices=("table", "json"))


def _context(args: argparse.Namespace, context: Any | None) -> Any:
    if context is not None:
        return context
    from maider_tui.context import build_context
    from maider_tui.paths import AppPaths

    return build_context(AppPaths.default(), config_path=getattr(args, "config", None))


def run_bench(args: argparse.Namespace, context: Any | None = None, *, out: Out = print) -> int:
    """Run one `bench` action; 0 on success, 1 (message on stderr) otherwise."""
    context = _context(args, context)
    store = context.store
    if store is None:
        return say_error(f"Cannot read the benchmarks: {context.store_error}")
    action = args.bench_command
    if action == "compare":
        return _compare(args, store, out)
    if action == "status":
        from maider_tui.bench.coverage import coverage_report, render_status

        out(render_status(coverage_report(store.bench_runs(), now=context.clock.now())))
        return 0
    if action == "import":
        return _import(args.file, store, out)
    if action == "export":
        from maider_tui.bench.dbjson import export_database

        try:
            count = export_database(store, args.file)
        except OSError as exc:
            return say_error(f"Cannot write {args.file}: {exc.strerror or exc}. Nothing was written.")
        out(f"Exported {plural(count, 'run')} to {args.file}.")
        return 0
    if action == "run":
        try:
            return asyncio.run(bench_session(context, args.session, category=args.category,
                                             endpoint=args.endpoint, sweep=args.sweep, out=out))
        except KeyboardInterrupt:
            return say_error("Benchmark cancelled; nothing was stored.")
    return say_error(f"Unknown bench action {action!r}.")


def _compare(args: argparse.Namespace, store: Store, out: Out) -> int:
    from maider_tui.bench.export import ExportError, export_rows, render

    rows = comparison_rows(store.bench_runs(), gpu_type=args.gpu_type, model_category=args.model_category,
                           task_category=args.task_category, sort_by=args.sort_by)
    if args.format == "table":
        if args.output:
            return say_error("--output needs --format json, csv or markdown.")
        if not rows:
            out("No benchmark matches. Run one with `maider-tui bench run SESSION`.")
            return 0
        out(_table_text(rows))
        return 0
    if not args.output:
        out(render(rows, args.format).rstrip("\n"))
        return 0
    try:
        path = export_rows(rows, args.output, args.format)
    except ExportError as exc:
        return say_error(str(exc))
    out(f"Wrote {plural(len(rows), 'row')} to {path}.")
    return 0


def _table_text(rows: list[ComparisonRow]) -> str:
    """The comparison as a terminal table (rich), with confidence in its colour."""
    from rich.console import Console
    from rich.table import Table

    from maider_tui.bench.metrics import confidence_colour

    table = Table(header_style="bold")
    for title in ("GPU type", "GPUs", "VRAM", "Model", "Tokens/s", "TTFT p50", "Cost/1K", "$/h", "Efficiency",
                  "Runs", "Confidence"):
        table.add_column(title, justify="left" if title in ("GPU type", "Model", "Confidence") else "right",
                         no_wrap=title != "Model", overflow="fold")
    for r in rows:
        colour = confidence_colour(r.confidence)
        table.add_row(r.gpu_type, str(r.gpu_count), f"{r.total_vram:.0f} GB", r.model_id,
                      f"{r.tokens_per_sec:.1f}",
                      "-" if r.ttft_p50_s is None else f"{r.ttft_p50_s * 1000:.0f} ms",
                      "-" if r.cost_per_1k_tokens is None else f"${r.cost_per_1k_tokens:.4f}",
                      f"${r.hourly_usd:.2f}",
                      "-" if r.cost_efficiency is None else f"{r.cost_efficiency:.1f}", str(r.runs),
                      f"[{colour}]{r.confidence}[/]")
    console = Console(width=160, highlight=False, force_terminal=False, record=True, file=io.StringIO())
    console.print(table)
    return console.export_text().rstrip("\n")


def _import(file: str, store: Store, out: Out) -> int:
    from maider_tui.bench.dbjson import DatabaseFormatError, import_database

    try:
        report = import_database(file, store)
    except DatabaseFormatError as exc:
        return say_error(f"{file} is not a benchmark database we can read ({exc}); nothing was imported.")
    except OSError as exc:
        return say_error(f"Cannot read {file}: {exc.strerror or exc}.")
    skipped = f"; {report.skipped} already there, skipped" if report.skipped else ""
    out(f"Imported {plural(report.imported, 'run')} from {file}{skipped}.")
    return 0


async def bench_session(context: Any, name: str, *, category: str = "all", endpoint: str | None = None,
                        sweep: bool = False, out: Out = print, max_tokens_scale: float = 1.0) -> int:
    """Benchmark a session: through `endpoint` when given, else over SSH via LiveSessions.attach.

    `max_tokens_scale` shortens every prompt (tests); such a run is marked in its summary.
    """
    from maider_tui.ops.bench_run import BenchError, BenchTarget, run_benchmark

    store = context.store
    record = store.get_session(name)
    live = None
    try:
        if endpoint:
            if record is None:
                return say_error(f"There is no session named {name!r}; `maider-tui ls` lists them.")
            target = BenchTarget.from_session(endpoint, record, _config(record))
        else:
            live, target = await _attach(context, name)
            if target is None:
                return 1
        out(f"Benchmarking {name} ({target.gpu_type}, {target.model_id}), {category_name(category)} prompts.")
        outcome = await run_benchmark(target, category=category, store=store, clock=context.clock,
                                      emit=lambda e: out(f"  [{e.done}/{e.total}] {e.message}"),
                                      concurrency_sweep=sweep, max_tokens_scale=max_tokens_scale)
    except BenchError as exc:
        return say_error(f"{exc} Nothing was stored.")
    finally:
        if live is not None:
            await live.close_all()
    s = outcome.run.summary
    speed = "-" if s["avg_tokens_per_sec"] is None else f"{s['avg_tokens_per_sec']:.1f} tok/s"
    cost = "-" if s["cost_per_1k_tokens"] is None else f"${s['cost_per_1k_tokens']:.4f}/1K tokens"
    out(f"Stored run {outcome.run.id}: {speed}, {cost}, {s['tests_passed']}/{s['tests_total']} tests passed.")
    return 0


def _config(record: SessionRecord) -> Any:
    from maider_tui.models import VllmConfig

    try:
        if record.vllm_config:
            return VllmConfig.from_dict(record.vllm_config)
        return VllmConfig(model=record.model)
    except Exception:  # noqa: BLE001 - an old record: file the run under the session's model
        return None


async def _attach(context: Any, name: str) -> tuple[Any, Any]:
    """(LiveSessions, BenchTarget) for a session reached over SSH; (live or None, None) after an error."""
    from maider_tui.ops.bench_run import BenchTarget
    from maider_tui.ops.live import LiveSessions
    from maider_tui.ops.readiness import ReadinessLimits

    provider = await provider_or_say(context, otherwise=", or pass --endpoint")
    if provider is None:
        return None, None
    limits = ReadinessLimits()
    if getattr(context, "cloud_speed", 1.0) != 1.0:
        limits = limits.scaled(context.cloud_speed)
    live = LiveSessions(store=context.store, paths=context.paths, settings=context.settings.settings,
                        clock=context.clock, provider=lambda: provider, hf_token=lambda: None, limits=limits)
    try:
        session = await live.attach(name)
    except Exception as exc:  # noqa: BLE001 - LookupError, SSH or API failures: one line for the user
        reason = str(exc).rstrip(".")
        say_error(f"Cannot connect to {name}: {reason}. `maider-tui ls` shows whether it is ready; "
                  "--endpoint benchmarks through a tunnel instead.")
        return live, None
    return live, BenchTarget.from_live(session)


def run_recommend(args: argparse.Namespace, context: Any | None = None, *, out: Out = print) -> int:
    """Print the top 3 recommendations as a table or JSON."""
    context = _context(args, context)
    if context.store is None:
        return say_error(f"Cannot read the benchmarks: {context.store_error}")
    recs = recommend(context.store.bench_runs(), task=args.task, budget=args.budget, size=args.size,
                     now=context.clock.now())
    if args.format == "json":
        out(json.dumps([r.as_dict() for r in recs], indent=2))
        return 0
    if not recs:
        out("No configuration fits this budget. Try --budget none, or run `maider-tui bench run`.")
        return 0
    for r in recs:
        eff = "-" if r.cost_efficiency is None else f"{r.cost_efficiency:.1f}"
        cost = "-" if r.cost_per_1k_tokens is None else f"${r.cost_per_1k_tokens:.4f}"
        runs = "no run yet" if r.estimated else f"{r.runs} run{'s' if r.runs != 1 else ''}"
        out(f"{r.rank}. {r.gpu_type} + {r.model_id}: {r.tokens_per_sec:.1f} tok/s, {cost}/1K, "
            f"${r.hourly_usd:.2f}/h, efficiency {eff} ({r.confidence}, {runs})")
        for warning in r.warnings:
            out(f"   ! {warning}")
    return 0
