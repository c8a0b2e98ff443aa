"""The faults drill (issue 10.4): kill -9 the API worker, the outbox relay and the stream consumer,
stop Redis, drop the database connections — at seeded random moments, during a mixed workload —
then check that nothing was lost or done twice.

    python -m bench.faults_drill [--seed 1] [--seconds 240]   (make faults-drill)

On PostgreSQL (database ``rcb_faults``, dropped and recreated) and a Redis of its own (a
``redis-server`` this drill starts on a free port, its files under ``var/faults-redis/``, append
only and fsynced on every write, so that it can be killed and started again on the same files).
Each part runs as a process of its own, in a session of its own, so a kill -9 hits exactly one:

- the fake WeChat (``python -m fakes.wechat``): the outside world, never killed; its WeChat Pay
  ledger says what was really paid;
- the API (``server.cli serve --workers 2``, embedded workers off);
- the outbox relay (``server.cli relay``): pays red packets and phone credit; the sandbox top-up
  provider keeps its orders in a journal file (``TOPUP_SANDBOX_FILE``), as a real provider
  remembers them across our restarts, and that file says what was really topped up;
- the stream consumer (``server.cli monitor``).

A supervisor restarts whatever died after 1–5 s, as systemd would. Sanic's worker manager does
not restart a worker killed with -9 (it marks it failed and serves on with the others), so the
supervisor treats an API with fewer live workers than it was started with as broken: it stops it
and starts it again, as a watchdog would.

The workload is ``bench.workload`` (browse, quote, apply, grab, repay, the bank's transaction
events), open loop, with the client retrying a POST that got no answer or a 503 (same
idempotency key). Beside it, people invited by customers of some standing register, which earns
their inviters phone credit (a live phone-credit campaign, milestone "registered"), through the
marketing services, so the relay pays top-ups under the faults too.

After the faults stop, the relay and the consumer are left to drain (outbox empty, no reward
due or paying, no event waiting, nothing pending in the consumer group; the relay's backoff is
not waited out: pending messages are made due at once), and the checks run on what the database,
the fake WeChat Pay's ledger and the top-up journal hold. The section of docs/reliability.md is
written by the run; the exit status is 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlparse

from bench import processes
from bench.run import app_stores, free_port, machine, port_taken, write_drill_section

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "faults"
REDIS_DIR = ROOT / "var" / "faults-redis"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/rcb_faults"
KEY_PREFIX = "rcb:"
BANK = "HZRCB"
APPID = "wx0000000000demo"
CHANNEL = "wechat_miniprogram"
API_WORKERS = 2

KILL_API, KILL_RELAY, KILL_MONITOR, STOP_REDIS, DROP_DB = "kill_api_worker", "kill_relay", "kill_monitor", "stop_redis", "drop_db_connections"
KINDS = (KILL_API, KILL_RELAY, KILL_MONITOR, STOP_REDIS, DROP_DB)
GAP_SECONDS = (6.0, 16.0)  # between two injections
REDIS_OUTAGE_SECONDS = (5.0, 20.0)
RESTART_DELAY_SECONDS = (1.0, 5.0)
QUIET_END_SECONDS = 10.0  # no injection this close to the end of the workload
API_START_SECONDS = 120.0  # an API whose workers are not all up by then is broken

PHONE_CREDIT_FEN = 1_000  # ¥10: a face value the top-up provider sells
INVITERS = 20
REFERRALS_BEFORE = 10
REFERRAL_GAP_SECONDS = (1.0, 4.0)

# Applications in these states are decided; manual review must say why.
DECIDED = ("approved", "rejected", "withdrawn", "contracted", "lapsed")


# ---- the schedule (pure) -------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    at: float  # seconds after the workload started
    kind: str
    seconds: float = 0.0  # how long Redis stays down


def plan(seed: int, seconds: float) -> list[Planned]:
    """The seeded schedule: an injection every 6–16 s, the kinds dealt from a shuffled deck so
    each recurs evenly; a Redis outage lasts 5–20 s and the next injection waits for its end."""
    rng = random.Random(seed)
    planned, deck = [], []
    at = rng.uniform(*GAP_SECONDS) / 2
    while at < seconds - QUIET_END_SECONDS:
        if not deck:
            deck = list(KINDS)
            rng.shuffle(deck)
        kind = deck.pop()
        outage = round(rng.uniform(*REDIS_OUTAGE_SECONDS), 1) if kind == STOP_REDIS else 0.0
        planned.append(Planned(round(at, 1), kind, outage))
        at += outage + rng.uniform(*GAP_SECONDS)
    return planned


# ---- the processes -------------------------------------------------------------------------------


class Service:
    """One process the supervisor keeps running, in a session of its own, its output in a log."""

    def __init__(self, name: str, argv: list[str], env: dict, *, workers: int = 0, port: int | None = None):
        self.name, self.argv, self.env, self.workers, self.port = name, argv, env, workers, port
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0
        self.up = False  # every worker seen alive since the last start
        self.restart_at: float | None = None
        self.restarts = 0

    def start(self) -> None:
        log = open(VAR / f"{self.name}.log", "ab")
        self.process = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.started_at, self.up = time.monotonic(), False

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def worker_pids(self) -> list[int]:
        """Sanic's live server workers."""
        if not self.process:
            return []
        return processes.sanic_workers(self.process.pid)

    def healthy(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            return False
        if not self.workers:
            return True
        alive = len(self.worker_pids())
        if alive >= self.workers:
            self.up = True
            return True
        # Starting: workers come up one by one. Up once: a worker died and the manager will not replace it.
        return not self.up and time.monotonic() - self.started_at < API_START_SECONDS

    def kill(self) -> None:
        """Everything in the service's session, at once (what is left of a broken one)."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()

    def stop(self) -> None:
        """Ctrl-C, as an operator stops it; then whatever is left of its session."""
        if self.process is None:
            return
        processes.stop(self.process)
        self.kill()


def redis_service(port: int, env: dict) -> Service:
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(REDIS_DIR), "--appendonly", "yes",
            "--appendfsync", "always", "--save", "", "--daemonize", "no", "--protected-mode", "no"]
    return Service("redis", argv, env, port=port)


async def wait_listening(service: Service, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not port_taken(service.port):
        if service.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{service.name} did not start: see {VAR / (service.name + '.log')}")
        await asyncio.sleep(0.1)


@dataclass
class Injection:
    at: float
    kind: str
    target: str
    note: str = ""


@dataclass
class Drill:
    """The running drill: its services, what it injected, what the supervisor did."""

    seed: int
    database_url: str
    services: dict[str, Service]
    redis: Service
    started: float = 0.0
    injections: list[Injection] = field(default_factory=list)
    supervisor_log: list[str] = field(default_factory=list)
    redis_down: bool = False

    def elapsed(self) -> float:
        return time.monotonic() - self.started if self.started else 0.0


async def supervise(drill: Drill, stop: asyncio.Event) -> None:
    """Restart whatever died (or, for the API, lost a worker) after 1–5 s."""
    rng = random.Random(drill.seed * 7919 + 1)
    while not stop.is_set():
        now = time.monotonic()
        for service in drill.services.values():
            if service.restart_at is None:
                if not service.healthy():
                    service.restart_at = now + rng.uniform(*RESTART_DELAY_SECONDS)
                    drill.supervisor_log.append(f"{drill.elapsed():6.1f}s {service.name} down (pid {service.pid}), restart in {service.restart_at - now:.1f}s")
            elif now >= service.restart_at:
                service.kill()  # a broken API's manager and surviving worker go too
                service.start()
                service.restart_at, service.restarts = None, service.restarts + 1
        try:
            await asyncio.wait_for(stop.wait(), 0.25)
        except asyncio.TimeoutError:
            pass


async def inject(drill: Drill, schedule: list[Planned], stop: asyncio.Event) -> None:
    """Carry out the schedule; each injection waits (up to 30 s) for its target to be running."""
    rng = random.Random(drill.seed * 104729 + 2)
    for planned in schedule:
        delay = planned.at - drill.elapsed()
        if delay > 0:
            try:
                await asyncio.wait_for(stop.wait(), delay)
                return
            except asyncio.TimeoutError:
                pass
        if stop.is_set():
            return
        await _inject_one(drill, planned, rng)


async def _inject_one(drill: Drill, planned: Planned, rng: random.Random) -> None:
    kind = planned.kind
    if kind == DROP_DB:
        dropped = await drop_connections(drill.database_url)
        drill.injections.append(Injection(drill.elapsed(), kind, f"{dropped} backends", "pg_terminate_backend"))
        return
    if kind == STOP_REDIS:
        pid = drill.redis.pid
        drill.redis_down = True
        drill.redis.kill()
        drill.injections.append(Injection(drill.elapsed(), kind, f"pid {pid}", f"down {planned.seconds:.1f}s"))
        await asyncio.sleep(planned.seconds)
        drill.redis.start()
        await wait_listening(drill.redis)
        drill.redis_down = False
        return
    service = drill.services[{KILL_API: "api", KILL_RELAY: "relay", KILL_MONITOR: "monitor"}[kind]]
    deadline = time.monotonic() + 30
    while True:
        running = service.restart_at is None and service.healthy() and (service.up or not service.workers)
        pids = service.worker_pids() if service.workers else [service.pid]
        if running and pids:
            break
        if time.monotonic() > deadline:
            drill.injections.append(Injection(drill.elapsed(), kind, "-", "skipped: not running for 30 s"))
            return
        await asyncio.sleep(0.25)
    pid = rng.choice(sorted(pids))
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    drill.injections.append(Injection(drill.elapsed(), kind, f"pid {pid}", "kill -9"))


async def drop_connections(database_url: str) -> int:
    import asyncpg

    url = urlparse(database_url)
    admin = await asyncpg.connect(host=url.hostname, port=url.port or 5432, user=url.username or "postgres", password=url.password, database="postgres")
    try:
        rows = await admin.fetch("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                                 url.path.lstrip("/"))
        return sum(1 for row in rows if row[0])
    finally:
        await admin.close()


# ---- phone credit earned beside the workload -----------------------------------------------------


@dataclass
class PhoneCredit:
    campaign_id: int
    inviters: list[tuple[int, str]]  # (customer id, invite code)
    referrals: int = 0
    errors: Counter = field(default_factory=Counter)


async def open_phone_credit(rng: random.Random) -> PhoneCredit:
    """A live phone-credit campaign (milestone: registered) and inviters of some weeks' standing
    with a phone each (a tenth of the numbers end in 4: the carrier confirms those later)."""
    from infra import clock
    from infra.actors import Actor, system
    from lending_core.customers import service as customers
    from lending_core.customers.models import Customer
    from lending_core.org.models import Bank, Staff
    from marketing import service as invites
    from marketing.models import Campaign

    bank = await Bank.get(code=BANK)
    now = clock.now()
    campaign = await Campaign.create(
        bank_id=bank.id, kind="phone_credit", name="话费邀请(故障演练)", status="live", starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=30), budget_fen=PHONE_CREDIT_FEN * 10_000, milestone="registered", reward_fen=PHONE_CREDIT_FEN,
        per_person_limit=10_000, per_day_limit=10_000, created_by_id=(await Staff.get(username="hz.manager")).id,
    )
    inviters = []
    for n in range(INVITERS):
        arrival = await customers.arrive_by_wechat(system("faults-drill"), appid=APPID, openid=f"o{uuid.uuid4().hex}", unionid=None)
        customer_id = arrival.customer.id
        actor = Actor(kind="customer", id=customer_id, channel=CHANNEL)
        await customers.choose_bank(actor, bank.id)
        last = "4" if n % 10 == 0 else str(rng.choice("12356789"))
        await customers.bind_phone(actor, f"139{rng.randrange(10**7):07d}{last}")
        await Customer.filter(id=customer_id).update(created_at=now - timedelta(days=40))
        device = f"inviter-{uuid.uuid4().hex[:12]}"
        await invites.on_login(customer_id, scene=None, device_id=device, ip=_address(rng), channel=CHANNEL)
        code = (await invites.my_code(Actor(kind="customer", id=customer_id, bank_id=bank.id, channel=CHANNEL), device_id=device)).code
        inviters.append((customer_id, code))
    return PhoneCredit(campaign.id, inviters)


def _address(rng: random.Random) -> str:
    return f"36.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


async def refer_one(credit: PhoneCredit, rng: random.Random) -> None:
    """A friend opens an inviter's shared link and registers: the binding queues the referral's
    stage, and the relay grants and pays the inviter's phone credit."""
    from infra.actors import Actor, system
    from lending_core.customers import service as customers
    from lending_core.org.models import Bank
    from marketing import service as invites

    _, code = rng.choice(credit.inviters)
    device, address = f"friend-{rng.getrandbits(64):016x}", _address(rng)
    try:
        bank_id = (await Bank.get(code=BANK)).id
        arrival = await customers.arrive_by_wechat(system("faults-drill"), appid=APPID, openid=f"o{uuid.uuid4().hex}", unionid=None)
        await customers.choose_bank(Actor(kind="customer", id=arrival.customer.id, channel=CHANNEL), bank_id)
        bound = await invites.on_login(arrival.customer.id, scene=code, device_id=device, ip=address, channel=CHANNEL)
    except Exception as exc:  # the database was dropped under us: this friend tries no more
        credit.errors[type(exc).__name__] += 1
        return
    if bound is not None and bound.referral is not None:
        credit.referrals += 1
    else:
        credit.errors[f"not bound: {getattr(bound, 'refused', None)}"] += 1


async def keep_referring(credit: PhoneCredit, rng: random.Random, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await refer_one(credit, rng)
        try:
            await asyncio.wait_for(stop.wait(), rng.uniform(*REFERRAL_GAP_SECONDS))
        except asyncio.TimeoutError:
            pass


# ---- draining ------------------------------------------------------------------------------------


def relay_topics(settings, redis) -> list[str]:
    """The topics the relay sends; other messages wait for a listener nobody has written yet."""
    from server.handlers import outbox_handlers
    from server.providers import build_providers

    return sorted(outbox_handlers(settings, build_providers(settings, redis)))


async def outstanding(redis, topics: list[str]) -> dict[str, int]:
    """What is still to do: outbox messages for the relay, rewards due or paying, events waiting,
    stream pending."""
    from infra import sql

    row = await sql.fetch_one(
        """SELECT (SELECT count(*) FROM outbox_message WHERE status IN ('pending', 'sending') AND topic = ANY(:topics)) AS outbox,
                  (SELECT count(*) FROM reward WHERE status IN ('due', 'paying')) AS rewards,
                  (SELECT count(*) FROM transaction_event WHERE status = 'received') AS events""", topics=topics)
    return {**{k: int(v) for k, v in row.items()}, "stream_pending": await stream_pending(redis)}


async def stream_pending(redis) -> int:
    from redis.exceptions import ResponseError

    from server.monitor import event_stream

    try:
        return await event_stream(redis, KEY_PREFIX).pending_count()
    except ResponseError:
        return 0  # no group: nothing was ever queued


async def drain(redis, topics: list[str], seconds: float) -> tuple[dict[str, int], int, float]:
    """Wait until nothing is outstanding (or ``seconds`` pass); the relay's backoff is not waited
    out. Returns what is left, how many messages were made due early, and the time taken."""
    from infra import clock
    from infra.outbox import OutboxMessage

    started, hurried = time.monotonic(), set()
    while True:
        try:
            waiting = await OutboxMessage.filter(status="pending", topic__in=topics, next_attempt_at__gt=clock.now()).values_list("id", flat=True)
            if waiting:
                hurried.update(waiting)
                await OutboxMessage.filter(id__in=list(waiting), status="pending").update(next_attempt_at=clock.now())
            left = await outstanding(redis, topics)
        except Exception as exc:  # Redis or the database still coming back
            left = {"error": type(exc).__name__}
        if not any(left.values()) or time.monotonic() - started > seconds:
            return left, len(hurried), time.monotonic() - started
        await asyncio.sleep(2)


# ---- the checks ----------------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    passed: bool
    figures: list[str]


def payments_check(rewards: list[dict], payouts: list[dict], packets: list[dict], orders: list[dict],
                   campaigns: list[dict]) -> Check:
    """Every paid reward paid exactly once, by the parties' own records (pure, on rows)."""
    from marketing.models import PHONE_CREDIT

    payout_of = {p["reward_id"]: p for p in payouts}
    by_bill = {p["bill_no"]: p for p in payouts}
    status_of = {r["id"]: r["status"] for r in rewards}
    packets_per_bill = Counter(p["mch_billno"] for p in packets)
    packet_of = {p["mch_billno"]: p for p in packets}
    placed = Counter(o["order_id"] for o in orders if o["event"] == "placed")
    order_state = {o["order_id"]: o for o in orders}  # the last line of each order wins
    paid = [r for r in rewards if r["status"] == "paid"]
    paid_packets = [r for r in paid if r["kind"] != PHONE_CREDIT]
    paid_credit = [r for r in paid if r["kind"] == PHONE_CREDIT]
    problems = Counter()
    for reward in paid_packets:
        payout = payout_of.get(reward["id"])
        bill = payout and payout["bill_no"]
        if not payout or payout["status"] != "paid":
            problems["paid red packet without a paid payout"] += 1
        elif packets_per_bill[bill] != 1:
            problems[f"paid red packet with {packets_per_bill[bill]} WeChat Pay records"] += 1
        elif packet_of[bill]["total_amount"] != reward["amount_fen"]:
            problems["WeChat Pay paid another amount"] += 1
    for reward in paid_credit:
        payout = payout_of.get(reward["id"])
        bill = payout and payout["bill_no"]
        if not payout or payout["status"] != "paid":
            problems["paid phone credit without a paid payout"] += 1
        elif placed[bill] != 1 or order_state[bill]["status"] != "success":
            problems[f"paid phone credit with {placed[bill]} top-up orders"] += 1
        elif order_state[bill]["amount_fen"] != reward["amount_fen"]:
            problems["top-up of another amount"] += 1
    for bill in packets_per_bill:
        payout = by_bill.get(bill)
        if payout is None or status_of.get(payout["reward_id"]) != "paid":
            problems["WeChat Pay record without a paid reward"] += 1
    for order_id, count in placed.items():
        if count > 1:
            problems["top-up order placed more than once"] += 1
        payout = by_bill.get(order_id)
        if order_state[order_id]["status"] == "success" and (payout is None or status_of.get(payout["reward_id"]) != "paid"):
            problems["top-up without a paid reward"] += 1
    left = Counter(r["status"] for r in rewards if r["status"] in ("due", "paying"))
    for status, count in left.items():
        problems[f"reward left {status}"] += count
    unknown = sum(1 for p in payouts if p["status"] == "unknown")
    if unknown:
        problems["payout without a final answer (waiting for reconciliation)"] += unknown
    over = sum(1 for c in campaigns if c["committed_fen"] > c["budget_fen"])
    if over:
        problems["campaign committed over its budget"] += over
    statuses = Counter(r["status"] for r in rewards)
    figures = [
        f"red packets and referral cash paid: {len(paid_packets):,}; WeChat Pay records: {len(packets):,} "
        f"(requests naming them: {sum(p.get('requests', 1) for p in packets):,})",
        f"phone credit paid: {len(paid_credit):,}; top-up orders placed: {len(placed):,}",
        "rewards by status: " + ", ".join(f"{k} {v:,}" for k, v in sorted(statuses.items())),
        f"campaigns within budget: {len(campaigns) - over} / {len(campaigns)}",
        "problems: " + (", ".join(f"{k} {v}" for k, v in sorted(problems.items())) or "none"),
    ]
    return Check("2. every red packet and phone-credit reward paid exactly once", not problems, figures)


async def run_checks(redis, stats, wechat_url: str, topup_file: Path, topics: list[str]) -> list[Check]:
    return [
        await ledger_check(),
        await paid_once_check(wechat_url, topup_file),
        await events_check(redis, stats),
        await idempotency_check(stats),
        await applications_check(),
        await outbox_check(topics),
    ]


async def ledger_check() -> Check:
    from infra import sql

    ledger = await sql.fetch_one(
        """SELECT (SELECT count(*) FROM ledger_transaction) AS transactions,
                  (SELECT count(*) FROM ledger_leg) AS legs,
                  (SELECT count(*) FROM (SELECT t.id FROM ledger_transaction t LEFT JOIN ledger_leg l ON l.transaction_id = t.id
                                         GROUP BY t.id HAVING coalesce(sum(l.amount_fen), 0) <> 0 OR count(l.id) < 2) u) AS unbalanced,
                  (SELECT count(*) FROM ledger_leg l WHERE NOT EXISTS (SELECT 1 FROM ledger_transaction t WHERE t.id = l.transaction_id)) AS orphans,
                  (SELECT coalesce(sum(amount_fen), 0) FROM ledger_leg) AS total,
                  (SELECT count(*) FROM (SELECT a.bank_id FROM ledger_leg l JOIN ledger_account a ON a.id = l.account_id
                                         GROUP BY a.bank_id HAVING sum(l.amount_fen) <> 0) b) AS banks_off""")
    return Check(
        "1. ledger balanced",
        ledger["unbalanced"] == 0 and ledger["orphans"] == 0 and ledger["total"] == 0 and ledger["banks_off"] == 0,
        [f"transactions {ledger['transactions']:,}, legs {ledger['legs']:,}; unbalanced (or under two legs): {ledger['unbalanced']}; "
         f"legs without a transaction: {ledger['orphans']}",
         f"all accounts sum to {ledger['total']} fen; banks whose accounts do not sum to zero: {ledger['banks_off']}"],
    )


async def paid_once_check(wechat_url: str, topup_file: Path) -> Check:
    """Payments, by the parties' own records."""
    import httpx

    from integrations.topup_sandbox import journal_orders
    from marketing.models import Campaign, Payout, Reward

    async with httpx.AsyncClient(base_url=wechat_url, timeout=30) as http:
        packets = (await http.get("__fake__/pay/ledger")).raise_for_status().json()
    rewards = await Reward.all().values("id", "kind", "status", "amount_fen")
    payouts = await Payout.all().values("reward_id", "bill_no", "status", "channel")
    campaigns = await Campaign.all().values("id", "budget_fen", "committed_fen")
    return payments_check(rewards, payouts, packets, journal_orders(topup_file), campaigns)


async def events_check(redis, stats) -> Check:
    from infra import sql

    acknowledged = sorted(set(stats.acknowledged.get("transactions", [])))
    stored = Counter()
    not_processed = 0
    for start in range(0, len(acknowledged), 1000):
        chunk = acknowledged[start : start + 1000]
        rows = await sql.fetch_all(
            "SELECT e.bank_txn_id, e.status FROM transaction_event e JOIN bank b ON b.id = e.bank_id WHERE b.code = :bank AND e.bank_txn_id = ANY(:ids)",
            bank=BANK, ids=chunk)
        stored.update(r["bank_txn_id"] for r in rows)
        not_processed += sum(1 for r in rows if r["status"] != "processed")
    missing = sum(1 for t in acknowledged if stored[t] == 0)
    twice = sum(1 for t in acknowledged if stored[t] > 1)
    events = await sql.fetch_one(
        """SELECT count(*) AS events, count(*) FILTER (WHERE status = 'received') AS waiting,
                  count(*) FILTER (WHERE outcome = 'settled') AS settled FROM transaction_event""")
    repeated = await sql.fetch_one(
        """SELECT (SELECT count(*) FROM (SELECT loan_id, request_key FROM loan_repayment WHERE request_key LIKE 'set_off:event:%'
                                          GROUP BY loan_id, request_key HAVING count(*) > 1) r) AS repayments_twice,
                  (SELECT count(*) FROM loan_repayment WHERE request_key LIKE 'set_off:event:%') AS set_offs,
                  (SELECT count(*) FROM loan_repayment r WHERE request_key LIKE 'set_off:event:%'
                     AND (SELECT count(*) FROM ledger_transaction t WHERE t.key = r.ledger_key) <> 1) AS set_offs_not_posted_once""")
    pending = await stream_pending(redis)
    return Check(
        "3. every transaction event processed exactly once in effect",
        not (missing or twice or not_processed or events["waiting"] or repeated["repayments_twice"] or repeated["set_offs_not_posted_once"] or pending),
        [f"acknowledged to the bank: {len(acknowledged):,}; not stored: {missing}; stored twice: {twice}; stored, not processed: {not_processed}",
         f"events stored: {events['events']:,}, still waiting: {events['waiting']}, settled a loan: {events['settled']:,}",
         f"set-off repayments: {repeated['set_offs']:,}; more than one per event and loan: {repeated['repayments_twice']}; "
         f"not posted to the ledger exactly once: {repeated['set_offs_not_posted_once']}",
         f"consumer group pending entries: {pending}"],
    )


async def idempotency_check(stats) -> Check:
    """What the API acknowledged exists, once."""
    from infra import sql
    from lending_core.loans import store
    from marketing.models import Reward

    grabs = stats.acknowledged.get("grab", [])
    found = set(await Reward.filter(id__in=list(set(grabs))).values_list("id", flat=True)) if grabs else set()
    repays = stats.acknowledged.get("repay", [])
    keyed: dict[tuple[int, str], set[int]] = {}
    for loan_id, key, repayment_id in repays:
        keyed.setdefault((loan_id, key), set()).add(repayment_id)
    wrong = 0
    for (loan_id, key), ids in keyed.items():
        # Stored as the payer's: "customer:<id>:<digest of the caller's key>".
        rows = await sql.fetch_all("SELECT id FROM loan_repayment WHERE loan_id = :loan AND request_key LIKE '%:' || :key",
                                   loan=loan_id, key=store.digest(key))
        if len(rows) != 1 or {r["id"] for r in rows} != ids:
            wrong += 1
    applied = stats.acknowledged.get("apply", [])
    apps = set(r["id"] for r in await sql.fetch_all("SELECT id FROM application WHERE id = ANY(:ids)", ids=list(set(applied)))) if applied else set()
    return Check(
        "4. every acknowledged grab, repayment and application exists exactly once",
        len(found) == len(set(grabs)) and not wrong and len(apps) == len(set(applied)),
        [f"grabs acknowledged: {len(grabs):,} ({len(set(grabs)):,} rewards), rewards not found: {len(set(grabs)) - len(found)}",
         f"repayments acknowledged: {len(repays):,} ({len(keyed):,} keys); keys without exactly their one repayment: {wrong}",
         f"applications acknowledged: {len(applied):,}; not found: {len(set(applied)) - len(apps)}"],
    )


async def applications_check() -> Check:
    from infra import sql

    rows = await sql.fetch_all(
        """SELECT status, count(*) AS n, count(*) FILTER (WHERE status = 'manual_review'
                  AND jsonb_array_length(coalesce(decision::jsonb -> 'review_reasons', '[]'::jsonb)) = 0) AS no_reason
           FROM application GROUP BY status""")
    by_status = {r["status"]: int(r["n"]) for r in rows}
    stuck = sum(n for s, n in by_status.items() if s not in DECIDED and s != "manual_review") + sum(int(r["no_reason"]) for r in rows)
    return Check(
        "5. no application stuck without a reason",
        stuck == 0,
        ["applications by status: " + (", ".join(f"{k} {v:,}" for k, v in sorted(by_status.items())) or "none"),
         f"neither decided nor in manual review with its reason: {stuck}"],
    )


async def outbox_check(topics: list[str]) -> Check:
    from infra import sql

    outbox = await sql.fetch_one(
        """SELECT count(*) AS messages,
                  count(*) FILTER (WHERE status = 'sending' AND lease_until < now()) AS stuck,
                  count(*) FILTER (WHERE status = 'dead') AS dead,
                  count(*) FILTER (WHERE status = 'dead' AND coalesce(last_error, '') = '') AS dead_silent,
                  count(*) FILTER (WHERE status IN ('pending', 'sending') AND topic = ANY(:topics)) AS left,
                  count(*) FILTER (WHERE attempts > 1) AS retried
           FROM outbox_message""", topics=topics)
    unheard = await sql.fetch_all(
        "SELECT topic, count(*) AS n FROM outbox_message WHERE status = 'pending' AND NOT topic = ANY(:topics) GROUP BY topic ORDER BY topic",
        topics=topics)
    return Check(
        "6. outbox: nothing stuck in sending, no failed message without its error",
        outbox["stuck"] == 0 and outbox["dead_silent"] == 0,
        [f"messages {outbox['messages']:,}; sent after more than one attempt: {outbox['retried']:,}; for the relay and still pending or sending: {outbox['left']}",
         "pending for no listener (topics no worker handles yet: " + (", ".join(f"{r['topic']} {r['n']}" for r in unheard) or "none") + ")",
         f"sending past their lease: {outbox['stuck']}; dead: {outbox['dead']} (without their error: {outbox['dead_silent']})"],
    )


# ---- the report ----------------------------------------------------------------------------------


def report(args, command: str, drill: Drill, stats, checks: list[Check], *, setup: dict, drained: tuple, credit: PhoneCredit | None) -> str:

    left, hurried, drain_seconds = drained
    kinds = Counter(i.kind for i in drill.injections)
    lines = [
        "## Faults drill (issue 10.4)",
        "",
        f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}. Command: `{command}` (seed {args.seed}, workload "
        f"{args.seconds:.0f} s at {args.rate:g} requests/s, concurrency {args.concurrency}). PostgreSQL and a Redis of the drill's own "
        "(append only, fsync always); the API (2 workers), the outbox relay and the stream consumer as processes of their own, "
        "restarted 1–5 s after they die; the fake WeChat (WeChat Pay) is never killed. How it works: `bench/faults_drill.py`.",
        "",
        f"Set-up: {setup.get('summary', '')}",
        "",
        "### Injected",
        "",
        "By kind: " + ", ".join(f"{k} {kinds.get(k, 0)}" for k in KINDS) + "; restarts by the supervisor: "
        + ", ".join(f"{s.name} {s.restarts}" for s in drill.services.values()) + ".",
        "",
        "A killed API worker is not replaced by Sanic's worker manager (it marks the worker failed and serves on with the "
        "other), so the supervisor restarts the whole API, as a watchdog would: the API does not answer for those seconds. "
        "Redis is killed and started again on its files after the outage; dropping the connections terminates every "
        "backend of the database, the drill's own included.",
        "",
        "| at (s) | fault | target | |",
        "| ---: | --- | --- | --- |",
        *[f"| {i.at:.1f} | {i.kind} | {i.target} | {i.note} |" for i in drill.injections],
        "",
        "### The workload during the faults",
        "",
        "5xx answers and requests with no answer are expected while a process is dead, Redis is down or the database has just "
        "dropped its connections: the client retries a POST without an answer or with a 503 (same idempotency key) for up "
        "to 60 s, and only the final outcome is counted.",
        "",
        "| route | requests | 2xx | 4xx | 5xx | no answer | p50 ms | p99 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *[f"| `{f.route}` | {f.requests:,} | {f.ok:,} | {f.client_errors:,} | {f.server_errors:,} | {f.no_answer:,} | {f.p50_ms:.0f} | {f.p99_ms:.0f} |"
          for f in stats.figures()],
        "",
    ]
    refusals = sorted(stats.refusals.items(), key=lambda item: -item[1])[:8]
    if refusals:
        lines += ["Most frequent refusals: " + "; ".join(f"{route} {status} {code} ×{n}" for (route, status, code), n in refusals) + ".", ""]
    if credit is not None:
        errors = ", ".join(f"{k} {v}" for k, v in sorted(credit.errors.items())) or "none"
        lines += [f"Phone credit: {credit.referrals} friends registered through inviters' codes (failed attempts: {errors}).", ""]
    lines += [
        f"Drained in {drain_seconds:.0f} s ({hurried} outbox messages made due without waiting out their backoff); "
        f"left: {', '.join(f'{k} {v}' for k, v in left.items())}.",
        "",
        "### Checks",
        "",
        "| check | result |",
        "| --- | --- |",
        *[f"| {c.name} | **{'PASS' if c.passed else 'FAIL'}** |" for c in checks],
        "",
    ]
    for check in checks:
        lines += [f"- {check.name}: " + "; ".join(check.figures) + "."]
    return "\n".join(lines) + "\n"


# ---- the run -------------------------------------------------------------------------------------


def environment(database_url: str, redis_port: int, api_port: int, wechat_port: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "REDIS_KEY_PREFIX")}
    env.update(
        APP_ENV="dev",
        DATABASE_URL=database_url,
        REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        REDIS_KEY_PREFIX=KEY_PREFIX,
        PORT=str(api_port),
        RUN_EMBEDDED_WORKERS="false",
        # "localhost", not 127.0.0.1: serve starts a fake WeChat of its own for the latter, and
        # this one is the drill's, which must outlive every API restart.
        WECHAT_API_BASE=f"http://localhost:{wechat_port}/",
        NOTARY_DIR=str(VAR / "notary"),
        TOPUP_SANDBOX_FILE=str(VAR / "topup.jsonl"),
        # As tests/live.py: a machine this loaded can stall the data sandboxes past the production
        # timeout, which would send applications to manual review for a reason that is not a fault.
        DATA_SOURCE_TIMEOUT_MS="30000",
        LOG_JSON="true",
        PYTHONUNBUFFERED="1",
    )
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=240, help="workload (and faults) duration")
    parser.add_argument("--rate", type=float, default=25, help="workload requests started a second (open loop)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--applicants", type=int, default=1500)
    parser.add_argument("--grabbers", type=int, default=300)
    parser.add_argument("--borrowers", type=int, default=8)
    parser.add_argument("--drain", type=float, default=300, help="seconds the relay and the consumer get to drain")
    parser.add_argument("--no-doc", action="store_true", help="print the report without writing docs/reliability.md")
    args = parser.parse_args()
    database_url = os.environ.get("FAULTS_DATABASE_URL", DEFAULT_DATABASE_URL)
    command = "make faults-drill" if sys.argv[1:] == [] else "python -m bench.faults_drill " + " ".join(sys.argv[1:])

    shutil.rmtree(VAR, ignore_errors=True)
    shutil.rmtree(REDIS_DIR, ignore_errors=True)
    VAR.mkdir(parents=True)
    REDIS_DIR.mkdir(parents=True)
    redis_port, api_port, wechat_port = free_port(), free_port(), free_port()
    env = environment(database_url, redis_port, api_port, wechat_port)
    python = sys.executable
    wechat = Service("wechat", [python, "-m", "fakes.wechat", "--port", str(wechat_port)], env, port=wechat_port)
    services = {
        "api": Service("api", [python, "-m", "server.cli", "serve", "--workers", str(API_WORKERS)], env, workers=API_WORKERS, port=api_port),
        "relay": Service("relay", [python, "-m", "server.cli", "relay"], env),
        "monitor": Service("monitor", [python, "-m", "server.cli", "monitor"], env),
    }
    drill = Drill(args.seed, database_url, services, redis_service(redis_port, env))
    everything = [wechat, drill.redis, *services.values()]
    previous = signal.signal(signal.SIGTERM, _interrupted)
    try:
        print(f"[faults] preparing {database_url} and the processes (logs in {VAR})", file=sys.stderr)
        asyncio.run(_prepare_database(env))
        drill.redis.start()
        wechat.start()
        asyncio.run(wait_listening(drill.redis))
        asyncio.run(wait_listening(wechat))
        for service in services.values():
            service.start()
        asyncio.run(_wait_healthy(services["api"]))
        from bench import workload

        started = time.monotonic()
        world = workload.prepare(env, f"http://127.0.0.1:{api_port}", seed=args.seed, applicants=args.applicants,
                                 grabbers=args.grabbers, borrowers=args.borrowers)
        setup = {"seconds": time.monotonic() - started}
        stats, checks, drained, credit = asyncio.run(_run(args, env, drill, world, wechat_port, setup))
    finally:
        for service in reversed(everything):
            service.stop()
        signal.signal(signal.SIGTERM, previous)
    text = report(args, command, drill, stats, checks, setup=setup, drained=drained, credit=credit)
    print(text)
    print("\n".join(drill.supervisor_log), file=sys.stderr)
    if not args.no_doc:

        write_drill_section("faults", text)
    sys.exit(0 if all(c.passed for c in checks) else 1)


def _interrupted(signum, frame) -> None:
    # A SIGTERM stops the drill as Ctrl-C does: through the finally that stops every process.
    raise KeyboardInterrupt


async def _prepare_database(env: dict) -> None:
    from infra.settings import Settings
    from server import database, demo_data

    settings = Settings.from_env(env)
    await database.recreate_postgres_database(settings.database_url)
    await database.apply_migrations(settings.database_url)
    async with app_stores(settings):
        await demo_data.load()


async def _wait_healthy(api: Service) -> None:
    import httpx

    deadline = time.monotonic() + API_START_SECONDS
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api.port}", timeout=10) as http:
        while True:
            if api.process.poll() is not None:
                raise RuntimeError(f"the API exited: see {VAR / 'api.log'}")
            try:
                if (await http.get("/healthz")).status_code == 200 and len(api.worker_pids()) >= api.workers:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the API did not become healthy")
            await asyncio.sleep(0.5)


async def _run(args, env: dict, drill: Drill, world, wechat_port: int, setup: dict):
    from infra.settings import Settings

    settings = Settings.from_env(env)
    async with app_stores(settings, redis=True) as redis:
        return await _drive(args, env, drill, world, wechat_port, setup, settings, redis)


async def _drive(args, env: dict, drill: Drill, world, wechat_port: int, setup: dict, settings, redis):
    """The workload with its faults injected, the queues drained, then the checks."""
    from bench import workload

    stop_faults, stop_supervisor = asyncio.Event(), asyncio.Event()
    rng = random.Random(args.seed * 31 + 3)
    credit = None
    try:
        credit = await open_phone_credit(rng)
        for _ in range(REFERRALS_BEFORE):
            await refer_one(credit, rng)
        setup["summary"] = (f"{args.applicants:,} applicants, {args.grabbers:,} grabbers, {args.borrowers} borrowers with a loan, "
                            f"the bank's book of {workload.BOOK_LOANS:,} loans (5 % overdue: the watched accounts), {INVITERS} inviters in a phone-credit campaign and "
                            f"{REFERRALS_BEFORE} friends registered before the faults; {setup['seconds']:.0f} s.")
        schedule = plan(args.seed, args.seconds)
        print(f"[faults] {len(schedule)} injections over {args.seconds:.0f} s", file=sys.stderr)
        stats = workload.Stats()
        drill.started = time.monotonic()
        supervisor = asyncio.create_task(supervise(drill, stop_supervisor))
        injector = asyncio.create_task(inject(drill, schedule, stop_faults))
        referring = asyncio.create_task(keep_referring(credit, rng, stop_faults))
        try:
            await workload.drive(world, stats, seconds=args.seconds, rate=args.rate, concurrency=args.concurrency, seed=args.seed, retry=True)
        finally:
            stop_faults.set()
            await asyncio.gather(injector, referring, return_exceptions=True)
            if drill.redis_down or drill.redis.process.poll() is not None:
                drill.redis.start()
                await wait_listening(drill.redis)
        print(f"[faults] workload done; draining (up to {args.drain:.0f} s)", file=sys.stderr)
        topics = relay_topics(settings, redis)
        drained = await drain(redis, topics, args.drain)
        stop_supervisor.set()
        await supervisor
        # What the API acknowledged, kept beside the processes' logs for a look after a failed check.
        (VAR / "acknowledged.json").write_text(json.dumps(stats.acknowledged))
        checks = await run_checks(redis, stats, f"http://127.0.0.1:{wechat_port}/", Path(env["TOPUP_SANDBOX_FILE"]), topics)
        return stats, checks, drained, credit
    finally:
        stop_faults.set()
        stop_supervisor.set()


if __name__ == "__main__":
    main()
