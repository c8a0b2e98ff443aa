"""Database wiring: the tortoise configuration, migrations and start/stop.

All models live in one tortoise app ("models") although they are spread over the packages that
own them; one migration history covers them all (``migrations/``), applied on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlparse

import asyncpg
from tortoise import Tortoise, connections
from tortoise.backends.asyncpg.client import AsyncpgDBClient
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.context import TortoiseContext
from tortoise.migrations.api import migrate

MODEL_MODULES = [
    "infra.audit",
    "infra.outbox",
    "infra.idempotency",
    "lending_core.org.models",
    "lending_core.customers.models",
    "lending_core.approvals.models",
    "lending_core.risk_lists.models",
    "channels.models",
    "lending_core.products.models",
    "lending_core.applications.models",
    "lending_core.contracts.models",
    "lending_core.ledger.models",
    "lending_core.loans.models",
    "integrations.core_banking_sandbox",
    "marketing.models",
    "lending_core.risk.models",
    "lending_core.risk.rulebook_models",
]


# asyncpg's pool defaults to 5 connections, too few for one worker serving dozens of requests.
POSTGRES_POOL = "minsize=2&maxsize=20"


class PooledConnection(asyncpg.Connection):
    """A pooled PostgreSQL connection handed back without asyncpg's reset query (advisory unlock,
    close cursors, unlisten, reset settings): one more round trip after every transaction and
    query, for session state this code never makes. It takes no session-level advisory locks,
    opens no cursors outside a transaction, listens to nothing and sets settings only with
    ``SET LOCAL``/``set_config(..., true)``, which end with their transaction. A transaction left
    open is still rolled back on release (asyncpg does that before the reset query)."""

    def get_reset_query(self) -> str:
        return ""


class FairPool:
    """asyncpg's pool with its waiters served in the order they came.

    asyncpg's own queue wakes the longest waiter when a connection comes back, but a task that
    asks in the same turn of the event loop takes the connection first, and the woken waiter goes
    to the back of the line. Under load some requests lost many turns: applications at 64
    concurrent connections had a p99 four times their median. A semaphore as wide as the pool
    (first come, first served since Python 3.11) decides the order; the pool behind it then
    always has a connection for whoever holds a turn."""

    def __init__(self, pool: asyncpg.Pool, size: int):
        self._pool = pool
        self._turns = asyncio.Semaphore(size)

    async def acquire(self):
        await self._turns.acquire()
        try:
            return await self._pool.acquire()
        except BaseException:
            self._turns.release()
            raise

    async def release(self, connection) -> None:
        try:
            await self._pool.release(connection)
        finally:
            self._turns.release()

    async def close(self) -> None:
        await self._pool.close()

    def terminate(self) -> None:
        self._pool.terminate()

    async def expire_connections(self) -> None:
        await self._pool.expire_connections()


class FairPoolClient(AsyncpgDBClient):
    """tortoise's asyncpg client on a ``FairPool``."""

    async def create_pool(self, **kwargs) -> FairPool:
        return FairPool(await super().create_pool(**kwargs), kwargs["max_size"])


# tortoise loads a client class from the module its configuration names as the engine.
client_class = FairPoolClient


def tortoise_config(database_url: str) -> dict:
    connection: str | dict = database_url
    if database_url.startswith("postgres"):
        if "maxsize=" not in database_url:
            database_url += ("&" if "?" in database_url else "?") + POSTGRES_POOL
        connection = expand_db_url(database_url)
        connection["engine"] = __name__  # client_class above
        connection["credentials"]["connection_class"] = PooledConnection
    return {
        "connections": {"default": connection},
        "apps": {
            "models": {"models": MODEL_MODULES, "default_connection": "default", "migrations": "migrations"}
        },
        "use_tz": True,
        "timezone": "UTC",
    }


async def apply_migrations(database_url: str) -> None:
    """Apply pending migrations (creating the database first if it does not exist). Runs in its
    own ORM context: ``migrate`` leaves the context it runs in unable to query, so it must not
    share the app's."""
    _ensure_sqlite_folder(database_url)
    await _ensure_postgres_database(database_url)
    async with TortoiseContext():
        await migrate(config=tortoise_config(database_url))


async def open_database(database_url: str) -> None:
    _ensure_sqlite_folder(database_url)
    # The global fallback makes the ORM visible to Sanic's request handlers.
    await Tortoise.init(config=tortoise_config(database_url), _enable_global_fallback=True)
    # Connect now rather than on the first request: a request cancelled (its client gone) while
    # the SQLite client is still making its connection leaves that client hanging for good.
    await connections.get("default").execute_query("SELECT 1")


async def close_database() -> None:
    await Tortoise.close_connections()


async def _ensure_postgres_database(database_url: str, *, recreate: bool = False) -> None:
    if not database_url.startswith("postgres"):
        return
    url = urlparse(database_url)
    name = url.path.lstrip("/")
    if not name.replace("_", "").isalnum():
        raise ValueError("the database name in DATABASE_URL must be letters, digits and underscores")
    admin = await asyncpg.connect(
        host=url.hostname, port=url.port or 5432, user=url.username or "postgres", password=url.password, database="postgres"
    )
    try:
        if recreate:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def recreate_postgres_database(database_url: str) -> None:
    """Drop and create the database (tests and benchmarks start from nothing)."""
    await _ensure_postgres_database(database_url, recreate=True)


def _ensure_sqlite_folder(database_url: str) -> None:
    if database_url.startswith("sqlite://") and ":memory:" not in database_url:
        Path(database_url.removeprefix("sqlite://")).parent.mkdir(parents=True, exist_ok=True)
