"""Hand-written SQL for hot read paths: one text for PostgreSQL and SQLite.

The ORM builds each query afresh, which on the lending endpoints cost more CPU than the database
spent answering (docs/benchmarks.md). Where a path reads many small things per request, one
hand-written query reads them all in one round trip. Write placeholders as ``:name``; they
become ``$1, $2…`` for asyncpg and ``?`` for SQLite. Keep to SQL both databases speak.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from functools import lru_cache

from tortoise import connections

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
