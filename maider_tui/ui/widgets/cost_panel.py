"""The Cost panel: the meter as it runs, where it will end, and what a thousand tokens really cost.

The arithmetic is here as pure functions (tested without a screen); the receipt's own rules
(elapsed hours, Linode's started hours) come from ops.receipt so the panel and the final receipt
never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from .lines import LinePanel
from ...ops.receipt import SECONDS_PER_HOUR, cost_so_far, usd_per_1k_tokens


def format_countdown(seconds: float | None) -> str:
    """mm:ss, minutes unbounded ("125:00"); never negative; "—" when unknown."""
    if seconds is None:
        return "—"
    whole = max(0, int(seconds))
    return f"{whole // 60:02d}:{whole % 60:02d}"


def format_runtime(seconds: float) -> str:
    """"3h 00m" from an hour on, "12m" below."""
    minutes = max(0, int(seconds)) // 60
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"


def format_tokens(tokens: int) -> str:
    """412345 -> "412k", 1_500_000 -> "1.5M", 900 -> "900"."""
    if tokens >= 1_000_000:
        return f"{tokens / 1_000_000:.1f}M"
    if tokens >= 10_000:
        return f"{tokens / 1000:.0f}k"
    if tokens >= 1000:
        return f"{tokens / 1000:.1f}k"
    return str(tokens)


def projected_total(hourly_usd: float, started_at: float, now: float, remaining_s: float | None) -> float | None:
    """The total if the VM runs until the watchdog deadline `remaining_s` from now; None without one."""
    if remaining_s is None:
        return None
    return cost_so_far(hourly_usd, started_at, now + max(0.0, remaining_s))


def next_billed_hour_s(started_at: float, now: float) -> float:
    """Seconds until Linode starts billing the next hour (it bills every started hour)."""
    elapsed = max(0.0, now - started_at)
    return SECONDS_PER_HOUR - (elapsed % SECONDS_PER_HOUR)


@dataclass(frozen=True)
class CostView:
    """What the panel needs for one redraw."""

    hourly_usd: float
    started_at: float
    now: float
    remaining_s: float | None = None
    tokens: int | None = None
    # When `tokens` was read (None: now). The cost per 1K tokens is the cost so far then over the
    # tokens then: it moves with each vLLM reading, not with every second the meter runs.
    tokens_at: float | None = None


def cost_lines(view: CostView) -> list[str]:
    """The panel's three lines."""
    so_far = cost_so_far(view.hourly_usd, view.started_at, view.now)
    runtime = format_runtime(view.now - view.started_at)
    first = f"${view.hourly_usd:.2f}/h   so far ${so_far:.2f} ({runtime})"
    projected = projected_total(view.hourly_usd, view.started_at, view.now, view.remaining_s)
    next_hour = f"next hour in {int(next_billed_hour_s(view.started_at, view.now) // 60)}m"
    second = (f"to deadline ${projected:.2f} · {next_hour}" if projected is not None
              else f"no deadline · {next_hour}")
    if view.tokens:
        at = view.now if view.tokens_at is None else min(view.now, view.tokens_at)
        per_1k = usd_per_1k_tokens(cost_so_far(view.hourly_usd, view.started_at, at), view.tokens)
        third = f"{format_tokens(view.tokens)} tokens · ${per_1k:.4f} / 1K"
    else:
        third = "no tokens generated yet"
    return [first, second, third]


class CostPanel(LinePanel):
    """Three lines of money, redrawn in place every second and on every vLLM scrape; only the lines
    whose figures changed repaint (the cost so far moves a cent at a time, the cost per 1K tokens
    with each scrape)."""

    DEFAULT_CSS = """
    CostPanel { height: auto; }
    """

    def show(self, view: CostView) -> None:
        first, second, third = cost_lines(view)
        self.show_lines([first, second, (third, "" if view.tokens else "dim")])
