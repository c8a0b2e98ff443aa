"""The core banking sandbox: accounts with balances, frozen amounts and a journal, kept in our
own database (tables ``sandbox_core_account`` and ``sandbox_core_entry``), implementing
``lending_core.loans.ports.CoreBanking``.

Rules
- ``account_of(bank, customer, kind)`` opens a demo account on first need: a current
  (settlement) account or a time deposit, both empty. Money arrives with ``credit`` (a
  drawdown, or a test or demo standing in for the customer's salary or a counter deposit).
- Every movement is journalled under its key; the same key again returns the first answer and
  moves nothing. A debit or freeze beyond the available balance (balance − frozen) is refused
  with ``INSUFFICIENT_FUNDS`` (a partial debit takes what is available instead).
- Calls join the caller's database transaction, so a drawdown that fails after the credit
  leaves no credit behind. Set ``unavailable = True`` to make every call raise
  ``CoreBankingUnavailable`` (the bank's system down).

What a real integration needs: the member bank's core banking interface over its ESB (each
bank runs its own; the association's shared core for most), a channel code and signed
requests, the bank's business serial numbers as keys, reconciliation files at day end, the
batch-debit file interface for scheduled repayments, and the pledge-freeze transaction of the
deposit system. The bank's system cannot share our transaction: ``lending_core/loans/ports.py``
says how the outbox carries the calls then.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from tortoise import connections, fields
from tortoise.exceptions import IntegrityError
from tortoise.models import Model
from tortoise.transactions import in_transaction

from infra import clock
from lending_core.loans.ports import (
    ACCOUNT_KINDS,
    INSUFFICIENT_FUNDS,
    OK,
    Balance,
    CoreBankingUnavailable,
    DebitRequest,
    Movement,
)

CREDIT, DEBIT, FREEZE, UNFREEZE = "credit", "debit", "freeze", "unfreeze"


class UnknownAccount(ValueError):
    """No account has this number in the sandbox's core banking."""


class SandboxAccount(Model):
    """A demo account of the core banking sandbox. Amounts in fen."""

    id = fields.BigIntField(primary_key=True)
    account_no = fields.CharField(max_length=40, unique=True)
    bank_code = fields.CharField(max_length=32)
    customer_id = fields.BigIntField()
    kind = fields.CharField(max_length=16)
    balance_fen = fields.BigIntField(default=0)
    frozen_fen = fields.BigIntField(default=0)
    opened_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "sandbox_core_account"
        unique_together = (("bank_code", "customer_id", "kind"),)


class SandboxEntry(Model):
    """One journalled request to the sandbox core banking, under its caller's key."""

    id = fields.BigIntField(primary_key=True)
    account_no = fields.CharField(max_length=40, db_index=True)
    key = fields.CharField(max_length=200, unique=True)
    kind = fields.CharField(max_length=12)
    requested_fen = fields.BigIntField()
    amount_fen = fields.BigIntField()
    status = fields.CharField(max_length=24)
    balance_after_fen = fields.BigIntField()
    frozen_after_fen = fields.BigIntField()
    at = fields.DatetimeField()

    class Meta:
        table = "sandbox_core_entry"


def account_number(bank_code: str, customer_id: int, kind: str) -> str:
    return f"SBX{bank_code}{'S' if kind == 'settlement' else 'T'}{customer_id:012d}"


def _movement(entry: SandboxEntry) -> Movement:
    return Movement(entry.key, entry.status, entry.amount_fen, entry.balance_after_fen, entry.frozen_after_fen)


def _amount(amount_fen: int) -> int:
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or amount_fen <= 0:
        raise ValueError(f"an amount is a positive whole number of fen, not {amount_fen!r}")
    return amount_fen


def _apply(kind: str, balance: int, frozen: int, amount: int, *, partial: bool) -> tuple[str, int, int, int]:
    """(status, moved, balance after, frozen after) of one request."""
    available = balance - frozen
    if kind == CREDIT:
        return OK, amount, balance + amount, frozen
    if kind == DEBIT:
        take = min(amount, max(available, 0)) if partial else (amount if available >= amount else 0)
        return (OK if take else INSUFFICIENT_FUNDS), take, balance - take, frozen
    if kind == FREEZE:
        return (OK, amount, balance, frozen + amount) if available >= amount else (INSUFFICIENT_FUNDS, 0, balance, frozen)
    if frozen < amount:
        raise ValueError(f"cannot unfreeze {amount} fen: only {frozen} fen is frozen")
    return OK, amount, balance, frozen - amount


class SandboxCoreBanking:
    def __init__(self) -> None:
        self.unavailable = False
        self.calls = 0

    def _answering(self) -> None:
        self.calls += 1
        if self.unavailable:
            raise CoreBankingUnavailable()

    async def account_of(self, bank_code: str, customer_id: int, kind: str) -> str:
        self._answering()
        if kind not in ACCOUNT_KINDS:
            raise ValueError(f"account kind must be one of {ACCOUNT_KINDS}, not {kind!r}")
        number = account_number(bank_code, customer_id, kind)
        if not await SandboxAccount.filter(account_no=number).exists():
            try:
                async with in_transaction():
                    await SandboxAccount.create(account_no=number, bank_code=bank_code, customer_id=customer_id, kind=kind)
            except IntegrityError:
                pass  # opened by a concurrent call
        return number

    async def credit(self, account: str, amount_fen: int, key: str) -> Movement:
        return await self._move(CREDIT, account, amount_fen, key)

    async def debit(self, account: str, amount_fen: int, key: str, *, partial: bool = False) -> Movement:
        return await self._move(DEBIT, account, amount_fen, key, partial=partial)

    async def freeze(self, account: str, amount_fen: int, key: str) -> Movement:
        return await self._move(FREEZE, account, amount_fen, key)

    async def unfreeze(self, account: str, amount_fen: int, key: str) -> Movement:
        return await self._move(UNFREEZE, account, amount_fen, key)

    async def balance(self, account: str) -> Balance:
        self._answering()
        found = await SandboxAccount.filter(account_no=account).first()
        if found is None:
            raise UnknownAccount(account)
        return Balance(found.balance_fen, found.frozen_fen)

    async def _move(self, kind: str, account: str, amount_fen: int, key: str, *, partial: bool = False) -> Movement:
        self._answering()
        amount = _amount(amount_fen)
        try:
            async with in_transaction():
                existing = await SandboxEntry.filter(key=key).first()
                if existing is not None:
                    return _replayed(existing, kind, account)
                found = await SandboxAccount.filter(account_no=account).select_for_update().first()
                if found is None:
                    raise UnknownAccount(account)
                status, moved, balance, frozen = _apply(kind, found.balance_fen, found.frozen_fen, amount, partial=partial)
                if moved:
                    await SandboxAccount.filter(id=found.id).update(balance_fen=balance, frozen_fen=frozen)
                entry = await SandboxEntry.create(
                    account_no=account, key=key, kind=kind, requested_fen=amount, amount_fen=moved, status=status,
                    balance_after_fen=balance, frozen_after_fen=frozen, at=clock.now(),
                )
                return _movement(entry)
        except IntegrityError:
            # The same key, sent concurrently, was journalled first by the other call.
            return _replayed(await SandboxEntry.get(key=key), kind, account)

    async def debit_batch(self, requests: Sequence[DebitRequest], *, partial: bool = True) -> list[Movement]:
        """The batch-debit file: every line in one pass (several lines on one account are taken
        in the order given)."""
        self._answering()
        if not requests:
            return []
        for request in requests:
            _amount(request.amount_fen)
        keys = [r.key for r in requests]
        if len(set(keys)) != len(keys):
            raise ValueError("a batch names the same key twice")
        async with in_transaction():
            connection = connections.get("default")  # the transaction's own connection
            postgres = connection.capabilities.dialect == "postgres"
            answered = {entry.key: _movement(entry) for entry in await _entries(connection, keys, postgres)}
            fresh = [r for r in requests if r.key not in answered]
            accounts = await _lock_accounts(connection, sorted({r.account for r in fresh}), postgres)
            entries, at = [], clock.now()
            for request in fresh:
                if request.account not in accounts:
                    raise UnknownAccount(request.account)
                balance, frozen = accounts[request.account]
                status, moved, balance, frozen = _apply(DEBIT, balance, frozen, request.amount_fen, partial=partial)
                accounts[request.account] = (balance, frozen)
                answered[request.key] = Movement(request.key, status, moved, balance, frozen)
                entries.append((request.account, request.key, DEBIT, request.amount_fen, moved, status, balance, frozen, at))
            await _write(connection, accounts, entries, postgres)
        return [answered[key] for key in keys]


def _replayed(entry: SandboxEntry, kind: str, account: str) -> Movement:
    if entry.kind != kind or entry.account_no != account:
        raise ValueError(f"key {entry.key!r} was used for a {entry.kind} on another request")
    return _movement(entry)


def _literal(values: list) -> str:
    """An array as one PostgreSQL literal (parsed by the server, cheaper than per-element encoding)."""
    def element(value) -> str:
        if isinstance(value, int):
            return str(value)
        if isinstance(value, datetime):
            return value.isoformat()
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'

    return "{" + ",".join(map(element, values)) + "}"


async def _entries(connection, keys: list[str], postgres: bool) -> list[SandboxEntry]:
    """Entries already journalled under these keys (a replayed batch)."""
    columns = "key, status, amount_fen, balance_after_fen, frozen_after_fen"
    found = []
    for start in range(0, len(keys), 5000):
        chunk = keys[start : start + 5000]
        if postgres:
            rows = await connection.execute_query_dict(f"SELECT {columns} FROM sandbox_core_entry WHERE key = ANY($1::text::text[])", [_literal(chunk)])
        else:
            rows = await connection.execute_query_dict(f"SELECT {columns} FROM sandbox_core_entry WHERE key IN ({', '.join('?' for _ in chunk)})", chunk)
        found += [SandboxEntry(**row) for row in rows]
    return found


async def _lock_accounts(connection, numbers: list[str], postgres: bool) -> dict[str, tuple[int, int]]:
    found: dict[str, tuple[int, int]] = {}
    for start in range(0, len(numbers), 5000):
        chunk = numbers[start : start + 5000]
        if postgres:
            rows = await connection.execute_query_dict(
                "SELECT account_no, balance_fen, frozen_fen FROM sandbox_core_account WHERE account_no = ANY($1::text::text[]) ORDER BY account_no FOR UPDATE",
                [_literal(chunk)],
            )
        else:
            marks = ", ".join("?" for _ in chunk)
            rows = await connection.execute_query_dict(
                f"SELECT account_no, balance_fen, frozen_fen FROM sandbox_core_account WHERE account_no IN ({marks})", chunk
            )
        found.update({row["account_no"]: (int(row["balance_fen"]), int(row["frozen_fen"])) for row in rows})
    return found


async def _write(connection, accounts: dict[str, tuple[int, int]], entries: list[tuple], postgres: bool) -> None:
    if not entries:
        return
    touched = sorted({entry[0] for entry in entries})
    columns = "account_no, key, kind, requested_fen, amount_fen, status, balance_after_fen, frozen_after_fen, at"
    if postgres:
        await connection.execute_query(
            "UPDATE sandbox_core_account AS a SET balance_fen = r.balance, frozen_fen = r.frozen "
            "FROM unnest($1::text::text[], $2::text::bigint[], $3::text::bigint[]) AS r(account_no, balance, frozen) WHERE a.account_no = r.account_no",
            [_literal(touched), _literal([accounts[n][0] for n in touched]), _literal([accounts[n][1] for n in touched])],
        )
        await connection.execute_query(
            f"INSERT INTO sandbox_core_entry ({columns}) SELECT * FROM unnest($1::text::text[], $2::text::text[], $3::text::text[], "
            "$4::text::bigint[], $5::text::bigint[], $6::text::text[], $7::text::bigint[], $8::text::bigint[], $9::text::timestamptz[])",
            [_literal([entry[i] for entry in entries]) for i in range(9)],
        )
        return
    await connection.execute_many(
        "UPDATE sandbox_core_account SET balance_fen = ?, frozen_fen = ? WHERE account_no = ?",
        [[accounts[n][0], accounts[n][1], n] for n in touched],
    )
    await connection.execute_many(f"INSERT INTO sandbox_core_entry ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [list(e) for e in entries])
