"""The core banking system, as the loan area needs it. Implementations: ``integrations``.

Every call that moves money carries a key; the same key again returns the first answer and
moves nothing (a core banking system's "business serial number"). A debit or freeze that the
account cannot cover is an answer (``INSUFFICIENT_FUNDS``), not an exception; a system that does
not answer raises ``CoreBankingUnavailable`` and has moved nothing.

Accounts: each customer has a current (settlement) account at their bank, where drawdowns are
paid and from which repayments and auto-debits are taken, and may hold a time deposit, which a
deposit-pledge loan freezes. ``account_of`` gives the account number; a real core banking looks
up the account the customer bound at the counter or in the bank app; the sandbox opens a demo
account on first need.

A real, remote core banking (the member bank's own system, reached over its ESB) cannot join our
database transaction. There the drawdown would commit the loan as ``disbursing`` with an outbox
message ``core_banking.credit`` (key = the disbursement's ledger key); the relay calls ``credit``
with that key until the bank answers, and a second command marks the loan disbursed. Because the
key makes the call idempotent, a relay that crashes and retries pays out once. An auto-debit
batch goes the same way (the bank's batch-debit file, 批量扣款), answered per line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

from infra.errors import DependencyUnavailable

SETTLEMENT = "settlement"
TIME_DEPOSIT = "time_deposit"
ACCOUNT_KINDS = (SETTLEMENT, TIME_DEPOSIT)

OK = "ok"
INSUFFICIENT_FUNDS = "insufficient_funds"


class CoreBankingUnavailable(DependencyUnavailable):
    """The core banking system did not answer; nothing was moved, try again shortly."""


@dataclass(frozen=True)
class Movement:
    """The answer to a credit, debit, freeze or unfreeze."""

    key: str
    status: str  # OK | INSUFFICIENT_FUNDS
    amount_fen: int  # what actually moved (0 when refused; up to the request for a partial debit)
    balance_fen: int  # after the movement
    frozen_fen: int

    @property
    def ok(self) -> bool:
        return self.status == OK


@dataclass(frozen=True)
class Balance:
    balance_fen: int
    frozen_fen: int

    @property
    def available_fen(self) -> int:
        return self.balance_fen - self.frozen_fen


@dataclass(frozen=True)
class DebitRequest:
    account: str
    amount_fen: int
    key: str


class CoreBanking(Protocol):
    async def account_of(self, bank_code: str, customer_id: int, kind: str) -> str: ...

    async def credit(self, account: str, amount_fen: int, key: str) -> Movement: ...

    async def debit(self, account: str, amount_fen: int, key: str, *, partial: bool = False) -> Movement:
        """Take ``amount_fen`` from the available balance; with ``partial`` take what there is,
        up to the amount (a scheduled auto-debit collects what it can)."""
        ...

    async def debit_batch(self, requests: Sequence[DebitRequest], *, partial: bool = True) -> list[Movement]:
        """Many debits in one call, answered in the order asked (the daily auto-debit run)."""
        ...

    async def freeze(self, account: str, amount_fen: int, key: str) -> Movement: ...

    async def unfreeze(self, account: str, amount_fen: int, key: str) -> Movement: ...

    async def balance(self, account: str) -> Balance: ...
