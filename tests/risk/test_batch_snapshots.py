"""Refreshing what the batch reads: each source asked once per customer and refresh (not per
loan), a source that is down fails only its customers (reported, retried, their loans deferred),
and the loan's own facts derived from the loan book."""

from __future__ import annotations

from datetime import timedelta

from infra import clock
from integrations.core_banking_sandbox import SandboxCoreBanking
from lending_core.loans import daily
from lending_core.org.models import Bank
from lending_core.risk import batch, snapshots
from lending_core.risk.feeds import from_data_sources
from lending_core.risk.models import CourtSnapshot, LoanFacts, WarningSignal
from lending_core.risk.ports import SourceUnavailable
from server.providers import sandbox_data_sources
from tests.loans.lines import START
from tests.risk.book import real_loan


class CountingFeed:
    """A bulk court feed that counts who it was asked about and can be down for some people."""

    group = "court"
    batch_size = 50

    def __init__(self, down_for: set[int] = frozenset()):
        self.asked: list[int] = []
        self.calls = 0
        self.down_for = set(down_for)

    async def fetch(self, people, *, bank_code):
        self.calls += 1
        self.asked += [p.customer_id for p in people]
        if any(p.customer_id in self.down_for for p in people):
            raise SourceUnavailable("court")
        return {p.customer_id: {"new_cases_3m": 0, "dishonest_debtor": False, "divorce_case_3m": True} for p in people}


async def test_each_customer_is_asked_once_whatever_its_loans_and_roles(demo):
    loan, borrower, guarantor, co_borrower = await real_loan()
    await snapshots.refresh_loan_facts(loan.bank_id, START + timedelta(days=40))
    feed = CountingFeed()
    report = await snapshots.refresh_snapshots(loan.bank_id, [feed])
    assert sorted(feed.asked) == sorted({borrower.id, guarantor.id, co_borrower.id}) and feed.calls == 1
    assert report.asked == {"court": 3} and report.failed == {"court": 0}
    # Refreshed today: a second refresh (say, another bank's, or a rerun) asks no one again.
    again = CountingFeed()
    await snapshots.refresh_snapshots(loan.bank_id, [again])
    assert again.asked == []
    row = await CourtSnapshot.get(customer_id=borrower.id)
    assert row.divorce_case_3m is True and row.fetched_at is not None


async def test_a_source_down_fails_its_customers_the_rest_proceed_and_a_retry_asks_only_them(demo):
    down_loan, down_borrower, *_ = await real_loan()
    fine_loan, fine_borrower, *_ = await real_loan()
    hz = await Bank.get(id=down_loan.bank_id)
    feed = CountingFeed(down_for={down_borrower.id})
    feed.batch_size = 1  # a per-customer source: one person's failure fails only that person
    report = await snapshots.refresh_snapshots(hz.id, [feed], customers=[down_borrower.id, fine_borrower.id])
    assert report.failed == {"court": 1}
    failed = await CourtSnapshot.get(customer_id=down_borrower.id)
    assert failed.failure == "source_unavailable" and failed.fetched_at is None

    result = await batch.run_bank(hz, START + timedelta(days=40), worker="t")
    assert result.deferred == 1 and result.loans == 1
    assert await WarningSignal.filter(loan_id=fine_loan.id, rule_code="CRT_DIVORCE_CASE").exists()
    assert not await WarningSignal.filter(loan_id=down_loan.id).exists()

    retry = CountingFeed()
    again = await snapshots.refresh_snapshots(hz.id, [retry], customers=[down_borrower.id, fine_borrower.id], only_failed=True)
    assert retry.asked == [down_borrower.id] and again.failed == {"court": 0}
    retried = await batch.retry_deferred(hz, START + timedelta(days=40))
    assert retried.loans == 1
    assert await WarningSignal.filter(loan_id=down_loan.id, rule_code="CRT_DIVORCE_CASE").exists()


async def test_the_sandbox_sources_fill_the_snapshots_and_a_court_persona_fires(demo):
    loan, borrower, *_ = await real_loan(persona="court_enforcement")
    on = START + timedelta(days=40)
    await snapshots.refresh_loan_facts(loan.bank_id, on)
    report = await snapshots.refresh_snapshots(loan.bank_id, from_data_sources(sandbox_data_sources()))
    assert all(n == 0 for n in report.failed.values()), report.failed
    court = await CourtSnapshot.get(customer_id=borrower.id)
    assert court.active_enforcements >= 1
    await batch.run_bank(await Bank.get(id=loan.bank_id), on, worker="t")
    assert await WarningSignal.filter(loan_id=loan.id, rule_code="CRT_UNDER_ENFORCEMENT", status="open").exists()


async def test_loan_facts_follow_the_loan_book(demo):
    loan, borrower, guarantor, co_borrower = await real_loan()
    core = SandboxCoreBanking()
    await core.debit(loan.settlement_account, 600_000, f"spent:{loan.id}")
    on = START + timedelta(days=31 + 20)  # the first instalment (due a month after drawing) is ~20 days late
    await daily.run(on, core_banking=core, worker="t")
    assert await snapshots.refresh_loan_facts(loan.bank_id, on) == 1
    facts = await LoanFacts.get(loan_id=loan.id)
    assert facts.days_past_due > 0 and facts.overdue_principal_fen > 0 and facts.penalty_interest_fen > 0
    assert facts.first_instalment_missed is True and facts.consecutive_missed == 1
    assert facts.outstanding_fen == 600_000 and facts.max_dpd_12m == facts.days_past_due
    assert (facts.guarantor_customer_id, facts.co_borrower_customer_id) == (guarantor.id, co_borrower.id)
