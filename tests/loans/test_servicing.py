"""Servicing as pure arithmetic: classification and buckets, the status tables, penalty interest
by segments, allocation order, early repayment and the payoff quote — no database."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import pytest

from infra.errors import IllegalTransition
from infra.money import FloatMoney
from lending_core.loans import schedule as schedules
from lending_core.loans import servicing
from lending_core.loans.servicing import (
    INSTALMENT_STATUS,
    LOAN_STATUS,
    InstalmentState,
    InvalidAmount,
    LoanAlreadyClosed,
    LoanState,
    PrepaymentNotSchedulable,
    RepaymentExceedsPayoff,
)

DRAWN = date(2025, 1, 31)


def loan(method="equal_instalment", principal=1_200_000, rate=720, term=12, *, fee_bps=0, allocation=("penalty", "interest", "principal"), day_basis=360):
    plan = schedules.build_schedule(method, principal, rate, term, DRAWN)
    return LoanState(
        id=7, bank_id=1, principal_fen=principal, rate_bps=rate, penalty_rate_bps=schedules.penalty_rate_bps(rate), term_months=term,
        method=method, day_basis=day_basis, allocation=tuple(allocation), early_repayment_fee_bps=fee_bps, drawn_on=DRAWN,
        instalments=[InstalmentState(i.number, i.due_date, i.principal_fen, i.interest_fen) for i in plan.instalments],
    ), plan


@pytest.mark.parametrize(
    "dpd, tier, bucket",
    [(0, "normal", "current"), (1, "special_mention", "1-30"), (30, "special_mention", "1-30"), (31, "special_mention", "31-60"),
     (60, "special_mention", "31-60"), (61, "special_mention", "61-90"), (90, "special_mention", "61-90"), (91, "substandard", "90+"),
     (180, "substandard", "90+"), (181, "doubtful", "90+"), (360, "doubtful", "90+"), (361, "loss", "90+"), (5000, "loss", "90+")],
)
def test_classification_and_bucket_by_days_past_due(dpd, tier, bucket):
    assert servicing.classify(dpd) == tier
    assert servicing.bucket(dpd) == bucket


ALL_INSTALMENT = {("fall_due", "scheduled"): "due", ("go_overdue", "due"): "overdue", ("settle", "due"): "paid",
                  ("settle", "overdue"): "paid", ("prepay", "scheduled"): "prepaid"}


@pytest.mark.parametrize("table, allowed", [(INSTALMENT_STATUS, ALL_INSTALMENT),
                                            (LOAN_STATUS, {("service", "active"): "active", ("repay", "active"): "active", ("close", "active"): "closed"})])
def test_status_tables_allow_exactly_their_pairs_and_raise_otherwise(table, allowed):
    for event in table.events:
        for status in table.statuses:
            if (event, status) in allowed:
                assert table.next(status, event) == allowed[(event, status)]
            else:
                with pytest.raises(IllegalTransition):
                    table.next(status, event)


def test_interest_falls_due_on_the_due_date_and_is_posted_once():
    state, plan = loan()
    first = plan.instalments[0]
    before = servicing.bring_up_to_date(state, first.due_date - timedelta(days=1))
    assert before.entries == [] and state.instalments[0].status == "scheduled"
    on_due = servicing.bring_up_to_date(state, first.due_date)
    assert [(e.kind, e.amounts) for e in on_due.entries] == [("interest_due", (("interest", first.interest_fen), ("interest_income", -first.interest_fen)))]
    assert state.instalments[0].status == "due" and state.dpd == 0
    assert servicing.bring_up_to_date(state, first.due_date).entries == []  # idempotent


def test_penalty_by_the_day_is_the_same_daily_or_after_a_gap():
    daily, plan = loan()
    gap, _ = loan()
    due = plan.instalments[0].due_date
    posted = 0
    for day in range(0, 50):
        posted += sum(e.amounts[0][1] for e in servicing.bring_up_to_date(daily, due + timedelta(days=day)).entries if e.kind == "penalty_accrual")
    gapped = sum(e.amounts[0][1] for e in servicing.bring_up_to_date(gap, due + timedelta(days=49)).entries if e.kind == "penalty_accrual")
    # Instalment 1 has been overdue 49 days, instalment 2 (due 28 Feb… well, the 28th) a few.
    expected = sum(
        schedules.accrue(i.principal_fen, daily.penalty_rate_bps, (due + timedelta(days=49) - i.due_date).days)
        for i in plan.instalments if i.due_date < due + timedelta(days=49)
    )
    assert posted == gapped == expected > 0
    assert daily.dpd == gap.dpd == 49 and daily.classification == "special_mention"


def test_penalty_accrues_on_overdue_principal_only_and_restarts_after_a_part_payment():
    state, plan = loan(allocation=("principal", "interest", "penalty"))
    first = plan.instalments[0]
    servicing.bring_up_to_date(state, first.due_date + timedelta(days=10))
    accrued = schedules.accrue(first.principal_fen, state.penalty_rate_bps, 10)
    assert state.instalments[0].penalty_fen == accrued
    part = first.principal_fen // 2
    servicing.allocate(state, first.due_date + timedelta(days=10), part, key="k", early=False)
    servicing.bring_up_to_date(state, first.due_date + timedelta(days=16))
    later = schedules.accrue(first.principal_fen - part, state.penalty_rate_bps, 6)
    assert state.instalments[0].penalty_fen == accrued + later


def test_allocation_follows_the_contract_order_oldest_instalment_first():
    for order in (("penalty", "interest", "principal"), ("principal", "interest", "penalty"), ("interest", "principal", "penalty")):
        state, plan = loan(allocation=order)
        on = plan.instalments[1].due_date + timedelta(days=5)
        servicing.bring_up_to_date(state, on)
        oldest = state.instalments[0]
        owed = {part: oldest.owed_part(part) for part in order}
        amount = owed[order[0]] + 1  # the first part in full, one fen of the second
        result = servicing.allocate(state, on, amount, key="k", early=False)
        assert getattr(result, f"{order[0]}_fen") == owed[order[0]]
        assert getattr(result, f"{order[1]}_fen") == 1
        assert getattr(result, f"{order[2]}_fen") == 0
        newer = state.instalments[1]
        assert newer.principal_paid_fen == newer.interest_paid_fen == newer.penalty_paid_fen == 0  # untouched


def test_payoff_quote_matches_the_schedule_payoff_for_a_performing_loan():
    state, plan = loan(fee_bps=100)
    for paid in range(0, 11):
        current, _ = loan(fee_bps=100)
        on = (plan.instalments[paid - 1].due_date if paid else DRAWN) + timedelta(days=9)
        for i in current.instalments[:paid]:
            i.status, i.principal_paid_fen, i.interest_paid_fen = "paid", i.principal_fen, i.interest_fen
        servicing.bring_up_to_date(current, on)
        quote = servicing.payoff_quote(current, on)
        expected = schedules.payoff(plan, paid, on)
        assert (quote.later_principal_fen, quote.accrued_interest_fen) == (expected.principal_fen, expected.interest_fen)
        assert quote.fee_fen == schedules.fee_fen(expected.principal_fen, 100) and quote.due_fen == 0


def test_exact_payoff_closes_and_more_is_refused():
    state, plan = loan(fee_bps=100)
    on = DRAWN + timedelta(days=20)
    servicing.bring_up_to_date(state, on)
    quote = servicing.payoff_quote(state, on)
    with pytest.raises(RepaymentExceedsPayoff):
        servicing.allocate(servicing.copy(state), on, quote.total_fen + 1, key="k")
    result = servicing.allocate(state, on, quote.total_fen, key="k")
    assert result.closes and state.status == "closed"
    assert (result.principal_fen, result.accrued_interest_fen, result.fee_fen) == (1_200_000, quote.accrued_interest_fen, 12_000)
    assert all(i.status == "prepaid" and i.principal_fen == i.interest_fen == 0 for i in state.instalments)
    with pytest.raises(LoanAlreadyClosed):
        servicing.allocate(state, on, 1, key="k2")


@pytest.mark.parametrize("method", schedules.METHODS)
def test_partial_early_repayment_reamortises_what_is_not_yet_due(method):
    term = 6 if method == "bullet" else 12
    state, plan = loan(method, term=term)
    on = DRAWN + timedelta(days=10)
    servicing.bring_up_to_date(state, on)
    result = servicing.allocate(state, on, 300_000, key="k")
    assert result.amount_fen == result.principal_fen + result.interest_fen + result.fee_fen == 300_000
    assert result.accrued_interest_fen == result.interest_fen
    remaining = 1_200_000 - result.principal_fen
    replan = schedules.build_schedule(method, remaining, 720, term, DRAWN)
    assert [(i.principal_fen, i.interest_fen) for i in state.instalments] == [(i.principal_fen, i.interest_fen) for i in replan.instalments]
    assert sum(i.principal_fen for i in state.instalments) + result.prepaid_principal_fen == 1_200_000
    # Interest on the prepaid principal for the 10 days, give or take the fen that rounding moves to principal.
    assert abs(result.interest_fen - schedules.accrue(result.principal_fen, 720, 10)) <= 1


def test_amounts_must_be_positive_whole_fen():
    state, _ = loan()
    servicing.bring_up_to_date(state, DRAWN)
    for bad in (0, -5, True, "100"):
        with pytest.raises(InvalidAmount):
            servicing.allocate(servicing.copy(state), DRAWN, bad, key="k")
    with pytest.raises(FloatMoney):
        servicing.allocate(servicing.copy(state), DRAWN, 100.0, key="k")


def test_an_early_repayment_that_leaves_too_little_to_schedule_is_refused():
    state, _ = loan(principal=20_000)
    on = DRAWN + timedelta(days=3)
    servicing.bring_up_to_date(state, on)
    quote = servicing.payoff_quote(state, on)
    with pytest.raises(PrepaymentNotSchedulable):
        servicing.allocate(state, on, quote.total_fen - 8, key="k")  # leaves 8 fen over 12 months: unschedulable


def test_an_auto_debit_never_repays_early():
    state, plan = loan()
    on = plan.instalments[0].due_date
    servicing.bring_up_to_date(state, on)
    with pytest.raises(RepaymentExceedsPayoff):
        servicing.allocate(state, on, plan.instalments[0].total_fen + 1, key="k", early=False)


def test_the_last_instalment_paid_closes_the_loan():
    state, plan = loan("bullet", term=3)
    on = plan.instalments[0].due_date
    servicing.bring_up_to_date(state, on)
    result = servicing.allocate(state, on, plan.total_fen, key="k", early=False)
    assert result.closes and result.principal_fen == 1_200_000 and result.interest_fen == plan.total_interest_fen


def test_the_fee_rule_lives_in_the_schedule_module():
    assert schedules.fee_fen(1_000_000, 100) == 10_000
    assert schedules.fee_fen(150, 100) == 2  # 1.5 fen, half up
    assert schedules.fee_fen(149, 100) == 1
    with pytest.raises(FloatMoney):
        schedules.fee_fen(1.0, 100)


def test_copy_leaves_the_loan_alone():
    state, _ = loan()
    other = servicing.copy(state)
    servicing.bring_up_to_date(other, DRAWN + timedelta(days=400))
    assert all(i.status == "scheduled" for i in state.instalments)
    assert dataclasses.replace(state) == state
