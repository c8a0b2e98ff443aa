"""Idempotency keys with Stripe's semantics, stored in the database (never only in Redis).

A key is scoped to its caller: the stored response can only ever be replayed to the caller who
made it. The key row is inserted in the same transaction as the command's own writes, so:
- the first request's effect and its stored response commit together, or neither does (a
  refused or failed request stores nothing and may be retried with the same key);
- a concurrent second request with the same key blocks on the key's unique index until the
  first commits, then replays the stored response: two requests, one effect;
- a later request with the same key but different parameters is refused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Awaitable, Callable

from tortoise import fields
from tortoise.exceptions import IntegrityError
from tortoise.models import Model
from tortoise.transactions import in_transaction

from infra import sql
from infra.errors import Conflict, InvalidInput

MAX_KEY_LENGTH = 255


class IdempotencyKeyInvalid(InvalidInput):
    """An Idempotency-Key is 1 to 255 printable ASCII characters."""


class IdempotencyKeyReused(Conflict):
    """This Idempotency-Key was already used with different parameters."""


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
            # By hand, not through the model: every command with a key pays for these two
            # statements (infra/sql.py).
            try:
                record_id = await sql.insert(
                    "idempotency_record", caller=caller, key=key, fingerprint=request_fingerprint, status_code=0,
                    content_type="", body=b"", created_at=datetime.now(timezone.utc),
                )
            except IntegrityError:
                raise _KeyTaken from None
            response = await command()
            await sql.execute(
                "UPDATE idempotency_record SET status_code = :status_code, content_type = :content_type, body = :body WHERE id = :id",
                status_code=response.status_code, content_type=response.content_type, body=response.body, id=record_id,
            )
            return response
    except _KeyTaken:
        pass
    stored = await IdempotencyRecord.get(caller=caller, key=key)
    if stored.fingerprint != request_fingerprint:
        raise IdempotencyKeyReused()
    return StoredResponse(stored.status_code, stored.content_type, bytes(stored.body), replayed=True)
