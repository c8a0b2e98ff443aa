"""Overdue loans, a bank's signed transaction feed and monitoring workers, for the real-time
monitoring tests. Loans are drawn about six weeks before today, so their first instalment is
a week or more overdue today (monitoring settles as of the real business date)."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import date, timedelta

from channels.models import ChannelCredential
from infra import clock
from integrations.core_banking_sandbox import SandboxCoreBanking
from integrations.data_sandbox import SandboxPropertyRegistry
from lending_core.customers.models import Customer
from lending_core.loans import daily, schedule, service
from lending_core.loans.models import LoanReceipt
from lending_core.org.models import Bank
from lending_core.risk import transactions
from server.monitor import Monitor, MonitorSettings
from tests.channels.signed_client import signed_request
from tests.loans.lines import as_customer, credit_line, person

PATH = "/api/v1/bank/transactions"
KEY_ID, SECRET = "hz-core-feed", "core-feed-secret-" + "x" * 24
_txn = itertools.count(1)


@dataclass
class OverdueLoan:
    borrower: Customer
    loan: LoanReceipt
    plan: schedule.Schedule
    guarantor: Customer | None

    @property
    def first(self) -> schedule.Instalment:
        return self.plan.instalments[0]


def today() -> date:
    return clock.business_date()


async def overdue_loan(core: SandboxCoreBanking, *, guarantor: bool = False, set_off: bool | None = None, principal: int = 1_200_000) -> OverdueLoan:
    """A loan whose first instalment fell due about ten days ago and was not paid (the daily job
    ran today and found the account empty)."""
    start = today() - timedelta(days=40)
    borrower = await person()
    other = await person(name="郑保山") if guarantor else None
    servicing = {} if set_off is None else {"guarantor_set_off": set_off}
    line = await credit_line(borrower, effective_on=start, servicing=servicing, parties=(("guarantor", other),) if other else ())
    loan = await service.draw(as_customer(borrower), line.id, principal, "draw", core_banking=core, properties=SandboxPropertyRegistry(), on=start)
    await core.debit(loan.settlement_account, principal, f"spent:{loan.id}")  # the borrower spent the loan
    await daily.run(today(), core_banking=core, bank_codes=["HZRCB"], rerun=True)
    loan = await LoanReceipt.get(id=loan.id)
    assert loan.dpd > 0, "the first instalment should be overdue"
    return OverdueLoan(borrower, loan, schedule.build_schedule(loan.repayment_method, principal, loan.rate_bps, loan.term_months, start), other)


async def feed_key(bank_code: str = "HZRCB") -> None:
    bank = await Bank.get(code=bank_code)
    await ChannelCredential.create(key_id=KEY_ID, bank=bank, channel=transactions.FEED_CHANNEL, secret=SECRET)


def event(account: str, amount_fen: int, *, direction: str = "in", balance_after_fen: int | None = None, txn: str | None = None,
          counterparty: str | None = None) -> dict:
    body = {
        "transaction_id": txn or f"T{next(_txn):08d}-{uuid.uuid4().hex[:6]}",
        "account": account,
        "direction": direction,
        "amount_fen": amount_fen,
        "balance_after_fen": amount_fen if balance_after_fen is None else balance_after_fen,
        "occurred_at": clock.now().isoformat(),
    }
    if counterparty:
        body["counterparty_account"] = counterparty
    return body


async def push(client, events: list[dict]):
    return await signed_request(client, KEY_ID, SECRET, "POST", PATH, {"events": events})


def monitor(redis, settings, core, name: str = "w1", **options) -> Monitor:
    return Monitor(redis, settings.redis_key_prefix, core, consumer=name, settings=MonitorSettings(**{"block_ms": 0, **options}))


async def drain(worker: Monitor, rounds: int = 5) -> int:
    """Run the worker until it finds nothing more to do."""
    total = 0
    for _ in range(rounds):
        done = await worker.step(block_ms=0)
        total += done
        if not done:
            break
    return total
