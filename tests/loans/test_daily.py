"""The daily job: overdue days, buckets, penalty interest and the five tiers as the days pass;
its events, once each; safe to run twice; partitioned by bank; and its command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest

from infra import clock
from infra.outbox import OutboxMessage
from integrations.core_banking_sandbox import SandboxCoreBanking
from integrations.data_sandbox import SandboxPropertyRegistry
from lending_core.contracts.models import Contract
from lending_core.ledger import service as ledger
from lending_core.loans import daily, schedule, service
from lending_core.loans.models import DailyRun
from lending_core.loans.servicing import bucket
from tests.conftest import ENV
from tests.loans.lines import START, as_customer, credit_line, movement_counts, owed, person, reload, rows


@pytest.fixture
def core():
    return SandboxCoreBanking()


async def unpaid_loan(core, *, bank="HZRCB", principal=600_000, term=6):
    """A loan whose borrower spent the money and pays nothing."""
    borrower = await person(bank=bank)
    line = await credit_line(borrower, bank=bank, term_months=term)
    loan = await service.draw(as_customer(borrower), line.id, principal, "d", core_banking=core, properties=SandboxPropertyRegistry(), on=START)
    await core.debit(loan.settlement_account, principal, f"spent:{loan.id}")
    return borrower, loan, schedule.build_schedule("equal_instalment", principal, 720, term, START)


async def test_an_unpaid_loan_moves_through_the_buckets_and_tiers(demo, core):
    _, loan, plan = await unpaid_loan(core, term=12)
    first = plan.instalments[0].due_date
    seen = []
    for dpd in (0, 1, 30, 31, 60, 61, 90, 91, 180, 181, 360, 361):
        await daily.run(first + timedelta(days=dpd), core_banking=core, bank_codes=["HZRCB"])
        state = await reload(loan.id)
        seen.append((state.dpd, bucket(state.dpd), state.classification))
    assert seen == [
        (0, "current", "normal"), (1, "1-30", "special_mention"), (30, "1-30", "special_mention"), (31, "31-60", "special_mention"),
        (60, "31-60", "special_mention"), (61, "61-90", "special_mention"), (90, "61-90", "special_mention"), (91, "90+", "substandard"),
        (180, "90+", "substandard"), (181, "90+", "doubtful"), (360, "90+", "doubtful"), (361, "90+", "loss"),
    ]
    # Penalty interest on each overdue instalment's principal, by the day, whatever the gaps between runs.
    on = first + timedelta(days=361)
    expected = sum(schedule.accrue(i.principal_fen, loan.penalty_rate_bps, (on - i.due_date).days) for i in plan.instalments if i.due_date < on)
    assert await owed(loan.id) == {"principal": 600_000, "interest": plan.total_interest_fen, "penalty": expected}
    overdue = await OutboxMessage.filter(topic="loans.instalment_overdue").order_by("id")
    assert [m.payload["instalment"] for m in overdue] == list(range(1, 13))  # each once, in order
    assert {r.status for r in await rows(loan.id)} == {"overdue"}


async def test_running_the_same_day_twice_moves_nothing_more(demo, core):
    _, loan, plan = await unpaid_loan(core)
    on = plan.instalments[0].due_date + timedelta(days=3)
    first = await daily.run(on, core_banking=core)
    assert [b.status for b in first.banks] == ["done"] * 3 and first.banks[0].loans == 1
    counts, messages = await movement_counts(), await OutboxMessage.all().count()
    again = await daily.run(on, core_banking=core)
    assert [b.status for b in again.banks] == ["already_done"] * 3
    forced = await daily.run(on, core_banking=core, rerun=True)  # e.g. an operator reruns it
    assert [b.status for b in forced.banks] == ["done"] * 3 and forced.banks[0].loans == 0
    assert await movement_counts() == counts and await OutboxMessage.all().count() == messages
    assert await DailyRun.filter(business_date=on, status="done").count() == 3


async def test_a_worker_joins_a_live_run_and_takes_over_a_dead_one(demo, core):
    _, loan, plan = await unpaid_loan(core)
    on = plan.instalments[0].due_date
    hz = (await reload(loan.id)).bank_id
    await DailyRun.create(bank_id=hz, business_date=on, status="running", worker="other", lease_until=clock.now() + timedelta(minutes=5),
                          started_at=clock.now(), summary={"workers": []})
    joined = await daily.run(on, core_banking=core, bank_codes=["HZRCB"], worker="me")
    assert joined.banks[0].status == "done" and (await owed(loan.id))["interest"] == plan.instalments[0].interest_fen
    run = await DailyRun.get(bank_id=hz, business_date=on)
    assert run.status == "done" and [w["worker"] for w in run.summary["workers"]] == ["me"]

    second = plan.instalments[1].due_date
    await DailyRun.create(bank_id=hz, business_date=second, status="running", worker="dead", lease_until=clock.now() - timedelta(seconds=1),
                          started_at=clock.now())
    taken = await daily.run(second, core_banking=core, bank_codes=["HZRCB"], worker="me")
    assert taken.banks[0].status == "done" and (await DailyRun.get(bank_id=hz, business_date=second)).worker == "me"


async def test_workers_side_by_side_share_a_banks_loans_and_service_each_once(demo, core):
    import asyncio

    from tortoise import connections

    if connections.get("default").capabilities.dialect != "postgres":
        pytest.skip("workers side by side need PostgreSQL's row locks (SKIP LOCKED); SQLite has one writer at a time")
    loans = [(await unpaid_loan(core, principal=100_000 + n))[1] for n in range(24)]
    on = schedule.due_date(START, 1)
    one, two = await asyncio.gather(
        daily.run(on, core_banking=core, bank_codes=["HZRCB"], worker="w1", chunk_size=3),
        daily.run(on, core_banking=core, bank_codes=["HZRCB"], worker="w2", chunk_size=3),
    )
    assert one.banks[0].loans + two.banks[0].loans == 24
    assert {one.banks[0].status, two.banks[0].status} <= {"done", "shared"} and "done" in {one.banks[0].status, two.banks[0].status}
    for loan in loans:
        plan = schedule.build_schedule("equal_instalment", loan.principal_fen, 720, 6, START)
        assert await owed(loan.id) == {"principal": loan.principal_fen, "interest": plan.instalments[0].interest_fen, "penalty": 0}
    assert await ledger.unbalanced_transactions() == []
    assert (await DailyRun.get(bank_id=loans[0].bank_id, business_date=on)).status == "done"


async def test_banks_are_run_separately(demo, core):
    _, hz_loan, plan = await unpaid_loan(core, bank="HZRCB")
    _, ls_loan, _ = await unpaid_loan(core, bank="LSRCB")
    on = plan.instalments[0].due_date
    report = await daily.run(on, core_banking=core, bank_codes=["LSRCB"])
    assert [(b.bank_code, b.loans, b.fell_due, b.interest_fen) for b in report.banks] == [("LSRCB", 1, 1, plan.instalments[0].interest_fen)]
    assert (await owed(hz_loan.id))["interest"] == 0 and (await owed(ls_loan.id))["interest"] == plan.instalments[0].interest_fen


async def test_partial_auto_debit_collects_what_the_account_holds(demo, core):
    borrower, loan, plan = await unpaid_loan(core)
    first = plan.instalments[0]
    await core.credit(loan.settlement_account, 10_000, "some-salary")
    report = await daily.run(first.due_date, core_banking=core, bank_codes=["HZRCB"])
    assert report.banks[0].collected_fen == 10_000
    assert await owed(loan.id) == {"principal": 600_000 - (10_000 - first.interest_fen), "interest": 0, "penalty": 0}
    repaid = await OutboxMessage.get(topic="loans.loan_repaid")
    assert repaid.payload["source"] == "auto_debit" and repaid.payload["amount_fen"] == 10_000


async def test_unsigned_contracts_expire_with_the_daily_job(demo, core):
    borrower = await person()
    stale = await credit_line(borrower, status="awaiting_signatures")
    await Contract.filter(id=stale.id).update(sign_by=clock.now() - timedelta(days=1))
    report = await daily.run(START, core_banking=core, bank_codes=["HZRCB"])
    assert report.contracts_expired == 1 and (await Contract.get(id=stale.id)).status == "expired"


async def test_the_command_line_runs_a_day_and_prints_its_summary(demo, core):
    _, loan, plan = await unpaid_loan(core)
    on = plan.instalments[0].due_date
    env = {**ENV, "DATABASE_URL": demo.database_url, "REDIS_URL": demo.redis_url or ""}
    if not demo.redis_url:
        env.pop("REDIS_URL")
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "daily", "--date", on.isoformat(), "--bank", "HZRCB"],
        capture_output=True, text=True, env=env, timeout=120, cwd=os.getcwd(),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert summary["business_date"] == on.isoformat()
    assert [(b["bank_code"], b["status"], b["loans"], b["interest_fen"]) for b in summary["banks"]] == [
        ("HZRCB", "done", 1, plan.instalments[0].interest_fen)
    ]
    assert (await owed(loan.id))["interest"] == plan.instalments[0].interest_fen
    assert await ledger.unbalanced_transactions() == []
