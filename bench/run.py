"""`make bench`: throughput and p99 of our endpoints beside a bare Sanic JSON endpoint.

    python -m bench.run [--duration 10] [--runs 3] [--only login|lending|daily|risk_batch|grab|realtime]

``--only daily`` (part of the default run) times the loans' daily job over --loans active loans
(bench/daily_job.py) with each of --daily-workers; it needs no wrk. ``--only grab`` ends with the
outbox relay paying the grab's winners, one at a time against side by side (bench/payouts.py).

Runs on PostgreSQL and Redis (DATABASE_URL and REDIS_URL, defaulting to this machine's; the
database named is dropped and recreated). Every server is one process, access log off where it
has one; wrk loads each with 64 connections. Only 2xx responses count. Each figure is the median
of --runs runs, measured alternately with the baseline so both see the same machine. The run
writes its section of docs/benchmarks.md itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
DOC = ROOT / "docs" / "benchmarks.md"
RELIABILITY_DOC = ROOT / "docs" / "reliability.md"
CONNECTIONS = 64
BARE_LABEL = 'bare Sanic `{"hello": "world"}`'
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/rcb_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"


@dataclass(frozen=True)
class Load:
    ok_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    statuses: dict[str, int] = field(default_factory=dict)  # the non-2xx answers by HTTP status


def wrk(url: str, duration: int, script: str | None = None, env: dict | None = None) -> Load:
    command = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{duration}s", "--latency", "-s", str(BENCH_DIR / (script or "wrk_report.lua")), url]
    output = subprocess.run(command, capture_output=True, text=True, check=True, env={**os.environ, "BENCH_DIR": str(BENCH_DIR), **(env or {})}).stdout
    report = json.loads(next(line for line in output.splitlines() if line.startswith("{")))
    seconds = report["duration_us"] / 1e6
    ok = report["requests"] - report["non_2xx"]
    return Load(ok / seconds, report["p50_us"] / 1000, report["p99_us"] / 1000, report["non_2xx"], report["socket_errors"], report.get("statuses", {}))


def median_load(loads: list[Load]) -> Load:
    return Load(
        statistics.median(l.ok_per_second for l in loads),
        statistics.median(l.p50_ms for l in loads),
        statistics.median(l.p99_ms for l in loads),
        sum(l.non_2xx for l in loads),
        sum(l.socket_errors for l in loads),
        dict(sum((Counter(l.statuses) for l in loads), Counter())),
    )


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port: int, process: subprocess.Popen, seconds: float = 30) -> None:
    import socket

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"a benchmark server exited early ({process.args})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listened on {port}")


def start(args: list[str], port: int, env: dict) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(port, process)
    return process


@contextmanager
def api_server(port: int, env: dict, *, workers: int):
    process = start(["-m", "server.cli", "serve", "--workers", str(workers)], port, env)
    try:
        yield
    finally:
        # SIGINT: Sanic's worker manager stops its workers on it (a SIGTERM to the manager can
        # leave a worker holding the port for the next server).
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and port_taken(port):
            time.sleep(0.2)


def port_taken(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@asynccontextmanager
async def connection(database_url: str):
    """A plain asyncpg connection of the bench's own (the URL's pool options dropped), for what
    the bench reads and resets around the processes it measures."""
    import asyncpg

    opened = await asyncpg.connect(database_url.split("?")[0])
    try:
        yield opened
    finally:
        await opened.close()


@asynccontextmanager
async def app_stores(settings, *, redis: bool = False):
    """The platform's database (and, asked for, a Redis client) opened as the server opens them,
    personal-data keys configured, for what a bench or drill prepares and checks around the
    processes it measures; closed after. Yields the Redis client, or None."""
    from infra.redis import create_redis
    from server.app import configure_pii
    from server.database import close_database, open_database

    configure_pii(settings)
    await open_database(settings.database_url)
    client = create_redis(settings) if redis else None
    try:
        yield client
    finally:
        if client is not None:
            await client.aclose()
        await close_database()


async def scalar(database_url: str, query: str):
    async with connection(database_url) as opened:
        return await opened.fetchval(query)


def postgres_env(database_url: str, redis_url: str, what: str) -> dict:
    """This process's environment, with a bench's or drill's own stores where none are set; they
    measure the platform as it is deployed, so only on PostgreSQL."""
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", database_url)
    env.setdefault("REDIS_URL", redis_url)
    if not env["DATABASE_URL"].startswith("postgres"):
        raise SystemExit(f"{what} run on PostgreSQL: set DATABASE_URL=postgres://…")
    return env


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), platform.processor())
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def write_section(
    name: str,
    body: str,
    *,
    doc: Path = DOC,
    marker: str = "bench",
    heading: str = "# Benchmarks\n\nWritten by `make bench` (bench/run.py); do not edit the sections by hand.\n",
) -> None:
    """Replace one section of ``doc`` (between its markers), leaving the others'; the document
    starts with ``heading`` if it does not exist yet."""
    start, end = f"<!-- {marker}:{name}:start -->", f"<!-- {marker}:{name}:end -->"
    text = doc.read_text() if doc.exists() else heading
    section = f"{start}\n{body.rstrip()}\n{end}"
    if start in text:
        text = text[: text.index(start)] + section + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    doc.parent.mkdir(exist_ok=True)
    doc.write_text(text)


def write_drill_section(name: str, body: str) -> None:
    """One reliability drill's section of docs/reliability.md (the abuse, faults, soak and scale-out drills)."""
    write_section(
        name, body, doc=RELIABILITY_DOC, marker="drill",
        heading="# Reliability drills\n\nEach section is written by its drill; do not edit the sections by hand.\n",
    )


def row(name: str, load: Load, base: Load) -> str:
    return (
        f"| {name} | {load.ok_per_second:,.0f} | {load.ok_per_second / base.ok_per_second:.1%} | "
        f"{load.p50_ms:.1f} | {load.p99_ms:.1f} | {non_2xx(load)} |"
    )


def non_2xx(load: Load) -> str:
    """``"12 (409: 2, 503: 10)"``: what was not a success, by status."""
    by_status = ", ".join(f"{status}: {count}" for status, count in sorted(load.statuses.items()))
    return f"{load.non_2xx} ({by_status})" if by_status else str(load.non_2xx)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", choices=["login", "lending", "daily", "risk_batch", "grab", "realtime"], default=None)
    parser.add_argument("--loans", type=int, default=100_000, help="active loans the daily-job run services")
    parser.add_argument("--daily-workers", type=int, nargs="+", default=[1, 2], help="daily-job worker counts to measure (side by side)")
    parser.add_argument("--risk-workers", type=int, nargs="+", default=[1, 2], help="risk-batch worker counts to measure")
    parser.add_argument("--applicants", type=int, default=60000, help="distinct applicants made for the lending runs")
    parser.add_argument("--api-workers", type=int, nargs="+", default=[1, 2], help="API worker counts to measure")
    parser.add_argument("--grab-customers", type=int, default=5_000, help="customers grabbing red packets (bench/grab.py)")
    parser.add_argument("--grab-packets", type=int, default=1_000_000, help="packets in the grab campaign's pool (must not run dry)")
    parser.add_argument("--rt-events", type=int, default=100_000, help="events of the real-time monitoring backlog (bench/realtime.py)")
    parser.add_argument("--rt-rate", type=int, default=5_000, help="events a second fed during the real-time latency run")
    parser.add_argument("--rt-seconds", type=int, default=20, help="seconds of the real-time latency run")
    args = parser.parse_args()
    args.loans_given = any(a == "--loans" or a.startswith("--loans=") for a in sys.argv[1:])
    if not shutil.which("wrk") and args.only not in ("daily", "risk_batch", "realtime"):
        raise SystemExit("wrk is missing: `apt-get install -y wrk` (make bench does it)")

    env = postgres_env(DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, "the benchmarks")
    wechat_port, bare_port, api_port = free_port(), free_port(), free_port()
    env.update(APP_ENV="dev", RUN_EMBEDDED_WORKERS="false", PORT=str(api_port), WECHAT_API_BASE=f"http://127.0.0.1:{wechat_port}/")

    from server.database import recreate_postgres_database

    asyncio.run(recreate_postgres_database(env["DATABASE_URL"]))
    subprocess.run(["redis-cli", "-u", env["REDIS_URL"], "flushdb"], check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "server.cli", "migrate"], cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "server.cli", "demo"], cwd=ROOT, env=env, check=True, capture_output=True)
    if args.only == "daily":
        bench_daily(args, env)
        return
    if args.only == "realtime":
        # bench/realtime.py writes its own section.
        subprocess.run([sys.executable, "-m", "bench.realtime", "--write-doc", "--loans", str(args.loans), "--events", str(args.rt_events),
                        "--rate", str(args.rt_rate), "--seconds", str(args.rt_seconds)], cwd=ROOT, env=env, check=True)
        return
    if args.only == "risk_batch":
        # bench/risk_batch.py writes its own section (its --loans default is 1,000,000; pass --loans to change it).
        subprocess.run([sys.executable, "-m", "bench.risk_batch", "--keep-database", "--loans", str(args.loans if args.loans_given else 1_000_000),
                        "--workers", *map(str, args.risk_workers)],
                       cwd=ROOT, env=env, check=True)
        return

    processes = []
    try:
        processes.append(start(["-m", "fakes.wechat", "--port", str(wechat_port)], wechat_port, env))
        processes.append(start([str(BENCH_DIR / "bare_app.py"), str(bare_port)], bare_port, env))
        bare_url, api_url = f"http://127.0.0.1:{bare_port}/", f"http://127.0.0.1:{api_port}"

        wrk(bare_url, 2)
        if args.only in (None, "login"):
            with api_server(api_port, env, workers=1):
                bench_login(args, bare_url, api_url)
        if args.only in (None, "lending"):
            bench_lending(args, bare_url, api_url, api_port, env)
        if args.only in (None, "grab"):
            from bench import grab

            grab.bench_grab(args, bare_url, api_url, api_port, env)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=15)
    if args.only is None:
        bench_daily(args, env)


def header(args) -> str:
    return (
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}; PostgreSQL and Redis on\n"
        f"this machine; wrk -t2 -c{CONNECTIONS}, {args.duration} s per run, median of {args.runs}\n"
        f"runs taken alternately with the baseline. Command: `make bench` (`python -m bench.run --duration {args.duration} --runs {args.runs}`)."
    )


def bench_lending(args, bare_url: str, api_url: str, api_port: int, env: dict) -> None:
    from bench import applicants
    from infra.settings import Settings

    started = time.monotonic()
    tokens = applicants.made_in_database(Settings.from_env(env), args.applicants)
    made_in = time.monotonic() - started
    token_file = ROOT / "var" / "bench-tokens.txt"
    token_file.parent.mkdir(exist_ok=True)
    token_file.write_text("\n".join(tokens) + "\n")
    lua_env = {"BENCH_TOKENS": str(token_file), "BENCH_THREADS": "2"}

    def flush_cache() -> None:
        # Quotes by distinct applicants with nothing cached: each run asks the sources afresh.
        subprocess.run(["redis-cli", "-u", env["REDIS_URL"], "flushdb"], check=True, capture_output=True)

    bare_runs, rows, offset = [], [], 0
    for workers in args.api_workers:
        quote_runs, apply_runs = [], []
        with api_server(api_port, env, workers=workers):
            flush_cache()
            wrk(api_url, 3, "lending.lua", {**lua_env, "BENCH_MODE": "quote", "BENCH_OFFSET": "0"})
            for run in range(args.runs):
                bare_runs.append(wrk(bare_url, args.duration))
                flush_cache()
                quote_runs.append(wrk(api_url, args.duration, "lending.lua", {**lua_env, "BENCH_MODE": "quote", "BENCH_OFFSET": "0"}))
                result = wrk(api_url, args.duration, "lending.lua", {**lua_env, "BENCH_MODE": "apply", "BENCH_OFFSET": str(offset)})
                apply_runs.append(result)
                offset += int(result.ok_per_second * args.duration) + result.non_2xx + 1000
                if offset >= len(tokens):
                    raise SystemExit(f"not enough applicants for the application runs: raise --applicants above {offset}")
        rows.append((workers, median_load(quote_runs), median_load(apply_runs)))
    bare = median_load(bare_runs)
    table = [row(BARE_LABEL, bare, bare) + "  |"]
    for workers, quote, apply in rows:
        api = f"{workers} worker{'s' if workers > 1 else ''}"
        quote_met = quote.ok_per_second >= 0.2 * bare.ok_per_second
        apply_met = apply.ok_per_second >= 0.06 * bare.ok_per_second and apply.p99_ms <= 100
        table.append(row(f"`POST /api/v1/products/SHUIYITONG/quote`, API {api}", quote, bare) + f" ≥ 20% of bare: {'met' if quote_met else 'MISSED'} |")
        table.append(row(f"`POST /api/v1/applications`, API {api}", apply, bare) + f" ≥ 6% of bare and p99 ≤ 100 ms: {'met' if apply_met else 'MISSED'} |")
    newline = "\n"
    body = f"""## Lending core: quote and application

{header(args)}

| endpoint | 2xx/s | vs bare | p50 ms | p99 ms | non-2xx | target |
| --- | ---: | ---: | ---: | ---: | ---: | --- |
{newline.join(table)}

The bare endpoint is one worker, as the target defines it; the API is measured with one worker
and with one per core (how it is deployed). Every request is a different applicant
({args.applicants:,} real-name customers with consents, made in {made_in:.0f} s), with the
data-source cache emptied before each quote run, so each quote asks the tax bureau and court
sandboxes afresh (never the credit bureau); each application pulls all three sources, runs the
decision, and commits the application with its audit row, outbox event and idempotency record.
Applicants are small-firm owners, whom 税易通 approves: the path that does the most work.
"""
    write_section("lending", body)
    print(body)


def bench_login(args, bare_url: str, api_url: str) -> None:
    # Warm-up: creates the pool of returning mini-program users and fills caches.
    wrk(api_url, 3, "wechat_login.lua", {"BENCH_RUN": "warm"})
    bare_runs, login_runs = [], []
    for run in range(args.runs):
        bare_runs.append(wrk(bare_url, args.duration))
        login_runs.append(wrk(api_url, args.duration, "wechat_login.lua", {"BENCH_RUN": f"r{run}"}))
    bare, login = median_load(bare_runs), median_load(login_runs)
    body = f"""## Channels: mini-program login

{header(args)}

| endpoint | 2xx/s | vs bare | p50 ms | p99 ms | non-2xx |
| --- | ---: | ---: | ---: | ---: | ---: |
{row(BARE_LABEL, bare, bare)}
{row("`POST /api/v1/channels/wechat/login` (code → token)", login, bare)}

The login does the real work: wechatpy's code2session call over HTTP to the fake WeChat server
(a separate single-process server on loopback, itself part of the load on these 2 cores), the
customer lookup by keyed hash of the openid, the encrypted session-key update, and a new session
row with signed tokens. Each request uses a fresh code for one of 1,000 returning users.
"""
    write_section("channels-login", body)
    print(body)


def yuan_grouped(fen: int) -> str:
    """``65363530211`` → ``"653,635,302.11"``: money stays integer fen, even in a report."""
    return f"{fen // 100:,}.{fen % 100:02d}"


def bench_daily(args, env: dict) -> None:
    """The loans' daily job over --loans active loans for a due date (bench/daily_job.py), once
    per worker count, each on a freshly made book (the job changes it); no HTTP, no wrk."""
    results = []
    for workers in args.daily_workers:
        command = [sys.executable, "-m", "bench.daily_job", "--loans", str(args.loans), "--workers", str(workers)]
        results.append(json.loads(subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout))
    rows = []
    for r in results:
        met = r["seconds"] <= 60 and r["unbalanced_transactions"] == 0 and r["loans_serviced"] == r["loans"]
        rows.append(
            f"| {r['workers']} | {r['loans']:,} | {r['fell_due']:,} | {r['debits']:,} | {yuan_grouped(r['collected_fen'])} | "
            f"{yuan_grouped(r['penalty_fen'])} | {r['job_cpu_seconds']:.1f} | {r['database_cpu_seconds']:.1f} | **{r['seconds']:.1f}** | "
            f"≤ 60 s: {'met' if met else 'MISSED'} |"
        )
    first = results[0]
    newline = "\n"
    body = f"""## Loans: the daily job over {first['loans']:,} active loans

Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}; PostgreSQL on this machine.
Command: `make bench` (`python -m bench.run --only daily --loans {args.loans} --daily-workers {' '.join(map(str, args.daily_workers))}`).

| workers | loans | instalments falling due | auto-debits | collected (yuan) | penalty accrued (yuan) | job CPU s | PostgreSQL CPU s | seconds | target |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |
{newline.join(rows)}

One business date, the 15th, on which every loan has an instalment falling due: each loan's
interest becomes receivable; {first['loans'] - first['short_of_money'] - first['overdue']:,} accounts hold enough for the auto-debit,
{first['short_of_money']:,} too little (partly debited) and {first['overdue']:,} loans were already a month overdue (their
penalty interest accrues, their days past due and tier move on). Every collection is a core-banking
batch debit, a balanced ledger transaction (checked again at commit by the PostgreSQL trigger), a
repayment row, an outbox event and an audit row. Loans are read and written in chunks of 2,000,
one transaction each, bank by bank; workers side by side share each bank's loans (locked chunks
are skipped). Seconds run from the job's first query to its last commit; the CPU columns say where
they went (the machine is shared). Afterwards every run had
{sum(r['unbalanced_transactions'] for r in results)} unbalanced ledger transactions and every loan serviced through the date. Set-up (not
timed: the book copied in with COPY, schedules from `schedule.build_schedule`) took about
{first['setup_seconds']:.0f} s per run.
"""
    write_section("daily", body)
    print(body)


if __name__ == "__main__":
    main()
