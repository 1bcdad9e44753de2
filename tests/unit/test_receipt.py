"""Receipt arithmetic: elapsed hours x hourly price, started hours as Linode counts them, $ per 1K tokens."""

from __future__ import annotations

import pytest

from maider_tui.ops.receipt import billed_hours, cost_usd, elapsed_hours, make_receipt, usd_per_1k_tokens

T0 = 1_795_351_260.0


def test_ninety_minutes_on_two_rtx4000():
    receipt = make_receipt("s", started_at=T0, ended_at=T0 + 5400, hourly_usd=1.04, tokens=250_000)
    assert receipt.hours == pytest.approx(1.5)
    assert receipt.cost_usd == pytest.approx(1.56)
    assert receipt.billed_hours == 2 and receipt.billed_usd == pytest.approx(2.08)
    assert receipt.usd_per_1k_tokens == pytest.approx(1.56 / 250)
    assert receipt.summary() == "1 h 30 min at $1.04/h = $1.56; 250,000 tokens generated ($0.0062 per 1K)"


@pytest.mark.parametrize("seconds, billed", [(0, 0), (1, 1), (3599, 1), (3600, 1), (3601, 2), (7200, 2)])
def test_billed_hours_are_started_hours(seconds: float, billed: int):
    assert billed_hours(elapsed_hours(T0, T0 + seconds)) == billed


def test_float_noise_does_not_bill_an_extra_hour():
    assert billed_hours(2.0000000000001) == 2


def test_a_clock_set_back_costs_nothing_rather_than_paying_back():
    receipt = make_receipt("s", started_at=T0, ended_at=T0 - 60, hourly_usd=0.52)
    assert receipt.hours == 0 and receipt.cost_usd == 0 and receipt.billed_hours == 0


def test_the_monthly_cap_limits_the_cost():
    month = 800 * 3600.0  # longer than a month's ~730 hours
    receipt = make_receipt("s", started_at=T0, ended_at=T0 + month, hourly_usd=0.52, monthly_cap_usd=350.0)
    assert receipt.cost_usd == 350.0 and receipt.billed_usd == 350.0
    assert cost_usd(1.0, 0.52, monthly_cap_usd=350.0) == pytest.approx(0.52)


@pytest.mark.parametrize("tokens", [None, 0])
def test_no_tokens_no_price_per_token(tokens):
    assert usd_per_1k_tokens(1.0, tokens) is None
    receipt = make_receipt("s", started_at=T0, ended_at=T0 + 60, hourly_usd=0.52, tokens=tokens)
    assert receipt.usd_per_1k_tokens is None and "tokens" not in receipt.summary()
