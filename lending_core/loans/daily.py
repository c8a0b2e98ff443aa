"""The daily job, for one business date: instalments fall due (their interest becomes
receivable), unpaid ones go overdue and accrue penalty interest, the linked account is
auto-debited for what is due, loans are classified, and the events go out through the outbox
(``loans.instalment_overdue``, ``loans.loan_repaid``, ``loans.loan_closed``).

Partitioned by bank: each (bank, date) has a run record with a lease. Within a bank, loans are
processed in chunks by id, one transaction per chunk; on PostgreSQL a chunk's loan rows are
locked and locked rows skipped (``FOR UPDATE SKIP LOCKED``), so any number of workers can run the
same day side by side and share each bank's loans; the last to finish closes the bank's run. A
crashed worker's chunk rolls back and its loans are picked up by the next run. The loans of a
chunk are loaded in a few queries, serviced by the same pure code as a customer's repayment
(``servicing``), auto-debited in one core-banking batch and written back set-based.

Safe to run twice: a finished (bank, date) is not run again; a loan serviced for the date is
skipped (``serviced_through``) even when a run is forced or taken over; and every ledger
transaction's key names its loan and date, so nothing can be posted twice.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from infra import audit, clock, sql
from infra.actors import Actor, system
from lending_core.ledger import bulk
from lending_core.ledger import service as ledger
from lending_core.loans import servicing, store
from lending_core.loans.models import DailyRun
from lending_core.loans.ports import CoreBanking, DebitRequest
from lending_core.org.models import Bank

LEASE = timedelta(minutes=15)
CHUNK = 2000
ACTOR: Actor = system("loans-daily")


@dataclass
class BankDay:
    bank_code: str
    business_date: date
    status: str = "done"  # done | shared (other workers are finishing it) | already_done
    loans: int = 0
    fell_due: int = 0
    interest_fen: int = 0
    went_overdue: int = 0
    penalty_fen: int = 0
    debits: int = 0
    collected_fen: int = 0
    closed: int = 0
    seconds: float = 0.0
    classification: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in self.__dict__.items()}


@dataclass
class DailyReport:
    business_date: date
    banks: list[BankDay]
    contracts_expired: int | None  # None: contracts.service.expire_unsigned is not there

    def as_dict(self) -> dict:
        return {"business_date": self.business_date.isoformat(), "contracts_expired": self.contracts_expired, "banks": [b.as_dict() for b in self.banks]}


async def run(
    on: date,
    *,
    core_banking: CoreBanking,
    bank_codes: list[str] | None = None,
    worker: str = "worker",
    chunk_size: int = CHUNK,
    rerun: bool = False,
) -> DailyReport:
    """Run the day for every active bank (or those named). ``rerun`` runs a finished day again
    (it finds nothing left to do: the loans are serviced through the date)."""
    expired = await expire_unsigned_contracts(clock.now())
    banks = Bank.filter(is_active=True).order_by("id")
    if bank_codes:
        banks = banks.filter(code__in=bank_codes)
    report = DailyReport(on, [], expired)
    for bank in await banks:
        report.banks.append(await run_bank(bank, on, core_banking=core_banking, worker=worker, chunk_size=chunk_size, rerun=rerun))
    return report


async def expire_unsigned_contracts(now: datetime) -> int | None:
    """Contracts left unsigned past their deadline expire (the contracts area's own function)."""
    try:
        contracts = importlib.import_module("lending_core.contracts.service")
    except ImportError:
        return None
    expire = getattr(contracts, "expire_unsigned", None)
    if expire is None:
        return None
    result = await expire(now)
    return len(result) if isinstance(result, (list, tuple, set)) else result


async def run_bank(bank: Bank, on: date, *, core_banking: CoreBanking, worker: str, chunk_size: int = CHUNK, rerun: bool = False) -> BankDay:
    """Service the bank's loans due by ``on``, alone or beside other workers on the same bank."""
    day = BankDay(bank.code, on)
    claim = await _claim(bank.id, on, worker, rerun=rerun)
    if claim == "already_done":
        day.status = claim
        return day
    started = time.perf_counter()
    bank_accounts = await store.bank_accounts(bank.id)
    after = 0
    while True:
        async with in_transaction():
            ids = await _next_chunk(bank.id, on, after, chunk_size)
            if not ids:
                break
            await _service(ids, on, bank_accounts, core_banking, day)
            after = ids[-1]
        # After the chunk's commit: inside it, workers sharing the bank would queue on the run's row.
        await DailyRun.filter(bank_id=bank.id, business_date=on).update(lease_until=clock.now() + LEASE)
    day.seconds = round(time.perf_counter() - started, 3)
    rows = await sql.fetch_all(
        "SELECT classification, COUNT(*) AS n FROM loan_receipt WHERE bank_id = :bank AND status = 'active' GROUP BY classification",
        bank=bank.id,
    )
    day.classification = {row["classification"]: int(row["n"]) for row in rows}
    day.status = await _finish(bank.id, on, worker, day)
    return day


async def _claim(bank_id: int, on: date, worker: str, *, rerun: bool) -> str:
    """``claimed`` (the run is this worker's), ``joined`` (another worker is on it: share the
    loans) or ``already_done``. A run whose worker let its lease lapse is taken over."""
    now = clock.now()
    async with in_transaction():
        existing = await DailyRun.filter(bank_id=bank_id, business_date=on).select_for_update().first()
        if existing is None:
            try:
                async with in_transaction():
                    await DailyRun.create(bank_id=bank_id, business_date=on, status="running", worker=worker, lease_until=now + LEASE,
                                          started_at=now, summary={"workers": []})
                return "claimed"
            except IntegrityError:
                return "joined"  # created meanwhile by a worker starting at the same moment
        if existing.status == "done" and not rerun:
            return "already_done"
        if existing.status == "running" and existing.lease_until > now and existing.worker != worker:
            return "joined"
        await DailyRun.filter(id=existing.id).update(status="running", worker=worker, lease_until=now + LEASE, started_at=now,
                                                    finished_at=None, summary={"workers": []})
        return "claimed"


async def _finish(bank_id: int, on: date, worker: str, day: BankDay) -> str:
    """Record this worker's share; the run is done once no loan due by the date is left
    unserviced (the last worker to finish sees that; a worker that died leaves the run open
    for the next one, after its lease)."""
    async with in_transaction():
        run = await DailyRun.filter(bank_id=bank_id, business_date=on).select_for_update().get()
        summary = run.summary or {"workers": []}
        summary["workers"] = [*summary.get("workers", []), {"worker": worker, **day.as_dict()}]
        left = await _next_chunk(bank_id, on, 0, 1, lock=False)
        status = "running" if left else "done"
        await DailyRun.filter(id=run.id).update(status=status, summary=summary, finished_at=None if left else clock.now())
        # The accruals and collections of the day, audited once per worker and bank (each
        # collection also has its own row, written with it).
        await audit.record(ACTOR, "loan.daily_run", "loan_daily_run", run.id, bank_id=bank_id, after={"worker": worker, **day.as_dict()})
    return "done" if not left else "shared"


async def _next_chunk(bank_id: int, on: date, after: int, limit: int, *, lock: bool = True) -> list[int]:
    """The next loans due by ``on`` and not yet serviced for it. On PostgreSQL the chunk's rows
    are locked and rows another worker holds are skipped, so workers on one bank share its loans."""
    skip_locked = " FOR UPDATE OF r SKIP LOCKED" if lock and bulk.is_postgres() else ""
    rows = await sql.fetch_all(
        f"""SELECT r.id FROM loan_receipt r
            WHERE r.bank_id = :bank AND r.status = 'active' AND r.id > :after
              AND (r.serviced_through IS NULL OR r.serviced_through < :on)
              AND EXISTS (SELECT 1 FROM loan_instalment i WHERE i.loan_id = r.id
                          AND i.status IN {store.OPEN_STATUSES} AND i.due_date <= :on)
            ORDER BY r.id LIMIT :limit{skip_locked}""",
        bank=bank_id, after=after, on=on, limit=limit,
    )
    return [row["id"] for row in rows]


async def _service(ids: list[int], on: date, bank_accounts: dict[str, int], core_banking: CoreBanking, day: BankDay) -> None:
    loans = await store.load(ids, due_by=on)
    postings: list[ledger.Posting] = []
    events: list[tuple[servicing.Event, int]] = []
    requests: list[tuple[DebitRequest, servicing.LoanState, store.Books]] = []
    for state, books in loans.values():
        falling = sum(1 for i in state.instalments if i.status == servicing.SCHEDULED)
        outcome = servicing.bring_up_to_date(state, on)
        day.fell_due += falling - sum(1 for i in state.instalments if i.status == servicing.SCHEDULED)
        correlation = f"daily:{on.isoformat()}:{state.id}"
        accounts = store.roles(books, bank_accounts)
        for entry in outcome.entries:
            postings.append(store.posting(entry, books, accounts, on, correlation_id=correlation))
            if entry.kind == "interest_due":
                day.interest_fen += entry.amounts[0][1]
            else:
                day.penalty_fen += entry.amounts[0][1]
        day.went_overdue += len(outcome.events)
        events += [(event, state.bank_id) for event in outcome.events]
        due = servicing.due_fen(state)
        if due:
            requests.append((DebitRequest(books.settlement_account, due, f"auto:{state.id}:{on.isoformat()}:debit"), state, books))
    day.loans += len(loans)
    movements = await core_banking.debit_batch([request for request, _, _ in requests], partial=True) if requests else []
    day.debits += len(requests)
    repayments: list[tuple[store.RepaymentRow, servicing.LoanState]] = []
    closing: list[tuple[servicing.LoanState, store.Books]] = []
    for (request, state, books), movement in zip(requests, movements, strict=True):
        if not movement.amount_fen:
            continue
        key = f"auto:{state.id}:{on.isoformat()}"
        allocation = servicing.allocate(state, on, movement.amount_fen, key=key, early=False)
        accounts = store.roles(books, bank_accounts)
        postings += [store.posting(entry, books, accounts, on, correlation_id=f"daily:{on.isoformat()}:{state.id}") for entry in allocation.entries]
        repayments.append((store.RepaymentRow(state.id, state.bank_id, books.customer_id, "auto_debit", key, on, allocation, key), state))
        day.collected_fen += movement.amount_fen
        if allocation.closes:
            closing.append((state, books))
    for state, books in closing:
        if books.pledge_account and books.pledged_fen:
            await core_banking.unfreeze(books.pledge_account, books.pledged_fen, f"pledge_release:{books.loan_id}")
            postings.append(store.pledge_release(books, bank_accounts, on, f"daily:{on.isoformat()}:{state.id}"))
    await ledger.post_many(postings)
    await store.save([state for state, _ in loans.values()], serviced_through=on)
    await store.mark_closed([state.id for state, _ in closing], on)
    day.closed += len(closing)
    ids_by_key = await store.insert_repayments([row for row, _ in repayments])
    for row, state in repayments:
        repayment_id = ids_by_key[(row.loan_id, row.request_key)]
        events.append((store.repaid_event(repayment_id, row.loan_id, row, state.dpd), row.bank_id))
    events += [(store.closed_event(state.id, books.customer_id, on), state.bank_id) for state, books in closing]
    await store.enqueue(events)
    await store.audit(ACTOR, [
        ("loan.auto_debit", "loan", row.loan_id, row.bank_id,
         {"repayment_id": ids_by_key[(row.loan_id, row.request_key)], "amount_fen": row.allocation.amount_fen,
          "principal_fen": row.allocation.principal_fen, "interest_fen": row.allocation.interest_fen,
          "penalty_fen": row.allocation.penalty_fen, "closed": row.allocation.closes, "ledger_key": row.ledger_key})
        for row, _ in repayments
    ])
