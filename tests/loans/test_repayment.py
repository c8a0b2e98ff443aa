"""Repayments: what is owed follows the schedule to the fen at every due date; repayments are
allocated in the contract's order, repay early with the fee, close the loan on the payoff; and
bad or repeated requests move nothing (or move once)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from infra.audit import AuditEntry
from infra.errors import NotFound
from infra.outbox import OutboxMessage
from integrations.core_banking_sandbox import SandboxCoreBanking
from integrations.data_sandbox import SandboxPropertyRegistry
from lending_core.ledger import service as ledger
from lending_core.loans import daily, errors, schedule, service
from tests.loans.lines import START, as_customer, credit_line, deposit, movement_counts, owed, person, reload, repayments, rows, sandbox_balance


@pytest.fixture
def core():
    return SandboxCoreBanking()


async def drawn(core, *, principal=1_200_000, rate=720, term=12, method="equal_instalment", servicing=None, parties=()):
    borrower = await person()
    line = await credit_line(borrower, rate_bps=rate, term_months=term, method=method, servicing=servicing, parties=parties)
    loan = await service.draw(as_customer(borrower), line.id, principal, "draw", core_banking=core,
                              properties=SandboxPropertyRegistry(), on=START)
    return borrower, loan, schedule.build_schedule(method, principal, rate, term, START)


async def repay(customer, loan, amount, key, *, core, on):
    return await service.repay(as_customer(customer), loan.id, amount, key, core_banking=core, on=on)


@pytest.mark.parametrize("method", schedule.METHODS)
async def test_a_performing_loan_owes_the_schedules_figures_at_every_due_date(demo, core, method):
    term = 12 if method == "bullet" else 6
    borrower, loan, plan = await drawn(core, method=method, term=term, principal=987_654, rate=1_035)
    await core.debit(loan.settlement_account, loan.principal_fen, "spent")  # else the auto-debit would pay from the loan itself
    for number, instalment in enumerate(plan.instalments, start=1):
        # The day's job makes the interest receivable; the ledger then says exactly what the schedule says.
        await daily.run(instalment.due_date, core_banking=core, bank_codes=["HZRCB"])
        assert await owed(loan.id) == {"principal": schedule.remaining_principal(plan, number - 1), "interest": instalment.interest_fen, "penalty": 0}
        await deposit(core, "HZRCB", borrower.id, instalment.total_fen, f"salary{number}")
        await repay(borrower, loan, instalment.total_fen, f"r{number}", core=core, on=instalment.due_date)
        assert await owed(loan.id) == {"principal": schedule.remaining_principal(plan, number), "interest": 0, "penalty": 0}
    assert (await reload(loan.id)).status == "closed"
    assert [(r.principal_fen, r.interest_fen) for r in await repayments(loan.id)] == [(i.principal_fen, i.interest_fen) for i in plan.instalments]
    assert await ledger.unbalanced_transactions() == [] and await ledger.total_of_all_accounts() == 0


async def test_the_daily_auto_debit_keeps_a_funded_loan_on_schedule(demo, core):
    borrower, loan, plan = await drawn(core, term=3)
    await deposit(core, "HZRCB", borrower.id, plan.total_fen, "salary")  # the 1,200,000 paid out stay there too
    for number, instalment in enumerate(plan.instalments, start=1):
        report = await daily.run(instalment.due_date, core_banking=core, bank_codes=["HZRCB"])
        assert report.banks[0].collected_fen == instalment.total_fen
        assert await owed(loan.id) == {"principal": schedule.remaining_principal(plan, number), "interest": 0, "penalty": 0}
    assert (await reload(loan.id)).status == "closed"
    balance, _ = await sandbox_balance(loan.settlement_account)
    assert balance == 1_200_000 + plan.total_fen - plan.total_fen
    topics = [m.topic for m in await OutboxMessage.filter(topic__startswith="loans.").order_by("id")]
    assert topics == ["loans.loan_disbursed"] + ["loans.loan_repaid"] * 3 + ["loans.loan_closed"]


async def test_a_late_repayment_pays_penalty_then_interest_then_principal(demo, core):
    borrower, loan, plan = await drawn(core)
    first = plan.instalments[0]
    on = first.due_date + timedelta(days=20)
    penalty = schedule.accrue(first.principal_fen, loan.penalty_rate_bps, 20)
    await deposit(core, "HZRCB", borrower.id, 10_000_000, "salary")
    done = await repay(borrower, loan, penalty + first.interest_fen + 100, "late", core=core, on=on)
    assert (done.penalty_fen, done.interest_fen, done.principal_fen) == (penalty, first.interest_fen, 100)
    state = await reload(loan.id)
    assert (state.dpd, state.classification) == (20, "special_mention")
    assert await owed(loan.id) == {"principal": 1_200_000 - 100, "interest": 0, "penalty": 0}
    # The rest of the instalment: the loan is current again.
    rest = await repay(borrower, loan, first.principal_fen - 100, "rest", core=core, on=on)
    assert rest.principal_fen == first.principal_fen - 100 and (await reload(loan.id)).dpd == 0


async def test_the_contracts_own_allocation_order_is_used(demo, core):
    borrower, loan, plan = await drawn(core, servicing={"allocation": ["principal", "interest", "penalty"]})
    first = plan.instalments[0]
    await deposit(core, "HZRCB", borrower.id, 10_000_000, "salary")
    done = await repay(borrower, loan, first.principal_fen + 1, "p", core=core, on=first.due_date + timedelta(days=5))
    assert (done.principal_fen, done.interest_fen, done.penalty_fen) == (first.principal_fen, 1, 0)
    assert (await owed(loan.id))["penalty"] == schedule.accrue(first.principal_fen, loan.penalty_rate_bps, 5)


async def test_a_partial_early_repayment_lowers_the_instalments_left(demo, core):
    borrower, loan, plan = await drawn(core, servicing={"early_repayment_fee_bps": 200})
    on = START + timedelta(days=10)
    done = await repay(borrower, loan, 500_000, "early", core=core, on=on)  # from the drawdown money itself
    assert done.amount_fen == done.principal_fen + done.interest_fen + done.fee_fen == 500_000
    assert done.fee_fen == schedule.fee_fen(done.prepaid_principal_fen, 200) and done.accrued_interest_fen == done.interest_fen
    left = 1_200_000 - done.principal_fen
    assert await owed(loan.id) == {"principal": left, "interest": 0, "penalty": 0}
    replan = schedule.build_schedule("equal_instalment", left, 720, 12, START)
    assert [(r.principal_fen, r.interest_fen, r.due_date) for r in await rows(loan.id)] == [
        (i.principal_fen, i.interest_fen, p.due_date) for i, p in zip(replan.instalments, plan.instalments)
    ]


async def test_the_payoff_quote_closes_the_loan_and_a_closed_loan_takes_nothing(demo, core):
    borrower, loan, plan = await drawn(core, servicing={"early_repayment_fee_bps": 100, "day_basis": 365})
    on = plan.instalments[2].due_date + timedelta(days=7)
    await deposit(core, "HZRCB", borrower.id, 10_000_000, "salary")
    for number, instalment in enumerate(plan.instalments[:3], start=1):
        await repay(borrower, loan, instalment.total_fen, f"r{number}", core=core, on=instalment.due_date)
    _, quote = await service.payoff_quote(as_customer(borrower), loan.id, on=on)
    expected = schedule.payoff(plan, 3, on, day_basis=365)
    assert (quote.due_fen, quote.later_principal_fen, quote.accrued_interest_fen) == (0, expected.principal_fen, expected.interest_fen)
    assert quote.fee_fen == schedule.fee_fen(expected.principal_fen, 100)
    counts = await movement_counts()
    with pytest.raises(errors.RepaymentExceedsPayoff) as refused:
        await repay(borrower, loan, quote.total_fen + 1, "too-much", core=core, on=on)
    assert refused.value.details["payoff_fen"] == quote.total_fen and await movement_counts() == counts
    done = await repay(borrower, loan, quote.total_fen, "payoff", core=core, on=on)
    assert done.closed_loan and (await reload(loan.id)).closed_on == on
    assert await owed(loan.id) == {"principal": 0, "interest": 0, "penalty": 0}
    counts = await movement_counts()
    with pytest.raises(errors.LoanAlreadyClosed):
        await repay(borrower, loan, 100, "after", core=core, on=on)
    with pytest.raises(errors.LoanAlreadyClosed):
        await service.payoff_quote(as_customer(borrower), loan.id, on=on)
    assert await movement_counts() == counts
    assert (await repay(borrower, loan, quote.total_fen, "payoff", core=core, on=on)).id == done.id  # a retry still answers


async def test_bad_amounts_and_empty_accounts_move_nothing(demo, core):
    borrower, loan, plan = await drawn(core)
    on = START + timedelta(days=3)
    await core.debit(loan.settlement_account, 1_200_000, "spent")  # the customer spent the loan
    counts = await movement_counts()
    for amount in (0, -1, -1_000_000):
        with pytest.raises(errors.InvalidAmount):
            await repay(borrower, loan, amount, f"bad{amount}", core=core, on=on)
    with pytest.raises(errors.InsufficientFunds):
        await repay(borrower, loan, 1_000, "no-money", core=core, on=on)
    assert await movement_counts() == counts and await repayments(loan.id) == []
    assert await owed(loan.id) == {"principal": 1_200_000, "interest": 0, "penalty": 0}


async def test_a_retried_repayment_moves_money_once(demo, core):
    borrower, loan, _ = await drawn(core)
    on = START + timedelta(days=3)
    first = await repay(borrower, loan, 50_000, "same", core=core, on=on)
    counts, balance = await movement_counts(), await sandbox_balance(loan.settlement_account)
    again = await repay(borrower, loan, 50_000, "same", core=core, on=on)
    assert again.id == first.id and await movement_counts() == counts and await sandbox_balance(loan.settlement_account) == balance
    with pytest.raises(errors.RepaymentKeyReused):
        await repay(borrower, loan, 50_001, "same", core=core, on=on)
    assert await AuditEntry.filter(action="loan.repay").count() == 1


async def test_a_co_borrower_repays_from_their_own_account_and_a_guarantor_only_reads(demo, core):
    guarantor, co_borrower, stranger = await person(), await person(), await person()
    borrower, loan, _ = await drawn(core, parties=(("guarantor", guarantor), ("co_borrower", co_borrower)))
    on = START + timedelta(days=3)
    own = await deposit(core, "HZRCB", co_borrower.id, 20_000, "their-salary")
    done = await repay(co_borrower, loan, 20_000, "co", core=core, on=on)
    assert done.payer_customer_id == co_borrower.id and await sandbox_balance(own) == (0, 0)
    with pytest.raises(errors.RepaymentNotAllowed):
        await repay(guarantor, loan, 1_000, "g", core=core, on=on)
    with pytest.raises(NotFound):
        await repay(stranger, loan, 1_000, "s", core=core, on=on)
    for customer, capacity in ((borrower, "borrower"), (co_borrower, "co_borrower"), (guarantor, "guarantor")):
        assert [(l.id, c) for l, c, _ in await service.loans_for_customer(as_customer(customer))] == [(loan.id, capacity)]
        assert (await service.loan_for_customer(as_customer(customer), loan.id)).capacity == capacity
    assert await service.loans_for_customer(as_customer(stranger)) == []
    with pytest.raises(NotFound):
        await service.loan_for_customer(as_customer(stranger), loan.id)
