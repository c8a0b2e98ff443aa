"""Refreshing what the warning batch reads, in bulk and before it runs.

``refresh_snapshots`` asks each feed about every customer the bank's active loans concern —
borrowers, guarantors and co-borrowers — ONCE per customer and refresh (a customer with two
loans, or guarantor of another's, is asked once; one already refreshed today, by this bank's
refresh or another's, is not asked again), in batches of the feed's size, a few calls at a
time. A source that fails marks those customers failed (their previous figures are kept), the
rest proceed; the batch defers the loans whose data failed, and ``refresh_snapshots(...,
only_failed=True)`` retries them.

``refresh_loan_facts`` derives the loan's own facts from the loan book set-based: outstanding
principal, the next instalment, what is overdue, lateness over 12 months, repayments by others,
and who guarantees or co-borrows.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Sequence

from infra import clock, sql
from lending_core.customers.models import Customer
from lending_core.ledger import bulk
from lending_core.org.models import Bank
from lending_core.risk import schema
from lending_core.risk.models import BANK_SOURCES, LOAN_FACT_FIELDS, SNAPSHOT_MODELS
from lending_core.risk.ports import Person, SnapshotFeed, SourceUnavailable

log = logging.getLogger(__name__)
CONCURRENCY = 8
TIMEOUT_SECONDS = 30.0


@dataclass
class RefreshReport:
    bank_code: str
    customers: int = 0
    asked: dict[str, int] = field(default_factory=dict)  # by source: customers asked
    calls: dict[str, int] = field(default_factory=dict)  # by source: calls made
    failed: dict[str, int] = field(default_factory=dict)  # by source: customers whose answer failed

    def as_dict(self) -> dict:
        return dict(self.__dict__)


async def concerned_customers(bank_id: int) -> list[int]:
    """Borrowers of the bank's active loans, and their guarantors and co-borrowers."""
    rows = await sql.fetch_all(
        """SELECT r.customer_id AS id FROM loan_receipt r WHERE r.bank_id = :bank AND r.status = 'active'
           UNION SELECT f.guarantor_customer_id FROM risk_loan_facts f JOIN loan_receipt r ON r.id = f.loan_id
                 WHERE r.bank_id = :bank AND r.status = 'active' AND f.guarantor_customer_id IS NOT NULL
           UNION SELECT f.co_borrower_customer_id FROM risk_loan_facts f JOIN loan_receipt r ON r.id = f.loan_id
                 WHERE r.bank_id = :bank AND r.status = 'active' AND f.co_borrower_customer_id IS NOT NULL""",
        bank=bank_id)
    return sorted(int(row["id"]) for row in rows)


async def refresh_snapshots(bank_id: int, feeds: Sequence[SnapshotFeed], *, at: datetime | None = None, only_failed: bool = False,
                            customers: Sequence[int] | None = None, concurrency: int = CONCURRENCY) -> RefreshReport:
    at = at or clock.now()
    bank = await Bank.get(id=bank_id)
    report = RefreshReport(bank.code)
    wanted = list(customers) if customers is not None else await concerned_customers(bank_id)
    report.customers = len(wanted)
    since = datetime.combine(clock.business_date(at), time(0), tzinfo=clock.BUSINESS_TZ)  # "today", the bank's day
    for feed in feeds:
        model = SNAPSHOT_MODELS[feed.group]
        per_bank = feed.group in BANK_SOURCES
        existing = model.filter(customer_id__in=wanted)
        if per_bank:
            existing = existing.filter(bank_id=bank_id)
        state = {row["customer_id"]: row for row in await existing.values("customer_id", "fetched_at", "failed_at")}
        pending = [c for c in wanted if _needs_asking(state.get(c), since, only_failed)]
        report.asked[feed.group] = len(pending)
        people = await _people(pending)
        batches = [people[i:i + max(1, feed.batch_size)] for i in range(0, len(people), max(1, feed.batch_size))]
        report.calls[feed.group] = len(batches)
        gate = asyncio.Semaphore(concurrency)

        async def one(batch: list[Person]) -> tuple[list[Person], dict | None, str | None]:
            async with gate:
                try:
                    answer = await asyncio.wait_for(feed.fetch(batch, bank_code=bank.code), TIMEOUT_SECONDS)
                    return batch, dict(answer), None
                except (SourceUnavailable, asyncio.TimeoutError):
                    return batch, None, "source_unavailable"
                except Exception:  # an outside party's bug fails its customers, never the batch
                    log.exception("snapshot feed failed", extra={"source": feed.group})
                    return batch, None, "source_error"

        good: list[tuple[int, dict]] = []
        bad: list[tuple[int, str]] = []
        for batch, answer, failure in await asyncio.gather(*(one(b) for b in batches)):
            for person in batch:
                if answer is not None and person.customer_id in answer:
                    good.append((person.customer_id, answer[person.customer_id]))
                else:
                    bad.append((person.customer_id, failure or "no_answer"))
        # Customers the source has no ID number for cannot be asked: they fail, and stay visible.
        bad += [(c, "no_identity") for c in pending if c not in {p.customer_id for p in people}]
        report.failed[feed.group] = len(bad)
        await _store(feed.group, bank_id if per_bank else None, good, bad, at)
    return report


def _needs_asking(row: dict | None, since: datetime, only_failed: bool) -> bool:
    fetched, failed = (sql.as_datetime(row["fetched_at"]), sql.as_datetime(row["failed_at"])) if row else (None, None)
    is_failed = failed is not None and (fetched is None or failed > fetched)
    if only_failed:
        return is_failed
    return fetched is None or fetched < since or is_failed


async def _people(customer_ids: list[int]) -> list[Person]:
    found = []
    for start in range(0, len(customer_ids), 1000):
        for customer in await Customer.filter(id__in=customer_ids[start:start + 1000]):
            if customer.id_number:
                found.append(Person(customer.id, customer.id_number, customer.name or ""))
    return found


async def _store(group: str, bank_id: int | None, good: list[tuple[int, dict]], bad: list[tuple[int, str]], at: datetime) -> None:
    model = SNAPSHOT_MODELS[group]
    table = model._meta.db_table
    names = [f.name for f in schema.FIELDS if f.group == group]
    keys = ["bank_id", "customer_id"] if bank_id is not None else ["customer_id"]
    key_values = [bank_id] if bank_id is not None else []
    connection = bulk.client()
    dialect = connection.capabilities.dialect
    if good:
        columns = [*keys, *names, "fetched_at", "failed_at", "failure"]
        updates = ", ".join(f"{c} = excluded.{c}" for c in [*names, "fetched_at", "failed_at", "failure"])
        statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({_marks(len(columns), dialect)}) ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
        rows = [[*key_values, customer, *[_value(schema.BY_PATH[f"{group}.{n}"], values.get(n)) for n in names], at, None, None]
                for customer, values in good]
        await connection.execute_many(statement, rows)
    if bad:
        columns = [*keys, "failed_at", "failure"]
        statement = (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({_marks(len(columns), dialect)}) "
                     f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET failed_at = excluded.failed_at, failure = excluded.failure")
        await connection.execute_many(statement, [[*key_values, customer, at, failure] for customer, failure in bad])


def _marks(n: int, dialect: str) -> str:
    return ", ".join(f"${i + 1}" for i in range(n)) if dialect == "postgres" else ", ".join("?" for _ in range(n))


def _value(f: schema.Field, value: Any) -> Any:
    if value is None:
        return None if f.nullable else (False if f.kind == "bool" else 0)
    if not f.accepts(value):
        raise ValueError(f"{f.path}: {value!r} is not a legal value")
    return value


# ---- the loan's own facts -----------------------------------------------------------------------


async def refresh_loan_facts(bank_id: int, on: date, *, at: datetime | None = None) -> int:
    """Derive the repayment facts and the guarantee's parties of the bank's active loans from
    the loan book; returns how many loans. Facts only collection knows (broken promises,
    unreachable days…) are left as collection wrote them."""
    at = at or clock.now()
    year_ago, quarter_ago = on - timedelta(days=365), on - timedelta(days=91)
    rows = await sql.fetch_all(
        """SELECT r.id AS loan_id, r.dpd AS dpd, r.customer_id AS customer_id,
                  COALESCE((SELECT SUM(i.principal_fen - i.principal_paid_fen) FROM loan_instalment i
                            WHERE i.loan_id = r.id AND i.status <> 'prepaid'), r.principal_fen) AS outstanding,
                  COALESCE((SELECT SUM(i.principal_fen - i.principal_paid_fen) FROM loan_instalment i WHERE i.loan_id = r.id AND i.status = 'overdue'), 0) AS overdue_principal,
                  COALESCE((SELECT SUM(i.interest_fen - i.interest_paid_fen) FROM loan_instalment i WHERE i.loan_id = r.id AND i.status = 'overdue'), 0) AS overdue_interest,
                  COALESCE((SELECT SUM(i.penalty_fen - i.penalty_paid_fen) FROM loan_instalment i WHERE i.loan_id = r.id), 0) AS penalty,
                  COALESCE((SELECT i.principal_fen + i.interest_fen - i.principal_paid_fen - i.interest_paid_fen FROM loan_instalment i
                            WHERE i.loan_id = r.id AND i.status IN ('scheduled', 'due', 'overdue') ORDER BY i.number LIMIT 1), 0) AS next_due,
                  (SELECT COUNT(*) FROM loan_instalment i WHERE i.loan_id = r.id AND i.status = 'overdue') AS missed,
                  (SELECT COUNT(*) FROM loan_instalment i WHERE i.loan_id = r.id AND i.due_date >= :year_ago
                     AND ((i.paid_on IS NOT NULL AND i.paid_on > i.due_date) OR i.status = 'overdue')) AS late,
                  (SELECT COUNT(*) FROM loan_instalment i WHERE i.loan_id = r.id AND i.number = 1
                     AND ((i.paid_on IS NOT NULL AND i.paid_on > i.due_date) OR i.status = 'overdue')) AS first_missed,
                  (SELECT MAX(p.business_date) FROM loan_repayment p WHERE p.loan_id = r.id) AS last_paid,
                  (SELECT COUNT(*) FROM loan_repayment p WHERE p.loan_id = r.id AND p.business_date >= :quarter_ago
                     AND p.payer_customer_id <> r.customer_id) AS third_party,
                  (SELECT MIN(cp.customer_id) FROM contract_party cp WHERE cp.contract_id = r.contract_id AND cp.role = 'guarantor') AS guarantor,
                  (SELECT MIN(cp.customer_id) FROM contract_party cp WHERE cp.contract_id = r.contract_id AND cp.role = 'co_borrower') AS co_borrower,
                  f.max_dpd_12m AS max_dpd
           FROM loan_receipt r LEFT JOIN risk_loan_facts f ON f.loan_id = r.id
           WHERE r.bank_id = :bank AND r.status = 'active'""",
        bank=bank_id, year_ago=year_ago, quarter_ago=quarter_ago)
    columns = ["loan_id", "bank_id", "outstanding_fen", "instalment_fen", "days_past_due", "overdue_principal_fen", "overdue_interest_fen",
               "penalty_interest_fen", "max_dpd_12m", "late_instalments_12m", "consecutive_missed", "first_instalment_missed",
               "days_since_last_payment", "third_party_repayments_3m", "guarantor_customer_id", "co_borrower_customer_id", "refreshed_at"]
    defaults = {f.name: (False if f.kind == "bool" else 0) for f in LOAN_FACT_FIELDS if not f.nullable and f.name not in columns}
    values = []
    for row in rows:
        last_paid = bulk.as_date(row["last_paid"])
        values.append([
            row["loan_id"], bank_id, int(row["outstanding"]), int(row["next_due"]), int(row["dpd"]), int(row["overdue_principal"]),
            int(row["overdue_interest"]), int(row["penalty"]), max(int(row["max_dpd"] or 0), int(row["dpd"])), int(row["late"]),
            int(row["missed"]), bool(row["first_missed"]), (on - last_paid).days if last_paid else None, int(row["third_party"]),
            row["guarantor"], row["co_borrower"], at,
        ])
    connection = bulk.client()
    every = [*columns, *defaults]
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
    statement = (f"INSERT INTO risk_loan_facts ({', '.join(every)}) VALUES ({_marks(len(every), connection.capabilities.dialect)}) "
                 f"ON CONFLICT (loan_id) DO UPDATE SET {updates}")
    for start in range(0, len(values), 5000):
        await connection.execute_many(statement, [[*row, *defaults.values()] for row in values[start:start + 5000]])
    return len(values)
