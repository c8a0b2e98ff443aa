"""Loan schedules and interest checked against independent figures: numpy-financial's annuity,
tables written out by hand, a second Fraction implementation (``reference``), and the calendar
(pure: no database)."""

from __future__ import annotations

import ast
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path

import numpy_financial as npf
import pytest

from infra.money import FloatMoney, to_fen
from lending_core.loans import schedule as schedule_module
from lending_core.loans.schedule import (
    METHODS,
    AmountTooSmallForTerm,
    BulletTermTooLong,
    Payoff,
    ScheduleError,
    UnknownRepaymentMethod,
    accrue,
    build_schedule,
    due_date,
    irr_apr_bps,
    level_payment_fen,
    payoff,
    penalty_rate_bps,
    remaining_principal,
)
from lending_core.products.definition import REPAYMENT_METHODS
from tests.loans import reference

START = date(2024, 1, 15)


def rows(s) -> list[tuple[int, int]]:
    return [(i.principal_fen, i.interest_fen) for i in s.instalments]


def test_the_methods_are_the_products_repayment_methods():
    assert METHODS == REPAYMENT_METHODS


# 1. The equal-instalment payment is the spreadsheet annuity, to the fen.

AMOUNTS_YUAN = ("10000.00", "100000.00", "1000000.00", "3333.33")
RATES = ((345, "0.0345"), (435, "0.0435"), (490, "0.049"), (720, "0.072"), (1800, "0.18"))
TERMS = (1, 3, 12, 36, 60, 120, 360)


@pytest.mark.parametrize("term", TERMS)
@pytest.mark.parametrize("rate_bps,rate_text", RATES)
@pytest.mark.parametrize("amount_yuan", AMOUNTS_YUAN)
def test_the_level_payment_is_numpy_financials_pmt_rounded_half_up(amount_yuan, rate_bps, rate_text, term):
    pmt = npf.pmt(float(rate_text) / 12, term, -float(amount_yuan))
    expected = to_fen(Decimal(str(pmt)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
    principal = to_fen(amount_yuan)
    assert level_payment_fen(principal, rate_bps, term) == expected
    if reference.overpays(principal, rate_bps, term):
        # 3,333.33 yuan over 30 years at 18 %: see test_an_amount_too_small_to_amortise_….
        with pytest.raises(AmountTooSmallForTerm):
            build_schedule("equal_instalment", principal, rate_bps, term, START)
        return
    s = build_schedule("equal_instalment", principal, rate_bps, term, START)
    # Every period but the last pays exactly the level payment.
    assert {i.total_fen for i in s.instalments[:-1]} <= {expected}
    if term == 1:
        assert s.instalments[0].total_fen == expected


# 2. Worked tables: by hand, and by the independent Fraction implementation.


def test_equal_principal_12000_yuan_12_months_at_6_percent_by_hand():
    s = build_schedule("equal_principal", 1_200_000, 600, 12, START)
    assert [i.principal_fen for i in s.instalments] == [100_000] * 12
    # 0.5 % a month on 12,000.00, 11,000.00, …, 1,000.00 owed.
    assert [i.interest_fen for i in s.instalments] == [6000, 5500, 5000, 4500, 4000, 3500, 3000, 2500, 2000, 1500, 1000, 500]
    assert [i.opening_principal_fen for i in s.instalments] == [1_200_000 - 100_000 * k for k in range(12)]
    assert s.total_interest_fen == 39_000


def test_equal_instalment_10000_yuan_12_months_at_4_35_percent_by_hand():
    s = build_schedule("equal_instalment", 1_000_000, 435, 12, START)
    # The published 等额本息 figure for 10,000 yuan over a year at 4.35 %: 853.10 a month.
    assert level_payment_fen(1_000_000, 435, 12) == 85_310
    first, second, last = s.instalments[0], s.instalments[1], s.instalments[-1]
    # 10,000.00 × 4.35 % / 12 = 36.25; 853.10 − 36.25 = 816.85.
    assert (first.interest_fen, first.principal_fen, first.closing_principal_fen) == (3625, 81_685, 918_315)
    # 9,183.15 × 0.3625 % = 33.2889… → 33.29; 853.10 − 33.29 = 819.81.
    assert (second.interest_fen, second.principal_fen) == (3329, 81_981)
    # The last pays what is left, 850.01, and 850.01 × 0.3625 % = 3.0813… → 3.08.
    assert (last.opening_principal_fen, last.principal_fen, last.interest_fen, last.total_fen) == (85_001, 85_001, 308, 85_309)
    assert s.total_interest_fen == 23_719


def test_interest_only_50000_yuan_6_months_at_4_35_percent_by_hand():
    s = build_schedule("interest_only", 5_000_000, 435, 6, START)
    # 50,000.00 × 4.35 % / 12 = 181.25 a month; the principal comes back with the last.
    assert rows(s) == [(0, 18_125)] * 5 + [(5_000_000, 18_125)]
    assert s.total_fen == 5_000_000 + 6 * 18_125


def test_bullet_100000_yuan_6_months_at_4_35_percent_by_hand():
    s = build_schedule("bullet", 10_000_000, 435, 6, START)
    # 100,000.00 × 4.35 % × 6 / 12 = 2,175.00, paid with the principal at maturity.
    assert rows(s) == [(10_000_000, 217_500)]
    assert s.instalments[0].due_date == date(2024, 7, 15)


@pytest.mark.parametrize(
    "method,principal,rate_bps,term",
    [
        ("equal_instalment", 1_000_000, 435, 12),
        ("equal_instalment", 333_333, 490, 36),
        ("equal_instalment", 50_000_000, 345, 360),
        ("equal_principal", 1_000_000, 435, 12),
        ("equal_principal", 333_333, 720, 7),
        ("equal_principal", 100_000_000, 490, 240),
        ("interest_only", 1_000_000, 435, 6),
        ("interest_only", 333_333, 1800, 24),
        ("bullet", 333_333, 435, 7),
        ("bullet", 4_000, 435, 1),
    ],
)
def test_every_figure_matches_the_independent_fraction_implementation(method, principal, rate_bps, term):
    s = build_schedule(method, principal, rate_bps, term, START)
    assert rows(s) == reference.periods(method, principal, rate_bps, term)


# 4. Due dates.


@pytest.mark.parametrize(
    "start,expected",
    [
        (date(2023, 1, 31), [date(2023, 2, 28), date(2023, 3, 31), date(2023, 4, 30), date(2023, 5, 31)]),
        (date(2024, 1, 31), [date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30), date(2024, 5, 31)]),
        (date(2023, 8, 29), [date(2023, 9, 29), date(2023, 10, 29), date(2023, 11, 29), date(2023, 12, 29), date(2024, 1, 29), date(2024, 2, 29), date(2024, 3, 29)]),
        (date(2022, 8, 30), [date(2022, 9, 30), date(2022, 10, 30), date(2022, 11, 30), date(2022, 12, 30), date(2023, 1, 30), date(2023, 2, 28), date(2023, 3, 30)]),
        (date(2023, 11, 30), [date(2023, 12, 30), date(2024, 1, 30), date(2024, 2, 29), date(2024, 3, 30)]),
        (date(2024, 3, 15), [date(2024, 4, 15), date(2024, 5, 15)]),
    ],
)
def test_due_dates_keep_the_drawdown_day_or_the_months_last_day(start, expected):
    s = build_schedule("equal_principal", 1_000_000, 435, len(expected), start)
    assert [i.due_date for i in s.instalments] == expected
    assert [due_date(start, k) for k in range(1, len(expected) + 1)] == expected


def test_due_dates_over_thirty_years():
    assert due_date(date(2024, 1, 31), 360) == date(2054, 1, 31)
    assert due_date(date(2024, 2, 29), 360) == date(2054, 2, 28)
    assert due_date(date(2024, 2, 29), 48) == date(2028, 2, 29)
    s = build_schedule("equal_instalment", 100_000_000, 435, 360, date(2024, 1, 31))
    dates = [i.due_date for i in s.instalments]
    assert dates[-1] == date(2054, 1, 31)
    assert all(a < b for a, b in zip(dates, dates[1:]))
    assert {d.day for d in dates if d.month in (1, 3, 5, 7, 8, 10, 12)} == {31}
    assert due_date(date(2024, 1, 31), 0) == date(2024, 1, 31)


# 5. Bullet.


def test_bullet_is_refused_beyond_twelve_months():
    assert len(build_schedule("bullet", 1_000_000, 435, 12, START).instalments) == 1
    with pytest.raises(BulletTermTooLong) as refused:
        build_schedule("bullet", 1_000_000, 435, 13, START)
    assert isinstance(refused.value, ScheduleError) and isinstance(refused.value, ValueError)
    assert "12 months" in str(refused.value)


@pytest.mark.parametrize("principal,rate_bps,months", [(333_333, 435, 7), (1_000_000, 1800, 12), (123_457, 345, 1), (99_999_999, 3600, 11)])
def test_bullet_interest_is_principal_times_rate_times_months_over_twelve(principal, rate_bps, months):
    exact = Fraction(principal * rate_bps * months, 10000 * 12)
    (only,) = build_schedule("bullet", principal, rate_bps, months, START).instalments
    assert abs(only.interest_fen - exact) <= Fraction(1, 2)
    assert (only.number, only.principal_fen, only.due_date) == (1, principal, due_date(START, months))


def test_bullet_interest_rounds_a_half_fen_up():
    # 40.00 × 4.35 % / 12 = 0.145 yuan exactly: 14.5 fen → 15 (banker's rounding would say 14).
    assert build_schedule("bullet", 4_000, 435, 1, START).instalments[0].interest_fen == 15


# 6. Daily accrual, penalty rate, early repayment, APR.


def test_accrue_on_a_360_and_a_365_day_basis():
    # 10,000.00 × 4.35 % × 30 / 360 = 36.25 exactly; on 365 days 35.7534… → 35.75.
    assert accrue(1_000_000, 435, 30) == 3625
    assert accrue(1_000_000, 435, 30, day_basis=360) == 3625
    assert accrue(1_000_000, 435, 30, day_basis=365) == 3575
    # 180.00 × 1 % / 360 = 0.005 yuan: half a fen rounds up.
    assert accrue(18_000, 100, 1) == 1
    assert accrue(18_000, 100, 1, day_basis=365) == 0
    assert accrue(1_000_000, 435, 0) == 0
    assert accrue(0, 435, 30) == 0
    # A penalty rate may exceed the contract-rate cap.
    assert accrue(1_000_000, 5400, 1) == 1500


def test_accrue_refuses_other_day_bases_and_negative_days():
    with pytest.raises(ScheduleError):
        accrue(1_000_000, 435, 30, day_basis=366)
    with pytest.raises(ScheduleError):
        accrue(1_000_000, 435, -1)
    with pytest.raises(ScheduleError):
        accrue(-1, 435, 1)


@pytest.mark.parametrize(
    "rate,uplift,expected",
    [(435, 5000, 653), (490, 5000, 735), (400, 5000, 600), (435, 3000, 566), (435, 0, 435), (0, 5000, 0), (3600, 5000, 5400)],
)
def test_penalty_rate_is_the_contract_rate_plus_the_uplift_half_up_to_the_bp(rate, uplift, expected):
    # 435 × 1.5 = 652.5 → 653; 435 × 1.3 = 565.5 → 566.
    assert penalty_rate_bps(rate, uplift) == expected


def test_penalty_rate_default_uplift_is_fifty_percent():
    assert penalty_rate_bps(435) == 653


def test_remaining_principal_after_k_instalments():
    s = build_schedule("equal_instalment", 1_000_000, 435, 12, START)
    assert remaining_principal(s, 0) == 1_000_000
    assert remaining_principal(s, 3) == 754_056 == s.instalments[3].opening_principal_fen
    assert remaining_principal(s, 12) == 0
    with pytest.raises(ScheduleError):
        remaining_principal(s, 13)
    io = build_schedule("interest_only", 1_000_000, 435, 6, START)
    assert [remaining_principal(io, k) for k in range(7)] == [1_000_000] * 6 + [0]


def test_payoff_mid_period_is_outstanding_plus_interest_by_the_day():
    s = build_schedule("equal_instalment", 1_000_000, 435, 12, START)
    # Three paid (last due 2024-04-15); repaid 2024-05-01: 16 days on 7,540.56 at 4.35 % / 360
    # = 14.5784… → 14.58.
    assert payoff(s, 3, date(2024, 5, 1)) == Payoff(754_056, 1458)
    assert payoff(s, 3, date(2024, 5, 1)).total_fen == 755_514
    # On 365 days: 14.3787… → 14.38.
    assert payoff(s, 3, date(2024, 5, 1), day_basis=365) == Payoff(754_056, 1438)
    # Nothing paid yet: from the drawdown, 10 days on 10,000.00 = 12.0833… → 12.08.
    assert payoff(s, 0, date(2024, 1, 25)) == Payoff(1_000_000, 1208)
    # On the day of the last paid due date, no interest has accrued.
    assert payoff(s, 3, date(2024, 4, 15)) == Payoff(754_056, 0)


def test_payoff_refuses_a_day_outside_the_current_period():
    s = build_schedule("equal_instalment", 1_000_000, 435, 12, START)
    with pytest.raises(ScheduleError):
        payoff(s, 3, date(2024, 5, 16))  # instalment 4 (due 2024-05-15) is overdue
    with pytest.raises(ScheduleError):
        payoff(s, 3, date(2024, 4, 14))
    with pytest.raises(ScheduleError):
        payoff(s, 12, date(2025, 1, 20))  # nothing is left to repay


CONTRACTS = [(1_000_000, 435, 12), (333_333, 490, 36), (50_000_000, 345, 360), (2_000_000, 1800, 60), (100_000, 3600, 6), (1_000_000, 0, 12)]


@pytest.mark.parametrize("principal,rate_bps,term", CONTRACTS)
@pytest.mark.parametrize("method", METHODS)
def test_apr_without_fees_is_the_contract_rate_within_one_bp(method, principal, rate_bps, term):
    term = min(term, 12) if method == "bullet" else term
    s = build_schedule(method, principal, rate_bps, term, START)
    assert abs(irr_apr_bps(principal, s) - rate_bps) <= 1


@pytest.mark.parametrize("method", ["equal_instalment", "equal_principal", "interest_only"])
def test_apr_with_a_fee_matches_numpy_financials_irr(method):
    s = build_schedule(method, 1_000_000, 435, 12, START)
    received = 1_000_000 - 20_000  # a 2 % fee kept at drawdown
    expected = npf.irr([-received] + [i.total_fen for i in s.instalments]) * 12 * 10000
    apr = irr_apr_bps(received, s)
    assert abs(apr - expected) <= Fraction(1, 2) + Fraction(1, 10**6)
    assert apr > 435 + 150


def test_apr_of_a_bullet_is_annualised_over_its_single_period():
    s = build_schedule("bullet", 1_000_000, 435, 6, START)
    # 21,750 interest on 980,000 received for half a year: 2 × 41,750 / 980,000 = 8.5204 %.
    assert irr_apr_bps(980_000, s) == 852


# 7. No float, and clear refusals.


def test_a_float_amount_raises_float_money():
    with pytest.raises(FloatMoney):
        build_schedule("equal_instalment", 1_000_000.0, 435, 12, START)
    with pytest.raises(FloatMoney):
        level_payment_fen(10000.5, 435, 12)
    with pytest.raises(FloatMoney):
        accrue(100.0, 435, 1)
    with pytest.raises(FloatMoney):
        irr_apr_bps(1e6, build_schedule("bullet", 1_000_000, 435, 6, START))


@pytest.mark.parametrize(
    "args",
    [
        ("equal_instalment", 0, 435, 12, START),
        ("equal_instalment", -100, 435, 12, START),
        ("equal_instalment", Decimal("100"), 435, 12, START),
        ("equal_instalment", True, 435, 12, START),
        ("equal_instalment", 1_000_000, 4.35, 12, START),
        ("equal_instalment", 1_000_000, -1, 12, START),
        ("equal_instalment", 1_000_000, 3601, 12, START),
        ("equal_instalment", 1_000_000, 435, 0, START),
        ("equal_instalment", 1_000_000, 435, 361, START),
        ("equal_instalment", 1_000_000, 435, "12", START),
        ("equal_instalment", 1_000_000, 435, 12, "2024-01-15"),
        ("equal_instalment", 1_000_000, 435, 12, datetime(2024, 1, 15, 9, 0)),
    ],
)
def test_bad_terms_are_refused_with_a_schedule_error(args):
    with pytest.raises(ScheduleError):
        build_schedule(*args)


def test_the_bounds_themselves_are_accepted():
    assert len(build_schedule("equal_instalment", 100_000_000, 3600, 360, START).instalments) == 360
    assert build_schedule("equal_instalment", 1_000_000, 0, 1, START).instalments[0].total_fen == 1_000_000


def test_an_unknown_method_is_refused():
    with pytest.raises(UnknownRepaymentMethod):
        build_schedule("balloon", 1_000_000, 435, 12, START)


def test_an_amount_too_small_to_amortise_is_refused_not_scheduled():
    # 0.08 yuan over 12 months: the level payment rounds up to 0.01 and 11 of them overpay.
    assert reference.overpays(8, 0, 12)
    with pytest.raises(AmountTooSmallForTerm):
        build_schedule("equal_instalment", 8, 0, 12, START)
    # 3,333.33 yuan over 30 years at 18 %: the payment 50.236129 rounds up to 50.24, and the
    # 0.39 fen overpaid each month, compounding at 1.5 % a month, exceeds the whole debt
    # (−0.05 yuan owed before the last period).
    assert level_payment_fen(333_333, 1800, 360) == 5_024
    assert reference.overpays(333_333, 1800, 360)
    with pytest.raises(AmountTooSmallForTerm):
        build_schedule("equal_instalment", 333_333, 1800, 360, START)
    # The other methods can always split it.
    assert [i.principal_fen for i in build_schedule("equal_principal", 8, 0, 12, START).instalments] == [0] * 11 + [8]


def test_the_module_is_pure_and_float_free():
    tree = ast.parse(Path(schedule_module.__file__).read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"__future__", "calendar", "dataclasses", "datetime", "decimal", "fractions", "infra.money"}
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, float)]
    # ``isinstance(x, float)`` guards are fine; converting to a float is not.
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "float"]
