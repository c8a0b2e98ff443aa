"""A second, independent implementation of the schedule rules, written from the issue's text
with plain Fractions and ``floor(x + ½)`` rounding, to check ``lending_core.loans.schedule``
against. It never refuses: it returns what the rules produce, negative parts included."""

from __future__ import annotations

import math
from fractions import Fraction


def half_up(x: Fraction) -> int:
    """Half a fen away from zero."""
    return math.floor(x + Fraction(1, 2)) if x >= 0 else -math.floor(-x + Fraction(1, 2))


def monthly(rate_bps: int) -> Fraction:
    return Fraction(rate_bps) / 10000 / 12


def annuity(principal: int, rate_bps: int, n: int) -> Fraction:
    """The unrounded level payment, P·r / (1 − (1 + r)^−n)."""
    r = monthly(rate_bps)
    return Fraction(principal, n) if r == 0 else principal * r / (1 - (1 + r) ** -n)


def periods(method: str, principal: int, rate_bps: int, n: int) -> list[tuple[int, int]]:
    """(principal part, interest) per period, by the issue's rules."""
    r = monthly(rate_bps)
    if method == "bullet":
        return [(principal, half_up(Fraction(principal) * rate_bps / 10000 * n / 12))]
    rows, owed = [], principal
    payment = half_up(annuity(principal, rate_bps, n))
    for k in range(1, n + 1):
        interest = half_up(owed * r) if method != "interest_only" else half_up(principal * r)
        if k == n:
            part = owed
        elif method == "equal_instalment":
            part = payment - interest
        elif method == "equal_principal":
            part = principal // n
        else:
            part = 0
        rows.append((part, interest))
        owed -= part
    return rows


def exact_total_interest(method: str, principal: int, rate_bps: int, n: int) -> Fraction:
    """The textbook total interest with nothing rounded."""
    r = monthly(rate_bps)
    return {
        "equal_instalment": n * annuity(principal, rate_bps, n) - principal,
        "equal_principal": principal * r * (n + 1) / 2,
        "interest_only": n * principal * r,
        "bullet": Fraction(principal) * rate_bps / 10000 * n / 12,
    }[method]


def compounding(rate_bps: int, n: int) -> Fraction:
    """S_n = Σ_{j<n} (1 + r)^j: how far one fen of rounding in every period can compound."""
    r = monthly(rate_bps)
    return Fraction(n) if r == 0 else ((1 + r) ** n - 1) / r


def overpays(principal: int, rate_bps: int, n: int) -> bool:
    """Whether the equal-instalment rules would produce a negative principal part or owe less
    than nothing (possible only for amounts too small for the term)."""
    owed = principal
    for part, _ in periods("equal_instalment", principal, rate_bps, n):
        owed -= part
        if part < 0 or owed < 0:
            return True
    return False
