"""The arithmetic of staff performance, without a database: periods on the bank's calendar and
incentive amounts (exact, rounded once half up, capped)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from infra.money import FloatMoney
from marketing.performance import IncentiveTerms, InvalidPeriod, current_month, incentive, period


def test_a_month_runs_from_local_midnight_to_local_midnight():
    march = period("2026-03")

    # Asia/Shanghai is UTC+8 all year: local midnight is 16:00 UTC the day before.
    assert march.starts_at == datetime(2026, 2, 28, 16, tzinfo=timezone.utc)
    assert march.ends_at == datetime(2026, 3, 31, 16, tzinfo=timezone.utc)


def test_december_ends_at_the_new_year_and_a_quarter_spans_three_months():
    assert period("2026-12").ends_at == datetime(2026, 12, 31, 16, tzinfo=timezone.utc)
    q4 = period("2026-q4")
    assert (q4.label, q4.first_day.isoformat(), q4.next_first_day.isoformat()) == ("2026-Q4", "2026-10-01", "2027-01-01")
    assert period("2026-Q1").next_first_day.isoformat() == "2026-04-01"


@pytest.mark.parametrize("label", ["2026-13", "2026-00", "2026-3", "26-03", "2026-Q5", "2026-Q0", "1999-01", "2101-01", "", "2026/03", "2026-03-01"])
def test_other_periods_are_refused(label):
    with pytest.raises(InvalidPeriod):
        period(label)


def test_the_current_month_is_the_banks_not_utcs():
    # 20:00 UTC on 31 March is already 1 April in Shanghai.
    assert current_month(datetime(2026, 3, 31, 20, tzinfo=timezone.utc)) == "2026-04"


def test_an_incentive_pays_per_loan_plus_basis_points():
    terms = IncentiveTerms(per_disbursed_loan_fen=5_000, disbursed_bps=15)

    earned = incentive(terms, direct_loans=2, direct_fen=4_000_000)

    # 2 × 50.00 yuan + 0.15 % of 40,000.00 yuan = 100.00 + 60.00
    assert (earned.uncapped_fen, earned.amount_fen, earned.capped) == (16_000, 16_000, False)


def test_loans_through_customers_are_paid_at_the_indirect_share():
    terms = IncentiveTerms(per_disbursed_loan_fen=5_000, disbursed_bps=15, indirect_share_bps=5_000)

    earned = incentive(terms, direct_loans=1, direct_fen=3_000_000, indirect_loans=1, indirect_fen=1_000_000)

    # direct 50.00 + 45.00; indirect (50.00 + 15.00) / 2 = 32.50
    assert earned.amount_fen == 9_500 + 3_250


def test_fractions_of_a_fen_are_carried_and_rounded_once_half_up():
    terms = IncentiveTerms(disbursed_bps=50, indirect_share_bps=5_000)

    # 0.4 fen direct + 0.2 fen indirect = 0.6 fen → 1 (rounding each part would give 0)
    assert incentive(terms, direct_loans=1, direct_fen=80, indirect_loans=1, indirect_fen=80).amount_fen == 1
    # exactly half a fen rounds up, just under half rounds down
    assert incentive(terms, direct_loans=1, direct_fen=100).amount_fen == 1
    assert incentive(terms, direct_loans=1, direct_fen=99).amount_fen == 0


def test_the_cap_binds_after_rounding():
    terms = IncentiveTerms(per_disbursed_loan_fen=5_000, disbursed_bps=15, cap_fen=10_000)

    earned = incentive(terms, direct_loans=3, direct_fen=9_000_000)

    assert (earned.uncapped_fen, earned.amount_fen, earned.capped) == (28_500, 10_000, True)


def test_money_is_never_a_float_nor_negative():
    terms = IncentiveTerms(per_disbursed_loan_fen=100)
    with pytest.raises(FloatMoney):
        incentive(terms, direct_loans=1, direct_fen=100.0)
    with pytest.raises(ValueError):
        incentive(terms, direct_loans=-1, direct_fen=0)
