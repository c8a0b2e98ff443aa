"""Drawdowns on a credit line, repayments, payoff quotes and what customers and staff may see.

Each command is one transaction: the loan's rows, its ledger transaction(s), the core-banking
movement (the sandbox shares our database; ``ports`` says how a remote one goes through the
outbox), the outbox events and the audit row commit together or not at all. Each is idempotent
on its caller's key: a retried drawdown or repayment finds the receipt or repayment it made and
moves nothing.

Who may do what: the borrower draws and repays; a co-borrower (jointly liable) sees the loan
and may repay it from their own account; a guarantor sees the loan, read-only. Anyone else is
told the loan does not exist. Staff see their own bank's loans (association staff: all).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Sequence

from tortoise.transactions import in_transaction

from infra import audit, clock, outbox, sql
from infra.actors import Actor
from infra.errors import NotFound
from lending_core import access
from lending_core.contracts.models import Contract, ContractParty
from lending_core.customers.models import Customer
from lending_core.datasources.ports import PropertyRegistry
from lending_core.ledger import bulk
from lending_core.ledger import service as ledger
from lending_core.loans import schedule as schedules
from lending_core.loans import servicing, store
from lending_core.loans.errors import (
    ContractNotEffective,
    CreditLimitExceeded,
    CreditLineExpired,
    DrawdownKeyReused,
    InsufficientFunds,
    NotTheBorrower,
    PledgeInsufficient,
    PropertyNotRegistered,
    RepaymentKeyReused,
    RepaymentNotAllowed,
    ScheduleRefused,
)
from lending_core.loans.models import Instalment, LoanReceipt, Repayment
from lending_core.loans.ports import SETTLEMENT, TIME_DEPOSIT, CoreBanking, DebitRequest
from lending_core.org.models import Bank

EFFECTIVE = "effective"
BORROWER, CO_BORROWER, GUARANTOR = "borrower", "co_borrower", "guarantor"
READ_PERMISSION = "customers.read"


# ---- drawdown ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DrawdownPreview:
    """The loan receipt a drawdown would make today, shown before the customer confirms."""

    contract: Contract
    on: date
    schedule: schedules.Schedule
    apr_bps: int
    outstanding_fen: int

    @property
    def available_fen(self) -> int:
        return self.contract.limit_fen - self.outstanding_fen


def _object_id(value, kind: str) -> int:
    """An id as the database stores it; anything else names nothing."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**63 - 1:
        raise NotFound(f"no such {kind}")
    return value


async def _borrowers_contract(actor: Actor, contract_id: int) -> Contract:
    customer_id = access.as_customer_id(actor)
    contract = await Contract.filter(id=_object_id(contract_id, 'contract')).first()
    if contract is None:
        raise NotFound("no such contract")
    if contract.customer_id != customer_id:
        if await ContractParty.filter(contract_id=contract.id, customer_id=customer_id).exists():
            raise NotTheBorrower()
        raise NotFound("no such contract")
    return contract


def _check_drawable(contract: Contract, on: date) -> None:
    if contract.status != EFFECTIVE:
        raise ContractNotEffective(details={"status": contract.status})
    if contract.line_expires_on is not None and on >= contract.line_expires_on:
        raise CreditLineExpired(details={"line_expires_on": contract.line_expires_on.isoformat()})


def _plan(contract: Contract, amount_fen: int, on: date) -> tuple[schedules.Schedule, int]:
    try:
        plan = schedules.build_schedule(contract.repayment_method, amount_fen, contract.rate_bps, contract.term_months, on)
        return plan, schedules.irr_apr_bps(amount_fen, plan)
    except schedules.ScheduleError as exc:
        raise ScheduleRefused(str(exc)) from None


async def outstanding_principal(contract_id: int) -> int:
    """Principal owed on the line's open loans, from the ledger."""
    row = await sql.fetch_one(
        """SELECT COALESCE(SUM(l.amount_fen), 0) AS total FROM loan_receipt r
           JOIN ledger_leg l ON l.account_id = r.principal_account_id
           WHERE r.contract_id = :contract AND r.status = 'active'""",
        contract=contract_id,
    )
    return int(row["total"])


def _check_limit(contract: Contract, outstanding: int, amount_fen: int) -> None:
    if outstanding + amount_fen > contract.limit_fen:
        raise CreditLimitExceeded(
            details={"limit_fen": contract.limit_fen, "outstanding_fen": outstanding, "available_fen": max(contract.limit_fen - outstanding, 0)}
        )


async def preview_drawdown(actor: Actor, contract_id: int, amount_fen: int, *, on: date | None = None) -> DrawdownPreview:
    amount = servicing.whole_fen(amount_fen)
    on = on or clock.business_date()
    contract = await _borrowers_contract(actor, contract_id)
    _check_drawable(contract, on)
    outstanding = await outstanding_principal(contract.id)
    _check_limit(contract, outstanding, amount)
    plan, apr = _plan(contract, amount, on)
    return DrawdownPreview(contract, on, plan, apr, outstanding)


async def draw(
    actor: Actor,
    contract_id: int,
    amount_fen: int,
    request_key: str,
    *,
    core_banking: CoreBanking,
    properties: PropertyRegistry,
    on: date | None = None,
) -> LoanReceipt:
    """Draw ``amount_fen`` on an effective credit line and pay it into the borrower's account.
    A deposit-pledge loan freezes its principal in the borrower's time deposit first; a mortgage
    loan needs the registry to show the borrower's home. Retrying with ``request_key`` returns
    the same loan receipt and pays nothing."""
    amount = servicing.whole_fen(amount_fen)
    on = on or clock.business_date()
    contract = await _borrowers_contract(actor, contract_id)
    if (existing := await _drawn(contract.id, request_key, amount)) is not None:
        return existing
    _check_drawable(contract, on)
    plan, apr = _plan(contract, amount, on)
    bank = await Bank.get(id=contract.bank_id)
    # Outside parties are asked before the transaction: it holds the line's lock only briefly.
    certificate = await _registered_home(contract, properties) if contract.collateral == "property_mortgage" else None
    settlement = await core_banking.account_of(bank.code, contract.customer_id, SETTLEMENT)
    pledge = await core_banking.account_of(bank.code, contract.customer_id, TIME_DEPOSIT) if contract.collateral == "deposit_pledge" else None
    key = f"drawdown:{contract.id}:{store.digest(request_key)}"
    async with in_transaction():
        # The line's row lock serialises drawdowns on it: two cannot both pass the limit.
        contract = await Contract.filter(id=contract.id).select_for_update().first()
        if (existing := await _drawn(contract.id, request_key, amount)) is not None:
            return existing
        _check_drawable(contract, on)
        outstanding = await outstanding_principal(contract.id)
        _check_limit(contract, outstanding, amount)
        if pledge is not None:
            frozen = await core_banking.freeze(pledge, amount, f"{key}:freeze")
            if not frozen.ok:
                raise PledgeInsufficient(details={"needed_fen": amount})
        servicing_terms = contract.servicing or {}
        loan = await LoanReceipt.create(
            bank_id=contract.bank_id, contract_id=contract.id, customer_id=contract.customer_id, request_key=request_key,
            principal_fen=amount, rate_bps=contract.rate_bps, penalty_rate_bps=contract.penalty_rate_bps,
            term_months=contract.term_months, repayment_method=contract.repayment_method,
            day_basis=int(servicing_terms.get("day_basis", schedules.DEFAULT_DAY_BASIS)),
            allocation=list(servicing_terms.get("allocation", servicing.PARTS)),
            early_repayment_fee_bps=int(servicing_terms.get("early_repayment_fee_bps", 0)),
            collateral=contract.collateral, apr_bps=apr, drawn_on=on, maturity_date=plan.instalments[-1].due_date,
            settlement_account=settlement, pledge_account=pledge, pledged_fen=amount if pledge else 0,
            property_certificate=certificate,
            # The ledger accounts are opened next, once the loan has its id (same transaction).
            principal_account_id=0, interest_account_id=0, penalty_account_id=0, settlement_ledger_account_id=0,
        )
        await Instalment.bulk_create([
            Instalment(loan_id=loan.id, bank_id=loan.bank_id, number=i.number, due_date=i.due_date,
                       principal_fen=i.principal_fen, interest_fen=i.interest_fen)
            for i in plan.instalments
        ])
        pledged_deposits = await _open_books(loan)
        if pledge:
            await ledger.post(
                "pledge_freeze", [ledger.Leg(loan.pledge_ledger_account_id, amount), ledger.Leg(pledged_deposits, -amount)],
                f"pledge_freeze:{loan.id}", key, bank_id=loan.bank_id, business_date=on,
            )
        await ledger.post(
            "disbursement", [ledger.Leg(loan.principal_account_id, amount), ledger.Leg(loan.settlement_ledger_account_id, -amount)],
            key, key, bank_id=loan.bank_id, business_date=on,
        )
        await core_banking.credit(settlement, amount, f"{key}:credit")
        await outbox.enqueue(
            "loans.loan_disbursed",
            {"loan_id": loan.id, "contract_id": contract.id, "customer_id": loan.customer_id, "principal_fen": amount,
             "drawn_on": on.isoformat(), "maturity_date": loan.maturity_date.isoformat(), "collateral": loan.collateral},
            bank_id=loan.bank_id,
        )
        await audit.record(
            actor, "loan.disburse", "loan", loan.id, bank_id=loan.bank_id,
            after={"contract_id": contract.id, "principal_fen": amount, "term_months": loan.term_months, "rate_bps": loan.rate_bps,
                   "method": loan.repayment_method, "settlement_account": settlement, "pledged_fen": loan.pledged_fen,
                   "property_certificate": certificate, "ledger_key": key},
        )
    return loan


async def _open_books(loan: LoanReceipt) -> int:
    """Open the loan's ledger accounts (and the bank's and the borrower's mirrors if new), note
    them on the loan; returns the bank's pledged-deposits account."""
    settlement = ledger.customer_account(loan.bank_id, loan.customer_id, ledger.CUSTOMER_SETTLEMENT, loan.settlement_account)
    pledge = ledger.customer_account(loan.bank_id, loan.customer_id, ledger.CUSTOMER_DEPOSIT, loan.pledge_account) if loan.pledge_account else None
    ids = await ledger.open_accounts([*ledger.loan_accounts(loan.bank_id, loan.id), *ledger.bank_accounts(loan.bank_id), settlement, *([pledge] if pledge else [])])
    loan.principal_account_id = ids[ledger.loan_code(loan.id, "principal")]
    loan.interest_account_id = ids[ledger.loan_code(loan.id, "interest")]
    loan.penalty_account_id = ids[ledger.loan_code(loan.id, "penalty")]
    loan.settlement_ledger_account_id = ids[settlement.code]
    loan.pledge_ledger_account_id = ids[pledge.code] if pledge else None
    await loan.save(update_fields=["principal_account_id", "interest_account_id", "penalty_account_id", "settlement_ledger_account_id", "pledge_ledger_account_id"])
    return ids[ledger.bank_code(loan.bank_id, ledger.PLEDGED_DEPOSITS)]


async def _drawn(contract_id: int, request_key: str, amount_fen: int) -> LoanReceipt | None:
    existing = await LoanReceipt.filter(contract_id=contract_id, request_key=request_key).first()
    if existing is not None and existing.principal_fen != amount_fen:
        raise DrawdownKeyReused()
    return existing


async def _registered_home(contract: Contract, properties: PropertyRegistry) -> str:
    customer = await Customer.get(id=contract.customer_id)
    record = await properties.record(customer.id_number) if customer.id_number else None
    if record is None or record.count < 1:
        raise PropertyNotRegistered()
    return record.largest_property_id or "registered"


# ---- repayment ---------------------------------------------------------------------------------


async def _capacity(actor: Actor, loan: LoanReceipt) -> str | None:
    customer_id = access.as_customer_id(actor)
    if loan.customer_id == customer_id:
        return BORROWER
    roles = set(await ContractParty.filter(contract_id=loan.contract_id, customer_id=customer_id).values_list("role", flat=True))
    return CO_BORROWER if CO_BORROWER in roles else GUARANTOR if GUARANTOR in roles else None


async def _visible(actor: Actor, loan_id: int) -> tuple[LoanReceipt, str]:
    loan = await LoanReceipt.filter(id=_object_id(loan_id, 'loan')).first()
    capacity = await _capacity(actor, loan) if loan is not None else None
    if capacity is None:
        raise NotFound("no such loan")
    return loan, capacity


async def repay(
    actor: Actor,
    loan_id: int,
    amount_fen: int,
    request_key: str,
    *,
    core_banking: CoreBanking,
    on: date | None = None,
) -> Repayment:
    """Repay ``amount_fen`` from the payer's own account: what is due first, then principal
    early (see ``servicing``). Retrying with ``request_key`` returns the same repayment."""
    amount = servicing.whole_fen(amount_fen)
    loan, capacity = await _visible(actor, loan_id)
    if capacity == GUARANTOR:
        raise RepaymentNotAllowed()
    on = on or clock.business_date()
    payer = access.as_customer_id(actor)
    # Keys are the caller's: a borrower's and a co-borrower's keys never name each other's repayment.
    request_key = f"customer:{payer}:{store.digest(request_key)}"
    if (existing := await _repaid(loan.id, request_key, amount)) is not None:
        return existing
    if loan.status == servicing.CLOSED:
        raise servicing.LoanAlreadyClosed(details={"loan_id": loan.id})
    bank = await Bank.get(id=loan.bank_id)
    payer_account = loan.settlement_account if payer == loan.customer_id else await core_banking.account_of(bank.code, payer, SETTLEMENT)
    key = f"repayment:{loan.id}:{store.digest(request_key)}"
    async with in_transaction():
        await LoanReceipt.filter(id=loan.id).select_for_update().first()
        if (existing := await _repaid(loan.id, request_key, amount)) is not None:
            return existing
        state, books = (await store.load([loan.id]))[loan.id]
        if books.serviced_through and on < books.serviced_through:
            raise ValueError(f"loan {loan.id} is serviced through {books.serviced_through}: cannot repay as of {on}")
        caught_up = servicing.bring_up_to_date(state, on)
        allocation = servicing.allocate(state, on, amount, key=key)
        debit = await core_banking.debit(payer_account, amount, f"{key}:debit")
        if not debit.ok:
            raise InsufficientFunds(details={"amount_fen": amount})
        bank_accounts = await store.bank_accounts(loan.bank_id)
        payer_ledger = (await ledger.open_accounts([ledger.customer_account(loan.bank_id, payer, ledger.CUSTOMER_SETTLEMENT, payer_account)]))
        payer_ledger_id = next(iter(payer_ledger.values()))
        accounts = store.roles(books, bank_accounts, payer_ledger_id)
        postings = [store.posting(e, books, accounts, on, correlation_id=key) for e in (*caught_up.entries, *allocation.entries)]
        row = store.RepaymentRow(loan.id, loan.bank_id, payer, "customer", request_key, on, allocation, key)
        events = list(caught_up.events)
        if allocation.closes:
            events += await _close(state, books, bank_accounts, on, key, core_banking, postings)
        await ledger.post_many(postings)
        await store.save([state])
        repayment_id = (await store.insert_repayments([row]))[(loan.id, request_key)]
        events.insert(len(caught_up.events), store.repaid_event(repayment_id, loan.id, row, state.dpd))
        await store.enqueue([(event, loan.bank_id) for event in events])
        await audit.record(
            actor, "loan.repay", "loan", loan.id, bank_id=loan.bank_id,
            after={"repayment_id": repayment_id, "amount_fen": amount, "principal_fen": allocation.principal_fen,
                   "interest_fen": allocation.interest_fen, "penalty_fen": allocation.penalty_fen, "fee_fen": allocation.fee_fen,
                   "closed": allocation.closes, "ledger_key": key},
        )
    return await Repayment.get(id=repayment_id)


async def _close(state, books: store.Books, bank_accounts: dict, on: date, key: str, core_banking: CoreBanking, postings: list) -> list:
    """The loan is paid: release its pledge (in core banking and in the ledger) and say so."""
    if books.pledge_account and books.pledged_fen:
        await core_banking.unfreeze(books.pledge_account, books.pledged_fen, f"pledge_release:{books.loan_id}")
        postings.append(store.pledge_release(books, bank_accounts, on, key))
    await store.mark_closed([books.loan_id], on)
    return [store.closed_event(books.loan_id, books.customer_id, on)]


async def _repaid(loan_id: int, request_key: str, amount_fen: int) -> Repayment | None:
    existing = await Repayment.filter(loan_id=loan_id, request_key=request_key).first()
    if existing is not None and existing.amount_fen != amount_fen:
        raise RepaymentKeyReused()
    return existing


# ---- set-off: money arriving in a watched account --------------------------------------------


@dataclass(frozen=True)
class SetOff:
    """A claim on money that has just arrived in a payer's account (the borrower's, or a
    guarantor's whose guarantee grants set-off): up to ``amount_fen`` of it settles what the
    loan has fallen due. ``key`` names the arrival (the bank's transaction event), so a claim
    made again settles nothing twice; claims on several loans naming one arrival share its
    ``amount_fen`` (the money arrived once)."""

    loan_id: int
    payer_customer_id: int
    payer_account: str
    amount_fen: int
    key: str


@dataclass(frozen=True)
class SetOffDone:
    """What one claim settled: ``repayment`` is None when nothing was due or the account no
    longer held the money (``reason`` says which)."""

    claim: SetOff
    repayment: store.RepaymentRow | None = None
    repayment_id: int | None = None
    dpd: int = 0
    reason: str | None = None

    @property
    def settled_fen(self) -> int:
        return self.repayment.allocation.amount_fen if self.repayment else 0


async def set_off(claims: Sequence[SetOff], *, actor: Actor, core_banking: CoreBanking, on: date) -> list[SetOffDone]:
    """Settle what is due on loans from money that arrived in their payers' accounts, many loans
    at once, inside the caller's transaction (it commits them with whatever made the claims).
    The same path as ``repay``: brought up to date, allocated in the contract's order (what is
    due only, never early), debited, posted to the ledger, with a repayment, outbox events and
    an audit row each. Several claims on one loan are taken in their order."""
    if not claims:
        return []
    loan_ids = sorted({c.loan_id for c in claims})
    # Row locks in id order, as a repayment takes one: a repayment or daily chunk on the same
    # loan waits for this transaction, then sees what it paid. NO KEY UPDATE (what the UPDATE of
    # the loan takes anyway) still excludes them, but not the KEY SHARE lock that a row naming
    # the loan (a signal, a repayment) takes: with FOR UPDATE two set-offs that each signal on
    # the other's loan deadlock.
    if bulk.is_postgres():
        condition, params = bulk.in_ids("id", "loans", loan_ids)
        await sql.fetch_all(f"SELECT id FROM loan_receipt WHERE {condition} ORDER BY id FOR NO KEY UPDATE", **params)
    keys = {c: f"set_off:{c.key}" for c in claims}
    settled = {
        (loan_id, request_key): repayment_id
        for repayment_id, loan_id, request_key in await Repayment.filter(loan_id__in=loan_ids, request_key__in=list(set(keys.values())))
        .values_list("id", "loan_id", "request_key")
    }
    done: dict[SetOff, SetOffDone] = {}
    for c in claims:
        if (c.loan_id, keys[c]) in settled:
            done[c] = SetOffDone(c, repayment_id=settled[(c.loan_id, keys[c])], reason="already_settled")
    loans = await store.load(loan_ids, due_by=on)
    waiting: list[SetOff] = []
    for c in claims:
        if c in done:
            continue
        state_books = loans.get(c.loan_id)
        if state_books is None or state_books[0].status == servicing.CLOSED:
            done[c] = SetOffDone(c, reason="loan_closed")
        elif state_books[1].serviced_through and on < state_books[1].serviced_through:
            done[c] = SetOffDone(c, reason="serviced_later")
        else:
            waiting.append(c)
    bank_accounts = {bank: await store.bank_accounts(bank) for bank in {loans[c.loan_id][0].bank_id for c in waiting}}
    specs = {ledger.customer_code(c.payer_customer_id, ledger.CUSTOMER_SETTLEMENT, c.payer_account):
             ledger.customer_account(loans[c.loan_id][0].bank_id, c.payer_customer_id, ledger.CUSTOMER_SETTLEMENT, c.payer_account) for c in waiting}
    payers = await ledger.open_accounts(list(specs.values()))
    left = {c.key: c.amount_fen for c in waiting}  # claims naming one arrival share its money
    postings: list[ledger.Posting] = []
    events: list[tuple[servicing.Event, int]] = []
    made: list[tuple[SetOff, store.RepaymentRow, servicing.LoanState]] = []
    # Each round takes at most one claim per loan and per arrival, in the order given, with
    # one core-banking batch: a later claim then sees what the earlier ones settled and took.
    while waiting:
        batch, later, loans_taken, keys_taken = [], [], set(), set()
        for c in waiting:
            if c.loan_id in loans_taken or c.key in keys_taken:
                later.append(c)
            else:
                batch.append(c)
                loans_taken.add(c.loan_id)
                keys_taken.add(c.key)
        waiting = later
        wanted = []
        for c in batch:
            state, books = loans[c.loan_id]
            if state.status == servicing.CLOSED:
                done[c] = SetOffDone(c, reason="loan_closed")
                continue
            caught_up = servicing.bring_up_to_date(state, on)
            payer = payers[ledger.customer_code(c.payer_customer_id, ledger.CUSTOMER_SETTLEMENT, c.payer_account)]
            accounts = store.roles(books, bank_accounts[state.bank_id], payer)
            postings += [store.posting(e, books, accounts, on, correlation_id=f"set_off:{state.id}:{c.key}") for e in caught_up.entries]
            events += [(event, state.bank_id) for event in caught_up.events]
            take = min(left[c.key], servicing.due_fen(state))
            if take <= 0:
                done[c] = SetOffDone(c, dpd=state.dpd, reason="nothing_due" if left[c.key] else "arrival_spent")
                continue
            wanted.append((DebitRequest(c.payer_account, take, f"set_off:{state.id}:{c.key}:debit"), c, accounts))
        movements = await core_banking.debit_batch([request for request, _, _ in wanted], partial=True) if wanted else []
        for (request, c, accounts), movement in zip(wanted, movements, strict=True):
            state, books = loans[c.loan_id]
            if not movement.amount_fen:
                done[c] = SetOffDone(c, dpd=state.dpd, reason="insufficient_funds")
                continue
            left[c.key] -= movement.amount_fen
            key = f"set_off:{state.id}:{c.key}"
            allocation = servicing.allocate(state, on, movement.amount_fen, key=key, early=False)
            postings += [store.posting(e, books, accounts, on, correlation_id=key) for e in allocation.entries]
            if allocation.closes:
                events += [(event, state.bank_id) for event in await _close(state, books, bank_accounts[state.bank_id], on, key, core_banking, postings)]
            made.append((c, store.RepaymentRow(state.id, state.bank_id, c.payer_customer_id, "set_off", keys[c], on, allocation, key), state))
    await ledger.post_many(postings)
    await store.save([state for state, _ in loans.values()])
    ids = await store.insert_repayments([row for _, row, _ in made])
    for c, row, state in made:
        repayment_id = ids[(row.loan_id, row.request_key)]
        done[c] = SetOffDone(c, row, repayment_id, state.dpd)
        events.append((store.repaid_event(repayment_id, row.loan_id, row, state.dpd), row.bank_id))
    await store.enqueue(events)
    await store.audit(actor, [
        ("loan.set_off", "loan", row.loan_id, row.bank_id,
         {"repayment_id": ids[(row.loan_id, row.request_key)], "payer_customer_id": row.payer_customer_id, "amount_fen": row.allocation.amount_fen,
          "principal_fen": row.allocation.principal_fen, "interest_fen": row.allocation.interest_fen, "penalty_fen": row.allocation.penalty_fen,
          "closed": row.allocation.closes, "ledger_key": row.ledger_key, "arrival": c.key})
        for c, row, _ in made
    ])
    return [done[c] for c in claims]


# ---- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoanView:
    loan: LoanReceipt
    capacity: str  # borrower | co_borrower | guarantor | staff
    instalments: list[Instalment]
    owed: dict[str, int]  # principal / interest / penalty owed, from the ledger


async def payoff_quote(actor: Actor, loan_id: int, *, on: date | None = None) -> tuple[LoanReceipt, servicing.PayoffQuote]:
    """What settles the loan today, brought up to date as a repayment would (nothing stored)."""
    loan, _ = await _visible(actor, loan_id)
    if loan.status == servicing.CLOSED:
        raise servicing.LoanAlreadyClosed(details={"loan_id": loan.id})
    on = on or clock.business_date()
    state, _books = (await store.load([loan.id]))[loan.id]
    servicing.bring_up_to_date(state, on)
    return loan, servicing.payoff_quote(state, on)


async def _view(loan: LoanReceipt, capacity: str) -> LoanView:
    instalments = await Instalment.filter(loan_id=loan.id).order_by("number")
    owed = (await ledger.loan_balances([loan.id]))[loan.id]
    return LoanView(loan, capacity, instalments, owed)


async def loan_for_customer(actor: Actor, loan_id: int) -> LoanView:
    return await _view(*(await _visible(actor, loan_id)))


async def loans_for_customer(actor: Actor) -> list[tuple[LoanReceipt, str, dict[str, int]]]:
    """Loans the customer borrows, co-borrows or guarantees, with the capacity they hold."""
    customer_id = access.as_customer_id(actor)
    parties = await ContractParty.filter(customer_id=customer_id, role__in=[CO_BORROWER, GUARANTOR]).values_list("contract_id", "role")
    roles: dict[int, str] = {}
    for contract_id, role in parties:
        roles[contract_id] = CO_BORROWER if CO_BORROWER in (role, roles.get(contract_id)) else GUARANTOR
    loans = await LoanReceipt.filter(customer_id=customer_id).order_by("id")
    if roles:
        loans += await LoanReceipt.filter(contract_id__in=list(roles)).exclude(customer_id=customer_id).order_by("id")
    owed = await ledger.loan_balances([loan.id for loan in loans])
    return [(loan, BORROWER if loan.customer_id == customer_id else roles[loan.contract_id], owed[loan.id]) for loan in sorted(loans, key=lambda l: l.id)]


def staff_loans(actor: Actor, *, status: str | None = None, classification: str | None = None):
    query = access.for_staff(LoanReceipt, actor, permission=READ_PERMISSION)
    if status:
        query = query.filter(status=status)
    if classification:
        query = query.filter(classification=classification)
    return query


async def loan_for_staff(actor: Actor, loan_id: int) -> tuple[LoanView, list[Repayment]]:
    loan = await access.get_for_staff(LoanReceipt, actor, loan_id, permission=READ_PERMISSION)
    return await _view(loan, "staff"), await Repayment.filter(loan_id=loan.id).order_by("id")


async def owed_by_loan(loan_ids: list[int]) -> dict[int, dict[str, int]]:
    return await ledger.loan_balances(loan_ids)
