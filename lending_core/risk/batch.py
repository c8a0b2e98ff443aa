"""The daily post-loan warning batch: every rule of the library against every active loan (and
its guarantor and co-borrower, through the parties fields), on the latest snapshots.

Partitioned by bank, like the loans' daily job: each (bank, business date) has a run record
claimed with a lease, and its active loans are cut into chunks of loan ids when the run is
created. A worker takes the next chunk with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so any
number of workers share a bank; a chunk is read, evaluated and written in one transaction, so a
crashed worker's chunk rolls back and is taken again. The last worker to finish closes the run.

One chunk, set-based from end to end: one query reads the loans with their facts into a Polars
frame whose columns are the schema's field paths (on PostgreSQL through ``COPY … TO STDOUT``,
which Polars parses far faster than rows can be decoded one by one), and the borrower's,
guarantor's and co-borrower's snapshots are joined in from frames read once per run (joining
the snapshot tables in every chunk's query rebuilt them whole, once per chunk); the whole
library is evaluated on it by the vectorized evaluator; the fired (loan, rule) pairs are
upserted into ``warning_signal`` in one statement (a new one opens, an open one is updated:
last seen, times, facts), open batch signals of the chunk's loans not seen firing are closed in
one statement, and the newly opened ones get their disposal tasks and list proposals in bulk.

A loan whose customer's (or guarantor's) data could not be refreshed is deferred: not evaluated,
its open signals left as they are, counted in the run's summary, and evaluated by
``retry_deferred`` once its data is back.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any, Callable

import orjson
import polars as pl
from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from infra import audit, clock, sql
from infra.actors import system
from lending_core.ledger import bulk
from lending_core.org.models import Bank
from lending_core.risk import lists, schema, tasks
from lending_core.risk.library import Library, load_library
from lending_core.risk.models import (
    BANK_SOURCES, CUSTOMER_SOURCES, LOAN_FACT_FIELDS, PARTY_FIELDS, RiskRun, RiskRunChunk, SNAPSHOT_MODELS,
)
from lending_core.risk.signals import open_key
from lending_core.risk.vectorized import frame_schema

LEASE = timedelta(minutes=15)
CHUNK = 100_000
ACTOR = system("risk-batch")
PARTY_ALIASES = {("guarantor", "bureau"): "gb", ("guarantor", "court"): "gc", ("co_borrower", "employment"): "ce", ("co_borrower", "court"): "cc"}


@lru_cache(maxsize=1)
def shipped_library() -> Library:
    """The rule library of the repo's catalogue, loaded once per process."""
    return load_library()


@dataclass
class BankRun:
    bank_code: str
    business_date: date
    status: str = "done"  # done | shared (other workers finish it) | already_done
    loans: int = 0
    chunks: int = 0
    fired: int = 0
    opened: int = 0
    updated: int = 0
    closed: int = 0
    tasks: int = 0
    list_proposals: int = 0
    deferred: int = 0
    read_seconds: float = 0.0
    evaluate_seconds: float = 0.0
    write_seconds: float = 0.0
    seconds: float = 0.0
    by_category: dict[str, int] = field(default_factory=dict)

    def add(self, result: dict) -> None:
        for key in ("loans", "fired", "opened", "updated", "closed", "tasks", "list_proposals"):
            setattr(self, key, getattr(self, key) + result.get(key, 0))
        self.deferred += len(result.get("deferred", []))
        for key in ("read_seconds", "evaluate_seconds", "write_seconds"):
            setattr(self, key, round(getattr(self, key) + result.get(key, 0.0), 3))
        for category, n in result.get("by_category", {}).items():
            self.by_category[category] = self.by_category.get(category, 0) + n

    def as_dict(self) -> dict:
        return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in self.__dict__.items()}


Progress = Callable[[str, int, int], None]  # (bank code, loans done, loans of the bank)


async def run(on: date, *, bank_codes: list[str] | None = None, worker: str = "worker", chunk_size: int = CHUNK,
              rerun: bool = False, progress: Progress | None = None, library: Library | None = None) -> list[BankRun]:
    """The batch for every active bank (or those named), one after the other."""
    banks = Bank.filter(is_active=True).order_by("id")
    if bank_codes:
        banks = banks.filter(code__in=bank_codes)
    shared: dict[str, pl.DataFrame] = {}  # the customer sources' snapshots, read once for every bank
    return [await run_bank(bank, on, worker=worker, chunk_size=chunk_size, rerun=rerun, progress=progress, library=library, shared=shared)
            for bank in await banks]


async def run_bank(bank: Bank, on: date, *, worker: str = "worker", chunk_size: int = CHUNK, rerun: bool = False,
                   progress: Progress | None = None, library: Library | None = None, shared: dict | None = None) -> BankRun:
    """Evaluate the bank's loans for ``on``, alone or beside other workers on the same bank."""
    library = library or shipped_library()
    result = BankRun(bank.code, on)
    run_id, claim = await _claim(bank.id, on, worker, chunk_size, rerun=rerun)
    if claim == "already_done":
        result.status = claim
        return result
    started = time.perf_counter()
    total = await _count_loans(bank.id)
    at = clock.now()
    snapshots: Snapshots | None = None
    while True:
        async with in_transaction():
            chunk = await _next_chunk(run_id)
            if chunk is None:
                break
            if snapshots is None:  # read once for all the chunks this worker takes
                reading = time.perf_counter()
                snapshots = await Snapshots.of_bank(bank.id, shared)
                result.read_seconds = round(result.read_seconds + time.perf_counter() - reading, 3)
            done = await evaluate_chunk(bank.id, run_id, chunk["first_loan_id"], chunk["last_loan_id"], on=on, at=at, library=library,
                                        snapshots=snapshots)
            await RiskRunChunk.filter(id=chunk["id"]).update(status="done", worker=worker, result=done)
        result.add(done)
        result.chunks += 1
        await RiskRun.filter(id=run_id).update(lease_until=clock.now() + LEASE)
        if progress:
            progress(bank.code, result.loans, total)
    result.seconds = round(time.perf_counter() - started, 3)
    result.status = await _finish(run_id, bank.id, worker, result)
    return result


async def retry_deferred(bank: Bank, on: date, *, library: Library | None = None) -> BankRun:
    """Evaluate the loans a run deferred for want of data, now that it may be back (those whose
    data is still missing stay deferred)."""
    library = library or shipped_library()
    result = BankRun(bank.code, on)
    run = await RiskRun.filter(bank_id=bank.id, business_date=on).first()
    if run is None:
        return result
    at = clock.now()
    for chunk in await RiskRunChunk.filter(run_id=run.id, status="done").order_by("id"):
        waiting = (chunk.result or {}).get("deferred") or []
        if not waiting:
            continue
        async with in_transaction():
            done = await evaluate_chunk(bank.id, run.id, chunk.first_loan_id, chunk.last_loan_id, on=on, at=at, library=library, only=waiting)
            await RiskRunChunk.filter(id=chunk.id).update(result={**chunk.result, "deferred": done["deferred"], "retried": len(waiting)})
        result.add(done)
    summary = run.summary or {}
    await RiskRun.filter(id=run.id).update(summary={**summary, "retried": result.as_dict()})
    return result


# ---- claiming -----------------------------------------------------------------------------------


async def _claim(bank_id: int, on: date, worker: str, chunk_size: int, *, rerun: bool) -> tuple[int, str]:
    """(run id, ``claimed`` | ``joined`` | ``already_done``). Creating the run cuts the bank's
    loans into chunks in the same transaction, so every worker sees the same chunks."""
    now = clock.now()
    async with in_transaction():
        existing = await RiskRun.filter(bank_id=bank_id, business_date=on).select_for_update().first()
        if existing is None:
            try:
                async with in_transaction():
                    created = await RiskRun.create(bank_id=bank_id, business_date=on, status="running", worker=worker,
                                                   lease_until=now + LEASE, started_at=now, summary={"workers": []})
                    await _cut_chunks(created.id, bank_id, chunk_size)
                return created.id, "claimed"
            except IntegrityError:
                existing = await RiskRun.filter(bank_id=bank_id, business_date=on).first()
                return existing.id, "joined"
        if existing.status == "done" and not rerun:
            return existing.id, "already_done"
        if existing.status == "running" and existing.lease_until > now and existing.worker != worker:
            return existing.id, "joined"
        if existing.status == "done":  # a rerun: the loans are cut again (new loans may exist)
            await RiskRunChunk.filter(run_id=existing.id).delete()
            await _cut_chunks(existing.id, bank_id, chunk_size)
        await RiskRun.filter(id=existing.id).update(status="running", worker=worker, lease_until=now + LEASE, started_at=now,
                                                   finished_at=None, summary={"workers": []})
        return existing.id, "claimed"


async def _cut_chunks(run_id: int, bank_id: int, chunk_size: int) -> None:
    rows = await sql.fetch_all(
        """SELECT id FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS n FROM loan_receipt
                             WHERE bank_id = :bank AND status = 'active') numbered
           WHERE (n - 1) % :size = 0 ORDER BY id""", bank=bank_id, size=chunk_size)
    starts = [int(row["id"]) for row in rows]
    # The last chunk is open-ended: a loan drawn while the run goes on is still evaluated.
    ends = [s - 1 for s in starts[1:]] + [2**62]
    await RiskRunChunk.bulk_create([RiskRunChunk(run_id=run_id, first_loan_id=s, last_loan_id=e) for s, e in zip(starts, ends)])


async def _next_chunk(run_id: int) -> dict | None:
    skip_locked = " FOR UPDATE SKIP LOCKED" if bulk.is_postgres() else ""
    return await sql.fetch_one(
        f"SELECT id, first_loan_id, last_loan_id FROM risk_run_chunk WHERE run_id = :run AND status = 'pending' ORDER BY id LIMIT 1{skip_locked}",
        run=run_id)


async def _count_loans(bank_id: int) -> int:
    row = await sql.fetch_one("SELECT COUNT(*) AS n FROM loan_receipt WHERE bank_id = :bank AND status = 'active'", bank=bank_id)
    return int(row["n"])


async def _finish(run_id: int, bank_id: int, worker: str, result: BankRun) -> str:
    async with in_transaction():
        run = await RiskRun.filter(id=run_id).select_for_update().get()
        summary = run.summary or {"workers": []}
        summary["workers"] = [*summary.get("workers", []), {"worker": worker, **result.as_dict()}]
        left = await RiskRunChunk.filter(run_id=run_id, status="pending").exists()
        await RiskRun.filter(id=run_id).update(status="running" if left else "done", summary=summary, finished_at=None if left else clock.now())
        await audit.record(ACTOR, "risk.batch_run", "risk_run", run_id, bank_id=bank_id, after={"worker": worker, **result.as_dict()})
    return "shared" if left else "done"


# ---- reading ------------------------------------------------------------------------------------


def _snapshot_failed(alias: str) -> str:
    return f"({alias}.failed_at IS NOT NULL AND ({alias}.fetched_at IS NULL OR {alias}.failed_at > {alias}.fetched_at))"


def _select(f: schema.Field, expression: str) -> str:
    # Booleans travel as 0/1 so PostgreSQL's CSV (t/f) and SQLite read back alike.
    value = f"CAST({expression} AS INTEGER)" if f.kind == "bool" else expression
    return f'{value} AS "{f.path}"'


LOAN_COLUMNS = {"loan_id": pl.Int64, "customer_id": pl.Int64, "product": pl.String, "principal_fen": pl.Int64, "term_months": pl.Int64,
                "drawn_on": pl.String, "maturity_date": pl.String, "dpd": pl.Int64}
PARTY_IDS = {"guarantor": "guarantor_customer_id", "co_borrower": "co_borrower_customer_id"}


def _kind(f: schema.Field) -> pl.DataType:
    return pl.Int64 if f.kind in ("int", "bool") else pl.String


@lru_cache(maxsize=1)
def loans_query() -> tuple[str, dict[str, pl.DataType]]:
    """The chunk's loans with their own facts (one column per field path) and their parties' ids."""
    columns = [f'r.id AS "loan_id"', 'r.customer_id AS "customer_id"', 'p.code AS "product"', 'r.principal_fen AS "principal_fen"',
               'r.term_months AS "term_months"', 'r.drawn_on AS "drawn_on"', 'r.maturity_date AS "maturity_date"', 'r.dpd AS "dpd"']
    types = dict(LOAN_COLUMNS)
    fact_names = {f.name for f in LOAN_FACT_FIELDS}
    for f in schema.FIELDS:
        if not f.group and f.name in ("outstanding_fen", "instalment_fen"):
            fallback = "r.principal_fen" if f.name == "outstanding_fen" else "0"
            columns.append(_select(f, f"COALESCE(f.{f.name}, {fallback})"))
        elif f.group == "repayment":
            fallback = "r.dpd" if f.name == "days_past_due" else ("0" if not f.nullable else "NULL")
            columns.append(_select(f, f"COALESCE(f.{f.name}, {fallback})" if fallback != "NULL" else f"f.{f.name}"))
        elif f.group == "parties" and f.name in fact_names:
            columns.append(_select(f, f"f.{f.name}"))
        else:
            continue
        types[f.path] = _kind(f)
    for column in PARTY_IDS.values():
        columns.append(f'f.{column} AS "{column}"')
        types[column] = pl.Int64
    query = (f"SELECT {', '.join(columns)} FROM loan_receipt r JOIN contract c ON c.id = r.contract_id JOIN product p ON p.id = c.product_id "
             "LEFT JOIN risk_loan_facts f ON f.loan_id = r.id "
             "WHERE r.bank_id = :bank AND r.status = 'active' AND r.id >= :first AND r.id <= :last")
    return query, types


@lru_cache(maxsize=None)
def snapshot_query(group: str) -> tuple[str, dict[str, pl.DataType]]:
    """One source's snapshots (``{customers}`` the condition on the customer), one column per
    field path and ``failed`` (1 when the last refresh failed)."""
    fields = [f for f in schema.FIELDS if f.group == group]
    table = SNAPSHOT_MODELS[group]._meta.db_table
    columns = ['s.customer_id AS "customer_id"', *[_select(f, f"s.{f.name}") for f in fields],
               f'CASE WHEN {_snapshot_failed("s")} THEN 1 ELSE 0 END AS "failed"']
    bank = " AND s.bank_id = :bank" if group in BANK_SOURCES else ""
    types = {"customer_id": pl.Int64, **{f.path: _kind(f) for f in fields}, "failed": pl.Int64}
    return f"SELECT {', '.join(columns)} FROM {table} s WHERE {{customers}}{bank}", types


async def _frame(query: str, params: dict[str, Any], types: dict[str, pl.DataType]) -> pl.DataFrame:
    """A query's rows as a frame: on PostgreSQL through ``COPY … TO STDOUT`` (CSV, which Polars
    parses far faster than rows can be decoded one by one)."""
    connection = connections.get("default")
    if connection.capabilities.dialect == "postgres":
        text, names = sql.compile_placeholders(query, "postgres")
        buffer = io.BytesIO()
        async with connection.acquire_connection() as raw:
            await raw.copy_from_query(text, *[params[n] for n in names], output=buffer, format="csv", header=True)
        if buffer.getbuffer().nbytes == 0:
            return pl.DataFrame(schema=types)
        buffer.seek(0)
        return pl.read_csv(buffer, schema=types)
    rows = await sql.fetch_all(query, **params)
    if not rows:
        return pl.DataFrame(schema=types)
    return pl.DataFrame([{k: (str(v) if k in ("drawn_on", "maturity_date") and v is not None else v) for k, v in row.items()} for row in rows],
                        schema=types, orient="row")


@dataclass
class Snapshots:
    """The snapshots a bank's chunks join in, read once per run: the customer sources whole
    (shared by the banks of one ``run``) and the bank's account snapshots. Rebuilding them from
    the whole snapshot tables in every chunk's query cost more than everything else the chunk
    did. ``cover`` reads the customers a chunk names that are not in (one with no snapshot yet,
    or a loan drawn while the run goes on)."""
    bank_id: int
    frames: dict[str, pl.DataFrame] = field(default_factory=dict)
    covered: set[int] = field(default_factory=set)

    @classmethod
    async def of_bank(cls, bank_id: int, shared: dict[str, pl.DataFrame] | None = None) -> "Snapshots":
        shared = {} if shared is None else shared
        for group in CUSTOMER_SOURCES:
            if group not in shared:
                query, types = snapshot_query(group)
                shared[group] = await _frame(query.format(customers="1 = 1"), {}, types)
        found = cls(bank_id, frames={group: shared[group] for group in CUSTOMER_SOURCES})
        for group in BANK_SOURCES:
            query, types = snapshot_query(group)
            found.frames[group] = await _frame(query.format(customers="1 = 1"), {"bank": bank_id}, types)
        found.covered = set(pl.concat([frame.get_column("customer_id") for frame in found.frames.values()]).unique().to_list())
        return found

    async def cover(self, customers: set[int]) -> None:
        missing = sorted(customers - self.covered)
        for start in range(0, len(missing), IDS_PER_QUERY):
            condition, params = bulk.in_ids("s.customer_id", "ids", missing[start:start + IDS_PER_QUERY])
            for group in (*CUSTOMER_SOURCES, *BANK_SOURCES):
                query, types = snapshot_query(group)
                more = await _frame(query.format(customers=condition), {"bank": self.bank_id, **params}, types)
                self.frames[group] = pl.concat([self.frames[group], more]) if group in self.frames else more
        self.covered.update(missing)
        for group in (*CUSTOMER_SOURCES, *BANK_SOURCES):
            self.frames.setdefault(group, pl.DataFrame(schema=snapshot_query(group)[1]))


IDS_PER_QUERY = 10_000  # SQLite takes one placeholder per id


def _read_schema() -> dict[str, pl.DataType]:
    types = dict(LOAN_COLUMNS)
    for f in schema.FIELDS:
        if not f.group and f.name not in ("outstanding_fen", "instalment_fen"):
            continue
        types[f.path] = _kind(f)
    types["deferred"] = pl.Int64
    return types


async def read_book(bank_id: int, first: int, last: int, *, only: list[int] | None = None, snapshots: Snapshots | None = None) -> pl.DataFrame:
    """The chunk as a frame (raw columns; ``book_frame`` derives the rest): the loans and their
    facts from the database, their borrower's, guarantor's and co-borrower's snapshots joined in."""
    query, types = loans_query()
    params: dict[str, Any] = {"bank": bank_id, "first": first, "last": last}
    if only is not None:
        condition, extra = bulk.in_ids("r.id", "only", only)
        query += f" AND {condition}"
        params.update(extra)
    loans = await _frame(query, params, types)
    wanted = {int(c) for column in ("customer_id", *PARTY_IDS.values()) for c in loans.get_column(column).drop_nulls().to_list()}
    snapshots = snapshots or Snapshots(bank_id)
    await snapshots.cover(wanted)
    book, failed = loans, []
    for group in (*CUSTOMER_SOURCES, *BANK_SOURCES):
        book = book.join(snapshots.frames[group].rename({"failed": f"failed_{group}"}), on="customer_id", how="left")
        failed.append(f"failed_{group}")
    for (party, source), alias in PARTY_ALIASES.items():
        taken = [pl.col(f"{source}.{PARTY_FIELDS[f.name][2]}").alias(f.path) for f in schema.FIELDS
                 if f.group == "parties" and PARTY_FIELDS.get(f.name, ())[:2] == (party, source)]
        frame = snapshots.frames[source].select("customer_id", *taken, pl.col("failed").alias(f"failed_{alias}"))
        book = book.join(frame, left_on=PARTY_IDS[party], right_on="customer_id", how="left")
        failed.append(f"failed_{alias}")
    deferred = pl.max_horizontal([pl.col(c).fill_null(0) for c in failed]).alias("deferred")
    return book.with_columns(deferred).sort("loan_id").select(list(_read_schema()))


def book_frame(raw: pl.DataFrame, on: date) -> pl.DataFrame:
    """The rule library's book frame: the loan's derived facts (months on book, days to
    maturity as of ``on``), booleans as booleans, every column typed as ``frame_schema``."""
    drawn = pl.col("drawn_on").str.slice(0, 10).str.to_date()
    maturity = pl.col("maturity_date").str.slice(0, 10).str.to_date()
    months = ((on.year - drawn.dt.year()) * 12 + (on.month - drawn.dt.month()) - (drawn.dt.day() > on.day).cast(pl.Int64)).clip(lower_bound=0)
    derived = raw.with_columns(
        months_on_book=months.cast(pl.Int64),
        days_to_maturity=(maturity - pl.lit(on)).dt.total_days().cast(pl.Int64),
    )
    types = frame_schema()
    return derived.select(["loan_id", "customer_id", "deferred", *[pl.col(name).cast(dtype) for name, dtype in types.items()]])


# ---- evaluating and writing ---------------------------------------------------------------------


async def evaluate_chunk(bank_id: int, run_id: int, first: int, last: int, *, on: date, at: datetime, library: Library,
                         only: list[int] | None = None, snapshots: Snapshots | None = None) -> dict:
    """Read, evaluate and write one chunk (in the caller's transaction); what it did, as JSON."""
    started = time.perf_counter()
    raw = await read_book(bank_id, first, last, only=only, snapshots=snapshots)
    book = book_frame(raw, on)
    deferred = book.filter(pl.col("deferred") == 1).get_column("loan_id").to_list()
    book = book.filter(pl.col("deferred") == 0)
    read = time.perf_counter()
    fired = fired_signals(book, library)
    evaluated = time.perf_counter()
    written = await write_signals(bank_id, run_id, fired, at=at, evaluated_ids=book.get_column("loan_id").to_list(),
                                  first=first, last=last, deferred=deferred, partial=only is not None)
    done = time.perf_counter()
    by_category = fired.group_by("category").len().rows() if fired.height else []
    return {"loans": book.height, "fired": fired.height, **written, "deferred": deferred,
            "by_category": {category: n for category, n in by_category},
            "read_seconds": round(read - started, 3), "evaluate_seconds": round(evaluated - read, 3), "write_seconds": round(done - evaluated, 3)}


def fired_signals(book: pl.DataFrame, library: Library) -> pl.DataFrame:
    """One row per (loan, rule) that fires: loan, customer, product, rule, category, severity and
    the facts (the values of the fields the rule read) as JSON text."""
    columns = ("loan_id", "customer_id", "product", "rule_code", "category", "severity", "facts")
    if book.height == 0:
        return pl.DataFrame(schema=dict.fromkeys(columns, pl.String) | {"loan_id": pl.Int64, "customer_id": pl.Int64})
    answers = library.evaluate(book)
    parts = []
    for rule in library.rules:
        rows = answers.get_column(rule.code).arg_true()
        if rows.len() == 0:
            continue
        read = sorted(rule.condition.fields)
        parts.append(book[rows].select(
            "loan_id", "customer_id", "product",
            pl.lit(rule.code).alias("rule_code"), pl.lit(rule.category).alias("category"), pl.lit(rule.severity).alias("severity"),
            pl.struct(read).struct.json_encode().alias("facts"),
        ))
    if not parts:
        return fired_signals(book.clear(), library)
    return pl.concat(parts)


SIGNAL_COLUMNS = (
    ("bank_id", "bigint"), ("loan_id", "bigint"), ("customer_id", "bigint"), ("product_code", "text"), ("rule_code", "text"),
    ("category", "text"), ("severity", "text"), ("source", "text"), ("status", "text"), ("open_key", "text"),
    ("first_seen_at", "timestamptz"), ("last_seen_at", "timestamptz"), ("times", "int"), ("facts", "jsonb"), ("run_id", "bigint"),
)


async def write_signals(bank_id: int, run_id: int, fired: pl.DataFrame, *, at: datetime, evaluated_ids: list[int], first: int, last: int,
                        deferred: list[int], partial: bool) -> dict:
    """Upsert the fired signals, close the chunk's cleared ones, open tasks and list proposals
    for the new ones. Set-based: a handful of statements whatever the size of the chunk."""
    rows = [
        (bank_id, loan, customer, product or "", rule, category, severity, "batch", "open",
         open_key(bank_id=bank_id, loan_id=loan, customer_id=customer, rule_code=rule), at, at, 1, facts, run_id)
        for loan, customer, product, rule, category, severity, facts in fired.iter_rows()
    ]
    await upsert_signals(rows)
    # Cleared: open batch signals of the evaluated loans that this run did not see firing.
    if partial:
        scope, params = bulk.in_ids("loan_id", "ids", evaluated_ids)
    else:
        scope, params = "loan_id >= :first AND loan_id <= :last", {"first": first, "last": last}
        if deferred:
            kept, extra = bulk.in_ids("loan_id", "kept", deferred)
            scope += f" AND NOT ({kept})"
            params.update(extra)
    closed = await sql.fetch_all(
        f"""UPDATE warning_signal SET status = 'closed', open_key = NULL, closed_at = :at, closed_reason = 'cleared'
            WHERE bank_id = :bank AND status = 'open' AND source = 'batch' AND {scope}
              AND (run_id IS NULL OR run_id <> :run) RETURNING id""",
        at=at, bank=bank_id, run=run_id, **params)
    opened = [_Opened.of(row) for row in await sql.fetch_all(
        f"""SELECT id, bank_id, customer_id, loan_id, rule_code, severity, facts FROM warning_signal
            WHERE run_id = :run AND status = 'open' AND times = 1 AND first_seen_at = :at AND bank_id = :bank
              AND {"loan_id >= :first AND loan_id <= :last" if not partial else scope}""",
        run=run_id, at=at, bank=bank_id, **{"first": first, "last": last, **params})]
    task_count = await tasks.open_for_signals(opened, at=at)
    proposals = await lists.propose_for_signals(opened, at=at)
    return {"opened": len(opened), "updated": len(rows) - len(opened), "closed": len(closed), "tasks": task_count, "list_proposals": proposals}


@dataclass(frozen=True)
class _Opened:
    id: int
    bank_id: int
    customer_id: int
    loan_id: int
    rule_code: str
    severity: str
    facts: dict

    @classmethod
    def of(cls, row: dict) -> "_Opened":
        facts = row["facts"]
        return cls(row["id"], row["bank_id"], row["customer_id"], row["loan_id"], row["rule_code"], row["severity"],
                   orjson.loads(facts) if isinstance(facts, (str, bytes)) else facts or {})


async def upsert_signals(rows: list[tuple]) -> None:
    """Open each signal, or update the open one with the same key (last seen, times, facts,
    run, severity): one statement on PostgreSQL (the rows as arrays), batches of VALUES on SQLite."""
    if not rows:
        return
    names = ", ".join(name for name, _ in SIGNAL_COLUMNS)
    tail = ("ON CONFLICT (open_key) DO UPDATE SET last_seen_at = excluded.last_seen_at, times = warning_signal.times + 1, "
            "facts = excluded.facts, run_id = excluded.run_id, severity = excluded.severity")
    connection = bulk.client()
    if bulk.is_postgres():
        arrays = ", ".join(f"${i + 1}::text::{'text' if kind == 'jsonb' else kind}[]" for i, (_, kind) in enumerate(SIGNAL_COLUMNS))
        select = ", ".join(f"c{i}::jsonb" if kind == "jsonb" else f"c{i}" for i, (_, kind) in enumerate(SIGNAL_COLUMNS))
        aliases = ", ".join(f"c{i}" for i in range(len(SIGNAL_COLUMNS)))
        statement = f"INSERT INTO warning_signal ({names}) SELECT {select} FROM unnest({arrays}) AS r({aliases}) {tail}"
        for start in range(0, len(rows), 200_000):
            part = rows[start:start + 200_000]
            await connection.execute_query(statement, [bulk.array_literal([row[i] for row in part], kind) for i, (_, kind) in enumerate(SIGNAL_COLUMNS)])
        return
    marks = "(" + ", ".join("?" for _ in SIGNAL_COLUMNS) + ")"
    size = 30_000 // len(SIGNAL_COLUMNS)
    for start in range(0, len(rows), size):
        part = rows[start:start + size]
        statement = f"INSERT INTO warning_signal ({names}) VALUES {', '.join(marks for _ in part)} {tail}"
        await connection.execute_query(statement, [_sqlite(v) for row in part for v in row])


def _sqlite(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(" ")
    return value
