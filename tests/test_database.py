"""The PostgreSQL pool serves waiting requests in the order they came."""

from __future__ import annotations

import asyncio

import pytest
from tortoise import connections

from server.database import FairPool, FairPoolClient


class QueuePool:
    """Connections handed out from an asyncio queue, as asyncpg's pool does, and with its flaw:
    a task asking in the same turn as a release takes the connection ahead of the woken waiter."""

    def __init__(self, size: int):
        self.queue: asyncio.LifoQueue[str] = asyncio.LifoQueue()
        for n in range(size):
            self.queue.put_nowait(f"connection {n}")

    async def acquire(self) -> str:
        return await self.queue.get()

    async def release(self, connection: str) -> None:
        self.queue.put_nowait(connection)


async def _served_order(pool) -> list[str]:
    """Three requests wait for a pool of one; its holder gives the connection back and at once
    asks again. Returns the order in which the four were served."""
    served: list[str] = []

    async def request(name: str) -> None:
        connection = await pool.acquire()
        served.append(name)
        await asyncio.sleep(0)
        await pool.release(connection)

    held = await pool.acquire()
    waiting = [asyncio.create_task(request(f"waiter {n}")) for n in (1, 2, 3)]
    for _ in range(3):
        await asyncio.sleep(0)  # all three are in line now
    await pool.release(held)
    await request("holder again")
    await asyncio.gather(*waiting)
    return served


async def test_the_pool_serves_waiters_first_come_first_served():
    assert await _served_order(FairPool(QueuePool(1), size=1)) == ["waiter 1", "waiter 2", "waiter 3", "holder again"]


async def test_without_it_a_request_asking_as_a_connection_returns_jumps_the_line():
    # What FairPool is for: the bare queue lets the holder in again ahead of all three.
    assert (await _served_order(QueuePool(1)))[0] == "holder again"


async def test_a_request_cancelled_while_waiting_gives_up_its_turn():
    pool = FairPool(QueuePool(1), size=1)
    held = await pool.acquire()
    cancelled = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0)
    cancelled.cancel()
    await pool.release(held)
    # The turn was not lost with the cancelled request: the next one is served at once.
    assert await asyncio.wait_for(pool.acquire(), 1) == "connection 0"


async def test_postgresql_runs_on_the_fair_pool(db):
    client = connections.get("default")
    if client.capabilities.dialect != "postgres":
        pytest.skip("SQLite has one connection and no pool")
    assert isinstance(client, FairPoolClient)
    assert isinstance(client._pool, FairPool)
