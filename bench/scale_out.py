"""Scale-out (issue 10.7): the API as one and as two worker processes, with the outbox relay and
the stream consumer running beside it as processes of their own (as they would on other hosts),
against one PostgreSQL and one Redis.

    make scale-out   (python -m bench.scale_out [--duration 10] [--runs 3])

For each API worker count, wrk (-t2 -c64) loads the red-packet grab and the credit decision
(``POST /api/v1/applications``, every request a new applicant), one after the other, --runs
times; each figure is the median. Only 2xx answers count. While wrk runs, the CPU time of every
process on the machine is read from /proc and put down to its role (API, relay, stream consumer,
wrk, PostgreSQL, Redis, the fake WeChat), so the report says where the two cores went.

Afterwards the relay is given time to pay what the grabs won, and the correctness checks run on
what the load left: no red packet granted twice or over budget (database and Redis agree), every
paid reward paid exactly once by the fake WeChat Pay's own ledger, every application decided
(none left submitted), every ledger transaction balanced. The section of docs/reliability.md is
written by the run; the target is 2 workers ≥ 1.3× one worker for both endpoints.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from bench import applicants, grab, payouts, processes
from bench import run as runner

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/rcb_scale"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
TARGET = 1.3
WORKER_NICENESS = 10
ROLES = ("API", "outbox relay", "stream consumer", "wrk", "PostgreSQL", "Redis", "fake WeChat", "other")


# --- where the CPU went ---------------------------------------------------------------------

def _processes() -> dict[int, tuple[int, str, int, int]]:
    """pid → (parent pid, command line, CPU ticks used so far, start time) of every process we may read."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or not (fields := processes.stat_fields(int(entry.name))):
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue  # gone since the listing
        found[int(entry.name)] = (int(fields[1]), cmdline or entry.name, int(fields[11]) + int(fields[12]), int(fields[19]))
    return found


def _role(pid: int, table: dict) -> str:
    """A process's role, by its own command line or its nearest ancestor's (Sanic's workers are
    spawned children of the serve process)."""
    seen = 0
    while pid in table and seen < 20:
        cmdline = table[pid][1]
        if "server.cli serve" in cmdline:
            return "API"
        if "server.cli relay" in cmdline:
            return "outbox relay"
        if "server.cli monitor" in cmdline:
            return "stream consumer"
        if "fakes.wechat" in cmdline:
            return "fake WeChat"
        if cmdline.startswith("wrk ") or cmdline == "wrk":
            return "wrk"
        if cmdline.startswith("postgres"):
            return "PostgreSQL"
        if cmdline.startswith("redis-server") or cmdline.startswith("/usr/bin/redis-server"):
            return "Redis"
        pid, seen = table[pid][0], seen + 1
    return "other"


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle and iowait
    return sum(values) - idle, sum(values)


@dataclass(frozen=True)
class CpuUse:
    """Cores used on average over a window, by role, and the machine's busy share."""
    by_role: dict[str, float]
    machine_busy: float


@contextmanager
def cpu_window(into: list[CpuUse]):
    before, machine_before, started = _processes(), _machine_ticks(), time.monotonic()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    yield
    after, machine_after, seconds = _processes(), _machine_ticks(), time.monotonic() - started
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    by_role = dict.fromkeys(ROLES, 0.0)
    # wrk runs and exits inside the window: its CPU is what our finished children used.
    by_role["wrk"] = (children_after.ru_utime + children_after.ru_stime - children_before.ru_utime - children_before.ru_stime) / seconds
    for pid, (_, _, ticks, start) in after.items():
        # A process started inside the window counts from zero; one that ended inside it is lost
        # (but for wrk, counted above; the servers live longer than the window).
        used = ticks - (before[pid][2] if pid in before and before[pid][3] == start else 0)
        by_role[_role(pid, after)] += used / processes.TICKS / seconds
    busy = (machine_after[0] - machine_before[0]) / max(1, machine_after[1] - machine_before[1])
    into.append(CpuUse(by_role, busy))


def median_cpu(windows: list[CpuUse]) -> CpuUse:
    return CpuUse({role: statistics.median(w.by_role[role] for w in windows) for role in ROLES}, statistics.median(w.machine_busy for w in windows))


# --- the run --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Measured:
    workers: int
    grab: runner.Load
    decide: runner.Load
    grab_cpu: CpuUse
    decide_cpu: CpuUse


def measure(args, env: dict, api_port: int, campaign_id: int, grab_tokens: Path, applicant_tokens: Path, applicant_count: int) -> list[Measured]:
    api_url = f"http://127.0.0.1:{api_port}"
    grab_env = {"BENCH_TOKENS": str(grab_tokens), "BENCH_THREADS": "2", "BENCH_CAMPAIGN": str(campaign_id)}
    decide_env = {"BENCH_TOKENS": str(applicant_tokens), "BENCH_THREADS": "2", "BENCH_MODE": "apply"}
    results, offset = [], 0

    def decide(duration: int) -> runner.Load:
        nonlocal offset
        load = runner.wrk(api_url, duration, "lending.lua", {**decide_env, "BENCH_OFFSET": str(offset)})
        # Every application is a new applicant: move past every one this run may have used.
        offset += int(load.ok_per_second * duration) + load.non_2xx + 1000
        if offset >= applicant_count:
            raise SystemExit(f"not enough applicants: raise --applicants above {offset}")
        return load

    for workers in args.workers:
        grabs, decisions, grab_cpu, decide_cpu = [], [], [], []
        with runner.api_server(api_port, env, workers=workers):
            grab.ready(api_url)
            runner.wrk(api_url, 3, "grab.lua", grab_env)  # warm-up: connections, caches, the grab desk
            decide(3)
            for _ in range(args.runs):
                with cpu_window(grab_cpu):
                    grabs.append(runner.wrk(api_url, args.duration, "grab.lua", grab_env))
                with cpu_window(decide_cpu):
                    decisions.append(decide(args.duration))
        results.append(Measured(workers, runner.median_load(grabs), runner.median_load(decisions), median_cpu(grab_cpu), median_cpu(decide_cpu)))
    return results


async def drain(settings, seconds: float) -> int:
    """Give the relay up to ``seconds`` to send what the load queued; the messages still waiting."""
    from infra import sql

    async with runner.app_stores(settings):
        deadline = time.monotonic() + seconds
        while True:
            waiting = (await sql.fetch_one("SELECT COUNT(*) AS n FROM outbox_message WHERE status IN ('pending', 'sending')"))["n"]
            if waiting == 0 or time.monotonic() > deadline:
                return waiting
            await asyncio.sleep(2)


async def check(settings, campaign_id: int, wechat_url: str) -> dict:
    """What the load left, the relay and the stream consumer stopped."""
    from infra import sql
    from lending_core.ledger.service import unbalanced_transactions

    async with runner.app_stores(settings):
        applications = {row["status"]: row["n"] for row in await sql.fetch_all("SELECT status, COUNT(*) AS n FROM application GROUP BY status")}
        unbalanced = await unbalanced_transactions()
        dead = (await sql.fetch_one("SELECT COUNT(*) AS n FROM outbox_message WHERE status = 'dead'"))["n"]
    # Every reward the relay reached paid exactly once, by WeChat Pay's own ledger: the faults
    # drill's check, as the payouts bench runs it.
    payments, still_due = await payouts.audit(settings, wechat_url)
    return {
        "audit": await grab.audit_run(settings, campaign_id),
        "payments": payments,
        "still_due": still_due,
        "outbox_dead": dead,
        "applications": applications,
        "unbalanced": len(unbalanced),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="API worker counts (the first is the baseline)")
    parser.add_argument("--applicants", type=int, default=80_000)
    parser.add_argument("--grab-customers", type=int, default=5_000)
    parser.add_argument("--grab-packets", type=int, default=1_000_000)
    parser.add_argument("--drain-seconds", type=float, default=120, help="time the relay gets to pay the winners afterwards")
    parser.add_argument("--no-doc", action="store_true", help="print the report without writing docs/reliability.md")
    args = parser.parse_args()
    from infra.settings import Settings
    from server.database import recreate_postgres_database

    env = runner.postgres_env(DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, "the scale-out drill's measurements")
    wechat_port, api_port = runner.free_port(), runner.free_port()
    wechat_url = f"http://127.0.0.1:{wechat_port}/"
    env.update(APP_ENV="dev", RUN_EMBEDDED_WORKERS="false", PORT=str(api_port), WECHAT_API_BASE=wechat_url, LOG_LEVEL="WARNING", **grab.UNLIMITED)
    settings = Settings.from_env(env)

    asyncio.run(recreate_postgres_database(env["DATABASE_URL"]))
    subprocess.run(["redis-cli", "-u", env["REDIS_URL"], "flushdb"], check=True, capture_output=True)
    for command in ("migrate", "demo"):
        subprocess.run([sys.executable, "-m", "server.cli", command], cwd=runner.ROOT, env=env, check=True, capture_output=True)

    started = time.monotonic()
    campaign_id, grab_tokens = asyncio.run(grab.prepare(settings, customers=args.grab_customers, packets=args.grab_packets))
    applicant_tokens = applicants.made_in_database(settings, args.applicants)
    made_in = time.monotonic() - started
    files = {}
    for name, tokens in (("grab", grab_tokens), ("applicants", applicant_tokens)):
        files[name] = runner.ROOT / "var" / f"scale-out-{name}-tokens.txt"
        files[name].parent.mkdir(exist_ok=True)
        files[name].write_text("\n".join(tokens) + "\n")

    with ExitStack() as stack:
        stack.callback(processes.stop, runner.start(["-m", "fakes.wechat", "--port", str(wechat_port)], wechat_port, env))
        workers = []
        for command in ("relay", "monitor"):
            # At a lower CPU priority: they stand for workers on hosts of their own, so they get the
            # cores the API leaves idle instead of an equal share of them (README, "Running N API
            # hosts and M workers").
            workers.append(subprocess.Popen([sys.executable, "-m", "server.cli", command], cwd=runner.ROOT, env=env,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=lambda: os.nice(WORKER_NICENESS)))
            stack.callback(processes.stop, workers[-1])
        measured = measure(args, env, api_port, campaign_id, files["grab"], files["applicants"], len(applicant_tokens))
        waiting = asyncio.run(drain(settings, args.drain_seconds))
        died = sum(1 for w in workers if w.poll() is not None)
        for worker in workers:
            processes.stop(worker)  # so that what the checks read stands still
        checked = {**asyncio.run(check(settings, campaign_id, wechat_url)), "outbox_waiting": waiting, "workers_died": died}

    command = "make scale-out" if sys.argv[1:] == [] else "python -m bench.scale_out " + " ".join(sys.argv[1:])
    text = report(args, measured, checked, command, made_in)
    print(text)
    if not args.no_doc:
        runner.write_drill_section("scale-out", text)
    if not correct(checked):
        raise SystemExit("a correctness check failed: see the report")


def correct(checked: dict) -> bool:
    return (
        not checked["audit"]["oversold"] and checked["payments"].passed
        and checked["applications"].get("submitted", 0) == 0 and checked["unbalanced"] == 0 and checked["outbox_dead"] == 0
        and checked["workers_died"] == 0
    )


def _cpu_cell(cpu: CpuUse) -> str:
    shown = [f"{role} {cores:.2f}" for role, cores in cpu.by_role.items() if cores >= 0.01]
    return f"{cpu.machine_busy:.0%} busy: " + ", ".join(shown)


SERVING = ("API", "PostgreSQL", "Redis", "wrk")  # what each request costs CPU in (the relay works through its backlog)


def headroom(measured: list[Measured]) -> str:
    """What the CPU table says about the target: more requests need proportionally more CPU of
    the processes that serve them, and a second worker can only find it idle or take it from the
    relay and the stream consumer (niced, they give it up)."""
    base, cores = measured[0], os.cpu_count()
    lines = []
    for endpoint, cpu in (("grab", base.grab_cpu), ("decision", base.decide_cpu)):
        serving = sum(cpu.by_role[role] for role in SERVING)
        idle, needed = (1 - cpu.machine_busy) * cores, (TARGET - 1) * serving
        spare = idle + cpu.by_role["outbox relay"] + cpu.by_role["stream consumer"]
        lines.append(
            f"- {endpoint}: with one worker the API, PostgreSQL, Redis and wrk used {serving:.2f} cores, {idle:.2f} of {cores} were idle "
            f"and the niced workers used {spare - idle:.2f}; {TARGET}× the requests need about {needed:.2f} more, "
            f"{'within' if needed <= spare else 'more than'} those {spare:.2f}."
        )
    return "Headroom:\n" + "\n".join(lines)


def report(args, measured: list[Measured], checked: dict, command: str, made_in: float) -> str:
    base = measured[0]
    rows, cpu_rows = [], []
    for m in measured:
        for endpoint, load, base_load, cpu in (
            ("`POST /api/v1/campaigns/{id}/red-packets/grab`", m.grab, base.grab, m.grab_cpu),
            ("`POST /api/v1/applications` (the credit decision)", m.decide, base.decide, m.decide_cpu),
        ):
            ratio = load.ok_per_second / base_load.ok_per_second
            verdict = "" if m is base else f"≥ {TARGET}×: {'met' if ratio >= TARGET else 'MISSED'}"
            rows.append(f"| {endpoint} | {m.workers} | {load.ok_per_second:,.0f} | {ratio:.2f}× | {load.p50_ms:.1f} | {load.p99_ms:.1f} | {runner.non_2xx(load)} | {verdict} |")
            cpu_rows.append(f"| {endpoint} | {m.workers} | {_cpu_cell(cpu)} |")
    audit = checked["audit"]
    payments = "; ".join(checked["payments"].figures)
    decided = ", ".join(f"{k} {v:,}" for k, v in sorted(checked["applications"].items()))
    newline = "\n"
    return f"""## Scale-out (issue 10.7)

Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {runner.machine()}; one PostgreSQL and one Redis on this machine.
Command: `{command}` (wrk -t2 -c{runner.CONNECTIONS}, {args.duration} s per run, median of {args.runs} runs;
{args.grab_customers:,} grabbing customers and {args.applicants:,} applicants made in {made_in:.0f} s beforehand). The outbox
relay (`server.cli relay`) and the stream consumer (`server.cli monitor`) ran throughout as processes of
their own at niceness {WORKER_NICENESS} (standing for other hosts, they get the CPU the API leaves idle); the relay
paid the winners while the load ran.

| endpoint | API workers | 2xx/s | vs 1 worker | p50 ms | p99 ms | non-2xx | target |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |
{newline.join(rows)}

Where the CPU went while wrk ran (cores used on average, median of the runs; the machine has {os.cpu_count()}):

| endpoint | API workers | CPU |
| --- | ---: | --- |
{newline.join(cpu_rows)}

{headroom(measured)}

Checks afterwards ({'all held' if correct(checked) else 'SOME FAILED'}):
- Red packets: {audit['rewards']:,} rewards on {audit['distinct_packets']:,} distinct packets; {audit['packets_gone_from_redis']:,} gone from the Redis pool;
  {audit['amount_fen']:,} fen granted = {audit['committed_fen']:,} fen committed of {audit['budget_fen']:,}. Oversell: {'YES' if audit['oversold'] else 'none'}.
- Payouts after up to {args.drain_seconds:.0f} s of draining (outbox messages still waiting {checked['outbox_waiting']:,}, dead {checked['outbox_dead']};
  rewards still due, left for a later run: {checked['still_due']:,}), checked as the faults drill checks them against WeChat Pay's ledger:
  {payments}; **{'PASS' if checked['payments'].passed else 'FAIL'}**.
- Applications by status: {decided} (none may be left `submitted`).
- Unbalanced ledger transactions: {checked['unbalanced']}. Relay or stream consumer died during the run: {checked['workers_died']}.
"""


if __name__ == "__main__":
    main()
