"""Repayment schedules (还款计划) and interest, as pure arithmetic on integer fen.

Rules — every day-count and rounding rule of loan maths lives here, and nowhere else:

* Money is integer fen; a float given as money raises ``infra.money.FloatMoney``. Rates are
  integer basis points a year (435 = 4.35 %). Arithmetic is exact (``Fraction``); a result
  becomes money only through ``_fen``: ROUND_HALF_UP to the whole fen, once per figure.
* Monthly rate = annual rate / 12.
* Equal instalment (等额本息): the level payment is the annuity P·r / (1 − (1 + r)^−n), rounded
  to the fen (P / n when the rate is 0). Each period's interest = outstanding principal (whole
  fen) × r, rounded; principal part = payment − interest. The last period pays the whole
  remaining principal plus its interest, so it absorbs every rounding difference. Rounding
  drift compounds, so the last payment can differ from the level payment by up to about
  ½ · Σ(1+r)^k fen: a few fen for ordinary loans, more for long loans at high rates. An amount
  too small to amortise over its term (some principal part would be negative or more than is
  owed — e.g. 8 fen over 12 months) is refused, never scheduled.
* Equal principal (等额本金): principal part = P // n each period, the last period also takes the
  remainder (P − (n − 1)·(P // n)); interest = outstanding × r, rounded.
* Interest-only (先息后本): interest = P × r, rounded, every month; the last month repays P too.
* Bullet (到期一次还本付息): one instalment at maturity, interest = P × annual rate × months / 12,
  rounded once. Allowed only up to ``MAX_BULLET_MONTHS``.
* Due dates: the repayment day is the drawdown's day of month; in a month without that day
  (29–31) the month's last day. Always counted from the drawdown date, never from the previous
  due date, so Jan 31 → Feb 28 → Mar 31.
* Daily accrual (penalty interest, a broken period, early repayment): amount × annual rate ×
  days / day basis, rounded once. The basis is 360 unless the product says 365. The rate is
  not capped here: a penalty rate may pass 36 %.
* Early repayment: outstanding principal + its accrual from the last paid due date (or the
  drawdown) to the repayment day, which must not be past the next due date.
* A fee in basis points of an amount (the early-repayment fee on principal repaid early):
  amount × bps / 10 000, rounded once.
* Penalty rate = contract rate × (1 + uplift), uplift in basis points of the rate (5000 = +50 %),
  rounded half up to the whole basis point.
* APR (年化利率): periodic IRR of the cash flows × periods a year (monthly IRR × 12), in basis
  points rounded half up. Without fees it equals the contract rate for every method here.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

from infra.money import FloatMoney

METHODS = ("equal_instalment", "equal_principal", "interest_only", "bullet")

BPS = 10_000
MONTHS_A_YEAR = 12
DEFAULT_DAY_BASIS = 360
DAY_BASES = (360, 365)
MAX_TERM_MONTHS = 360
MAX_BULLET_MONTHS = 12
# A loan above 36 % a year is not enforceable in China; refusing it here catches bps/percent mix-ups.
MAX_ANNUAL_RATE_BPS = 3_600


def _fen(amount: Fraction) -> int:
    """Exact amount → whole fen, ROUND_HALF_UP (halves away from zero)."""
    magnitude = (2 * abs(amount.numerator) + amount.denominator) // (2 * amount.denominator)
    return magnitude if amount >= 0 else -magnitude


def _monthly_rate(annual_rate_bps: int) -> Fraction:
    return Fraction(annual_rate_bps, BPS * MONTHS_A_YEAR)


class ScheduleError(ValueError):
    """The loan's terms cannot be scheduled: amounts are positive whole fen, terms 1–360 months,
    rates whole basis points from 0 to 36 %, dates real dates."""


class UnknownRepaymentMethod(ScheduleError):
    """The repayment method is not one of equal_instalment, equal_principal, interest_only, bullet."""


class BulletTermTooLong(ScheduleError):
    """Principal and interest at maturity (bullet) is allowed only for terms up to 12 months."""


class AmountTooSmallForTerm(ScheduleError):
    """The amount is too small to be repaid in equal instalments over this term: a period's
    principal part would be negative or more than is owed."""


@dataclass(frozen=True)
class Instalment:
    """One period of a schedule; ``opening_principal_fen`` is owed before it is paid."""

    number: int  # 1-based
    due_date: date
    opening_principal_fen: int
    principal_fen: int
    interest_fen: int

    @property
    def total_fen(self) -> int:
        return self.principal_fen + self.interest_fen

    @property
    def closing_principal_fen(self) -> int:
        return self.opening_principal_fen - self.principal_fen


@dataclass(frozen=True)
class Schedule:
    method: str
    principal_fen: int
    annual_rate_bps: int
    term_months: int
    start: date  # the drawdown date
    instalments: tuple[Instalment, ...]

    @property
    def total_interest_fen(self) -> int:
        return sum(i.interest_fen for i in self.instalments)

    @property
    def total_fen(self) -> int:
        return self.principal_fen + self.total_interest_fen


@dataclass(frozen=True)
class Payoff:
    """What settles a loan early on a given day."""

    principal_fen: int
    interest_fen: int

    @property
    def total_fen(self) -> int:
        return self.principal_fen + self.interest_fen


def build_schedule(method: str, principal_fen: int, annual_rate_bps: int, term_months: int, start: date) -> Schedule:
    """The repayment schedule of a drawdown of ``principal_fen`` on ``start``."""
    if method not in METHODS:
        raise UnknownRepaymentMethod(f"unknown repayment method {method!r}; allowed: {', '.join(METHODS)}")
    _whole_fen("principal_fen", principal_fen, minimum=1)
    _rate("annual_rate_bps", annual_rate_bps, maximum=MAX_ANNUAL_RATE_BPS)
    _term(term_months)
    _date("start", start)
    if method == "bullet" and term_months > MAX_BULLET_MONTHS:
        raise BulletTermTooLong(f"bullet repayment is allowed up to {MAX_BULLET_MONTHS} months, not {term_months}")
    periods = _PERIODS[method](principal_fen, annual_rate_bps, term_months)
    instalments = []
    outstanding = principal_fen
    for number, (principal, interest) in enumerate(periods, start=1):
        months = term_months if method == "bullet" else number
        instalments.append(Instalment(number, due_date(start, months), outstanding, principal, interest))
        outstanding -= principal
    if any(i.principal_fen < 0 or i.closing_principal_fen < 0 for i in instalments):
        raise AmountTooSmallForTerm(f"{principal_fen} fen cannot be repaid by {method} over {term_months} months")
    return Schedule(method, principal_fen, annual_rate_bps, term_months, start, tuple(instalments))


def level_payment_fen(principal_fen: int, annual_rate_bps: int, term_months: int) -> int:
    """The equal-instalment payment: the annuity P·r·(1+r)^n / ((1+r)^n − 1), to the fen."""
    _whole_fen("principal_fen", principal_fen, minimum=1)
    _rate("annual_rate_bps", annual_rate_bps, maximum=MAX_ANNUAL_RATE_BPS)
    _term(term_months)
    r = _monthly_rate(annual_rate_bps)
    if r == 0:
        return _fen(Fraction(principal_fen, term_months))
    growth = (1 + r) ** term_months
    return _fen(principal_fen * r * growth / (growth - 1))


def _equal_instalment(principal: int, rate_bps: int, n: int):
    r, payment, outstanding = _monthly_rate(rate_bps), level_payment_fen(principal, rate_bps, n), principal
    for number in range(1, n + 1):
        interest = _fen(outstanding * r)
        part = outstanding if number == n else payment - interest
        yield part, interest
        outstanding -= part


def _equal_principal(principal: int, rate_bps: int, n: int):
    r, base, outstanding = _monthly_rate(rate_bps), principal // n, principal
    for number in range(1, n + 1):
        part = outstanding if number == n else base
        yield part, _fen(outstanding * r)
        outstanding -= part


def _interest_only(principal: int, rate_bps: int, n: int):
    interest = _fen(principal * _monthly_rate(rate_bps))
    for number in range(1, n + 1):
        yield (principal if number == n else 0), interest


def _bullet(principal: int, rate_bps: int, months: int):
    yield principal, _fen(Fraction(principal * rate_bps * months, BPS * MONTHS_A_YEAR))


_PERIODS = {
    "equal_instalment": _equal_instalment,
    "equal_principal": _equal_principal,
    "interest_only": _interest_only,
    "bullet": _bullet,
}


def due_date(start: date, months: int) -> date:
    """``start`` plus ``months`` months, on the start's day of month or the month's last day."""
    _date("start", start)
    _whole("months", months, minimum=0)
    year, month0 = divmod(start.month - 1 + months, 12)
    year += start.year
    return date(year, month0 + 1, min(start.day, calendar.monthrange(year, month0 + 1)[1]))


def accrue(amount_fen: int, annual_rate_bps: int, days: int, *, day_basis: int = DEFAULT_DAY_BASIS) -> int:
    """Simple interest on ``amount_fen`` for ``days`` days: amount × rate × days / basis, to the fen.
    The rate is not capped: a penalty rate may exceed the contract-rate cap."""
    _whole_fen("amount_fen", amount_fen, minimum=0)
    _rate("annual_rate_bps", annual_rate_bps, maximum=None)
    _whole("days", days, minimum=0)
    if day_basis not in DAY_BASES:
        raise ScheduleError(f"day_basis must be one of {DAY_BASES}, not {day_basis!r}")
    return _fen(Fraction(amount_fen * annual_rate_bps * days, BPS * day_basis))


def fee_fen(amount_fen: int, fee_bps: int) -> int:
    """A fee of ``fee_bps`` basis points on ``amount_fen``, half up to the fen."""
    _whole_fen("amount_fen", amount_fen, minimum=0)
    _whole("fee_bps", fee_bps, minimum=0)
    return _fen(Fraction(amount_fen * fee_bps, BPS))


def penalty_rate_bps(contract_rate_bps: int, uplift_bps: int = 5_000) -> int:
    """The penalty (overdue) rate: contract rate × (1 + uplift), half up to the basis point."""
    _rate("contract_rate_bps", contract_rate_bps, maximum=MAX_ANNUAL_RATE_BPS)
    _whole("uplift_bps", uplift_bps, minimum=0)
    return _fen(Fraction(contract_rate_bps * (BPS + uplift_bps), BPS))


def remaining_principal(schedule: Schedule, paid_instalments: int) -> int:
    """Principal still owed after the first ``paid_instalments`` instalments are paid."""
    _whole("paid_instalments", paid_instalments, minimum=0, maximum=len(schedule.instalments))
    return schedule.principal_fen - sum(i.principal_fen for i in schedule.instalments[:paid_instalments])


def payoff(schedule: Schedule, paid_instalments: int, on: date, *, day_basis: int = DEFAULT_DAY_BASIS) -> Payoff:
    """Early repayment on ``on``: the outstanding principal plus interest accrued on it by the day
    since the last paid due date (or the drawdown). ``on`` must not be past the next due date:
    an overdue instalment is settled first, with penalty interest."""
    _whole("paid_instalments", paid_instalments, minimum=0, maximum=len(schedule.instalments) - 1)
    _date("on", on)
    since = schedule.start if paid_instalments == 0 else schedule.instalments[paid_instalments - 1].due_date
    next_due = schedule.instalments[paid_instalments].due_date
    if not since <= on <= next_due:
        raise ScheduleError(f"an early repayment after {paid_instalments} instalments falls between {since} and {next_due}, not on {on}")
    principal = remaining_principal(schedule, paid_instalments)
    return Payoff(principal, accrue(principal, schedule.annual_rate_bps, (on - since).days, day_basis=day_basis))


def irr_apr_bps(principal_fen: int, schedule: Schedule) -> int:
    """The annualised rate shown to the customer: for ``principal_fen`` actually received (the
    schedule's principal less any fees), the periodic IRR of the instalments × periods a year
    (monthly IRR × 12; a bullet loan has one period of its whole term), half up to the bp."""
    _whole_fen("principal_fen", principal_fen, minimum=1)
    totals = [i.total_fen for i in schedule.instalments]
    if sum(totals) < principal_fen:
        raise ScheduleError("the repayments are less than the amount received: there is no non-negative APR")
    period_months = schedule.term_months // len(totals)
    with localcontext() as context:
        context.prec = 50

        def present_value(rate: Decimal) -> Decimal:
            discount, value = 1 / (1 + rate), Decimal(0)
            for total in reversed(totals):  # Horner: Σ total_k · v^k
                value = (value + total) * discount
            return value

        low, high = Decimal(0), Decimal(1)
        while present_value(high) > principal_fen:
            low, high = high, high * 2
        while high - low > Decimal("1e-15"):
            middle = (low + high) / 2
            low, high = (middle, high) if present_value(middle) > principal_fen else (low, middle)
        annual = (low + high) / 2 * MONTHS_A_YEAR / period_months * BPS
        return int(annual.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _whole(name: str, value: object, *, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScheduleError(f"{name} must be a whole number, not {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        raise ScheduleError(f"{name} must be from {minimum}" + (f" to {maximum}" if maximum is not None else " up") + f", not {value}")


def _whole_fen(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, float):
        raise FloatMoney(f"{name} must be whole fen (int), not the float {value!r}")
    _whole(name, value, minimum=minimum)


def _rate(name: str, value: object, *, maximum: int | None) -> None:
    _whole(name, value, minimum=0, maximum=maximum)


def _term(term_months: object) -> None:
    _whole("term_months", term_months, minimum=1, maximum=MAX_TERM_MONTHS)


def _date(name: str, value: object) -> None:
    # datetime is a subclass of date; a timestamp is not a drawdown date.
    if not isinstance(value, date) or isinstance(value, datetime):
        raise ScheduleError(f"{name} must be a date, not {value!r}")
