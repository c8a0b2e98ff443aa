"""Set-based writes for the hot paths (the daily job moves money on a hundred thousand loans).

One statement per batch instead of one per row: on PostgreSQL the rows travel as one array per
column and ``unnest`` turns them back into rows; on SQLite they go as multi-row ``VALUES``.
Everything runs on the current transaction's connection. Column types are PostgreSQL's names
(``bigint``, ``int``, ``text``, ``date``, ``timestamptz``, ``boolean``, ``jsonb``); JSON values
are passed as text.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Sequence

from tortoise import connections

Column = tuple[str, str]  # (name, PostgreSQL type)

# SQLite allows 32,766 parameters per statement; stay well below.
_SQLITE_PARAMETERS = 30_000


def client():
    return connections.get("default")


def is_postgres() -> bool:
    return client().capabilities.dialect == "postgres"


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    return value


def _chunks(rows: Sequence[Sequence], width: int):
    size = max(1, _SQLITE_PARAMETERS // max(width, 1))
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


async def insert(
    table: str,
    columns: Sequence[Column],
    rows: Sequence[Sequence],
    *,
    conflict: str | None = None,
    returning: Sequence[str] = (),
) -> list[dict]:
    """Insert ``rows`` (tuples in ``columns`` order). ``conflict``: the column list of a unique
    index whose duplicates are skipped (``ON CONFLICT (...) DO NOTHING``). Returns the
    ``returning`` columns of the rows actually inserted."""
    if not rows:
        return []
    names = ", ".join(f'"{name}"' for name, _ in columns)
    tail = (f" ON CONFLICT ({conflict}) DO NOTHING" if conflict else "") + (
        " RETURNING " + ", ".join(f'"{name}"' for name in returning) if returning else ""
    )
    connection = client()
    if connection.capabilities.dialect == "postgres":
        arrays = ", ".join(_array_parameter(i, kind) for i, (_, kind) in enumerate(columns))
        select = ", ".join(f"c{i}::jsonb" if kind == "jsonb" else f"c{i}" for i, (_, kind) in enumerate(columns))
        aliases = ", ".join(f"c{i}" for i in range(len(columns)))
        sql = f'INSERT INTO "{table}" ({names}) SELECT {select} FROM unnest({arrays}) AS r({aliases}){tail}'
        values = [array_literal([row[i] for row in rows], kind) for i, (_, kind) in enumerate(columns)]
        if returning:
            return await connection.execute_query_dict(sql, values)
        await connection.execute_query(sql, values)
        return []
    found: list[dict] = []
    row_marks = "(" + ", ".join("?" for _ in columns) + ")"
    for chunk in _chunks(rows, len(columns)):
        sql = f'INSERT INTO "{table}" ({names}) VALUES ' + ", ".join(row_marks for _ in chunk) + tail
        values = [_sqlite_value(value) for row in chunk for value in row]
        if returning:
            found += await connection.execute_query_dict(sql, values)
        else:
            await connection.execute_query(sql, values)
    return found


async def update(table: str, key: Column, columns: Sequence[Column], rows: Sequence[Sequence]) -> None:
    """``UPDATE table SET columns... WHERE key = ...`` for each row (key first, then ``columns``)."""
    if not rows:
        return
    connection = client()
    if connection.capabilities.dialect == "postgres":
        every = [key, *columns]
        arrays = ", ".join(_array_parameter(i, kind) for i, (_, kind) in enumerate(every))
        aliases = ", ".join(f"c{i}" for i in range(len(every)))
        sets = ", ".join(
            f'"{name}" = r.c{i + 1}' + ("::jsonb" if kind == "jsonb" else "") for i, (name, kind) in enumerate(columns)
        )
        sql = f'UPDATE "{table}" AS t SET {sets} FROM unnest({arrays}) AS r({aliases}) WHERE t."{key[0]}" = r.c0'
        await connection.execute_query(sql, [array_literal([row[i] for row in rows], kind) for i, (_, kind) in enumerate(every)])
        return
    sets = ", ".join(f'"{name}" = ?' for name, _ in columns)
    sql = f'UPDATE "{table}" SET {sets} WHERE "{key[0]}" = ?'
    await connection.execute_many(sql, [[_sqlite_value(v) for v in (*row[1:], row[0])] for row in rows])


def _array_parameter(index: int, kind: str) -> str:
    # The array travels as one text literal that PostgreSQL parses (``array_in``): encoding it
    # element by element in the driver cost more than the database spent inserting the rows.
    return f"${index + 1}::text::{kind if kind != 'jsonb' else 'text'}[]"


def _text(value: Any) -> str:
    if value is None:
        return "NULL"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def array_literal(values: Sequence[Any], kind: str = "text") -> str:
    """A PostgreSQL array literal (``{1,NULL,"a b"}``) of a column's values: whole numbers,
    dates, timestamps, booleans or text (by ``kind``, the column's PostgreSQL type)."""
    if kind in ("bigint", "int"):
        if any(isinstance(v, bool) or not isinstance(v, int) for v in values if v is not None):
            raise TypeError(f"a {kind} column takes whole numbers")
        items = ["NULL" if v is None else str(v) for v in values]
    elif kind in ("date", "timestamptz"):
        seen: dict = {}
        items = ["NULL" if v is None else seen.get(v) or seen.setdefault(v, v.isoformat()) for v in values]
    elif kind == "boolean":
        items = ["NULL" if v is None else ("t" if v else "f") for v in values]
    else:
        items = [_text(v) for v in values]
    return "{" + ",".join(items) + "}"


def in_ids(column: str, name: str, ids: Sequence[int]) -> tuple[str, dict]:
    """A ``column IN ids`` condition for ``infra.sql`` (``:name`` placeholders) on either database:
    one array parameter on PostgreSQL, one placeholder per id on SQLite."""
    if is_postgres():
        return f"{column} = ANY(:{name})", {name: list(ids)}
    params = {f"{name}{i}": value for i, value in enumerate(ids)}
    return f"{column} IN ({', '.join(':' + key for key in params) or 'NULL'})", params


def as_date(value) -> date | None:
    """A date column as read back: asyncpg gives dates, SQLite gives ISO text."""
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    return date.fromisoformat(str(value)[:10])


def as_bool(value) -> bool:
    return bool(value)


def now() -> datetime:
    return datetime.now(timezone.utc)
