"""Hand-written SQL helpers: a transaction joined rather than nested, a row lock that reads
nothing but the id, and a one-row insert."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest
from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from infra import sql
from infra.outbox import OutboxMessage, enqueue


class Boom(Exception):
    pass


def _postgres() -> bool:
    return connections.get("default").capabilities.dialect == "postgres"


async def test_atomic_joins_the_callers_transaction_without_a_savepoint(db, monkeypatch):
    async def no_savepoint(self):
        raise AssertionError("a savepoint was made")

    with pytest.raises(Boom):
        async with in_transaction():
            outer = connections.get("default")
            monkeypatch.setattr(type(outer), "savepoint", no_savepoint)
            await enqueue("test.outer", {})
            async with sql.atomic():
                assert connections.get("default") is outer
                await enqueue("test.inner", {})
            raise Boom()
    # Both writes were in the caller's transaction, so both went with its rollback.
    assert await OutboxMessage.all().count() == 0


async def test_a_failure_inside_a_joined_atomic_fails_the_callers_transaction(db):
    with pytest.raises(Boom):
        async with in_transaction():
            await enqueue("test.outer", {})
            async with sql.atomic():
                await enqueue("test.inner", {})
                raise Boom()
    assert await OutboxMessage.all().count() == 0


async def test_atomic_alone_is_a_transaction_of_its_own(db):
    with pytest.raises(Boom):
        async with sql.atomic():
            await enqueue("test.lost", {})
            raise Boom()
    async with sql.atomic():
        await enqueue("test.kept", {})
    assert await OutboxMessage.all().values_list("topic", flat=True) == ["test.kept"]


async def test_lock_row_says_whether_the_row_exists(db):
    message_id = await enqueue("test.locked", {})
    async with sql.atomic():
        assert await sql.lock_row("outbox_message", message_id) is True
        assert await sql.lock_row("outbox_message", message_id + 1000) is False


async def test_a_locked_row_holds_off_a_second_transaction_until_the_first_ends(db):
    if not _postgres():
        pytest.skip("SQLite lets one writer in at a time: lock_row locks nothing there, by design")
    message_id = await enqueue("test.locked", {})
    locked, release = asyncio.Event(), asyncio.Event()
    order: list[str] = []

    async def first() -> None:
        async with in_transaction():
            await sql.lock_row("outbox_message", message_id)
            locked.set()
            await release.wait()
            order.append("first ends")

    async def second() -> None:
        await locked.wait()
        async with in_transaction():
            await sql.lock_row("outbox_message", message_id)
            order.append("second has the lock")

    holder, waiter = asyncio.create_task(first()), asyncio.create_task(second())
    await locked.wait()
    await asyncio.sleep(0.2)
    assert order == []  # the second is still waiting for the lock
    release.set()
    await asyncio.gather(holder, waiter)
    assert order == ["first ends", "second has the lock"]


async def test_insert_returns_the_new_id_and_stores_the_values_as_given(db):
    first = await sql.insert("outbox_message", topic="test.one", payload=sql.json_text({"n": 1, "name": "x"}), status="pending",
                             attempts=0, next_attempt_at=datetime(2026, 3, 1, tzinfo=timezone.utc), created_at=datetime.now(timezone.utc))
    second = await sql.insert("outbox_message", topic="test.two", payload=sql.json_text({}), status="pending",
                              attempts=0, next_attempt_at=datetime(2026, 3, 1, tzinfo=timezone.utc), created_at=datetime.now(timezone.utc))

    assert second > first
    stored = await OutboxMessage.get(id=first)
    assert (stored.topic, stored.payload, stored.bank_id) == ("test.one", {"n": 1, "name": "x"}, None)
    assert stored.next_attempt_at == datetime(2026, 3, 1, tzinfo=timezone.utc)


async def test_a_unique_violation_is_the_orms_integrity_error(db):
    row = {"caller": "customer:1", "key": "k-1", "fingerprint": "f", "status_code": 0, "content_type": "", "body": b"",
           "created_at": datetime.now(timezone.utc)}
    await sql.insert("idempotency_record", **row)
    with pytest.raises(IntegrityError):
        await sql.insert("idempotency_record", **row)
