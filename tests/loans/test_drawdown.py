"""Drawdowns (用信): a loan receipt with the schedule the preview showed, paid out once into the
borrower's account, double-entry, with its event and audit row — and every refusal moves nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from infra.audit import AuditEntry
from infra.errors import NotFound
from infra.outbox import OutboxMessage
from integrations.core_banking_sandbox import SandboxCoreBanking
from integrations.data_sandbox import SandboxPropertyRegistry
from lending_core.ledger import service as ledger
from lending_core.loans import errors, schedule, service
from lending_core.loans.models import LoanReceipt
from lending_core.loans.ports import CoreBankingUnavailable
from tests.loans.lines import START, as_customer, credit_line, deposit, movement_counts, owed, person, rows, sandbox_balance


@pytest.fixture
def core():
    return SandboxCoreBanking()


async def draw(customer, contract, amount, key="k1", *, core, on=START, properties=None):
    return await service.draw(as_customer(customer), contract.id, amount, key, core_banking=core,
                              properties=properties or SandboxPropertyRegistry(), on=on)


async def test_the_preview_is_the_schedule_the_drawdown_makes(demo, core):
    borrower = await person()
    line = await credit_line(borrower, limit_fen=5_000_000, rate_bps=612, term_months=24, method="equal_principal")
    preview = await service.preview_drawdown(as_customer(borrower), line.id, 1_234_567, on=START)
    expected = schedule.build_schedule("equal_principal", 1_234_567, 612, 24, START)
    assert preview.schedule == expected and preview.apr_bps == 612 and preview.available_fen == 5_000_000
    loan = await draw(borrower, line, 1_234_567, core=core)
    assert [(r.number, r.due_date, r.principal_fen, r.interest_fen, r.status) for r in await rows(loan.id)] == [
        (i.number, i.due_date, i.principal_fen, i.interest_fen, "scheduled") for i in expected.instalments
    ]
    assert (loan.drawn_on, loan.maturity_date, loan.penalty_rate_bps, loan.day_basis) == (START, expected.instalments[-1].due_date, 918, 360)


async def test_a_drawdown_pays_out_once_double_entry_with_its_event_and_audit_row(demo, core):
    borrower = await person()
    line = await credit_line(borrower)
    loan = await draw(borrower, line, 300_000, core=core)
    assert await owed(loan.id) == {"principal": 300_000, "interest": 0, "penalty": 0}
    assert await sandbox_balance(loan.settlement_account) == (300_000, 0)
    assert await ledger.balances([loan.settlement_ledger_account_id]) == {loan.settlement_ledger_account_id: -300_000}
    assert await ledger.unbalanced_transactions() == [] and await ledger.total_of_all_accounts() == 0
    event = await OutboxMessage.get(topic="loans.loan_disbursed")
    assert event.payload["loan_id"] == loan.id and event.payload["principal_fen"] == 300_000
    audit = await AuditEntry.get(action="loan.disburse")
    assert (audit.actor_kind, audit.actor_id, audit.object_id) == ("customer", str(borrower.id), str(loan.id))

    counts = await movement_counts()
    again = await draw(borrower, line, 300_000, core=core)  # the same key: a retry
    assert again.id == loan.id and await movement_counts() == counts
    assert await sandbox_balance(loan.settlement_account) == (300_000, 0)
    with pytest.raises(errors.DrawdownKeyReused):
        await draw(borrower, line, 300_001, core=core)


async def test_the_line_revolves_up_to_its_limit(demo, core):
    borrower = await person()
    line = await credit_line(borrower, limit_fen=1_000_000)
    first = await draw(borrower, line, 600_000, "a", core=core)
    await draw(borrower, line, 400_000, "b", core=core)
    counts = await movement_counts()
    with pytest.raises(errors.CreditLimitExceeded) as refused:
        await draw(borrower, line, 1, "c", core=core)
    assert refused.value.details == {"limit_fen": 1_000_000, "outstanding_fen": 1_000_000, "available_fen": 0}
    assert await movement_counts() == counts and await LoanReceipt.all().count() == 2
    # Paying the first off frees its principal on the line.
    on = START + timedelta(days=3)
    quote = (await service.payoff_quote(as_customer(borrower), first.id, on=on))[1]
    await deposit(core, "HZRCB", borrower.id, quote.total_fen, "salary")
    await service.repay(as_customer(borrower), first.id, quote.total_fen, "payoff", core_banking=core, on=on)
    third = await draw(borrower, line, 600_000, "c", core=core, on=on)
    assert third.principal_fen == 600_000


@pytest.mark.parametrize("status", ["awaiting_signatures", "expired", "cancelled", "closed"])
async def test_only_an_effective_line_is_drawn(demo, core, status):
    borrower = await person()
    line = await credit_line(borrower, status=status)
    with pytest.raises(errors.ContractNotEffective):
        await draw(borrower, line, 100_000, core=core)
    assert await movement_counts() == (0, 0, 0)


async def test_a_line_is_not_drawn_on_or_after_its_expiry(demo, core):
    borrower = await person()
    line = await credit_line(borrower, line_expires_on=START + timedelta(days=30))
    await draw(borrower, line, 100_000, "a", core=core, on=START + timedelta(days=29))
    counts = await movement_counts()
    for on in (START + timedelta(days=30), START + timedelta(days=400)):
        with pytest.raises(errors.CreditLineExpired):
            await draw(borrower, line, 100_000, f"b{on}", core=core, on=on)
        with pytest.raises(errors.CreditLineExpired):
            await service.preview_drawdown(as_customer(borrower), line.id, 100_000, on=on)
    assert await movement_counts() == counts


async def test_bad_amounts_are_refused(demo, core):
    borrower = await person()
    line = await credit_line(borrower, term_months=12)
    for amount in (0, -100):
        with pytest.raises(errors.InvalidAmount):
            await draw(borrower, line, amount, core=core)
    with pytest.raises(errors.ScheduleRefused):
        await draw(borrower, line, 8, core=core)  # 8 fen cannot be repaid in 12 equal instalments
    assert await movement_counts() == (0, 0, 0)


async def test_someone_elses_line_does_not_exist_and_a_guarantor_does_not_draw(demo, core):
    borrower, guarantor, stranger = await person(), await person(), await person()
    line = await credit_line(borrower, parties=(("guarantor", guarantor),))
    with pytest.raises(NotFound):
        await draw(stranger, line, 100_000, core=core)
    with pytest.raises(errors.NotTheBorrower):
        await draw(guarantor, line, 100_000, core=core)
    assert await movement_counts() == (0, 0, 0)


async def test_a_deposit_pledge_freezes_the_principal_first_and_the_payoff_releases_it(demo, core):
    borrower = await person("deposit_holder")
    line = await credit_line(borrower, collateral="deposit_pledge", method="bullet", term_months=6, rate_bps=400)
    deposit_account = await deposit(core, "HZRCB", borrower.id, 500_000, "time-deposit", kind="time_deposit")
    with pytest.raises(errors.PledgeInsufficient):
        await draw(borrower, line, 500_001, "too-much", core=core)
    assert await sandbox_balance(deposit_account) == (500_000, 0) and await LoanReceipt.all().count() == 0

    loan = await draw(borrower, line, 500_000, core=core)
    assert loan.pledge_account == deposit_account and loan.pledged_fen == 500_000
    assert await sandbox_balance(deposit_account) == (500_000, 500_000)
    assert await ledger.balances([loan.pledge_ledger_account_id]) == {loan.pledge_ledger_account_id: 500_000}

    on = START + timedelta(days=45)
    quote = (await service.payoff_quote(as_customer(borrower), loan.id, on=on))[1]
    assert quote.accrued_interest_fen == schedule.accrue(500_000, 400, 45)
    await deposit(core, "HZRCB", borrower.id, quote.total_fen, "salary")
    repayment = await service.repay(as_customer(borrower), loan.id, quote.total_fen, "payoff", core_banking=core, on=on)
    assert repayment.closed_loan
    assert await sandbox_balance(deposit_account) == (500_000, 0)
    assert await ledger.balances([loan.pledge_ledger_account_id]) == {loan.pledge_ledger_account_id: 0}
    assert await OutboxMessage.filter(topic="loans.loan_closed").count() == 1


async def test_a_mortgage_loan_needs_a_home_on_the_register(demo, core):
    owner, tenant = await person("home_owner"), await person("thin_file")
    for customer, registered in ((owner, True), (tenant, False)):
        line = await credit_line(customer, collateral="property_mortgage", servicing={"day_basis": 365, "early_repayment_fee_bps": 100})
        if registered:
            loan = await draw(customer, line, 2_000_000, core=core)
            assert loan.property_certificate and loan.day_basis == 365 and loan.early_repayment_fee_bps == 100
        else:
            with pytest.raises(errors.PropertyNotRegistered):
                await draw(customer, line, 2_000_000, core=core)
    assert await LoanReceipt.all().count() == 1


async def test_core_banking_down_means_nothing_recorded_and_nothing_paid(demo, core):
    borrower = await person()
    line = await credit_line(borrower)
    account = await core.account_of("HZRCB", borrower.id, "settlement")

    class FailsOnCredit(SandboxCoreBanking):
        async def credit(self, account, amount_fen, key):
            raise CoreBankingUnavailable()

    with pytest.raises(CoreBankingUnavailable):
        await draw(borrower, line, 100_000, core=FailsOnCredit())
    assert await LoanReceipt.all().count() == 0 and await movement_counts() == (0, 0, 0)
    assert await OutboxMessage.filter(topic="loans.loan_disbursed").count() == 0
    assert await sandbox_balance(account) == (0, 0)
    loan = await draw(borrower, line, 100_000, core=core)  # the retry, once the bank answers
    assert await sandbox_balance(account) == (100_000, 0) and loan.principal_fen == 100_000
