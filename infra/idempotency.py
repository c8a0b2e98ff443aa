"""Idempotency keys with Stripe's semantics, stored in the database (never only in Redis).

A key is scoped to its caller: the stored response can only ever be replayed to the caller who
made it. ``run_once`` inserts the key row in the same transaction as the command's own writes, so:
- the first request's effect and its stored response commit together, or neither does (a
  refused or failed request stores nothing and may be retried with the same key);
- a concurrent second request with the same key blocks on the key's unique index until the
  first commits, then replays the stored response: two requests, one effect;
- a later request with the same key but different parameters is refused.

``run_prepared`` is for a command whose slow part must not hold a transaction (an application
asks the credit bureau, tax bureau and courts, each allowed seconds): the key is claimed first,
by one insert committed at once, then the slow part runs in no transaction, then the writes and
the stored response commit together, as above. A duplicate meanwhile waits for the first's outcome
and replays it, so the slow part never runs twice for one key.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Awaitable, Callable, TypeVar

from tortoise import fields
from tortoise.exceptions import IntegrityError
from tortoise.models import Model
from tortoise.transactions import in_transaction

from infra import sql
from infra.errors import Conflict, InvalidInput

log = logging.getLogger(__name__)

MAX_KEY_LENGTH = 255
# A claimed key whose command has not finished has status 0 (no HTTP status is 0).
IN_PROGRESS = 0
# A claim this old belongs to a request that died (a worker killed mid-command): another request
# with the key may take it over. Far longer than any command's outside calls (their timeouts are
# seconds). Taking over a claim still alive costs at most a second pull of the sources: the first
# request's writes then fail to complete the claim and roll back.
CLAIM_STALE_AFTER = timedelta(seconds=30)
# How long a duplicate waits for the first request's outcome before it is told to retry.
WAIT_FOR_OUTCOME_SECONDS = 10.0
_POLL_SECONDS = 0.05

Prepared = TypeVar("Prepared")


class IdempotencyKeyInvalid(InvalidInput):
    """An Idempotency-Key is 1 to 255 printable ASCII characters."""


class IdempotencyKeyReused(Conflict):
    """This Idempotency-Key was already used with different parameters."""


class IdempotencyKeyInProgress(Conflict):
    """A request with this Idempotency-Key is still being processed: retry shortly."""

    def __init__(self) -> None:
        super().__init__()
        self.retry_after = 1


class IdempotencyRecord(Model):
    id = fields.BigIntField(primary_key=True)
    caller = fields.CharField(max_length=64)
    key = fields.CharField(max_length=MAX_KEY_LENGTH)
    fingerprint = fields.CharField(max_length=64)
    status_code = fields.IntField()
    content_type = fields.CharField(max_length=128)
    body = fields.BinaryField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "idempotency_record"
        unique_together = (("caller", "key"),)


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    content_type: str
    body: bytes
    replayed: bool = False


def fingerprint(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def check_key(key: str) -> str:
    if not (1 <= len(key) <= MAX_KEY_LENGTH) or not key.isascii() or not key.isprintable():
        raise IdempotencyKeyInvalid()
    return key


class _KeyTaken(Exception):
    pass


async def run_once(
    caller: str, key: str, request_fingerprint: str, command: Callable[[], Awaitable[StoredResponse]]
) -> StoredResponse:
    """Run ``command`` once for (caller, key); replay its stored response afterwards."""
    check_key(key)
    try:
        async with in_transaction():
            created_at = datetime.now(timezone.utc)
            try:
                record_id = await _insert_claim(caller, key, request_fingerprint, created_at)
            except IntegrityError:
                raise _KeyTaken from None
            response = await command()
            await _complete(record_id, created_at, response)
            return response
    except _KeyTaken:
        pass
    return _replayed(await IdempotencyRecord.get(caller=caller, key=key), request_fingerprint)


async def run_prepared(
    caller: str,
    key: str,
    request_fingerprint: str,
    prepare: Callable[[], Awaitable[Prepared]],
    command: Callable[[Prepared], Awaitable[StoredResponse]],
) -> StoredResponse:
    """Run ``prepare`` (in no transaction) and then ``command`` with what it returned (in one
    transaction, with the stored response) once for (caller, key); replay the response afterwards."""
    check_key(key)
    if sql.transaction_open():
        raise RuntimeError("run_prepared must not be called inside a transaction: its claim must commit at once")
    claim = await _claim_or_outcome(caller, key, request_fingerprint)
    if isinstance(claim, StoredResponse):
        return claim
    record_id, claimed_at = claim
    try:
        prepared = await prepare()
        async with in_transaction():
            response = await command(prepared)
            if not await _complete(record_id, claimed_at, response):
                raise IdempotencyKeyInProgress()  # the claim was taken over: these writes must not commit
        return response
    except BaseException:
        await _release(record_id, claimed_at)
        raise


async def _claim_or_outcome(caller: str, key: str, request_fingerprint: str) -> tuple[int, datetime] | StoredResponse:
    """Claim the key (its row, committed at once, status in progress), or wait for the outcome of
    the request that holds it and return that to replay."""
    deadline = time.monotonic() + WAIT_FOR_OUTCOME_SECONDS
    while True:
        claimed_at = datetime.now(timezone.utc)
        try:
            # One statement outside any transaction: committed at once, so a duplicate sees it.
            return await _insert_claim(caller, key, request_fingerprint, claimed_at), claimed_at
        except IntegrityError:
            pass
        while (held := await IdempotencyRecord.filter(caller=caller, key=key).first()) is not None:
            if held.fingerprint != request_fingerprint or held.status_code != IN_PROGRESS:
                return _replayed(held, request_fingerprint)
            now = datetime.now(timezone.utc)
            if held.created_at <= now - CLAIM_STALE_AFTER:
                taken = await sql.fetch_one(
                    "UPDATE idempotency_record SET created_at = :now WHERE id = :id AND status_code = :in_progress "
                    "AND created_at = :then RETURNING id",
                    now=now, id=held.id, in_progress=IN_PROGRESS, then=held.created_at,
                )
                if taken is not None:
                    log.warning("idempotency key taken over from a request presumed dead")
                    return held.id, now
                continue
            if time.monotonic() >= deadline:
                raise IdempotencyKeyInProgress()
            await asyncio.sleep(_POLL_SECONDS)
        # Released meanwhile (that request failed): claim it again.


async def _insert_claim(caller: str, key: str, request_fingerprint: str, created_at: datetime) -> int:
    # By hand, not through the model: every command with a key pays for it (infra/sql.py).
    return await sql.insert(
        "idempotency_record", caller=caller, key=key, fingerprint=request_fingerprint, status_code=IN_PROGRESS,
        content_type="", body=b"", created_at=created_at,
    )


async def _complete(record_id: int, claimed_at: datetime, response: StoredResponse) -> bool:
    """Store the response on the claim; False if the claim is no longer this request's. The
    claim's time is its token: a request that took the claim over (this one was presumed dead)
    changed it."""
    completed = await sql.fetch_one(
        "UPDATE idempotency_record SET status_code = :status_code, content_type = :content_type, body = :body "
        "WHERE id = :id AND status_code = :in_progress AND created_at = :claimed_at RETURNING id",
        status_code=response.status_code, content_type=response.content_type, body=response.body,
        id=record_id, in_progress=IN_PROGRESS, claimed_at=claimed_at,
    )
    return completed is not None


def _replayed(record: IdempotencyRecord, request_fingerprint: str) -> StoredResponse:
    if record.fingerprint != request_fingerprint:
        raise IdempotencyKeyReused()
    return StoredResponse(record.status_code, record.content_type, bytes(record.body), replayed=True)


async def _release(record_id: int, claimed_at: datetime) -> None:
    """Give up a claim whose request failed (it may be retried with the key). If this fails too,
    the claim goes stale and the next request with the key takes it over."""
    try:
        await sql.execute(
            "DELETE FROM idempotency_record WHERE id = :id AND status_code = :in_progress AND created_at = :claimed_at",
            id=record_id, in_progress=IN_PROGRESS, claimed_at=claimed_at,
        )
    except Exception:
        log.warning("could not release an idempotency claim; it will be taken over once stale")
