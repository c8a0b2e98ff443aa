"""Hand-written SQL for hot paths: one text for PostgreSQL and SQLite.

The ORM builds each query afresh, which on the lending endpoints cost more CPU than the database
spent answering (docs/benchmarks.md). Where a path reads many small things per request, one
hand-written query reads them all in one round trip; rows written on every request (an audit
entry, an outbox message) go in by ``insert``, without the ORM's model machinery, which cost
about as much again as the round trip. Write placeholders as ``:name``; they become ``$1, $2…``
for asyncpg and ``?`` for SQLite. Keep to SQL both databases speak.
"""

from __future__ import annotations

import re
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from functools import lru_cache
from typing import AsyncIterator

import orjson
from tortoise import connections
from tortoise.backends.base.client import TransactionalDBClient
from tortoise.transactions import in_transaction

_PLACEHOLDER = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


@lru_cache(maxsize=512)
def compile_placeholders(sql: str, dialect: str) -> tuple[str, tuple[str, ...]]:
    """``:name`` placeholders to the dialect's positional form, and the names in order."""
    names: list[str] = []

    def positional(match: re.Match) -> str:
        names.append(match.group(1))
        return f"${len(names)}" if dialect == "postgres" else "?"

    return _PLACEHOLDER.sub(positional, sql), tuple(names)


async def fetch_all(sql: str, **params) -> list[dict]:
    """Rows as dicts, on the current transaction's connection when there is one."""
    connection = connections.get("default")
    text, names = compile_placeholders(sql, connection.capabilities.dialect)
    return await connection.execute_query_dict(text, [params[name] for name in names])


async def fetch_one(sql: str, **params) -> dict | None:
    rows = await fetch_all(sql, **params)
    return rows[0] if rows else None


async def lock_row(table: str, row_id: int) -> bool:
    """Lock one row by id until the transaction ends (PostgreSQL; SQLite lets one writer in at a
    time, so there is nothing to lock); whether it exists. Reads only the id: loading the model to
    lock it would decrypt its personal data for nothing."""
    connection = connections.get("default")
    lock = " FOR UPDATE" if connection.capabilities.dialect == "postgres" else ""
    return await fetch_one(f"SELECT id FROM {table} WHERE id = :row_id{lock}", row_id=row_id) is not None


def transaction_open() -> bool:
    """Whether this task is inside a transaction."""
    return isinstance(connections.get("default"), TransactionalDBClient)


@asynccontextmanager
async def atomic() -> AsyncIterator[None]:
    """A transaction of its own, or the caller's when one is open: joined, not nested. A nested
    ``in_transaction`` makes a savepoint (two round trips more) so that the caller could carry on
    after this part failed; where any failure here fails the caller too, that buys nothing."""
    if transaction_open():
        yield
        return
    async with in_transaction():
        yield


async def execute(sql: str, **params) -> None:
    await fetch_all(sql, **params)


async def insert(table: str, **values) -> int:
    """Insert one row; its id. Values as the database stores them: JSON as ``json_text``;
    datetimes and bytes as they are. The database checks lengths and constraints (the ORM's own
    checks are skipped), and a unique violation is the ORM's ``IntegrityError``, as from a model."""
    return (await fetch_one(_insert_sql(table, tuple(values)), **values))["id"]


@lru_cache(maxsize=128)
def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    quoted = ", ".join(f'"{column}"' for column in columns)
    return f'INSERT INTO "{table}" ({quoted}) VALUES ({", ".join(":" + column for column in columns)}) RETURNING id'


def json_text(value) -> str | None:
    """A value for a JSON column, encoded as the ORM encodes it (orjson)."""
    return None if value is None else orjson.dumps(value).decode()


def in_list(prefix: str, values: list | tuple) -> tuple[str, dict]:
    """``IN`` over a variable number of values: the placeholders and their params."""
    params = {f"{prefix}{i}": value for i, value in enumerate(values)}
    return ", ".join(f":{name}" for name in params), params


def as_datetime(value) -> datetime | None:
    """A timestamp column as read back: asyncpg gives datetimes, SQLite gives ISO text."""
    if value is None or isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
