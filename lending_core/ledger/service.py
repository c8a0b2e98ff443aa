"""Posting to the ledger and reading balances.

``post`` and ``post_many`` run inside the caller's transaction (the state change they pay for
commits with them or not at all) and refuse unbalanced legs before anything is stored. A
transaction's ``key`` is unique: posting a key that exists moves nothing and returns the
existing transaction (``post`` also checks it carried the same legs).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Iterable, Sequence

from infra import sql
from infra.errors import Conflict
from lending_core.ledger import bulk
from lending_core.ledger.models import LedgerAccount, LedgerLeg, LedgerTransaction

# Account kinds.
LOAN_PRINCIPAL = "loan_principal"  # asset: principal the borrower owes
LOAN_INTEREST = "loan_interest"  # asset: interest fallen due and not yet paid
LOAN_PENALTY = "loan_penalty"  # asset: penalty interest accrued and not yet paid
INTEREST_INCOME = "interest_income"
PENALTY_INCOME = "penalty_income"
FEE_INCOME = "fee_income"
PLEDGED_DEPOSITS = "pledged_deposits"  # liability: customers' deposits frozen as pledges
CUSTOMER_SETTLEMENT = "customer_settlement"  # mirror of a customer's current account
CUSTOMER_DEPOSIT = "customer_deposit"  # mirror of a customer's time deposit (the pledgeable one)

LOAN_PARTS = {"principal": LOAN_PRINCIPAL, "interest": LOAN_INTEREST, "penalty": LOAN_PENALTY}
BANK_KINDS = (INTEREST_INCOME, PENALTY_INCOME, FEE_INCOME, PLEDGED_DEPOSITS)


class UnbalancedTransaction(ValueError):
    """The legs of a ledger transaction must sum to zero, be whole fen (never a float) and
    touch at least two accounts. A program that builds other legs has a bug: nothing is stored."""


class LedgerKeyReused(Conflict):
    """A ledger transaction with this key exists with other legs: a key names one movement."""


@dataclass(frozen=True)
class Leg:
    account_id: int
    amount_fen: int


@dataclass(frozen=True)
class Posting:
    bank_id: int
    kind: str
    key: str
    correlation_id: str
    business_date: date
    legs: tuple[Leg, ...]


@dataclass(frozen=True)
class Posted:
    transaction_id: int
    created: bool  # False: the key was posted before and nothing moved now


def check_balanced(legs: Sequence[Leg]) -> None:
    total, accounts = 0, set()
    for leg in legs:
        # type() rather than isinstance: a bool is not money, and a float never is.
        if type(leg.amount_fen) is not int or type(leg.account_id) is not int:
            raise UnbalancedTransaction(f"legs are whole fen on account ids, not {leg!r}")
        total += leg.amount_fen
        accounts.add(leg.account_id)
    if len(accounts) < 2:
        raise UnbalancedTransaction("a transaction moves money between at least two accounts")
    if total != 0:
        raise UnbalancedTransaction(f"the legs sum to {total} fen, not zero")


def posting(bank_id: int, kind: str, key: str, correlation_id: str, business_date: date, legs: Iterable[Leg]) -> Posting:
    """A transaction to post. Legs on one account are merged so each account appears once, and
    zero legs are dropped; the legs are checked when they are stored."""
    merged: dict[int, int] = defaultdict(int)
    for leg in legs:
        if type(leg.amount_fen) is not int:
            raise UnbalancedTransaction(f"legs are whole fen, not {leg.amount_fen!r}")
        merged[leg.account_id] += leg.amount_fen
    return Posting(bank_id, kind, key, correlation_id, business_date, tuple(Leg(a, m) for a, m in merged.items() if m))


async def post(
    kind: str, legs: Iterable[Leg], key: str, correlation_id: str, *, bank_id: int, business_date: date
) -> Posted:
    """Store one balanced transaction, or find the one already stored under ``key``."""
    entry = posting(bank_id, kind, key, correlation_id, business_date, legs)
    created = await post_many([entry])
    if key in created:
        return Posted(created[key], True)
    existing = await LedgerTransaction.get(key=key)
    stored = {leg.account_id: leg.amount_fen for leg in await LedgerLeg.filter(transaction_id=existing.id)}
    if stored != {leg.account_id: leg.amount_fen for leg in entry.legs} or existing.kind != kind:
        raise LedgerKeyReused(details={"key": key})
    return Posted(existing.id, False)


async def post_many(postings: Sequence[Posting]) -> dict[str, int]:
    """Store balanced transactions in two statements; keys already stored are skipped.
    Returns key → transaction id of those stored now."""
    if not postings:
        return {}
    keys = [p.key for p in postings]
    if len(set(keys)) != len(keys):
        raise UnbalancedTransaction("one batch names the same transaction key twice")
    for entry in postings:
        check_balanced(entry.legs)
    now = bulk.now()
    stored = await bulk.insert(
        "ledger_transaction",
        [("bank_id", "bigint"), ("kind", "text"), ("key", "text"), ("correlation_id", "text"), ("business_date", "date"), ("created_at", "timestamptz")],
        [(p.bank_id, p.kind, p.key, p.correlation_id, p.business_date, now) for p in postings],
        conflict='"key"',
        returning=("id", "key"),
    )
    ids = {row["key"]: row["id"] for row in stored}
    await bulk.insert(
        "ledger_leg",
        [("transaction_id", "bigint"), ("account_id", "bigint"), ("amount_fen", "bigint")],
        [(ids[p.key], leg.account_id, leg.amount_fen) for p in postings if p.key in ids for leg in p.legs],
    )
    return ids


# ---- accounts ----------------------------------------------------------------------------------


def loan_code(loan_id: int, part: str) -> str:
    return f"loan:{loan_id}:{part}"


def bank_code(bank_id: int, kind: str) -> str:
    return f"bank:{bank_id}:{kind}"


def customer_code(customer_id: int, kind: str, external_account: str) -> str:
    return f"customer:{customer_id}:{kind}:{external_account}"


@dataclass(frozen=True)
class AccountSpec:
    code: str
    bank_id: int
    kind: str
    loan_id: int | None = None
    customer_id: int | None = None
    external_account: str | None = None


def loan_accounts(bank_id: int, loan_id: int) -> list[AccountSpec]:
    return [AccountSpec(loan_code(loan_id, part), bank_id, kind, loan_id=loan_id) for part, kind in LOAN_PARTS.items()]


def bank_accounts(bank_id: int) -> list[AccountSpec]:
    return [AccountSpec(bank_code(bank_id, kind), bank_id, kind) for kind in BANK_KINDS]


def customer_account(bank_id: int, customer_id: int, kind: str, external_account: str) -> AccountSpec:
    return AccountSpec(customer_code(customer_id, kind, external_account), bank_id, kind, customer_id=customer_id, external_account=external_account)


async def open_accounts(specs: Sequence[AccountSpec]) -> dict[str, int]:
    """The ids of these accounts (code → id), opening those that do not exist yet."""
    unique = {s.code: s for s in specs}
    # Most exist (a bank's own, a borrower's mirror since the drawdown): look first, so that the
    # common case is one query and no insert that the unique index then throws away.
    found = await account_ids(list(unique))
    missing = [s for code, s in unique.items() if code not in found]
    if missing:
        await bulk.insert(
            "ledger_account",
            [("bank_id", "bigint"), ("code", "text"), ("kind", "text"), ("loan_id", "bigint"), ("customer_id", "bigint"), ("external_account", "text"), ("created_at", "timestamptz")],
            [(s.bank_id, s.code, s.kind, s.loan_id, s.customer_id, s.external_account, bulk.now()) for s in missing],
            conflict='"code"',  # another transaction may open one at the same moment
        )
        found.update(await account_ids([s.code for s in missing]))
    return found


async def account_ids(codes: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    codes = list(dict.fromkeys(codes))
    for start in range(0, len(codes), 5000):
        chunk = codes[start : start + 5000]
        if bulk.is_postgres():
            rows = await sql.fetch_all("SELECT id, code FROM ledger_account WHERE code = ANY(:codes)", codes=chunk)
        else:
            marks, params = sql.in_list("c", chunk)
            rows = await sql.fetch_all(f"SELECT id, code FROM ledger_account WHERE code IN ({marks})", **params)
        found.update({row["code"]: row["id"] for row in rows})
    return found


# ---- balances ----------------------------------------------------------------------------------


async def balance(account_id: int) -> int:
    row = await sql.fetch_one("SELECT COALESCE(SUM(amount_fen), 0) AS total FROM ledger_leg WHERE account_id = :account", account=account_id)
    return int(row["total"])


async def balances(account_ids: Sequence[int]) -> dict[int, int]:
    """Balance of each account (0 for one without legs)."""
    if not account_ids:
        return {}
    condition, params = bulk.in_ids("account_id", "accounts", account_ids)
    rows = await sql.fetch_all(f"SELECT account_id, SUM(amount_fen) AS total FROM ledger_leg WHERE {condition} GROUP BY account_id", **params)
    found = {row["account_id"]: int(row["total"]) for row in rows}
    return {account: found.get(account, 0) for account in account_ids}


async def loan_balances(loan_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Per loan: what is owed on principal, interest and penalty, from the ledger alone."""
    if not loan_ids:
        return {}
    condition, params = bulk.in_ids("a.loan_id", "loans", loan_ids)
    rows = await sql.fetch_all(
        f"""SELECT a.loan_id, a.kind, COALESCE(SUM(l.amount_fen), 0) AS total
            FROM ledger_account a LEFT JOIN ledger_leg l ON l.account_id = a.id
            WHERE {condition} GROUP BY a.loan_id, a.kind""",
        **params,
    )
    parts = {kind: part for part, kind in LOAN_PARTS.items()}
    found: dict[int, dict[str, int]] = {loan: {part: 0 for part in LOAN_PARTS} for loan in loan_ids}
    for row in rows:
        found[row["loan_id"]][parts[row["kind"]]] = int(row["total"])
    return found


async def unbalanced_transactions(limit: int = 20) -> list[int]:
    """Ids of stored transactions whose legs do not sum to zero (there should be none)."""
    rows = await sql.fetch_all(
        "SELECT transaction_id FROM ledger_leg GROUP BY transaction_id HAVING SUM(amount_fen) <> 0 ORDER BY transaction_id LIMIT :limit",
        limit=limit,
    )
    return [row["transaction_id"] for row in rows]


async def total_of_all_accounts() -> int:
    row = await sql.fetch_one("SELECT COALESCE(SUM(amount_fen), 0) AS total FROM ledger_leg")
    return int(row["total"])


async def account_of(code: str) -> LedgerAccount | None:
    return await LedgerAccount.filter(code=code).first()
