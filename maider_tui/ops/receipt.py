"""What a session cost: the receipt a destroy ends with, and the arithmetic behind it. Pure: no I/O.

How Linode bills: a VM is charged by the hour from the moment it is created until it is deleted,
and a VM's charges in one calendar month never exceed the plan's monthly price (the cap). A powered-
off VM is still billed; only deleting it stops the meter. Linode's invoices count started hours, so
a VM kept 61 minutes is billed 2 hours.

Which number we show: `cost_usd` is elapsed real hours x the hourly price, unrounded, because that is
what the dashboard's running meter showed and what a receipt compares best across sessions of any
length. `billed_hours` (hours rounded up) and `billed_usd` are there too, so the user can see the
upper bound the invoice may show. The monthly cap is applied when the caller knows the plan's
monthly price (a session would have to run ~730 hours to reach it); we do not model a session
that straddles two calendar months.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import math
from dataclasses import dataclass

from maider_tui.words import duration

if TYPE_CHECKING:
    from maider_tui.store import SessionRecord

SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class Receipt:
    """The end of a session in numbers.

    hours: elapsed real hours from the session's start to its end (unrounded).
    billed_hours: whole hours, rounded up: what Linode counts. cost_usd: hours x hourly_usd (capped
    at the monthly price when known). tokens: output tokens vLLM generated, None when unknown.
    usd_per_1k_tokens: cost per thousand generated tokens, None without tokens.
    """

    session: str
    hours: float
    billed_hours: int
    hourly_usd: float
    cost_usd: float
    billed_usd: float
    tokens: int | None
    usd_per_1k_tokens: float | None

    def summary(self) -> str:
        """One line for the event log and the screen."""
        line = f"{duration(self.hours)} at ${self.hourly_usd:.2f}/h = ${self.cost_usd:.2f}"
        if self.tokens:
            line += f"; {self.tokens:,} tokens generated (${self.usd_per_1k_tokens:.4f} per 1K)"
        return line


def elapsed_hours(started_at: float, ended_at: float) -> float:
    """Hours between two epoch times; never negative (a clock set back must not make money back)."""
    return max(0.0, ended_at - started_at) / SECONDS_PER_HOUR


def billed_hours(hours: float) -> int:
    """Started hours, as Linode counts them: 0 for no time at all, else rounded up."""
    # A float like 2.0000000001 from epoch subtraction must not be billed as 3 hours.
    return max(0, math.ceil(round(hours, 9)))


def cost_usd(hours: float, hourly_usd: float, monthly_cap_usd: float | None = None) -> float:
    """hours x hourly price, never more than the monthly cap when one is given."""
    cost = max(0.0, hours) * max(0.0, hourly_usd)
    return min(cost, monthly_cap_usd) if monthly_cap_usd is not None else cost


def usd_per_1k_tokens(cost: float, tokens: int | None) -> float | None:
    """Cost per thousand generated tokens; None when nothing was generated or the count is unknown."""
    if not tokens or tokens <= 0:
        return None
    return cost / tokens * 1000.0


def make_receipt(session: str, *, started_at: float, ended_at: float, hourly_usd: float,
                 tokens: int | None = None, monthly_cap_usd: float | None = None) -> Receipt:
    """The receipt of a session that ran from `started_at` to `ended_at` (epoch seconds)."""
    hours = elapsed_hours(started_at, ended_at)
    billed = billed_hours(hours)
    cost = cost_usd(hours, hourly_usd, monthly_cap_usd)
    return Receipt(
        session=session,
        hours=hours,
        billed_hours=billed,
        hourly_usd=hourly_usd,
        cost_usd=cost,
        billed_usd=cost_usd(billed, hourly_usd, monthly_cap_usd),
        tokens=tokens,
        usd_per_1k_tokens=usd_per_1k_tokens(cost, tokens),
    )


def cost_so_far(hourly_usd: float, started_at: float, now: float) -> float:
    """What a running VM has cost: elapsed real hours since `started_at` x the hourly price. The one
    sum the dashboard, the provisioning screen, the sessions list, `ls` and the destroy question show."""
    return cost_usd(elapsed_hours(started_at, now), hourly_usd)


def session_cost_so_far(record: SessionRecord, now: float) -> float:
    """What a session has cost: the stored receipt once ended, else `cost_so_far` at its price."""
    if record.ended and record.cost_usd is not None:
        return record.cost_usd
    started = record.created_at if record.created_at is not None else now
    ended = record.ended_at if record.ended_at is not None else now
    return cost_so_far(record.hourly_usd, started, ended)
