"""Servicing a loan receipt as pure arithmetic on its state: what falls due, what goes overdue,
penalty interest, how a repayment is allocated, the payoff quote, overdue buckets and the
five-tier classification. No ORM and no I/O: a service loads a ``LoanState``, calls these, and
stores what changed with the ledger entries and events they return, in one transaction. The
customer's repayment and the daily job (thousands of loans at once) share this one code path.
Day count and rounding are ``schedule``'s.

Rules
- Interest falls due on each due date: the instalment's interest becomes receivable then (the
  schedule's figure), so at every due date a performing loan owes exactly what the schedule says.
- An instalment unpaid at the end of its due date is overdue from the next day. Days past due
  (DPD) count from the oldest unpaid due date: the day after it is day 1.
- Penalty interest accrues on overdue principal only (no compound interest on overdue
  interest), at the contract's penalty rate, by the day: ``schedule.accrue`` over each segment
  of constant overdue principal, rounded once per segment, so posting it daily or after a gap
  of days gives the same fen.
- A repayment pays what is due first, oldest instalment first, each in the contract's
  allocation order (default penalty → interest → principal). What is left repays principal
  early: with the interest accrued on that principal by the day since the last due date (or the
  drawdown) and the contract's early-repayment fee on it. Exactly the rest of the payoff closes
  the loan; less re-amortises the periods not yet due by the loan's own method (equal
  instalment: a lower payment over the same periods); more than the payoff is refused.
- Classification by DPD: 0 normal, 1–90 special mention, 91–180 substandard, 181–360 doubtful,
  over 360 loss. Buckets: current, 1–30, 31–60, 61–90, 90+.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date

from infra.errors import IllegalTransition, InvalidInput
from infra.money import FloatMoney
from infra.transitions import TransitionTable
from lending_core.loans import schedule as schedules

SCHEDULED, DUE, OVERDUE, PAID, PREPAID = "scheduled", "due", "overdue", "paid", "prepaid"
SETTLED = (PAID, PREPAID)
OPEN = (SCHEDULED, DUE, OVERDUE)
ACTIVE, CLOSED = "active", "closed"
PARTS = ("penalty", "interest", "principal")

INSTALMENT_STATUS = TransitionTable(
    "instalment",
    {
        ("fall_due", SCHEDULED): DUE,
        ("go_overdue", DUE): OVERDUE,
        ("settle", DUE): PAID,
        ("settle", OVERDUE): PAID,
        ("prepay", SCHEDULED): PREPAID,
    },
)
LOAN_STATUS = TransitionTable("loan", {("service", ACTIVE): ACTIVE, ("repay", ACTIVE): ACTIVE, ("close", ACTIVE): CLOSED})

# (highest DPD of the tier, tier): the five-tier classification (五级分类) by days past due.
CLASSIFICATION = ((0, "normal"), (90, "special_mention"), (180, "substandard"), (360, "doubtful"), (None, "loss"))
BUCKETS = ((0, "current"), (30, "1-30"), (60, "31-60"), (90, "61-90"), (None, "90+"))

# Ledger roles of an entry's amounts; the service maps them to the loan's and bank's accounts.
PRINCIPAL, INTEREST, PENALTY = "principal", "interest", "penalty"
INTEREST_INCOME, PENALTY_INCOME, FEE_INCOME, PAYER = "interest_income", "penalty_income", "fee_income", "payer"


class InvalidAmount(InvalidInput):
    """An amount of money is a positive whole number of fen."""


class RepaymentExceedsPayoff(InvalidInput):
    """A repayment may not be more than what settles the loan today (the payoff quote)."""


class PrepaymentNotSchedulable(InvalidInput):
    """This amount would leave a remainder too small to re-amortise over the periods left:
    repay the whole payoff instead, or less."""


class LoanAlreadyClosed(IllegalTransition):
    """The loan is closed: everything on it is paid."""


def _tier(table, dpd: int) -> str:
    for upto, name in table:
        if upto is None or dpd <= upto:
            return name
    raise AssertionError("the last tier has no upper bound")


def classify(dpd: int) -> str:
    """The five-tier classification of a loan ``dpd`` days past due."""
    return _tier(CLASSIFICATION, dpd)


def bucket(dpd: int) -> str:
    return _tier(BUCKETS, dpd)


def early_repayment_fee(principal_fen: int, fee_bps: int) -> int:
    """The fee on principal repaid before it falls due."""
    return schedules.fee_fen(principal_fen, fee_bps)


@dataclass
class InstalmentState:
    number: int
    due_date: date
    principal_fen: int
    interest_fen: int
    principal_paid_fen: int = 0
    interest_paid_fen: int = 0
    penalty_fen: int = 0
    penalty_paid_fen: int = 0
    penalty_from: date | None = None
    penalty_base_fen: int = 0
    penalty_segment_fen: int = 0
    status: str = SCHEDULED
    paid_on: date | None = None
    id: int | None = None
    changed: bool = field(default=False, compare=False)

    @property
    def principal_owed(self) -> int:
        return self.principal_fen - self.principal_paid_fen

    @property
    def interest_owed(self) -> int:
        # Interest is owed once it has fallen due.
        return 0 if self.status == SCHEDULED else self.interest_fen - self.interest_paid_fen

    @property
    def penalty_owed(self) -> int:
        return self.penalty_fen - self.penalty_paid_fen

    @property
    def owed(self) -> int:
        return self.principal_owed + self.interest_owed + self.penalty_owed

    def owed_part(self, part: str) -> int:
        if part == "principal":
            return self.principal_owed
        return self.interest_owed if part == "interest" else self.penalty_owed

    def pay_part(self, part: str, amount: int) -> None:
        if part == "principal":
            self.principal_paid_fen += amount
        elif part == "interest":
            self.interest_paid_fen += amount
        else:
            self.penalty_paid_fen += amount

    def move(self, event: str) -> None:
        self.status = INSTALMENT_STATUS.next(self.status, event)
        self.changed = True


@dataclass
class LoanState:
    id: int
    bank_id: int
    principal_fen: int
    rate_bps: int
    penalty_rate_bps: int
    term_months: int
    method: str
    day_basis: int
    allocation: tuple[str, ...]
    early_repayment_fee_bps: int
    drawn_on: date
    status: str = ACTIVE
    dpd: int = 0
    classification: str = "normal"
    instalments: list[InstalmentState] = field(default_factory=list)
    # The daily job loads only what is due by its date: True when unpaid instalments exist that
    # were not loaded (the loan cannot close on what was loaded alone).
    more_open: bool = False
    changed: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class Entry:
    """A ledger transaction in the loan's terms: (role, signed fen) pairs that sum to zero."""

    kind: str
    key: str
    amounts: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Event:
    topic: str
    payload: dict


@dataclass
class Outcome:
    entries: list[Entry] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


def whole_fen(amount: object) -> int:
    if isinstance(amount, float):
        raise FloatMoney("an amount of money must be whole fen, not a float")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise InvalidAmount(details={"amount_fen": "must be a positive whole number of fen"})
    return amount


def _require_active(loan: LoanState, event: str) -> None:
    if loan.status == CLOSED:
        raise LoanAlreadyClosed(details={"loan_id": loan.id})
    LOAN_STATUS.next(loan.status, event)


def bring_up_to_date(loan: LoanState, on: date) -> Outcome:
    """Everything that happens to the loan by the end of ``on`` without a payment: instalments
    fall due (their interest becomes receivable), go overdue, accrue penalty interest; DPD and
    classification follow. Idempotent: a second call for the same day changes nothing."""
    _require_active(loan, "service")
    if on < loan.drawn_on:
        raise ValueError(f"loan {loan.id} was drawn on {loan.drawn_on}, after {on}")
    outcome = Outcome()
    penalty = 0
    for instalment in loan.instalments:
        if instalment.status == SCHEDULED and instalment.due_date <= on:
            instalment.move("fall_due")
            if instalment.interest_fen:
                outcome.entries.append(
                    Entry("interest_due", f"interest:{loan.id}:{instalment.number}",
                          ((INTEREST, instalment.interest_fen), (INTEREST_INCOME, -instalment.interest_fen)))
                )
            if instalment.owed == 0:  # a period with nothing to pay (interest-only at 0 %)
                _settle(instalment, on)
        if instalment.status == DUE and instalment.due_date < on:
            instalment.move("go_overdue")
            instalment.penalty_from, instalment.penalty_base_fen, instalment.penalty_segment_fen = instalment.due_date, instalment.principal_owed, 0
            outcome.events.append(
                Event("loans.instalment_overdue", {
                    "loan_id": loan.id, "instalment": instalment.number, "due_date": instalment.due_date.isoformat(),
                    "principal_fen": instalment.principal_owed, "interest_fen": instalment.interest_owed, "on": on.isoformat(),
                })
            )
        if instalment.status == OVERDUE:
            penalty += _accrue_penalty(loan, instalment, on)
    if penalty:
        outcome.entries.append(Entry("penalty_accrual", f"penalty:{loan.id}:{on.isoformat()}", ((PENALTY, penalty), (PENALTY_INCOME, -penalty))))
    _grade(loan, on)
    return outcome


def _accrue_penalty(loan: LoanState, instalment: InstalmentState, on: date) -> int:
    if instalment.penalty_from is None or instalment.penalty_base_fen == 0:
        return 0
    days = (on - instalment.penalty_from).days
    target = schedules.accrue(instalment.penalty_base_fen, loan.penalty_rate_bps, days, day_basis=loan.day_basis)
    delta = target - instalment.penalty_segment_fen
    if delta:
        instalment.penalty_segment_fen = target
        instalment.penalty_fen += delta
        instalment.changed = True
    return delta


def _grade(loan: LoanState, on: date) -> None:
    oldest = min((i.due_date for i in loan.instalments if i.status in (DUE, OVERDUE) and i.due_date < on), default=None)
    dpd = (on - oldest).days if oldest else 0
    if (dpd, classify(dpd)) != (loan.dpd, loan.classification):
        loan.dpd, loan.classification, loan.changed = dpd, classify(dpd), True


def _settle(instalment: InstalmentState, on: date) -> None:
    instalment.move("settle")
    instalment.paid_on = on
    instalment.penalty_from, instalment.penalty_base_fen, instalment.penalty_segment_fen = None, 0, 0


def _since(loan: LoanState, on: date) -> date:
    """Interest on principal not yet due runs from the last due date on or before ``on``."""
    return max((i.due_date for i in loan.instalments if i.due_date <= on), default=loan.drawn_on)


@dataclass(frozen=True)
class PayoffQuote:
    """What settles the loan on ``on``: everything due, plus the principal not yet due with its
    interest accrued by the day and the early-repayment fee on it."""

    on: date
    due_principal_fen: int
    due_interest_fen: int
    due_penalty_fen: int
    later_principal_fen: int
    accrued_interest_fen: int
    fee_fen: int

    @property
    def due_fen(self) -> int:
        return self.due_principal_fen + self.due_interest_fen + self.due_penalty_fen

    @property
    def early_fen(self) -> int:
        return self.later_principal_fen + self.accrued_interest_fen + self.fee_fen

    @property
    def total_fen(self) -> int:
        return self.due_fen + self.early_fen


def payoff_quote(loan: LoanState, on: date) -> PayoffQuote:
    """The payoff of a loan already brought up to date on ``on`` (all instalments loaded)."""
    due = [i for i in loan.instalments if i.status in (DUE, OVERDUE)]
    later = sum(i.principal_owed for i in loan.instalments if i.status == SCHEDULED)
    days = (on - _since(loan, on)).days
    return PayoffQuote(
        on=on,
        due_principal_fen=sum(i.principal_owed for i in due),
        due_interest_fen=sum(i.interest_owed for i in due),
        due_penalty_fen=sum(i.penalty_owed for i in due),
        later_principal_fen=later,
        accrued_interest_fen=schedules.accrue(later, loan.rate_bps, days, day_basis=loan.day_basis) if later else 0,
        fee_fen=early_repayment_fee(later, loan.early_repayment_fee_bps),
    )


@dataclass
class Allocation:
    amount_fen: int
    principal_fen: int = 0
    interest_fen: int = 0
    penalty_fen: int = 0
    fee_fen: int = 0
    prepaid_principal_fen: int = 0
    accrued_interest_fen: int = 0
    closes: bool = False
    entries: list[Entry] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


def due_fen(loan: LoanState) -> int:
    return sum(i.owed for i in loan.instalments if i.status in (DUE, OVERDUE))


def allocate(loan: LoanState, on: date, amount_fen: int, *, key: str, early: bool = True) -> Allocation:
    """Apply a repayment of ``amount_fen`` on ``on`` to a loan brought up to date on that day.
    ``early=False`` (an auto-debit) pays what is due and never more."""
    amount = whole_fen(amount_fen)
    _require_active(loan, "repay")
    # An auto-debit needs only what is due (the daily job's hot path: no accrual to compute).
    quote = payoff_quote(loan, on) if early else None
    limit = quote.total_fen if quote else due_fen(loan)
    if amount > limit:
        raise RepaymentExceedsPayoff(details={"payoff_fen": quote.total_fen, "due_fen": quote.due_fen} if quote else {"due_fen": limit})
    result = Allocation(amount)
    left = amount
    paid = dict.fromkeys(PARTS, 0)
    for instalment in sorted((i for i in loan.instalments if i.status in (DUE, OVERDUE)), key=lambda i: i.number):
        if not left:
            break
        principal_before = instalment.principal_owed
        for part in loan.allocation:
            take = min(left, instalment.owed_part(part))
            if take:
                instalment.pay_part(part, take)
                paid[part] += take
                left -= take
                instalment.changed = True
        if instalment.owed == 0:
            _settle(instalment, on)
        elif instalment.status == OVERDUE and instalment.principal_owed != principal_before:
            # Less overdue principal from today: a new penalty segment (what accrued stays owed).
            instalment.penalty_from, instalment.penalty_base_fen, instalment.penalty_segment_fen = on, instalment.principal_owed, 0
    result.principal_fen, result.interest_fen, result.penalty_fen = paid["principal"], paid["interest"], paid["penalty"]
    if left:
        _repay_early(loan, on, left, quote, result)
    if all(i.status in SETTLED for i in loan.instalments) and not loan.more_open:
        loan.status = LOAN_STATUS.next(loan.status, "close")
        result.closes = True
    _grade(loan, on)
    loan.changed = True
    accrued = result.accrued_interest_fen
    if accrued:
        result.entries.append(Entry("interest_accrual", f"{key}:accrued", ((INTEREST, accrued), (INTEREST_INCOME, -accrued))))
    result.entries.append(
        Entry("repayment", key, (
            (PAYER, amount), (PRINCIPAL, -result.principal_fen), (INTEREST, -result.interest_fen),
            (PENALTY, -result.penalty_fen), (FEE_INCOME, -result.fee_fen),
        ))
    )
    return result


def _repay_early(loan: LoanState, on: date, left: int, quote: PayoffQuote, result: Allocation) -> None:
    later = [i for i in loan.instalments if i.status == SCHEDULED]
    days = (on - _since(loan, on)).days

    def cost(principal: int) -> tuple[int, int, int]:
        interest = schedules.accrue(principal, loan.rate_bps, days, day_basis=loan.day_basis)
        fee = early_repayment_fee(principal, loan.early_repayment_fee_bps)
        return principal + interest + fee, interest, fee

    if left == quote.early_fen:
        principal, interest, fee = quote.later_principal_fen, quote.accrued_interest_fen, quote.fee_fen
        for instalment in later:
            instalment.principal_fen, instalment.interest_fen = 0, 0
            instalment.move("prepay")
            instalment.paid_on = on
    else:
        # The most principal ``left`` repays with its interest and fee; the fen or two that
        # rounding leaves over repay principal too.
        low, high = 0, quote.later_principal_fen
        while low < high:
            middle = (low + high + 1) // 2
            low, high = (middle, high) if cost(middle)[0] <= left else (low, middle - 1)
        _, interest, fee = cost(low)
        principal = left - interest - fee
        remaining = quote.later_principal_fen - principal
        if principal <= 0 or remaining <= 0:
            raise PrepaymentNotSchedulable(details={"payoff_fen": quote.total_fen})
        _reamortise(loan, later, remaining)
    result.principal_fen += principal
    result.prepaid_principal_fen = principal
    result.interest_fen += interest
    result.accrued_interest_fen = interest
    result.fee_fen = fee


def _reamortise(loan: LoanState, later: list[InstalmentState], remaining: int) -> None:
    """The periods not yet due, re-made for ``remaining`` principal by the loan's own method."""
    periods = loan.term_months if loan.method == "bullet" else len(later)
    try:
        plan = schedules.build_schedule(loan.method, remaining, loan.rate_bps, periods, loan.drawn_on)
    except schedules.ScheduleError:
        raise PrepaymentNotSchedulable() from None
    for instalment, period in zip(later, plan.instalments, strict=True):
        instalment.principal_fen, instalment.interest_fen, instalment.changed = period.principal_fen, period.interest_fen, True


def copy(loan: LoanState) -> LoanState:
    """A deep copy, to quote on without touching the loan."""
    return dataclasses.replace(loan, instalments=[dataclasses.replace(i) for i in loan.instalments])
