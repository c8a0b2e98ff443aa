"""Real-time monitoring (M17): the member banks' core-banking transaction events, matched as they
happen against the watched set — overdue borrowers and their guarantors.

The flow
- ``ingest``: a bank pushes a batch of events (HTTP, signed with its ``core_banking`` key). Each
  well-formed event is stored (``TransactionEvent``) in one transaction before anything is
  answered; the bank's transaction id is unique per bank, so a resent event is answered as
  accepted and not stored twice. Malformed events are refused one by one (nothing stored for
  them). An event on an account we do not know (no customer's account mirror names it) is
  stored, reported as unmatched and needs no processing. So does an event on an account whose
  owner, as the book stands committed when the event arrives, has no overdue loan at this bank
  as borrower or guarantor (``_watched_owners``; most events): it is stored ``processed`` as
  unwatched, and never queued — what a worker would have found, without its queue round trips
  and second write of the row. The rule judges an event by the arrival-time book, as the worker
  judges it by its cached watched set; a loan that falls overdue later does not reach back to
  money that arrived before (the auto-debit collects from it), and a loan settled out of
  overdue after arrival is seen by the worker, which notes the event as unwatched. The test is
  by owner, wider than the worker's by account, so no event the worker would act on is
  filtered out. The new events' ids then go on the queue (a Redis Stream, ``infra.streams``);
  if that fails they wait for the sweep.
- ``process``: a worker takes a batch of event ids off the queue and, in one transaction, locks
  those still ``received`` (another worker's are skipped), decides what each means, settles and
  signals, and marks them ``processed`` with their outcome. The status in the database is the
  truth: an event processed before is acknowledged and left alone, so a message delivered twice
  (a crashed worker's, claimed by another) has one effect.
- ``requeue_stale``: events still ``received`` a while after they were queued (the queue lost
  them, or the API could not reach it) are queued again; a restart that finds the queue gone
  re-queues every one.

What an event means (``decide``), for a watched account
- Money in to an overdue borrower settles what is due on their overdue loans at once (the loans'
  own ``set_off``: penalty, interest, principal through servicing and the ledger) and raises
  ``RT_OVERDUE_FUNDS_IN``.
- Money in to a guarantor of an overdue loan settles it the same way where the guarantee grants
  set-off (the product's ``servicing.guarantor_set_off``, frozen in the contract), otherwise it
  raises ``RT_GUARANTOR_FUNDS_IN`` so an officer can ask the guarantor to pay.
- Money out: a large single outflow (``RT_LARGE_OUTFLOW``), an outflow that drains the account
  (``RT_BALANCE_DRAINED``), a transfer to a counterparty other overdue borrowers also pay
  (``RT_SHARED_COUNTERPARTY``; counterparties are compared by keyed hash only).

The watched set is read in one query and kept by each worker for ``WATCH_TTL_SECONDS``, then
read again beside the batches, which use the old one meanwhile (a loan settled by this worker
leaves it at once); it needs no Redis and no per-event query.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Mapping, Protocol, Sequence

import orjson
from tortoise.transactions import in_transaction

from infra import clock, pii, sql
from infra.actors import system
from infra.errors import InvalidInput
from lending_core.ledger import bulk
from lending_core.ledger import service as ledger
from lending_core.loans import service as loans
from lending_core.loans.ports import SETTLEMENT, CoreBanking

log = logging.getLogger("risk.transactions")

FEED_CHANNEL = "core_banking"  # the channel of the key a bank's core signs its event feed with
STREAM = "risk:transaction_events"
GROUP = "monitor"
RECEIVED, PROCESSED = "received", "processed"
IN, OUT = "in", "out"
MAX_EVENTS = 1000
ACTOR = system("risk-monitor")

# Outcomes of processing.
UNMATCHED, UNWATCHED, SETTLED, SIGNALLED, NOTED = "unmatched", "unwatched", "settled", "signalled", "noted"

# The event-level rules (category "realtime"): code → severity.
OVERDUE_FUNDS_IN = "RT_OVERDUE_FUNDS_IN"
GUARANTOR_FUNDS_IN = "RT_GUARANTOR_FUNDS_IN"
LARGE_OUTFLOW = "RT_LARGE_OUTFLOW"
BALANCE_DRAINED = "RT_BALANCE_DRAINED"
SHARED_COUNTERPARTY = "RT_SHARED_COUNTERPARTY"
SEVERITY = {
    OVERDUE_FUNDS_IN: "watch",
    GUARANTOR_FUNDS_IN: "warning",
    LARGE_OUTFLOW: "warning",
    BALANCE_DRAINED: "warning",
    SHARED_COUNTERPARTY: "severe",
}
LARGE_OUTFLOW_FEN = 5_000_000  # ¥50,000 in one debit from a watched account
DRAIN_FROM_FEN = 500_000  # an account holding ¥5,000 or more before the debit…
DRAIN_LEFT_PERCENT = 10  # …left with at most 10 % of it

FEN_MAX = 100_000_000_000
FUTURE_SLACK = timedelta(minutes=5)
WATCH_TTL_SECONDS = 10.0
YIELD_EVERY = 500  # rows of the watched set built between turns of the event loop (the batches go on)
_TXN_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_ACCOUNT = re.compile(r"^[A-Za-z0-9-]{1,40}$")


class TransactionEventsRefused(InvalidInput):
    """Some events of the batch are malformed: each is named with its problems and none of them
    was stored. The well-formed events of the batch were stored (resending them is harmless)."""


def stream_key(key_prefix: str) -> str:
    return f"{key_prefix}{STREAM}"


class EventQueue(Protocol):
    """Where stored events wait for a worker (``infra.streams.Stream``): a message names the
    event's row, and its bank and account so a worker can tell an unwatched one without
    reading it."""

    async def add(self, items: Sequence[Mapping[str, str | int]]) -> Any: ...


def message(event_id: int, bank_id: int, account: str) -> dict[str, str | int]:
    return {"id": event_id, "bank": bank_id, "account": account}


def hint_of(fields: Mapping[str, str]) -> tuple[int, str] | None:
    """A message's (bank, account), if it carries them."""
    try:
        return int(fields["bank"]), fields["account"]
    except (KeyError, ValueError):
        return None


# ---- ingest ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventIn:
    bank_txn_id: str
    account_ref: str
    direction: str
    amount_fen: int
    balance_after_fen: int
    counterparty_hash: str | None
    occurred_at: datetime


def _whole(value: Any, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


def check_event(raw: Any, *, now: datetime) -> tuple[EventIn | None, list[dict]]:
    """A pushed event as we store it, or its problems (field and problem code, never the value).
    The counterparty's account is hashed here and goes no further in clear."""
    if not isinstance(raw, Mapping):
        return None, [{"field": None, "problem": "not_an_object"}]
    problems = []
    known = {"transaction_id", "account", "direction", "amount_fen", "balance_after_fen", "counterparty_account", "occurred_at"}
    problems += [{"field": str(name), "problem": "not_allowed"} for name in raw if name not in known]
    txn_id, account = raw.get("transaction_id"), raw.get("account")
    if not isinstance(txn_id, str) or not _TXN_ID.match(txn_id):
        problems.append({"field": "transaction_id", "problem": "required: 1-64 letters, digits or _.:-"})
    if not isinstance(account, str) or not _ACCOUNT.match(account):
        problems.append({"field": "account", "problem": "required: 1-40 letters, digits or -"})
    direction = raw.get("direction")
    if direction not in (IN, OUT):
        problems.append({"field": "direction", "problem": "must be in or out"})
    amount, balance = raw.get("amount_fen"), raw.get("balance_after_fen")
    if isinstance(amount, float) or not _whole(amount, 1, FEN_MAX):
        problems.append({"field": "amount_fen", "problem": "must be a whole number of fen, 1 or more"})
    if isinstance(balance, float) or not _whole(balance, -FEN_MAX, FEN_MAX):
        problems.append({"field": "balance_after_fen", "problem": "must be a whole number of fen"})
    counterparty = raw.get("counterparty_account")
    if counterparty is not None and (not isinstance(counterparty, str) or not 1 <= len(counterparty) <= 64 or "\x00" in counterparty):
        problems.append({"field": "counterparty_account", "problem": "must be 1-64 characters"})
    occurred = _timestamp(raw.get("occurred_at"))
    if occurred is None:
        problems.append({"field": "occurred_at", "problem": "must be an ISO 8601 time with its offset"})
    elif occurred > now + FUTURE_SLACK:
        problems.append({"field": "occurred_at", "problem": "in_the_future"})
    if problems:
        return None, problems
    hashed = pii.lookup_hash(pii.CARD_NUMBER, counterparty) if counterparty else None
    return EventIn(txn_id, account, direction, amount, balance, hashed, occurred), []


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


@dataclass
class IngestReport:
    """Per event of the batch, in its order: ``{"index", "transaction_id", "status"}`` with
    status accepted | duplicate | refused (then ``problems``), and ``matched`` for stored ones."""

    events: list[dict]
    stored_ids: list[int]

    @property
    def counts(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for event in self.events:
            found[event["status"]] = found.get(event["status"], 0) + 1
        found["unmatched"] = sum(1 for e in self.events if e.get("matched") is False)
        return found


async def ingest(bank_id: int, raw_events: Sequence[Any], *, queue: EventQueue | None, now: datetime | None = None) -> IngestReport:
    """Store a bank's batch of events, then queue the stored ones for processing. Raises
    ``TransactionEventsRefused`` (after storing the well-formed ones) if any was malformed."""
    now = now or clock.now()
    if len(raw_events) > MAX_EVENTS:
        raise InvalidInput(f"at most {MAX_EVENTS} events per request", details={"events": len(raw_events)})
    results: list[dict] = []
    good: dict[str, tuple[int, EventIn]] = {}
    for index, raw in enumerate(raw_events):
        event, problems = check_event(raw, now=now)
        txn_id = raw.get("transaction_id") if isinstance(raw, Mapping) and isinstance(raw.get("transaction_id"), str) else None
        entry = {"index": index, "transaction_id": txn_id if txn_id and _TXN_ID.match(txn_id) else None}
        if problems:
            results.append({**entry, "status": "refused", "problems": problems})
        elif event.bank_txn_id in good:
            results.append({**entry, "status": "duplicate"})  # twice in one batch: stored once
        else:
            good[event.bank_txn_id] = (index, event)
            results.append({**entry, "status": "accepted"})
    stored: dict[str, int] = {}
    matched: dict[str, int | None] = {}
    to_queue: list[int] = []
    if good:
        async with in_transaction():
            owners = await _account_owners(bank_id, sorted({e.account_ref for _, e in good.values()}))
            watched = await _watched_owners(bank_id, sorted(set(owners.values())))

            def settled_now(account: str) -> str | None:
                """The outcome an event on ``account`` gets at arrival, None if it is the worker's."""
                if account not in owners:
                    return UNMATCHED
                return None if owners[account] in watched else UNWATCHED

            rows = [
                (bank_id, e.bank_txn_id, e.account_ref, owners.get(e.account_ref), e.direction, e.amount_fen, e.balance_after_fen,
                 e.counterparty_hash, e.occurred_at, now, now, PROCESSED if outcome else RECEIVED, outcome, now if outcome else None)
                for _, e in good.values()
                for outcome in (settled_now(e.account_ref),)
            ]
            inserted = await bulk.insert("transaction_event", _EVENT_COLUMNS, rows, conflict='"bank_id", "bank_txn_id"', returning=("id", "bank_txn_id"))
            stored = {row["bank_txn_id"]: row["id"] for row in inserted}
        matched = {txn: owners.get(e.account_ref) for txn, (_, e) in good.items()}
        to_queue = [message(stored[txn], bank_id, e.account_ref) for txn, (_, e) in good.items()
                    if txn in stored and settled_now(e.account_ref) is None]
    for result in results:
        txn = result["transaction_id"]
        if result["status"] == "refused" or txn not in good:
            continue
        if good[txn][0] == result["index"]:
            if txn not in stored:
                result["status"] = "duplicate"  # the bank sent it before
            result["matched"] = matched[txn] is not None
    if to_queue and queue is not None:
        try:
            await queue.add(to_queue)
        except Exception:  # the events are stored: the sweep queues them again
            log.warning("could not queue %d transaction events; the sweep will", len(to_queue), exc_info=True)
    report = IngestReport(results, list(stored.values()))
    refused = [r for r in results if r["status"] == "refused"]
    if refused:
        raise TransactionEventsRefused(f"{len(refused)} of {len(results)} events are malformed", details={"events": results})
    return report


_EVENT_COLUMNS = [
    ("bank_id", "bigint"), ("bank_txn_id", "text"), ("account_ref", "text"), ("customer_id", "bigint"), ("direction", "text"),
    ("amount_fen", "bigint"), ("balance_after_fen", "bigint"), ("counterparty_hash", "text"), ("occurred_at", "timestamptz"),
    ("received_at", "timestamptz"), ("queued_at", "timestamptz"), ("status", "text"), ("outcome", "text"), ("processed_at", "timestamptz"),
]


async def _account_owners(bank_id: int, accounts: Sequence[str]) -> dict[str, int]:
    """Account number → customer, for the accounts we know at this bank: those a customer's
    ledger mirror names (every borrower's from the drawdown, every watched guarantor's)."""
    if not accounts:
        return {}
    if bulk.is_postgres():
        condition, params = "external_account = ANY(:accounts)", {"accounts": list(accounts)}
    else:
        marks, params = sql.in_list("a", list(accounts))
        condition = f"external_account IN ({marks})"
    rows = await sql.fetch_all(
        f"""SELECT external_account, customer_id FROM ledger_account WHERE bank_id = :bank AND {condition}
            AND kind IN ('{ledger.CUSTOMER_SETTLEMENT}', '{ledger.CUSTOMER_DEPOSIT}') AND customer_id IS NOT NULL""",
        bank=bank_id, **params,
    )
    return {row["external_account"]: row["customer_id"] for row in rows}


async def _watched_owners(bank_id: int, customer_ids: Sequence[int]) -> set[int]:
    """Those of ``customer_ids`` who now borrow or guarantee an overdue loan of this bank."""
    if not customer_ids:
        return set()
    borrowers, params = bulk.in_ids("r.customer_id", "borrowers", customer_ids)
    guarantors, more = bulk.in_ids("p.customer_id", "guarantors", customer_ids)
    rows = await sql.fetch_all(
        f"""SELECT r.customer_id FROM loan_receipt r WHERE r.bank_id = :bank AND r.status = 'active' AND r.dpd > 0 AND {borrowers}
            UNION
            SELECT p.customer_id FROM contract_party p JOIN loan_receipt r ON r.contract_id = p.contract_id
            WHERE p.role = 'guarantor' AND {guarantors} AND r.bank_id = :bank AND r.status = 'active' AND r.dpd > 0""",
        bank=bank_id, **params, **more,
    )
    return {row["customer_id"] for row in rows}


async def requeue_stale(queue: EventQueue, *, older_than: timedelta, limit: int = 10_000, now: datetime | None = None) -> int:
    """Queue again the events still waiting ``older_than`` after they were last queued (zero:
    every one, as after the queue was lost). Each is taken by one sweeper: ``queued_at`` moves."""
    now = now or clock.now()
    async with in_transaction():
        rows = await sql.fetch_all(
            "SELECT id, bank_id, account_ref FROM transaction_event WHERE status = :status AND queued_at <= :before ORDER BY id LIMIT :limit"
            + (" FOR UPDATE SKIP LOCKED" if bulk.is_postgres() else ""),
            status=RECEIVED, before=now - older_than, limit=limit,
        )
        await bulk.update("transaction_event", ("id", "bigint"), [("queued_at", "timestamptz")], [(row["id"], now) for row in rows])
    if rows:
        await queue.add([message(row["id"], row["bank_id"], row["account_ref"]) for row in rows])
    return len(rows)


# ---- the watched set ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OverdueLoan:
    loan_id: int
    bank_id: int
    customer_id: int
    product_code: str
    dpd: int
    guarantor_set_off: bool


@dataclass(frozen=True)
class Watch:
    """An account we watch: whose it is, in which role, for which overdue loans."""

    customer_id: int
    role: str  # borrower | guarantor
    loans: tuple[OverdueLoan, ...]


@dataclass
class WatchedSet:
    accounts: dict[tuple[int, str], list[Watch]] = field(default_factory=dict)
    loaded_at: float = 0.0
    # Indexes kept by ``add`` and ``forget_loans``, so that a batch that settles a loan touches its
    # own accounts, not the whole set (rebuilding the set per batch took most of a worker's CPU).
    _keys_of_loan: dict[int, set[tuple[int, str]]] = field(default_factory=dict)
    _borrower_watches: Counter = field(default_factory=Counter)

    def of(self, bank_id: int, account: str) -> list[Watch]:
        return self.accounts.get((bank_id, account), [])

    def is_overdue_borrower(self, customer_id: int) -> bool:
        return customer_id in self._borrower_watches

    def add(self, bank_id: int, account: str, customer_id: int, role: str, loan: OverdueLoan) -> None:
        """Watch ``account`` for ``customer_id`` in ``role`` on ``loan`` (one watch per customer and role)."""
        self._keys_of_loan.setdefault(loan.loan_id, set()).add((bank_id, account))
        watches = self.accounts.setdefault((bank_id, account), [])
        for i, w in enumerate(watches):
            if w.customer_id == customer_id and w.role == role:
                watches[i] = Watch(customer_id, role, (*w.loans, loan))
                return
        watches.append(Watch(customer_id, role, (loan,)))
        if role == "borrower":
            self._borrower_watches[customer_id] += 1

    def forget_loans(self, loan_ids: set[int]) -> None:
        """Loans this worker settled out of overdue leave the set before its next refresh."""
        for key in {key for loan_id in loan_ids for key in self._keys_of_loan.pop(loan_id, ())}:
            kept = []
            for w in self.accounts.get(key, []):
                loans_left = tuple(l for l in w.loans if l.loan_id not in loan_ids)
                if loans_left:
                    kept.append(Watch(w.customer_id, w.role, loans_left))
                elif w.role == "borrower":
                    self._borrower_watches[w.customer_id] -= 1
                    if not self._borrower_watches[w.customer_id]:
                        del self._borrower_watches[w.customer_id]
            if kept:
                self.accounts[key] = kept
            else:
                self.accounts.pop(key, None)


class Watcher:
    """Keeps a worker's watched set, refreshed every ``ttl_seconds`` with one query for the
    overdue loans and one for their guarantors. Guarantors' account numbers come from core
    banking once per guarantor and are remembered (an account number does not change)."""

    def __init__(self, core_banking: CoreBanking, *, ttl_seconds: float = WATCH_TTL_SECONDS, monotonic=None):
        import time

        self.core_banking = core_banking
        self.ttl_seconds = ttl_seconds
        self._monotonic = monotonic or time.monotonic
        self._accounts: dict[tuple[int, int], str] = {}
        self._set_off: dict[int, bool] = {}
        self._refreshing = asyncio.Lock()
        self._renewal: asyncio.Task | None = None
        self.current = WatchedSet()

    async def get(self) -> WatchedSet:
        if not self.current.loaded_at:
            # Batches processed at once share the set: one of them reads it.
            async with self._refreshing:
                if not self.current.loaded_at:
                    await self.refresh()
        elif self._monotonic() - self.current.loaded_at >= self.ttl_seconds and self._renewal is None:
            # The set we have serves while the next is read beside the batches: a batch that
            # waited for the read would hold its events (and those behind it) that much longer.
            # A loan settled during the read may be in the new set once more; its set-off then
            # finds nothing due.
            self._renewal = asyncio.create_task(self._renew())
        return self.current

    async def _renew(self) -> None:
        try:
            await self.refresh()
        except Exception:  # the old set keeps serving; the next batch tries again
            log.warning("could not refresh the watched set", exc_info=True)
        finally:
            self._renewal = None

    async def refresh(self) -> WatchedSet:
        rows = await sql.fetch_all(
            """SELECT r.id, r.bank_id, r.customer_id, r.dpd, r.settlement_account, r.contract_id, p.code AS product_code, b.code AS bank_code
               FROM loan_receipt r JOIN contract c ON c.id = r.contract_id JOIN product p ON p.id = c.product_id
               JOIN bank b ON b.id = r.bank_id
               WHERE r.status = 'active' AND r.dpd > 0"""
        )
        await self._learn_set_off(sorted({row["contract_id"] for row in rows} - set(self._set_off)))
        watched = WatchedSet(loaded_at=self._monotonic())
        by_contract: dict[int, list[OverdueLoan]] = {}
        bank_codes: dict[int, str] = {}
        for n, row in enumerate(rows):
            if n and not n % YIELD_EVERY:
                await asyncio.sleep(0)
            loan = OverdueLoan(row["id"], row["bank_id"], row["customer_id"], row["product_code"], row["dpd"], self._set_off[row["contract_id"]])
            by_contract.setdefault(row["contract_id"], []).append(loan)
            bank_codes[row["bank_id"]] = row["bank_code"]
            watched.add(row["bank_id"], row["settlement_account"], loan.customer_id, "borrower", loan)
        if by_contract:
            condition, params = bulk.in_ids("contract_id", "contracts", list(by_contract))
            parties = await sql.fetch_all(
                f"SELECT contract_id, customer_id FROM contract_party WHERE role = 'guarantor' AND customer_id IS NOT NULL AND {condition}",
                **params,
            )
            mirrors = []
            for party in parties:
                for loan in by_contract[party["contract_id"]]:
                    account = await self._account(loan.bank_id, bank_codes[loan.bank_id], party["customer_id"], mirrors)
                    watched.add(loan.bank_id, account, party["customer_id"], "guarantor", loan)
            # A guarantor's account mirror makes their events matched at ingest, and is the
            # payer's side of a set-off's ledger transaction.
            await ledger.open_accounts(mirrors)
        self.current = watched
        return watched

    async def _account(self, bank_id: int, bank_code: str, customer_id: int, mirrors: list) -> str:
        key = (bank_id, customer_id)
        if key not in self._accounts:
            self._accounts[key] = await self.core_banking.account_of(bank_code, customer_id, SETTLEMENT)
            mirrors.append(ledger.customer_account(bank_id, customer_id, ledger.CUSTOMER_SETTLEMENT, self._accounts[key]))
        return self._accounts[key]

    async def _learn_set_off(self, contract_ids: Sequence[int]) -> None:
        """Whether each contract's guarantee grants set-off: its clause as signed (the contract's
        servicing terms), else as the product version it was made from defines it. Remembered:
        a signed contract's terms do not change."""
        if not contract_ids:
            return
        from lending_core.products.service import version_definition

        condition, params = bulk.in_ids("c.id", "contracts", contract_ids)
        for row in await sql.fetch_all(
                f"""SELECT c.id, c.servicing, c.product_id, c.product_version, p.code AS product_code
                    FROM contract c JOIN product p ON p.id = c.product_id WHERE {condition}""", **params):
            servicing = orjson.loads(row["servicing"]) if isinstance(row["servicing"], (str, bytes)) else (row["servicing"] or {})
            if "guarantor_set_off" in servicing:
                self._set_off[row["id"]] = bool(servicing["guarantor_set_off"])
            else:
                definition = await version_definition(row["product_id"], row["product_version"], code=row["product_code"])
                self._set_off[row["id"]] = definition.servicing.guarantor_set_off


# ---- processing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredEvent:
    id: int
    bank_id: int
    bank_txn_id: str
    account_ref: str
    customer_id: int | None
    direction: str
    amount_fen: int
    balance_after_fen: int
    counterparty_hash: str | None


@dataclass(frozen=True)
class SignalIntent:
    rule_code: str
    loan: OverdueLoan
    facts: dict

    @property
    def severity(self) -> str:
        # Money reaching a guarantor that the bank may not take is for an officer to act on;
        # money it took is news.
        if self.rule_code == GUARANTOR_FUNDS_IN and self.facts.get("set_off"):
            return "watch"
        return SEVERITY[self.rule_code]


@dataclass
class Decision:
    """What one event means: set-off claims on overdue loans, and signals."""

    event: StoredEvent
    claims: list[loans.SetOff] = field(default_factory=list)
    signals: list[SignalIntent] = field(default_factory=list)
    watched: bool = False


def decide(event: StoredEvent, watched: WatchedSet, shared_with: Mapping[str, set[int]]) -> Decision:
    """The rules, on one event and the watched set (pure). ``shared_with`` maps counterparty
    hashes to the customers known to have paid them."""
    decision = Decision(event)
    watches = watched.of(event.bank_id, event.account_ref)
    if not watches:
        return decision
    decision.watched = True
    base = {"event_id": event.id, "amount_fen": event.amount_fen, "balance_after_fen": event.balance_after_fen}
    if event.direction == IN:
        key = f"event:{event.id}"
        # The borrower's own loans first, most overdue first; then loans they guarantee.
        ordered = sorted(watches, key=lambda w: w.role != "borrower")
        for watch in ordered:
            for loan in sorted(watch.loans, key=lambda l: (-l.dpd, l.loan_id)):
                if watch.role == "borrower" or loan.guarantor_set_off:
                    decision.claims.append(loans.SetOff(loan.loan_id, watch.customer_id, event.account_ref, event.amount_fen, key))
                rule = OVERDUE_FUNDS_IN if watch.role == "borrower" else GUARANTOR_FUNDS_IN
                facts = {**base, "party": watch.role, "dpd": loan.dpd, "set_off": watch.role == "borrower" or loan.guarantor_set_off}
                decision.signals.append(SignalIntent(rule, loan, facts))
        return decision
    before = event.balance_after_fen + event.amount_fen
    paid_too = shared_with.get(event.counterparty_hash, ()) if event.counterparty_hash else ()
    others = {c for c in paid_too if c != event.customer_id and watched.is_overdue_borrower(c)}
    for watch in watches:
        loan = max(watch.loans, key=lambda l: (l.dpd, -l.loan_id))
        facts = {**base, "party": watch.role, "dpd": loan.dpd}
        if event.amount_fen >= LARGE_OUTFLOW_FEN:
            decision.signals.append(SignalIntent(LARGE_OUTFLOW, loan, facts))
        if before >= DRAIN_FROM_FEN and event.balance_after_fen * 100 <= before * DRAIN_LEFT_PERCENT:
            decision.signals.append(SignalIntent(BALANCE_DRAINED, loan, {**facts, "balance_before_fen": before}))
        if others:
            decision.signals.append(SignalIntent(SHARED_COUNTERPARTY, loan, {**facts, "other_overdue_borrowers": len(others)}))
    return decision


@dataclass
class Processed:
    """A batch's result: ``done`` may be acknowledged (processed now or before), ``busy`` are
    held by another worker's transaction (leave them pending)."""

    done: list[int] = field(default_factory=list)
    busy: list[int] = field(default_factory=list)
    settled: list[loans.SetOffDone] = field(default_factory=list)
    signals: list[int] = field(default_factory=list)
    outcomes: dict[int, str] = field(default_factory=dict)


_STORED = "id, bank_id, bank_txn_id, account_ref, customer_id, direction, amount_fen, balance_after_fen, counterparty_hash"


async def process(event_ids: Sequence[int], *, watcher: Watcher, core_banking: CoreBanking, at: datetime | None = None,
                  hints: Mapping[int, tuple[int, str] | None] | None = None) -> Processed:
    """Process a batch of stored events in one transaction (see the module's docstring).
    ``hints`` (event id → bank and account, from the queue's messages) let the events on
    unwatched accounts — most of them — be marked processed in one statement, unread."""
    result = Processed()
    watched = await watcher.get()
    hints = hints or {}
    quiet = sorted({i for i in event_ids if (hint := hints.get(i)) is not None and not watched.of(*hint)})
    ids = sorted(set(event_ids) - set(quiet))
    if not ids and not quiet:
        return result
    at = at or clock.now()
    on = clock.business_date(at)
    async with in_transaction():
        if quiet:
            # A row another worker holds is waited for, then found processed: done either way.
            condition, params = bulk.in_ids("id", "quiet", quiet)
            marked = await sql.fetch_all(
                f"""UPDATE transaction_event SET status = :processed, outcome = :outcome, processed_at = :at
                    WHERE {condition} AND status = :received RETURNING id""",
                processed=PROCESSED, outcome=UNWATCHED, at=at, received=RECEIVED, **params)
            result.done += quiet
            result.outcomes.update({row["id"]: UNWATCHED for row in marked})
        events = await _take(ids)
        taken = {e.id for e in events}
        if len(taken) < len(ids):
            condition, params = bulk.in_ids("id", "ids", ids)
            rest = await sql.fetch_all(f"SELECT id, status FROM transaction_event WHERE {condition}", **params)
            for row in rest:
                if row["id"] not in taken:
                    # Processed before (a redelivery): acknowledge. Still received: another worker holds it.
                    (result.done if row["status"] != RECEIVED else result.busy).append(row["id"])
            # Ids that name no event at all are acknowledged too: there is nothing to do.
            known = {row["id"] for row in rest}
            result.done += [i for i in ids if i not in known]
        shared = await _shared_counterparties([e for e in events if e.direction == OUT and e.counterparty_hash and watched.of(e.bank_id, e.account_ref)])
        decisions = [decide(e, watched, shared) for e in events]
        claims = [c for d in decisions for c in d.claims]
        settled = await loans.set_off(claims, actor=ACTOR, core_banking=core_banking, on=on) if claims else []
        by_key: dict[str, list[loans.SetOffDone]] = {}
        for done in settled:
            by_key.setdefault(done.claim.key, []).append(done)
        wanted: list[tuple[int, SignalIntent, dict]] = []
        for decision in decisions:
            paid = [d for d in by_key.get(f"event:{decision.event.id}", []) if d.settled_fen]
            for intent in decision.signals:
                facts = dict(intent.facts)
                if intent.rule_code in (OVERDUE_FUNDS_IN, GUARANTOR_FUNDS_IN):
                    facts["settled_fen"] = sum(d.settled_fen for d in paid if d.claim.loan_id == intent.loan.loan_id)
                wanted.append((decision.event.id, intent, facts))
        signal_of = await _raise_signals([(intent, facts) for _, intent, facts in wanted], at=at)
        raised: dict[int, set[int]] = {}
        for event_id, intent, _ in wanted:
            raised.setdefault(event_id, set()).add(signal_of[_signal_key(intent)])
        updates = []
        for decision in decisions:
            event = decision.event
            paid = [d for d in by_key.get(f"event:{event.id}", []) if d.settled_fen]
            signal_ids = sorted(raised.get(event.id, ()))
            outcome = SETTLED if paid else SIGNALLED if signal_ids else NOTED if decision.watched else UNWATCHED
            outcome_facts = {
                "settled": [{"loan_id": d.claim.loan_id, "repayment_id": d.repayment_id, "amount_fen": d.settled_fen} for d in paid],
                "signals": signal_ids,
            } if decision.watched else None
            updates.append((event.id, PROCESSED, outcome, orjson.dumps(outcome_facts).decode() if outcome_facts else None, at))
            result.outcomes[event.id] = outcome
            result.signals += signal_ids
        await bulk.update("transaction_event", ("id", "bigint"),
                          [("status", "text"), ("outcome", "text"), ("result", "jsonb"), ("processed_at", "timestamptz")], updates)
    result.done += [e.id for e in events]
    result.settled = [d for d in settled if d.settled_fen]
    # A loan settled out of overdue is no longer watched by this worker (others see it at refresh).
    cleared = {d.claim.loan_id for d in result.settled if d.repayment and d.dpd == 0}
    if cleared:
        watched.forget_loans(cleared)
    return result


async def _take(ids: Sequence[int]) -> list[StoredEvent]:
    """The events still to process among ``ids``, locked for this transaction; on PostgreSQL
    rows another worker holds are skipped."""
    if not ids:
        return []
    condition, params = bulk.in_ids("id", "ids", ids)
    lock = " FOR UPDATE SKIP LOCKED" if bulk.is_postgres() else ""
    rows = await sql.fetch_all(f"SELECT {_STORED} FROM transaction_event WHERE {condition} AND status = :status ORDER BY id{lock}",
                               status=RECEIVED, **params)
    return [StoredEvent(**{k: row[k] for k in StoredEvent.__dataclass_fields__}) for row in rows]


def _signal_key(intent: SignalIntent) -> str:
    from lending_core.risk.signals import open_key

    loan = intent.loan
    return open_key(bank_id=loan.bank_id, loan_id=loan.loan_id, customer_id=loan.customer_id, rule_code=intent.rule_code)


async def _raise_signals(intents: Sequence[tuple[SignalIntent, dict]], *, at: datetime) -> dict[str, int]:
    """``signals.raise_signal`` for a whole batch, set-based as the daily batch writes them: one
    upsert opens the new signals and updates the open ones (a signal that fired several times in
    the batch counts once, with its last facts); the new ones then get their disposal tasks, list
    proposals and audit rows. Returns each signal's id by its open key."""
    if not intents:
        return {}
    from lending_core.loans import store
    from lending_core.risk import lists, tasks
    from lending_core.risk.batch import upsert_signals
    from lending_core.risk.models import WarningSignal
    from lending_core.risk.signals import ACTOR as SIGNALS_ACTOR
    from lending_core.risk.signals import clean_facts

    rows: dict[str, tuple] = {}
    for intent, facts in intents:
        loan = intent.loan
        rows[_signal_key(intent)] = (
            loan.bank_id, loan.loan_id, loan.customer_id, loan.product_code, intent.rule_code, "realtime", intent.severity, "realtime",
            "open", _signal_key(intent), at, at, 1, orjson.dumps(clean_facts(facts)).decode(), None,
        )
    # In key order, so that batches upserting the same signals at once lock them in one order.
    await upsert_signals([rows[key] for key in sorted(rows)])
    signals = await WarningSignal.filter(open_key__in=list(rows))
    opened = [s for s in signals if s.times == 1 and s.first_seen_at == at]
    if opened:
        await store.audit(SIGNALS_ACTOR, [
            ("risk.signal_opened", "warning_signal", s.id, s.bank_id, {"rule_code": s.rule_code, "severity": s.severity, "source": "realtime", "loan_id": s.loan_id})
            for s in opened
        ])
        await tasks.open_for_signals(opened, at=at)
        await lists.propose_for_signals(opened, at=at)
    return {s.open_key: s.id for s in signals}


async def _shared_counterparties(events: Sequence[StoredEvent]) -> dict[str, set[int]]:
    """Counterparty hash → the customers who have paid it (from every stored outflow)."""
    hashes = sorted({e.counterparty_hash for e in events})
    if not hashes:
        return {}
    if bulk.is_postgres():
        condition, params = "counterparty_hash = ANY(:hashes)", {"hashes": hashes}
    else:
        marks, params = sql.in_list("h", hashes)
        condition = f"counterparty_hash IN ({marks})"
    rows = await sql.fetch_all(
        f"SELECT DISTINCT counterparty_hash, customer_id FROM transaction_event WHERE {condition} AND direction = 'out' AND customer_id IS NOT NULL",
        **params,
    )
    found: dict[str, set[int]] = {}
    for row in rows:
        found.setdefault(row["counterparty_hash"], set()).add(row["customer_id"])
    return found


async def unprocessed_count() -> int:
    row = await sql.fetch_one("SELECT COUNT(*) AS n FROM transaction_event WHERE status = :status", status=RECEIVED)
    return int(row["n"])
