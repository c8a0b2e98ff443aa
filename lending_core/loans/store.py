"""Loading loans into ``servicing`` states and storing what servicing changed, for one loan or
thousands at once: the same statements serve a customer's repayment and the daily job.

Queries are hand-written (``infra.sql``) and writes set-based (``ledger.bulk``): the daily job
touches every loan with something due, and the ORM's per-row cost was the whole budget.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from typing import Iterable, Sequence

import orjson

from infra import sql
from infra.actors import Actor
from infra.audit import masked
from infra.logs import request_id_var
from lending_core.ledger import bulk
from lending_core.ledger import service as ledger
from lending_core.loans import servicing
from lending_core.loans.servicing import Entry, Event, InstalmentState, LoanState

_LOAN_COLUMNS = """r.id, r.bank_id, r.contract_id, r.customer_id, r.principal_fen, r.rate_bps, r.penalty_rate_bps,
    r.term_months, r.repayment_method, r.day_basis, r.allocation, r.early_repayment_fee_bps, r.drawn_on, r.status, r.dpd,
    r.classification, r.settlement_account, r.pledge_account, r.pledged_fen, r.principal_account_id, r.interest_account_id,
    r.penalty_account_id, r.settlement_ledger_account_id, r.pledge_ledger_account_id, r.serviced_through"""

_INSTALMENT_COLUMNS = """i.id, i.loan_id, i.number, i.due_date, i.principal_fen, i.interest_fen, i.principal_paid_fen,
    i.interest_paid_fen, i.penalty_fen, i.penalty_paid_fen, i.penalty_from, i.penalty_base_fen, i.penalty_segment_fen,
    i.status, i.paid_on"""

OPEN_STATUSES = "('scheduled', 'due', 'overdue')"


def digest(request_key: str) -> str:
    """A caller's key as a fixed-length part of a ledger key."""
    return hashlib.sha256(request_key.encode()).hexdigest()[:32]


@dataclass
class Books:
    """A loan's ledger accounts and core-banking accounts, beside its servicing state."""

    loan_id: int
    bank_id: int
    contract_id: int
    customer_id: int
    principal_account_id: int
    interest_account_id: int
    penalty_account_id: int
    settlement_ledger_account_id: int
    settlement_account: str
    pledge_account: str | None
    pledge_ledger_account_id: int | None
    pledged_fen: int
    serviced_through: date | None


def _json(value):
    return orjson.loads(value) if isinstance(value, (str, bytes)) else value


def _state(row: dict) -> tuple[LoanState, Books]:
    state = LoanState(
        id=row["id"], bank_id=row["bank_id"], principal_fen=int(row["principal_fen"]), rate_bps=row["rate_bps"],
        penalty_rate_bps=row["penalty_rate_bps"], term_months=row["term_months"], method=row["repayment_method"],
        day_basis=row["day_basis"], allocation=tuple(_json(row["allocation"])), early_repayment_fee_bps=row["early_repayment_fee_bps"],
        drawn_on=bulk.as_date(row["drawn_on"]), status=row["status"], dpd=row["dpd"], classification=row["classification"],
        more_open=bool(row.get("more_open")),
    )
    books = Books(
        loan_id=row["id"], bank_id=row["bank_id"], contract_id=row["contract_id"], customer_id=row["customer_id"],
        principal_account_id=row["principal_account_id"], interest_account_id=row["interest_account_id"],
        penalty_account_id=row["penalty_account_id"], settlement_ledger_account_id=row["settlement_ledger_account_id"],
        settlement_account=row["settlement_account"], pledge_account=row["pledge_account"],
        pledge_ledger_account_id=row["pledge_ledger_account_id"], pledged_fen=int(row["pledged_fen"]),
        serviced_through=bulk.as_date(row["serviced_through"]),
    )
    return state, books


def _instalment(row: dict) -> InstalmentState:
    return InstalmentState(
        id=row["id"], number=row["number"], due_date=bulk.as_date(row["due_date"]), principal_fen=int(row["principal_fen"]),
        interest_fen=int(row["interest_fen"]), principal_paid_fen=int(row["principal_paid_fen"]),
        interest_paid_fen=int(row["interest_paid_fen"]), penalty_fen=int(row["penalty_fen"]),
        penalty_paid_fen=int(row["penalty_paid_fen"]), penalty_from=bulk.as_date(row["penalty_from"]),
        penalty_base_fen=int(row["penalty_base_fen"]), penalty_segment_fen=int(row["penalty_segment_fen"]),
        status=row["status"], paid_on=bulk.as_date(row["paid_on"]),
    )


async def load(loan_ids: Sequence[int], *, due_by: date | None = None) -> dict[int, tuple[LoanState, Books]]:
    """Loans with their instalments: all of them, or (``due_by``, the daily job) only the unpaid
    ones due by that date, with ``more_open`` set where unpaid ones fall due later."""
    if not loan_ids:
        return {}
    condition, params = bulk.in_ids("r.id", "loans", loan_ids)
    if due_by is None:
        loans = await sql.fetch_all(f"SELECT {_LOAN_COLUMNS} FROM loan_receipt r WHERE {condition}", **params)
    else:
        loans = await sql.fetch_all(
            f"""SELECT {_LOAN_COLUMNS}, EXISTS (SELECT 1 FROM loan_instalment i WHERE i.loan_id = r.id
                  AND i.status = 'scheduled' AND i.due_date > :on) AS more_open
                FROM loan_receipt r WHERE {condition}""",
            on=due_by, **params,
        )
    found = {row["id"]: _state(row) for row in loans}
    condition, params = bulk.in_ids("i.loan_id", "loans", loan_ids)
    if due_by is None:
        rows = await sql.fetch_all(f"SELECT {_INSTALMENT_COLUMNS} FROM loan_instalment i WHERE {condition} ORDER BY i.loan_id, i.number", **params)
    else:
        rows = await sql.fetch_all(
            f"""SELECT {_INSTALMENT_COLUMNS} FROM loan_instalment i WHERE {condition}
                AND i.status IN {OPEN_STATUSES} AND i.due_date <= :on ORDER BY i.loan_id, i.number""",
            on=due_by, **params,
        )
    for row in rows:
        found[row["loan_id"]][0].instalments.append(_instalment(row))
    return found


_INSTALMENT_UPDATE = [
    ("principal_fen", "bigint"), ("interest_fen", "bigint"), ("principal_paid_fen", "bigint"), ("interest_paid_fen", "bigint"),
    ("penalty_fen", "bigint"), ("penalty_paid_fen", "bigint"), ("penalty_from", "date"), ("penalty_base_fen", "bigint"),
    ("penalty_segment_fen", "bigint"), ("status", "text"), ("paid_on", "date"),
]


async def save(states: Iterable[LoanState], *, serviced_through: date | None = None) -> None:
    """Store what servicing changed: the instalments it touched and each loan's status, DPD and
    classification (and, for the daily job, the date it has serviced the loans through)."""
    states = list(states)
    rows = [
        (i.id, i.principal_fen, i.interest_fen, i.principal_paid_fen, i.interest_paid_fen, i.penalty_fen, i.penalty_paid_fen,
         i.penalty_from, i.penalty_base_fen, i.penalty_segment_fen, i.status, i.paid_on)
        for state in states for i in state.instalments if i.changed
    ]
    await bulk.update("loan_instalment", ("id", "bigint"), _INSTALMENT_UPDATE, rows)
    now = bulk.now()
    loans = [s for s in states if s.changed or serviced_through]
    columns = [("status", "text"), ("dpd", "int"), ("classification", "text"), ("updated_at", "timestamptz")]
    if serviced_through:
        columns.append(("serviced_through", "date"))
    await bulk.update(
        "loan_receipt",
        ("id", "bigint"),
        columns,
        [(s.id, s.status, s.dpd, s.classification, now, *((serviced_through,) if serviced_through else ())) for s in loans],
    )


async def mark_closed(loan_ids: Sequence[int], on: date) -> None:
    await bulk.update("loan_receipt", ("id", "bigint"), [("closed_on", "date")], [(loan_id, on) for loan_id in loan_ids])


# ---- ledger ------------------------------------------------------------------------------------


async def bank_accounts(bank_id: int) -> dict[str, int]:
    """Kind → ledger account id of the bank's own accounts (income, pledged deposits)."""
    specs = ledger.bank_accounts(bank_id)
    ids = await ledger.open_accounts(specs)
    return {spec.kind: ids[spec.code] for spec in specs}


def roles(books: Books, bank: dict[str, int], payer_account_id: int | None = None) -> dict[str, int | None]:
    """The ledger account of each role a servicing entry names, for one loan."""
    return {
        servicing.PRINCIPAL: books.principal_account_id,
        servicing.INTEREST: books.interest_account_id,
        servicing.PENALTY: books.penalty_account_id,
        servicing.INTEREST_INCOME: bank[ledger.INTEREST_INCOME],
        servicing.PENALTY_INCOME: bank[ledger.PENALTY_INCOME],
        servicing.FEE_INCOME: bank[ledger.FEE_INCOME],
        servicing.PAYER: payer_account_id if payer_account_id is not None else books.settlement_ledger_account_id,
    }


def posting(entry: Entry, books: Books, accounts: dict[str, int | None], on: date, *, correlation_id: str) -> ledger.Posting:
    """A servicing entry as a ledger transaction on the loan's accounts (``roles``)."""
    return ledger.posting(
        books.bank_id, entry.kind, entry.key, correlation_id, on,
        [ledger.Leg(accounts[role], amount) for role, amount in entry.amounts if amount],
    )


def pledge_release(books: Books, bank: dict[str, int], on: date, correlation_id: str) -> ledger.Posting:
    return ledger.posting(
        books.bank_id, "pledge_release", f"pledge_release:{books.loan_id}", correlation_id, on,
        [ledger.Leg(bank[ledger.PLEDGED_DEPOSITS], books.pledged_fen), ledger.Leg(books.pledge_ledger_account_id, -books.pledged_fen)],
    )


# ---- repayments, events and audit rows, in bulk ------------------------------------------------


@dataclass(frozen=True)
class RepaymentRow:
    loan_id: int
    bank_id: int
    payer_customer_id: int
    source: str
    request_key: str
    business_date: date
    allocation: servicing.Allocation
    ledger_key: str


async def insert_repayments(rows: Sequence[RepaymentRow]) -> dict[tuple[int, str], int]:
    now = bulk.now()
    stored = await bulk.insert(
        "loan_repayment",
        [("loan_id", "bigint"), ("bank_id", "bigint"), ("payer_customer_id", "bigint"), ("source", "text"), ("request_key", "text"),
         ("business_date", "date"), ("amount_fen", "bigint"), ("principal_fen", "bigint"), ("prepaid_principal_fen", "bigint"),
         ("interest_fen", "bigint"), ("accrued_interest_fen", "bigint"), ("penalty_fen", "bigint"), ("fee_fen", "bigint"),
         ("closed_loan", "boolean"), ("ledger_key", "text"), ("created_at", "timestamptz")],
        [
            (r.loan_id, r.bank_id, r.payer_customer_id, r.source, r.request_key, r.business_date, r.allocation.amount_fen,
             r.allocation.principal_fen, r.allocation.prepaid_principal_fen, r.allocation.interest_fen,
             r.allocation.accrued_interest_fen, r.allocation.penalty_fen, r.allocation.fee_fen, r.allocation.closes, r.ledger_key, now)
            for r in rows
        ],
        returning=("id", "loan_id", "request_key"),
    )
    return {(row["loan_id"], row["request_key"]): row["id"] for row in stored}


async def enqueue(events: Sequence[tuple[Event, int]]) -> None:
    """Outbox messages for (event, bank id) pairs, in the current transaction (as ``outbox.enqueue``)."""
    now = bulk.now()
    await bulk.insert(
        "outbox_message",
        [("topic", "text"), ("payload", "jsonb"), ("bank_id", "bigint"), ("status", "text"), ("attempts", "int"),
         ("next_attempt_at", "timestamptz"), ("created_at", "timestamptz")],
        [(event.topic, orjson.dumps(masked(event.payload)).decode(), bank_id, "pending", 0, now, now) for event, bank_id in events],
    )


async def audit(actor: Actor, rows: Sequence[tuple[str, str, int, int, dict]]) -> None:
    """Audit rows (action, object type, object id, bank id, after) naming ``actor``, as ``audit.record``."""
    now = bulk.now()
    await bulk.insert(
        "audit_entry",
        [("at", "timestamptz"), ("actor_kind", "text"), ("actor_id", "text"), ("bank_id", "bigint"), ("action", "text"),
         ("object_type", "text"), ("object_id", "text"), ("after", "jsonb"), ("request_id", "text")],
        [(now, actor.kind, str(actor.id), bank_id, action, object_type, str(object_id), orjson.dumps(masked(after)).decode(), request_id_var.get())
         for action, object_type, object_id, bank_id, after in rows],
    )


def repaid_event(repayment_id: int, loan_id: int, row: RepaymentRow, dpd: int) -> Event:
    a = row.allocation
    return Event("loans.loan_repaid", {
        "loan_id": loan_id, "repayment_id": repayment_id, "source": row.source, "on": row.business_date.isoformat(),
        "amount_fen": a.amount_fen, "principal_fen": a.principal_fen, "interest_fen": a.interest_fen,
        "penalty_fen": a.penalty_fen, "fee_fen": a.fee_fen, "closed": a.closes, "dpd": dpd,
    })


def closed_event(loan_id: int, customer_id: int, on: date) -> Event:
    return Event("loans.loan_closed", {"loan_id": loan_id, "customer_id": customer_id, "closed_on": on.isoformat()})
