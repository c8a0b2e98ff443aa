"""Real-time monitoring on PostgreSQL and Redis: one worker's throughput, and event-to-signal
latency under a steady feed.

    python -m bench.realtime [--loans 20000] [--events 50000] [--rate 2500] [--seconds 10]
    (bench.run --only realtime calls it and writes docs/benchmarks.md)

Set-up (not timed) copies a book of active loans in with COPY (``bench.daily_job.create``: about
5 % of them overdue since last month, on the business day 2025-06-15) and gives every overdue
borrower's account money to settle with. Events are made up over the book's accounts: 90 % on
accounts nobody watches, 10 % on overdue borrowers' accounts — a quarter of those money in (the
worker settles what is due through servicing, the ledger and core banking, and signals), the rest
money out (small payments, and some large, draining, or to a few counterparties several overdue
borrowers pay, which signal).

1. Throughput: ``--events`` events are ingested (``transactions.ingest``, batches of 500, timed
   on its own): those on accounts nobody watches at arrival are stored processed there, the rest
   queued; then one worker (``server.monitor.Monitor.pump``, consumer group, batches of 500 per
   read, ``--in-flight`` batches at once) drains the stream. Events a second = the backlog's
   events / seconds from the worker's first read to its last acknowledgement; the worker's own
   rate over the events queued to it is reported beside it.
2. Latency: a producer process ingests at ``--rate`` events a second for ``--seconds`` while the
   worker runs; an event's latency runs from its row being stored at ingest to the commit of the
   transaction that processed it (its signal and settlement included). p50/p99 over the events
   that raised a signal or settled.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUSINESS_TIME = datetime(2025, 6, 15, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai on the bench book's day
PREFIX = "bench:realtime:"


async def _accounts(database_url: str) -> dict:
    """Bank id → (watched accounts, unwatched accounts) of the book, and overdue borrowers funded."""
    import asyncpg

    connection = await asyncpg.connect(database_url.split("?")[0])
    try:
        rows = await connection.fetch("SELECT bank_id, settlement_account, dpd FROM loan_receipt WHERE status = 'active'")
        # Money for the overdue to settle with (the core holds it before the bank reports it).
        await connection.execute(
            """UPDATE sandbox_core_account a SET balance_fen = a.balance_fen + 100000000
               FROM loan_receipt r WHERE r.settlement_account = a.account_no AND r.dpd > 0""")
    finally:
        await connection.close()
    found: dict[int, tuple[list[str], list[str]]] = {}
    for row in rows:
        watched, quiet = found.setdefault(row["bank_id"], ([], []))
        (watched if row["dpd"] > 0 else quiet).append(row["settlement_account"])
    return found


def make_events(accounts: dict, count: int, *, seed: int, watched_share: float = 0.10) -> list[tuple[int, dict]]:
    rng = random.Random(seed)
    banks = sorted(accounts)
    shells = [f"62220200{n:011d}" for n in range(20)]
    made = []
    stamp = datetime.now(timezone.utc).isoformat()
    for n in range(count):
        bank = banks[n % len(banks)]
        watched, quiet = accounts[bank]
        txn = f"B{seed}-{n:09d}"
        if rng.random() < watched_share and watched:
            account = rng.choice(watched)
            if rng.random() < 0.25:
                body = {"direction": "in", "amount_fen": rng.randrange(50_000, 500_000), "balance_after_fen": rng.randrange(500_000, 5_000_000)}
            else:
                kind = rng.random()
                amount = rng.randrange(6_000_000, 9_000_000) if kind < 0.05 else rng.randrange(1_000, 200_000)
                after = rng.randrange(0, 5_000) if 0.05 <= kind < 0.10 else rng.randrange(1_000_000, 3_000_000)
                counterparty = rng.choice(shells) if 0.10 <= kind < 0.15 else f"62228800{rng.randrange(10**10):011d}"
                body = {"direction": "out", "amount_fen": amount, "balance_after_fen": after, "counterparty_account": counterparty}
        else:
            account = rng.choice(quiet)
            body = {"direction": rng.choice(("in", "out")), "amount_fen": rng.randrange(100, 500_000), "balance_after_fen": rng.randrange(0, 5_000_000),
                    "counterparty_account": f"62228800{rng.randrange(10**10):011d}"}
        made.append((bank, {"transaction_id": txn, "account": account, "occurred_at": stamp, **body}))
    return made


async def _open(database_url: str, redis_url: str):
    from redis import asyncio as redis_asyncio

    from infra.settings import Settings
    from server import database
    from server.app import configure_pii

    configure_pii(Settings.from_env())
    await database.open_database(database_url)
    return redis_asyncio.Redis.from_url(redis_url)


async def _ingest(events: list[tuple[int, dict]], stream) -> float:
    from lending_core.risk import transactions

    started = time.perf_counter()
    by_bank: dict[int, list[dict]] = {}
    for bank, body in events:
        by_bank.setdefault(bank, []).append(body)
    for bank, bodies in by_bank.items():
        for start in range(0, len(bodies), 500):
            await transactions.ingest(bank, bodies[start:start + 500], queue=stream)
    return time.perf_counter() - started


def _business_clock():
    started = time.monotonic()
    return lambda: BUSINESS_TIME + timedelta(seconds=time.monotonic() - started)


async def _worker(database_url: str, redis_url: str, events: list[tuple[int, dict]], rate: int, seconds: int, seed: int, batch: int,
                  in_flight: int = 2) -> dict:
    from integrations.core_banking_sandbox import SandboxCoreBanking
    from infra import sql
    from server.cli import tune_garbage_collector
    from server.monitor import Monitor, MonitorSettings

    redis = await _open(database_url, redis_url)
    core = SandboxCoreBanking()
    committed: list[tuple[float, list[int]]] = []

    def note(result) -> None:  # right after the batch's commit and acknowledgement
        committed.append((time.time(), [i for i in result.done if result.outcomes.get(i) in ("settled", "signalled")]))

    monitor = Monitor(redis, PREFIX, core, consumer="bench-1", settings=MonitorSettings(batch=batch, block_ms=20, in_flight=in_flight), now=_business_clock(),
                      on_batch=note)
    await redis.delete(monitor.stream.key)
    await monitor.start()
    await monitor.watcher.refresh()
    tune_garbage_collector()  # as `server.cli monitor` does once started
    ingest_seconds = await _ingest(events, monitor.stream)
    # 1. Throughput over the backlog.
    cpu, started = time.process_time(), time.perf_counter()
    # Events on accounts nobody watches were settled at ingest: the worker gets the rest.
    queued = int(await monitor.stream.redis.xlen(monitor.stream.key))
    done, idle = 0, 0
    while done < queued and idle < 100:
        got = await monitor.pump(block_ms=0)
        idle = 0 if got or monitor.in_flight else idle + 1  # a guard: stop if events were lost
        done += got
    done += await monitor.flush()
    seconds_taken = time.perf_counter() - started
    worker_cpu = time.process_time() - cpu
    outcomes = {row["outcome"]: int(row["n"]) for row in await sql.fetch_all("SELECT outcome, COUNT(*) AS n FROM transaction_event GROUP BY outcome")}
    backlog = {"events": len(events), "queued": queued, "processed_by_worker": done, "seconds": seconds_taken,
               "per_second": len(events) / seconds_taken, "queued_per_second": done / seconds_taken, "worker_cpu": worker_cpu,
               "ingest_per_second": len(events) / ingest_seconds, "outcomes": outcomes}
    # 2. Latency under a steady feed from another process. The backlog grew the event table from
    # nothing in seconds; a running system's autovacuum would have analyzed it since (its minute
    # has not come): with the empty table's statistics the planner scans it whole.
    await sql.fetch_all("ANALYZE")
    committed.clear()
    producer = subprocess.Popen([sys.executable, "-m", "bench.realtime", "--produce", "--rate", str(rate), "--seconds", str(seconds),
                                 "--seed", str(seed + 1)], cwd=ROOT)
    deadline = time.monotonic() + seconds + 30
    while producer.poll() is None or await monitor.stream.redis.xlen(monitor.stream.key) and time.monotonic() < deadline:
        await monitor.pump(block_ms=50)
        if producer.poll() is not None and not await sql.fetch_one("SELECT 1 AS x FROM transaction_event WHERE status = 'received' LIMIT 1"):
            break
    await monitor.flush()
    ids = [i for _, batch in committed for i in batch]
    received = {}
    for start in range(0, len(ids), 5000):
        chunk = ids[start:start + 5000]
        rows = await sql.fetch_all("SELECT id, received_at FROM transaction_event WHERE id = ANY(:ids)", ids=chunk)
        received.update({row["id"]: row["received_at"].timestamp() for row in rows})
    latencies = sorted((at - received[i]) * 1000 for at, batch in committed for i in batch if i in received)
    fed = int((await sql.fetch_one("SELECT COUNT(*) AS n FROM transaction_event"))["n"]) - len(events)
    left = int((await sql.fetch_one("SELECT COUNT(*) AS n FROM transaction_event WHERE status = 'received'"))["n"])
    unbalanced = int((await sql.fetch_one(
        "SELECT COUNT(*) AS n FROM (SELECT transaction_id FROM ledger_leg GROUP BY transaction_id HAVING SUM(amount_fen) <> 0) u"))["n"])
    settled = int((await sql.fetch_one("SELECT COUNT(*) AS n FROM loan_repayment WHERE source = 'set_off'"))["n"])
    signals = int((await sql.fetch_one("SELECT COUNT(*) AS n FROM warning_signal WHERE source = 'realtime'"))["n"])
    await redis.aclose()
    from server import database

    await database.close_database()
    return {
        "backlog": backlog,
        "feed": {"rate": rate, "seconds": seconds, "events": fed, "signalling_events": len(latencies), "left_unprocessed": left,
                 "p50_ms": statistics.median(latencies) if latencies else None,
                 "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else None},
        "unbalanced_transactions": unbalanced, "set_off_repayments": settled, "realtime_signals": signals,
    }


async def _produce(database_url: str, redis_url: str, rate: int, seconds: int, seed: int) -> None:
    """Ingest at ``rate`` events a second in batches every 20 ms, as a bank's core would push."""
    from infra.streams import Stream
    from lending_core.risk import transactions

    redis = await _open(database_url, redis_url)
    stream = Stream(redis, transactions.stream_key(PREFIX), transactions.GROUP)
    events = make_events(await _accounts_only(database_url), rate * seconds, seed=seed)
    per_tick = max(1, rate // 50)
    started = time.monotonic()
    for n, start in enumerate(range(0, len(events), per_tick)):
        chunk = events[start:start + per_tick]
        stamp = datetime.now(timezone.utc).isoformat()
        by_bank: dict[int, list[dict]] = {}
        for bank, body in chunk:
            by_bank.setdefault(bank, []).append({**body, "occurred_at": stamp})
        for bank, bodies in by_bank.items():
            await transactions.ingest(bank, bodies, queue=stream)
        pause = started + (n + 1) * 0.02 - time.monotonic()
        if pause > 0:
            await asyncio.sleep(pause)
    await redis.aclose()
    from server import database

    await database.close_database()


async def _accounts_only(database_url: str) -> dict:
    import asyncpg

    connection = await asyncpg.connect(database_url.split("?")[0])
    try:
        rows = await connection.fetch("SELECT bank_id, settlement_account, dpd FROM loan_receipt WHERE status = 'active'")
    finally:
        await connection.close()
    found: dict[int, tuple[list[str], list[str]]] = {}
    for row in rows:
        watched, quiet = found.setdefault(row["bank_id"], ([], []))
        (watched if row["dpd"] > 0 else quiet).append(row["settlement_account"])
    return found


def run(database_url: str, redis_url: str, *, loans: int, events: int, rate: int, seconds: int, seed: int = 7, batch: int = 500,
        in_flight: int = 2) -> dict:
    from bench import daily_job

    started = time.monotonic()
    made = asyncio.run(daily_job.create(database_url, loans))
    accounts = asyncio.run(_accounts(database_url))
    setup = time.monotonic() - started
    result = asyncio.run(_worker(database_url, redis_url, make_events(accounts, events, seed=seed), rate, seconds, seed, batch, in_flight))
    return {"loans": loans, "overdue": sum(len(w) for w, _ in accounts.values()), "setup_seconds": setup, "batch": batch, "in_flight": in_flight,
            **result, "book": made}


def write_doc(r: dict, command: str) -> str:
    from bench.run import machine, write_section

    b, f = r["backlog"], r["feed"]
    throughput_met = b["per_second"] >= 5_000
    latency_met = f["p99_ms"] is not None and f["p99_ms"] <= 100 and f["left_unprocessed"] == 0
    outcomes = ", ".join(f"{n:,} {name}" for name, n in sorted(b["outcomes"].items(), key=lambda item: -item[1]))
    body = f"""## Real-time monitoring: one worker, 10 % of events on watched accounts

Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}; PostgreSQL and Redis on this machine.
Command: `{command}`.

| figure | value | target |
| --- | ---: | --- |
| throughput of one worker over a backlog of {b['events']:,} events (batches of {r['batch']}, {r['in_flight']} in flight): backlog events per second of the worker's | **{b['per_second']:,.0f} events/s** | ≥ 5,000: {'met' if throughput_met else 'MISSED'} |
| of which queued to the worker (the rest were on accounts nobody watched at arrival, stored processed by ingest): {b['queued']:,}, at | {b['queued_per_second']:,.0f} events/s | |
| event-to-signal latency at {f['rate']:,} events/s for {f['seconds']} s: p50 | {f['p50_ms'] or 0:.0f} ms | |
| event-to-signal latency: p99 (over {f['signalling_events']:,} events that settled or signalled) | **{f['p99_ms'] or 0:.0f} ms** | ≤ 100 ms: {'met' if latency_met else 'MISSED'} |
| ingest (`transactions.ingest`, batches of 500, one process; it stores, tells the unwatched apart and queues) | {b['ingest_per_second']:,.0f} events/s | |

The book: {r['loans']:,} active loans copied in with COPY (bench/daily_job.py), {r['overdue']:,} of them overdue
(their borrowers are the watched set; each was given money to settle with). Of the backlog's events
{outcomes}; over the whole run {r['set_off_repayments']:,} overdue loans were settled from arriving money
(servicing, ledger, core-banking debit, repayment row, outbox event and audit row each), {r['realtime_signals']:,} real-time
signals stand open, {r['unbalanced_transactions']} ledger transactions are unbalanced and {f['left_unprocessed']} events were left
unprocessed. Throughput runs from the worker's first read to its last acknowledgement
(worker CPU {b['worker_cpu']:.1f} s of {b['seconds']:.1f} s: the rest is waiting on PostgreSQL). Latency runs from an event's row
being stored at ingest to the commit of the batch that processed it, with a producer process
ingesting every 20 ms beside the worker; the machine's two cores are shared by the producer, the
worker and PostgreSQL.
"""
    write_section("realtime", body)
    return body


def main() -> None:
    import os

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loans", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rate", type=int, default=2_500, help="events a second fed during the latency run")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batch", type=int, default=500, help="events the worker reads and processes per transaction")
    parser.add_argument("--in-flight", type=int, default=2, help="batches the worker processes at once")
    parser.add_argument("--write-doc", action="store_true", help="write the figures into docs/benchmarks.md")
    parser.add_argument("--produce", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    database_url, redis_url = os.environ["DATABASE_URL"], os.environ["REDIS_URL"]
    if args.produce:
        asyncio.run(_produce(database_url, redis_url, args.rate, args.seconds, args.seed))
        return
    result = run(database_url, redis_url, loans=args.loans, events=args.events, rate=args.rate, seconds=args.seconds, seed=args.seed, batch=args.batch,
                 in_flight=args.in_flight)
    print(json.dumps(result, default=str))
    if args.write_doc:
        command = (f"python -m bench.run --only realtime --loans {args.loans} --rt-events {args.events} --rt-rate {args.rate} "
                   f"--rt-seconds {args.seconds}")
        print(write_doc(result, command))


if __name__ == "__main__":
    main()
