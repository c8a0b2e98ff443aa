"""The arithmetic of staff performance: reporting periods and incentive amounts (pure, no ORM).

A period is a month ("2026-11") or a quarter ("2026-Q4") of the bank's calendar (Asia/Shanghai):
it starts at local midnight on its first day and ends, exclusive, at local midnight after its
last. An incentive is money, so it is computed exactly (fractions of a fen are carried, never
floats) and rounded once, half up, to the fen, before the cap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from fractions import Fraction

from infra.clock import BUSINESS_TZ, business_day_start
from infra.money import FloatMoney

BPS = 10_000
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
FIRST_YEAR, LAST_YEAR = 2000, 2100


class InvalidPeriod(ValueError):
    """A period is a month "YYYY-MM" or a quarter "YYYY-Qn" between 2000 and 2100."""


@dataclass(frozen=True)
class Period:
    label: str
    first_day: date
    next_first_day: date  # the day after the last day

    @property
    def starts_at(self) -> datetime:
        return business_day_start(self.first_day)

    @property
    def ends_at(self) -> datetime:
        return business_day_start(self.next_first_day)



def _month_after(year: int, month: int) -> date:
    return date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)


def period(label: str) -> Period:
    """The period named by ``label``, or ``InvalidPeriod``."""
    text = (label or "").strip().upper()
    if match := _MONTH.match(text):
        year, month = int(match[1]), int(match[2])
        first, after = date(year, month, 1), _month_after(year, month)
    elif match := _QUARTER.match(text):
        year, quarter = int(match[1]), int(match[2])
        first, after = date(year, 3 * quarter - 2, 1), _month_after(year, 3 * quarter)
    else:
        raise InvalidPeriod()
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise InvalidPeriod()
    return Period(text, first, after)


def current_month(at: datetime) -> str:
    local = at.astimezone(BUSINESS_TZ)
    return f"{local.year:04d}-{local.month:02d}"


@dataclass(frozen=True)
class IncentiveTerms:
    """A campaign's incentive rule as numbers: fen per disbursed loan, basis points of the amount
    disbursed, the share (in basis points) of that for loans to people the staff member's
    customers invited, and a cap per staff member (None: no cap)."""

    per_disbursed_loan_fen: int = 0
    disbursed_bps: int = 0
    indirect_share_bps: int = BPS
    cap_fen: int | None = None


@dataclass(frozen=True)
class Incentive:
    uncapped_fen: int
    amount_fen: int

    @property
    def capped(self) -> bool:
        return self.amount_fen < self.uncapped_fen


def _whole(value, name: str) -> int:
    if isinstance(value, float):
        raise FloatMoney()
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer")
    return value


def round_half_up(amount: Fraction) -> int:
    """A non-negative amount of fen rounded to the whole fen, halves up."""
    if amount < 0:
        raise ValueError("incentives are never negative")
    return int(amount + Fraction(1, 2))  # int() truncates, which is floor for non-negative values


def incentive(terms: IncentiveTerms, *, direct_loans: int, direct_fen: int, indirect_loans: int = 0, indirect_fen: int = 0) -> Incentive:
    """What one staff member earns under ``terms`` for the loans credited to them: those from
    their own code (direct) in full, those from people their customers invited (indirect) at the
    indirect share. Exact until one final half-up rounding to the fen, then capped."""
    direct_loans, direct_fen = _whole(direct_loans, "direct_loans"), _whole(direct_fen, "direct_fen")
    indirect_loans, indirect_fen = _whole(indirect_loans, "indirect_loans"), _whole(indirect_fen, "indirect_fen")

    def earned(loans: int, fen: int) -> Fraction:
        return loans * terms.per_disbursed_loan_fen + Fraction(fen * terms.disbursed_bps, BPS)

    exact = earned(direct_loans, direct_fen) + earned(indirect_loans, indirect_fen) * Fraction(terms.indirect_share_bps, BPS)
    uncapped = round_half_up(exact)
    return Incentive(uncapped, uncapped if terms.cap_fen is None else min(uncapped, terms.cap_fen))
