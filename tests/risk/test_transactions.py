"""Real-time monitoring: a bank's transaction events, ingested over the signed feed and processed
by stream workers, settle overdue instalments at once (ledger balanced), signal, and do each of
these once however often an event is sent or delivered."""

from __future__ import annotations

import pytest

from integrations.core_banking_sandbox import SandboxCoreBanking
from lending_core.ledger import service as ledger
from lending_core.loans import schedule
from lending_core.loans.models import Instalment, LoanReceipt, Repayment
from lending_core.risk import transactions
from lending_core.risk.models import DisposalTask, TransactionEvent, WarningSignal
from tests.loans.lines import deposit, owed, sandbox_balance
from tests.risk.transactions_support import drain, event, feed_key, monitor, overdue_loan, push, today


@pytest.fixture
def core():
    return SandboxCoreBanking()


@pytest.fixture
async def feed(demo):
    await feed_key()
    return demo


def overdue_due(case, loan: LoanReceipt) -> int:
    """What the first instalment owes today, worked out from the schedule: its principal and
    interest, and penalty interest on its principal from the due date (one segment)."""
    first = case.first
    days = (today() - first.due_date).days
    return first.principal_fen + first.interest_fen + schedule.accrue(first.principal_fen, loan.penalty_rate_bps, days)


async def balanced() -> bool:
    return await ledger.unbalanced_transactions() == [] and await ledger.total_of_all_accounts() == 0


async def test_money_arriving_for_an_overdue_borrower_settles_the_instalment_at_once(feed, client, redis, core):
    case = await overdue_loan(core)
    due = overdue_due(case, case.loan)
    await deposit(core, "HZRCB", case.borrower.id, due + 5_000, "salary")  # the money lands in the core first
    response = await push(client, [event(case.loan.settlement_account, due + 5_000)])
    assert response.status == 200, response.text
    assert response.json["events"][0]["status"] == "accepted" and response.json["events"][0]["matched"] is True
    assert await TransactionEvent.filter(status="received").count() == 1  # stored before the answer, not yet processed

    worker = monitor(redis, feed, core)
    await worker.start()
    assert await drain(worker) == 1

    first = await Instalment.get(loan_id=case.loan.id, number=1)
    assert first.status == "paid"
    repayment = await Repayment.get(loan_id=case.loan.id)
    assert (repayment.source, repayment.amount_fen, repayment.payer_customer_id) == ("set_off", due, case.borrower.id)
    assert repayment.penalty_fen + repayment.interest_fen + repayment.principal_fen == due
    assert (await LoanReceipt.get(id=case.loan.id)).dpd == 0
    assert await owed(case.loan.id) == {"principal": case.plan.principal_fen - case.first.principal_fen, "interest": 0, "penalty": 0}
    assert (await sandbox_balance(case.loan.settlement_account))[0] == 5_000  # only what was due was taken
    assert await balanced()
    stored = await TransactionEvent.get()
    assert (stored.status, stored.outcome) == ("processed", "settled")
    signal = await WarningSignal.get(loan_id=case.loan.id)
    assert (signal.rule_code, signal.source, signal.category) == (transactions.OVERDUE_FUNDS_IN, "realtime", "realtime")
    assert signal.facts["settled_fen"] == due


async def test_a_guarantor_whose_guarantee_grants_set_off_pays_from_arriving_money(feed, client, redis, core):
    case = await overdue_loan(core, guarantor=True, set_off=True)
    due = overdue_due(case, case.loan)
    worker = monitor(redis, feed, core)
    await worker.start()
    await worker.watcher.refresh()  # the running worker watches the guarantor's account
    account = await deposit(core, "HZRCB", case.guarantor.id, 1_000_000, "guarantor-salary")
    response = await push(client, [event(account, 1_000_000)])
    assert response.json["events"][0]["matched"] is True
    assert await drain(worker) == 1
    repayment = await Repayment.get(loan_id=case.loan.id)
    assert (repayment.payer_customer_id, repayment.amount_fen) == (case.guarantor.id, due)
    assert (await sandbox_balance(account))[0] == 1_000_000 - due
    assert (await sandbox_balance(case.loan.settlement_account))[0] == 0
    signal = await WarningSignal.get(loan_id=case.loan.id)
    assert (signal.rule_code, signal.severity, signal.facts["set_off"]) == (transactions.GUARANTOR_FUNDS_IN, "watch", True)
    assert await balanced()


async def test_without_set_off_money_reaching_a_guarantor_only_signals(feed, client, redis, core):
    case = await overdue_loan(core, guarantor=True, set_off=False)
    worker = monitor(redis, feed, core)
    await worker.start()
    await worker.watcher.refresh()
    account = await deposit(core, "HZRCB", case.guarantor.id, 1_000_000, "guarantor-salary")
    await push(client, [event(account, 1_000_000)])
    assert await drain(worker) == 1
    assert await Repayment.filter(loan_id=case.loan.id).count() == 0
    assert (await sandbox_balance(account))[0] == 1_000_000
    signal = await WarningSignal.get(loan_id=case.loan.id)
    assert (signal.rule_code, signal.severity, signal.facts["set_off"]) == (transactions.GUARANTOR_FUNDS_IN, "warning", False)
    assert await DisposalTask.filter(signal_id=signal.id).exists()  # a warning is an officer's task
    assert (await TransactionEvent.get()).outcome == "signalled"


async def test_the_products_definition_decides_set_off_where_the_contract_does_not_say(demo):
    from lending_core.products.service import import_catalogue  # noqa: F401  (the demo imported the catalogue)
    from lending_core.products.models import Product
    from lending_core.products.service import version_definition

    with_guarantor = await Product.get(code="YANGGUANGEDAI")
    without = await Product.get(code="SHUIYITONG")
    assert (await version_definition(with_guarantor.id, with_guarantor.published_version)).servicing.guarantor_set_off is True
    assert (await version_definition(without.id, without.published_version)).servicing.guarantor_set_off is False


async def test_a_duplicate_event_is_accepted_stored_once_and_settles_once(feed, client, redis, core):
    case = await overdue_loan(core)
    await deposit(core, "HZRCB", case.borrower.id, 300_000, "salary")
    same = event(case.loan.settlement_account, 300_000)
    first, again = await push(client, [same, same]), await push(client, [same])
    assert [e["status"] for e in first.json["events"]] == ["accepted", "duplicate"]
    assert again.status == 200 and again.json["events"][0]["status"] == "duplicate"
    assert await TransactionEvent.all().count() == 1
    worker = monitor(redis, feed, core)
    await worker.start()
    await drain(worker)
    await push(client, [same])  # resent after it was processed
    await drain(worker)
    assert await Repayment.filter(loan_id=case.loan.id).count() == 1
    assert await WarningSignal.filter(loan_id=case.loan.id).count() == 1
    assert (await WarningSignal.get(loan_id=case.loan.id)).times == 1
    assert await balanced()


async def test_malformed_events_are_refused_one_by_one_and_unknown_accounts_stored_as_unmatched(feed, client, redis, core):
    case = await overdue_loan(core)
    good = event(case.loan.settlement_account, 10_000)
    unknown = event("NOSUCHACCOUNT0001", 10_000)
    float_amount = {**event(case.loan.settlement_account, 1), "amount_fen": 100.5}
    bad_direction = {**event(case.loan.settlement_account, 100), "direction": "sideways", "occurred_at": "yesterday"}
    extra = {**event(case.loan.settlement_account, 100), "customer_name": "王建国"}
    response = await push(client, [good, float_amount, unknown, bad_direction, extra, "not an event"])
    assert response.status == 422
    body = response.json["error"]
    assert body["code"] == "TRANSACTION_EVENTS_REFUSED"
    statuses = [e["status"] for e in body["details"]["events"]]
    assert statuses == ["accepted", "refused", "accepted", "refused", "refused", "refused"]
    problems = {p["field"] for p in body["details"]["events"][3]["problems"]}
    assert problems == {"direction", "occurred_at"}
    assert body["details"]["events"][1]["problems"] == [{"field": "amount_fen", "problem": "must be a whole number of fen, 1 or more"}]
    assert body["details"]["events"][2]["matched"] is False
    assert "王建国" not in response.text
    stored = {e.bank_txn_id: e for e in await TransactionEvent.all()}
    assert set(stored) == {good["transaction_id"], unknown["transaction_id"]}
    assert (stored[unknown["transaction_id"]].status, stored[unknown["transaction_id"]].outcome) == ("processed", "unmatched")
    assert stored[unknown["transaction_id"]].customer_id is None
    worker = monitor(redis, feed, core)
    await worker.start()
    assert await drain(worker) == 1  # only the matched one needed processing


async def test_an_unsigned_or_other_channels_request_is_refused(feed, client):
    _, response = await client.post("/api/v1/bank/transactions", json={"events": []})
    assert response.status == 401
    from channels.models import ChannelCredential
    from lending_core.org.models import Bank
    from tests.channels.signed_client import signed_request

    await ChannelCredential.create(key_id="hz-app", bank=await Bank.get(code="HZRCB"), channel="mobile_bank", secret="s" * 40)
    response = await signed_request(client, "hz-app", "s" * 40, "POST", "/api/v1/bank/transactions", {"events": [event("X1", 1)]})
    assert response.status == 401 and response.json["error"]["code"] == "CHANNEL_KEY_MISMATCH"
    assert await TransactionEvent.all().count() == 0


async def test_outflows_from_watched_accounts_raise_signals_as_they_happen(feed, client, redis, core):
    one, two = await overdue_loan(core), await overdue_loan(core)
    worker = monitor(redis, feed, core)
    await worker.start()
    shell = "6222020000000000001"
    # Borrower one pays a counterparty; then borrower two pays the same one, draining their account.
    await push(client, [event(one.loan.settlement_account, 20_000, direction="out", balance_after_fen=980_000, counterparty=shell)])
    await drain(worker)
    assert await WarningSignal.filter(loan_id=one.loan.id).count() == 0  # a small outflow, nobody else paid them yet
    await push(client, [event(two.loan.settlement_account, 6_000_000, direction="out", balance_after_fen=10_000, counterparty=shell)])
    await drain(worker)
    rules = set(await WarningSignal.filter(loan_id=two.loan.id).values_list("rule_code", flat=True))
    assert rules == {transactions.LARGE_OUTFLOW, transactions.BALANCE_DRAINED, transactions.SHARED_COUNTERPARTY}
    stored = await TransactionEvent.filter(account_ref=two.loan.settlement_account).get()
    assert stored.counterparty_hash and shell not in stored.counterparty_hash  # never kept in clear
    assert stored.outcome == "signalled"


async def test_a_crashed_consumers_events_are_taken_over_and_processed_once(feed, client, redis, core):
    case = await overdue_loan(core)
    due = overdue_due(case, case.loan)
    await deposit(core, "HZRCB", case.borrower.id, due, "salary")
    crashed = monitor(redis, feed, core, name="crashed", claim_idle_ms=50)
    await crashed.start()
    await push(client, [event(case.loan.settlement_account, due)])
    taken = await crashed.stream.read("crashed", count=10, block_ms=None)  # read, then the process dies
    assert len(taken) == 1 and await crashed.stream.pending_count() == 1
    survivor = monitor(redis, feed, core, name="survivor", claim_idle_ms=50)
    await survivor.start()
    assert await survivor.step(block_ms=0) == 0  # not idle long enough yet: left to its owner
    import asyncio

    await asyncio.sleep(0.12)
    survivor._last_claim = 0.0
    assert await survivor.step(block_ms=0) == 1
    assert await survivor.stream.pending_count() == 0
    # The crashed worker comes back and handles what it had read: already processed, nothing moves.
    assert await crashed.handle(taken) == 1
    assert await Repayment.filter(loan_id=case.loan.id).count() == 1
    assert (await Instalment.get(loan_id=case.loan.id, number=1)).status == "paid"
    assert await balanced()


async def test_a_worker_that_committed_but_died_before_acknowledging_settles_nothing_twice(feed, client, redis, core):
    case = await overdue_loan(core)
    await deposit(core, "HZRCB", case.borrower.id, 200_000, "salary")
    worker = monitor(redis, feed, core, name="dies", claim_idle_ms=50)
    await worker.start()
    await push(client, [event(case.loan.settlement_account, 200_000)])
    taken = await worker.stream.read("dies", count=10, block_ms=None)
    await transactions.process([int(m.fields["id"]) for m in taken], watcher=worker.watcher, core_banking=core)  # committed, no ack
    import asyncio

    await asyncio.sleep(0.12)
    other = monitor(redis, feed, core, name="other", claim_idle_ms=50)
    await other.start()
    assert await other.step(block_ms=0) == 1  # claimed and acknowledged: the database says it is done
    assert await other.stream.pending_count() == 0
    assert await Repayment.filter(loan_id=case.loan.id).count() == 1


async def test_when_redis_loses_the_stream_the_workers_rebuild_it_from_the_database(feed, client, redis, core):
    case = await overdue_loan(core)
    quiet = await overdue_loan(core)
    await deposit(core, "HZRCB", case.borrower.id, 200_000, "salary")
    await push(client, [event(case.loan.settlement_account, 200_000), event(quiet.loan.settlement_account, 100, direction="out", balance_after_fen=900_000)])
    worker = monitor(redis, feed, core)
    await redis.delete(worker.stream.key)  # Redis restarted empty (or failed over with loss)
    restarted = monitor(redis, feed, core, name="restarted")
    assert await restarted.start() == 2  # both events queued again from the database
    assert await drain(restarted) == 2
    assert await TransactionEvent.filter(status="received").count() == 0
    assert await Repayment.filter(loan_id=case.loan.id).count() == 1


async def test_events_whose_queueing_failed_are_swept_back_in(feed, client, redis, core, monkeypatch):
    from datetime import timedelta

    case = await overdue_loan(core)
    await deposit(core, "HZRCB", case.borrower.id, 200_000, "salary")
    worker = monitor(redis, feed, core, stale_seconds=0)
    await worker.start()

    async def unreachable(self, ids):
        raise ConnectionError("redis down")

    from infra.streams import Stream

    monkeypatch.setattr(Stream, "add", unreachable)
    response = await push(client, [event(case.loan.settlement_account, 200_000)])
    assert response.status == 200  # stored: the answer does not wait for Redis
    monkeypatch.undo()
    assert await drain(worker) == 0  # nothing on the stream
    assert await transactions.requeue_stale(worker.stream, older_than=timedelta(0)) == 1
    assert await drain(worker) == 1
    assert await Repayment.filter(loan_id=case.loan.id).count() == 1


async def test_an_event_on_an_account_nobody_watches_at_arrival_is_settled_at_ingest_and_never_queued(feed, client, redis, core):
    case = await overdue_loan(core)
    due = overdue_due(case, case.loan)
    await deposit(core, "HZRCB", case.borrower.id, due, "salary")
    worker = monitor(redis, feed, core)
    await worker.start()
    assert (await push(client, [event(case.loan.settlement_account, due)])).status == 200
    assert await drain(worker) == 1  # overdue at arrival: the worker's, and it settles the loan
    assert (await LoanReceipt.get(id=case.loan.id)).dpd == 0

    later = event(case.loan.settlement_account, 30_000)
    response = await push(client, [later])
    assert response.status == 200 and response.json["events"][0]["matched"] is True
    stored = await TransactionEvent.get(bank_txn_id=later["transaction_id"])
    assert (stored.status, stored.outcome, stored.customer_id) == ("processed", "unwatched", case.borrower.id)
    assert stored.processed_at is not None
    assert await drain(worker) == 0  # nothing was queued for it
    assert await Repayment.filter(loan_id=case.loan.id).count() == 1


def test_a_settled_loan_leaves_the_watched_set_and_only_its_own_watches_change():
    def loan(loan_id: int, customer_id: int) -> transactions.OverdueLoan:
        return transactions.OverdueLoan(loan_id, 1, customer_id, "SHUIYITONG", 40, False)

    first, second, other = loan(1, 10), loan(2, 10), loan(3, 20)
    watched = transactions.WatchedSet()
    watched.add(1, "ACC-10", 10, "borrower", first)
    watched.add(1, "ACC-10", 10, "borrower", second)  # two overdue loans paid from one account
    watched.add(1, "ACC-30", 30, "guarantor", first)
    watched.add(1, "ACC-20", 20, "borrower", other)

    watched.forget_loans({1})
    assert [w.loans for w in watched.of(1, "ACC-10")] == [(second,)]
    assert watched.of(1, "ACC-30") == []  # the guarantor watched only the settled loan
    assert watched.is_overdue_borrower(10) and watched.is_overdue_borrower(20)

    watched.forget_loans({2})
    assert watched.of(1, "ACC-10") == [] and not watched.is_overdue_borrower(10)
    assert [w.loans for w in watched.of(1, "ACC-20")] == [(other,)] and watched.is_overdue_borrower(20)
    watched.forget_loans({2})  # a loan forgotten twice (two batches settled it) changes nothing
    assert watched.is_overdue_borrower(20) and list(watched.accounts) == [(1, "ACC-20")]
