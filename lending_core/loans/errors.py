"""Refusals of the loan area (the allocation's own are in ``servicing``)."""

from __future__ import annotations

from infra.errors import Conflict, InvalidInput, PermissionDenied
from infra.idempotency import IdempotencyKeyReused
from lending_core.loans.servicing import InvalidAmount, LoanAlreadyClosed, PrepaymentNotSchedulable, RepaymentExceedsPayoff

__all__ = [
    "ContractNotEffective",
    "CreditLimitExceeded",
    "CreditLineExpired",
    "DrawdownKeyReused",
    "InsufficientFunds",
    "InvalidAmount",
    "LoanAlreadyClosed",
    "NotTheBorrower",
    "PledgeInsufficient",
    "PrepaymentNotSchedulable",
    "PropertyNotRegistered",
    "RepaymentExceedsPayoff",
    "RepaymentKeyReused",
    "RepaymentNotAllowed",
    "ScheduleRefused",
]


class ContractNotEffective(Conflict):
    """A credit line can be drawn only once its contract is effective (every party has signed)."""


class CreditLineExpired(Conflict):
    """The credit line can no longer be drawn: it expired on its line_expires_on date."""


class CreditLimitExceeded(InvalidInput):
    """Principal outstanding on the line plus this drawdown may not exceed the credit limit."""


class ScheduleRefused(InvalidInput):
    """This amount cannot be scheduled on the contract's terms (too small for its term, say)."""


class PledgeInsufficient(Conflict):
    """A deposit-pledge loan freezes its principal in the borrower's time deposit first, and the
    deposit's available balance does not cover it."""


class PropertyNotRegistered(Conflict):
    """A mortgage loan is paid out only when the property registry shows a home registered to
    the borrower."""


class NotTheBorrower(PermissionDenied):
    """Only the borrower draws on a credit line; guarantors and co-borrowers sign, not draw."""


class RepaymentNotAllowed(PermissionDenied):
    """A guarantor sees the loan but does not repay it here: a guarantor's payment is a
    compensation (代偿) the bank records at the counter, with its right of recourse."""


class InsufficientFunds(Conflict):
    """The payer's account does not hold enough available money for this repayment."""


class DrawdownKeyReused(IdempotencyKeyReused):
    """This Idempotency-Key already drew a different amount on this credit line."""


class RepaymentKeyReused(IdempotencyKeyReused):
    """This Idempotency-Key already repaid a different amount on this loan."""
