"""The loans' daily job over 100,000 active loans on PostgreSQL, for a due date.

    python -m bench.daily_job [--loans 100000] [--workers 1]     (bench.run --only daily calls it)

Set-up (not timed) copies the book straight into the tables with COPY: customers with a
settlement account in the core-banking sandbox, an approved application and an effective
credit contract each, and one loan receipt each with its schedule (built by
``schedule.build_schedule``), its ledger accounts and an opening ledger transaction for what it
owes. Every loan was drawn on the 15th of a month one to eleven months before the measured day,
the 15th, so every loan has an instalment falling due that day:

- 90 % performing, with money in the account: auto-debited in full;
- 5 % performing, with too little money: partly debited, the rest stays due;
- 5 % already overdue since last month's due date: the day accrues their penalty interest,
  their DPD grows, and the auto-debit collects what it can.

Loans are spread over the demo's three banks; the job runs bank by bank (one worker), or with
``--workers 2`` as two processes that share each bank's loans (``daily`` locks a chunk's rows and
skips those another worker holds). Timed: the whole ``daily.run`` for the date, from the first
query to the last commit; the CPU seconds of the job and of its PostgreSQL backends are reported
beside it, since the machine is shared with other work.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
DAY = date(2025, 6, 15)
RATE_BPS = 720
SERVICING = {"penalty_uplift_bps": 5000, "allocation": ["penalty", "interest", "principal"], "early_repayment_fee_bps": 0,
             "day_basis": 360, "credit_line_months": 12, "signing_days": 7}
METHODS = ("equal_instalment",) * 6 + ("equal_principal",) * 2 + ("interest_only",) * 2
AMOUNTS = [yuan * 100 for yuan in range(5_000, 205_000, 10_000)]


@lru_cache(maxsize=None)
def _plan(method: str, amount: int):
    from lending_core.loans import schedule

    return schedule.build_schedule(method, amount, RATE_BPS, 12, date(2000, 1, 15))


async def create(database_url: str, loans: int, *, seed: int = 11) -> dict:
    """Copy ``loans`` active loans (and all they hang on) into the database; returns counts."""
    import asyncpg

    from lending_core.ledger import service as ledger
    from lending_core.loans import schedule, servicing

    rng = random.Random(seed)
    connection = await asyncpg.connect(database_url.split("?")[0])
    try:
        banks = [(row["id"], row["code"]) for row in await connection.fetch("SELECT id, code FROM bank ORDER BY id")]
        product = await connection.fetchrow("SELECT id, published_version FROM product WHERE code = 'SHUIYITONG'")
        now = datetime.now(timezone.utc)

        async def next_ids(table: str, count: int) -> int:
            first = await connection.fetchval(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}")
            await connection.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {first + count - 1})")
            return first

        customer0 = await next_ids("customer", loans)
        application0 = await next_ids("application", loans)
        contract0 = await next_ids("contract", loans)
        loan0 = await next_ids("loan_receipt", loans)
        account0 = await next_ids("ledger_account", 4 * loans + 4 * len(banks))
        transaction0 = await next_ids("ledger_transaction", loans)
        sandbox0 = await next_ids("sandbox_core_account", loans)

        customers, applications, contracts, sandbox, journal, accounts, receipts, instalments, transactions, legs = ([] for _ in range(10))
        bank_accounts = {}
        next_account = account0
        for bank_id, code in banks:
            for kind in ledger.BANK_KINDS:
                accounts.append((next_account, bank_id, ledger.bank_code(bank_id, kind), kind, None, None, None, now))
                bank_accounts[bank_id, kind] = next_account
                next_account += 1
        overdue = due_only = 0
        for n in range(loans):
            bank_id, bank_code = banks[n % len(banks)]
            customer_id, application_id, contract_id, loan_id = customer0 + n, application0 + n, contract0 + n, loan0 + n
            method, amount = METHODS[rng.randrange(len(METHODS))], AMOUNTS[rng.randrange(len(AMOUNTS))]
            months_ago = rng.randint(1, 11)
            drawn = _months_before(DAY, months_ago)
            plan = _plan(method, amount)
            kind = rng.random()
            is_overdue = kind < 0.05 and months_ago >= 2
            short = 0.05 <= kind < 0.10
            overdue += is_overdue
            due_only += short
            customers.append((customer_id, now, now))
            applications.append((application_id, bank_id, customer_id, product["id"], product["published_version"] or 1, "bench",
                                 amount * 2, 12, method, True, "contracted", "{}", amount * 2, RATE_BPS, "[]", now, now))
            contracts.append((contract_id, bank_id, application_id, customer_id, product["id"], product["published_version"] or 1,
                              "loan_contract", amount * 2, RATE_BPS, schedule.penalty_rate_bps(RATE_BPS, 5000), 12, method, "none",
                              json.dumps(SERVICING), "", "0" * 64, "effective", now, now, _months_before(DAY, -6), now, now))
            settlement = f"SBX{bank_code}S{customer_id:012d}"
            this_due = plan.instalments[months_ago - 1]
            owed_now = this_due.total_fen
            balance = 0 if short else owed_now * 3 // 2
            if is_overdue:
                balance = plan.instalments[months_ago - 2].total_fen // 2  # collects part of what is due
            sandbox.append((sandbox0 + n, settlement, bank_code, customer_id, "settlement", balance, 0, now))
            journal.append((settlement, f"drawdown:bench:{loan_id}:credit", "credit", amount, amount, "ok", balance, 0, now))
            principal_acc, interest_acc, penalty_acc, settlement_acc = next_account, next_account + 1, next_account + 2, next_account + 3
            next_account += 4
            accounts += [
                (principal_acc, bank_id, ledger.loan_code(loan_id, "principal"), ledger.LOAN_PRINCIPAL, loan_id, None, None, now),
                (interest_acc, bank_id, ledger.loan_code(loan_id, "interest"), ledger.LOAN_INTEREST, loan_id, None, None, now),
                (penalty_acc, bank_id, ledger.loan_code(loan_id, "penalty"), ledger.LOAN_PENALTY, loan_id, None, None, now),
                (settlement_acc, bank_id, ledger.customer_code(customer_id, ledger.CUSTOMER_SETTLEMENT, settlement),
                 ledger.CUSTOMER_SETTLEMENT, None, customer_id, settlement, now),
            ]
            paid_before = months_ago - 1 - (1 if is_overdue else 0)
            outstanding = amount - sum(i.principal_fen for i in plan.instalments[:paid_before])
            penalty_rate = schedule.penalty_rate_bps(RATE_BPS, 5000)
            dpd, serviced, interest_owed, penalty_owed = 0, None, 0, 0
            for i in plan.instalments:
                due = _months_before(DAY, months_ago - i.number)
                row = [None, loan_id, bank_id, i.number, due, i.principal_fen, i.interest_fen, 0, 0, 0, 0, None, 0, 0, "scheduled", None]
                if i.number <= paid_before:
                    row[7], row[8], row[14], row[15] = i.principal_fen, i.interest_fen, "paid", due
                elif is_overdue and i.number == paid_before + 1:
                    days = (DAY - due).days - 1  # serviced through yesterday
                    penalty = schedule.accrue(i.principal_fen, penalty_rate, days)
                    row[9], row[11], row[12], row[13], row[14] = penalty, due, i.principal_fen, penalty, "overdue"
                    dpd, serviced, interest_owed, penalty_owed = days, DAY - timedelta(days=1), i.interest_fen, penalty
                instalments.append(tuple(row))
            receipts.append((loan_id, bank_id, contract_id, customer_id, f"bench-{n}", amount, RATE_BPS, penalty_rate, 12, method, 360,
                             json.dumps(SERVICING["allocation"]), 0, "none", RATE_BPS, drawn, _months_before(DAY, months_ago - 12),
                             settlement, None, 0, None, principal_acc, interest_acc, penalty_acc, settlement_acc, None, "active", dpd,
                             servicing.classify(dpd), serviced, None, now, now))
            transaction_id = transaction0 + n
            transactions.append((transaction_id, bank_id, "opening_balance", f"opening:{loan_id}", f"opening:{loan_id}", drawn, now))
            legs += [(transaction_id, principal_acc, outstanding), (transaction_id, settlement_acc, -outstanding)]
            if interest_owed:
                legs += [(transaction_id, interest_acc, interest_owed), (transaction_id, bank_accounts[bank_id, ledger.INTEREST_INCOME], -interest_owed)]
            if penalty_owed:
                legs += [(transaction_id, penalty_acc, penalty_owed), (transaction_id, bank_accounts[bank_id, ledger.PENALTY_INCOME], -penalty_owed)]

        async with connection.transaction():
            await connection.copy_records_to_table("customer", records=customers, columns=["id", "created_at", "updated_at"])
            await connection.copy_records_to_table("application", records=applications, columns=[
                "id", "bank_id", "customer_id", "product_id", "product_version", "channel", "amount_fen", "term_months",
                "repayment_method", "unsecured", "status", "decision", "limit_fen", "rate_bps", "customer_reasons", "created_at", "decided_at"])
            await connection.copy_records_to_table("contract", records=contracts, columns=[
                "id", "bank_id", "application_id", "customer_id", "product_id", "product_version", "template", "limit_fen", "rate_bps",
                "penalty_rate_bps", "term_months", "repayment_method", "collateral", "servicing", "document_html", "document_sha256",
                "status", "sign_by", "effective_at", "line_expires_on", "created_at", "updated_at"])
            await connection.copy_records_to_table("sandbox_core_account", records=sandbox, columns=[
                "id", "account_no", "bank_code", "customer_id", "kind", "balance_fen", "frozen_fen", "opened_at"])
            # The core banking's journal holds each loan's payout (what a day's debits are looked up beside).
            await connection.copy_records_to_table("sandbox_core_entry", records=journal, columns=[
                "account_no", "key", "kind", "requested_fen", "amount_fen", "status", "balance_after_fen", "frozen_after_fen", "at"])
            await connection.copy_records_to_table("ledger_account", records=accounts, columns=[
                "id", "bank_id", "code", "kind", "loan_id", "customer_id", "external_account", "created_at"])
            await connection.copy_records_to_table("loan_receipt", records=receipts, columns=[
                "id", "bank_id", "contract_id", "customer_id", "request_key", "principal_fen", "rate_bps", "penalty_rate_bps",
                "term_months", "repayment_method", "day_basis", "allocation", "early_repayment_fee_bps", "collateral", "apr_bps",
                "drawn_on", "maturity_date", "settlement_account", "pledge_account", "pledged_fen", "property_certificate",
                "principal_account_id", "interest_account_id", "penalty_account_id", "settlement_ledger_account_id",
                "pledge_ledger_account_id", "status", "dpd", "classification", "serviced_through", "closed_on", "created_at", "updated_at"])
            await connection.copy_records_to_table("loan_instalment", records=[row[1:] for row in instalments], columns=[
                "loan_id", "bank_id", "number", "due_date", "principal_fen", "interest_fen", "principal_paid_fen", "interest_paid_fen",
                "penalty_fen", "penalty_paid_fen", "penalty_from", "penalty_base_fen", "penalty_segment_fen", "status", "paid_on"])
            await connection.copy_records_to_table("ledger_transaction", records=transactions, columns=[
                "id", "bank_id", "kind", "key", "correlation_id", "business_date", "created_at"])
            await connection.copy_records_to_table("ledger_leg", records=legs, columns=["transaction_id", "account_id", "amount_fen"])
        # A book in steady state has been vacuumed: without this, autovacuum would start on the
        # freshly copied tables in the middle of the timed run.
        await connection.execute("VACUUM ANALYZE")
        return {"loans": loans, "instalments": len(instalments), "overdue": overdue, "short_of_money": due_only, "banks": len(banks)}
    finally:
        await connection.close()


def _months_before(day: date, months: int) -> date:
    year, month0 = divmod(day.month - 1 - months, 12)
    return date(day.year + year, month0 + 1, day.day)


async def _run_job(database_url: str, worker: str) -> dict:
    from infra.settings import Settings
    from integrations.core_banking_sandbox import SandboxCoreBanking
    from lending_core.loans import daily
    from server import database
    from server.app import configure_pii

    configure_pii(Settings.from_env())
    await database.open_database(database_url)
    try:
        backends_before = await _backend_cpu()
        cpu_before, started = time.process_time(), time.time()
        report = await daily.run(DAY, core_banking=SandboxCoreBanking(), worker=worker)
        finished, cpu = time.time(), time.process_time() - cpu_before
        backends = await _backend_cpu()
        database_cpu = sum(seconds - backends_before.get(pid, 0.0) for pid, seconds in backends.items())
        return {**report.as_dict(), "worker": worker, "started": started, "finished": finished, "job_cpu": cpu, "database_cpu": database_cpu}
    finally:
        await database.close_database()


async def _backend_cpu() -> dict[int, float]:
    """CPU seconds used so far by each PostgreSQL backend serving this database (they run on
    this machine: /proc tells), to say where the time went on a machine shared with other work."""
    import os

    from infra import sql

    ticks = os.sysconf("SC_CLK_TCK")
    used = {}
    for row in await sql.fetch_all("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"):
        try:
            fields = Path(f"/proc/{row['pid']}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[row["pid"]] = (int(fields[11]) + int(fields[12])) / ticks
    return used


async def _check(database_url: str) -> dict:
    """After the run: every ledger transaction balanced, and what the day did, from the tables."""
    import asyncpg

    connection = await asyncpg.connect(database_url.split("?")[0])
    try:
        unbalanced = await connection.fetchval(
            "SELECT COUNT(*) FROM (SELECT transaction_id FROM ledger_leg GROUP BY transaction_id HAVING SUM(amount_fen) <> 0) u")
        serviced = await connection.fetchval("SELECT COUNT(*) FROM loan_receipt WHERE serviced_through = $1", DAY)
        repaid = await connection.fetchval("SELECT COUNT(*) FROM loan_repayment WHERE business_date = $1", DAY)
        return {"unbalanced_transactions": unbalanced, "loans_serviced": serviced, "auto_debit_repayments": repaid}
    finally:
        await connection.close()


def run(database_url: str, loans: int, workers: int = 1) -> dict:
    """Set up ``loans`` loans, time the daily job over them; returns the figures."""
    started = time.monotonic()
    made = asyncio.run(create(database_url, loans))
    made["setup_seconds"] = round(time.monotonic() - started, 1)
    if workers == 1:
        reports = [asyncio.run(_run_job(database_url, "bench-1"))]
    else:
        processes = [
            subprocess.Popen([sys.executable, "-m", "bench.daily_job", "--job-only", "--worker", f"bench-{w}"], cwd=ROOT, stdout=subprocess.PIPE)
            for w in range(1, workers + 1)
        ]
        reports = [json.loads(process.communicate()[0]) for process in processes]
    # From the first query to the last commit (interpreter start-up and imports are not the job).
    seconds = max(r["finished"] for r in reports) - min(r["started"] for r in reports)
    checked = asyncio.run(_check(database_url))
    banks = [{**bank, "worker": report["worker"]} for report in reports for bank in report["banks"] if bank["status"] in ("done", "shared")]
    return {
        **made, **checked, "workers": workers, "seconds": round(seconds, 1),
        "fell_due": sum(b["fell_due"] for b in banks), "collected_fen": sum(b["collected_fen"] for b in banks),
        "debits": sum(b["debits"] for b in banks), "went_overdue": sum(b["went_overdue"] for b in banks),
        "penalty_fen": sum(b["penalty_fen"] for b in banks), "closed": sum(b["closed"] for b in banks),
        "per_bank_seconds": {f"{b['bank_code']}:{b.get('worker', '')}": b["seconds"] for b in banks},
        "job_cpu_seconds": round(sum(r["job_cpu"] for r in reports), 1),
        "database_cpu_seconds": round(sum(r["database_cpu"] for r in reports), 1),
    }


def main() -> None:
    from infra.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loans", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--keep-database", action="store_true", help="use the database as it is (bench.run has prepared it)")
    parser.add_argument("--job-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker", default="bench-1", help=argparse.SUPPRESS)
    args = parser.parse_args()
    settings = Settings.from_env()
    if args.job_only:
        print(orjson.dumps(asyncio.run(_run_job(settings.database_url, args.worker))).decode())
        return
    if not settings.database_url.startswith("postgres"):
        raise SystemExit("the benchmark runs on PostgreSQL: set DATABASE_URL=postgres://…")
    if not args.keep_database:
        prepare()
    print(json.dumps(run(settings.database_url, args.loans, args.workers), indent=2))


def prepare() -> None:
    """A fresh database with the demo's banks and products (what bench.run does before its runs)."""
    from infra.settings import Settings
    from server.database import recreate_postgres_database

    asyncio.run(recreate_postgres_database(Settings.from_env().database_url))
    for command in ("migrate", "demo"):
        subprocess.run([sys.executable, "-m", "server.cli", command], cwd=ROOT, check=True, capture_output=True)


if __name__ == "__main__":
    main()
