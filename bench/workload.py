"""A mixed customer and bank workload over HTTP, for the soak drill (bench/soak.py) and the faults
drill: browse, quote, apply, grab, repay and the banks' transaction events, in shares (``MIX``).

``prepare`` makes what the actions need on a backend already migrated, demo-loaded and serving:

- applicants, grabbers and borrowers: real-name customers of HZRCB with SHUIYITONG's consents and a
  signed token each, made in bulk straight through the models (``bench.applicants``), one batch so
  their ID numbers never collide;
- a live red-packet campaign whose pool will not run dry (``bench.grab.open_campaign``);
- the borrowers' loans through the API as a customer takes one: apply, contract, a signing code
  read off the phone, sign, draw. The SMS sandbox keeps texts in the memory of the worker that
  sent them, so this part goes through a one-process API that also writes each text to a file
  (the mini-program's end-to-end server, ``miniprogram-stub/e2e/serve.py``) on the same database
  and Redis, started and stopped here;
- watched accounts. The monitor watches overdue loans only, and a loan drawn today falls overdue
  a month from now at the earliest, so the overdue borrowers are a small book copied in as the
  daily-job benchmark makes it (``bench.daily_job.create``: 5 % of its loans a month overdue),
  their accounts funded so that money in settles (``bench.realtime._accounts``). The book's
  performing borrowers' accounts are the unwatched ones;
- a ``core_banking`` key for HZRCB, which signs its transaction pushes.

``drive`` then sends the mix, closed loop (capacity) or open loop at a rate, and ``Stats`` keeps
what came back, per route template, and what the API acknowledged (for the faults drill's checks).
The request sequence comes from the seed alone: the same seed sends the same requests.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import os
import random
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import httpx

from bench import processes
from channels.signing import sign

ROOT = Path(__file__).resolve().parent.parent
BANK = "HZRCB"
PRODUCT = "SHUIYITONG"
CHANNEL = "wechat_miniprogram"
LOAN = {"amount_yuan": 50_000, "term_months": 12, "repayment_method": "equal_instalment"}
DRAWDOWN_FEN = 2_000_000  # ¥20,000 each: repayments of REPAY_FEN leave every loan open for the run
REPAY_FEN = (100, 500)
BOOK_LOANS = 2_000
PACKETS = 1_000_000
EVENTS_PER_PUSH = (1, 5)
WATCHED_SHARE = 0.10  # of the events: on overdue borrowers' accounts (the rest on accounts nobody watches)
RETRY_SECONDS = 60.0
TIMEOUT_SECONDS = 30.0

MIX: dict[str, float] = {"browse": 0.40, "quote": 0.15, "apply": 0.05, "grab": 0.25, "repay": 0.05, "transactions": 0.10}


@dataclass
class World:
    """What ``prepare`` made, all reachable through ``base_url``."""

    base_url: str
    applicants: list[str]  # tokens of customers who may apply to SHUIYITONG once each (consents given)
    grab_campaign_id: int  # a live red-packet campaign with a pool that will not run dry
    grabbers: list[tuple[str, str]]  # (token, device id)
    borrowers: list[tuple[str, int]]  # (token, loan id) of disbursed loans, for repayments
    bank_key: tuple[str, str]  # (key id, secret) that signs HZRCB's transaction pushes
    accounts: list[str]  # accounts events are made up on; some watched (overdue borrowers)
    watched: list[str]  # the watched ones (their events go through the stream consumer)
    applied: int = 0  # applicants used so far: each run of ``drive`` goes on from here, so nobody applies twice


# ---- statistics ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteFigures:
    route: str
    requests: int
    ok: int
    client_errors: int
    server_errors: int
    no_answer: int
    p50_ms: float
    p99_ms: float


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0–100) of ``values``; 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n·q/100), at least the first
    return ordered[int(min(rank, len(ordered))) - 1]


def route_figures(route: str, answers: list[tuple[int | None, float]]) -> RouteFigures:
    statuses = [status for status, _ in answers]
    millis = [seconds * 1000 for status, seconds in answers if status is not None]
    return RouteFigures(
        route=route,
        requests=len(answers),
        ok=sum(1 for s in statuses if s is not None and 200 <= s < 300),
        client_errors=sum(1 for s in statuses if s is not None and 400 <= s < 500),
        server_errors=sum(1 for s in statuses if s is not None and s >= 500),
        no_answer=sum(1 for s in statuses if s is None),
        p50_ms=percentile(millis, 50),
        p99_ms=percentile(millis, 99),
    )


@dataclass
class Stats:
    """Answers per route template (status None: no answer) and what the API acknowledged."""

    answers: dict[str, list[tuple[int | None, float]]] = field(default_factory=dict)
    acknowledged: dict[str, list] = field(default_factory=lambda: {"grab": [], "repay": [], "transactions": [], "apply": []})
    refusals: dict[tuple[str, int, str], int] = field(default_factory=dict)  # (route, status, error code) → count
    late_starts: int = 0  # open loop: requests started over LATE_SECONDS after their time
    started: int = 0

    def record(self, route: str, status: int | None, seconds: float) -> None:
        self.answers.setdefault(route, []).append((status, seconds))

    def refused(self, route: str, status: int, code: str) -> None:
        self.refusals[(route, status, code)] = self.refusals.get((route, status, code), 0) + 1

    def mark(self) -> dict[str, int]:
        return {route: len(answers) for route, answers in self.answers.items()}

    def figures(self, since: dict[str, int] | None = None) -> list[RouteFigures]:
        since = since or {}
        return [route_figures(route, answers[since.get(route, 0):]) for route, answers in sorted(self.answers.items())]

    def since(self, mark: dict[str, int]) -> list[RouteFigures]:
        return self.figures(mark)

    def ok_total(self, since: dict[str, int] | None = None) -> int:
        return sum(f.ok for f in self.figures(since))


# ---- the requests --------------------------------------------------------------------------------


@dataclass
class Request:
    action: str
    method: str
    path: str
    route: str  # the path as a template: figures are per route, not per object
    token: str | None = None
    body: dict | None = None
    key: str | None = None  # Idempotency-Key: the same on every retry of this request
    device: str | None = None
    signed_by: tuple[str, str] | None = None  # (key id, secret): signed afresh on each send (new nonce)
    acknowledge: Callable[[dict, "Request"], object] | None = None


def pick_action(rng: random.Random, mix: dict[str, float]) -> str:
    actions = sorted(mix)
    bounds, total = [], 0.0
    for action in actions:
        total += mix[action]
        bounds.append(total)
    return actions[min(bisect.bisect_right(bounds, rng.random() * total), len(actions) - 1)]


class Planner:
    """Makes the n-th request of the sequence from the seed: applicants are used once each, in order."""

    def __init__(self, world: World, seed: int, mix: dict[str, float]):
        self.world, self.mix = world, mix
        self.rng = random.Random(seed)
        self.seed = seed
        self.next_applicant = world.applied
        self.pushes = 0
        self.unwatched = sorted(set(world.accounts) - set(world.watched))

    def next(self) -> Request:
        action = pick_action(self.rng, self.mix)
        if action == "apply" and self.next_applicant >= len(self.world.applicants):
            action = "quote"  # every applicant has applied: a correct client has nobody new to apply
        return getattr(self, action)()

    def _any_customer(self) -> str:
        pool = self.world.applicants or [t for t, _ in self.world.grabbers]
        return self.rng.choice(pool)

    def browse(self) -> Request:
        token, loan_id = self.rng.choice(self.world.borrowers)
        pages = [
            ("/api/v1/products", "/api/v1/products"),
            (f"/api/v1/products/{PRODUCT}", "/api/v1/products/{code}"),
            ("/api/v1/campaigns", "/api/v1/campaigns"),
            ("/api/v1/me", "/api/v1/me"),
            ("/api/v1/loans", "/api/v1/loans"),
            (f"/api/v1/loans/{loan_id}", "/api/v1/loans/{id}"),
        ]
        path, route = self.rng.choice(pages)
        if route in ("/api/v1/loans", "/api/v1/loans/{id}"):
            return Request("browse", "GET", path, f"GET {route}", token=token)
        return Request("browse", "GET", path, f"GET {route}", token=self._any_customer())

    def quote(self) -> Request:
        return Request("quote", "POST", f"/api/v1/products/{PRODUCT}/quote", "POST /api/v1/products/{code}/quote",
                       token=self._any_customer(), body=dict(LOAN))

    def apply(self) -> Request:
        token = self.world.applicants[self.next_applicant]
        self.next_applicant = self.world.applied = self.next_applicant + 1
        return Request("apply", "POST", "/api/v1/applications", "POST /api/v1/applications", token=token,
                       body={"product_code": PRODUCT, **LOAN}, key=self._key(), acknowledge=lambda body, _: body["id"])

    def grab(self) -> Request:
        token, device = self.rng.choice(self.world.grabbers)
        campaign = self.world.grab_campaign_id
        return Request("grab", "POST", f"/api/v1/campaigns/{campaign}/red-packets/grab", "POST /api/v1/campaigns/{id}/red-packets/grab",
                       token=token, device=device, acknowledge=lambda body, _: body["reward_id"])

    def repay(self) -> Request:
        token, loan_id = self.rng.choice(self.world.borrowers)
        return Request("repay", "POST", f"/api/v1/loans/{loan_id}/repayments", "POST /api/v1/loans/{id}/repayments", token=token,
                       body={"amount_fen": self.rng.randint(*REPAY_FEN)}, key=self._key(),
                       acknowledge=lambda body, request: (loan_id, request.key, body["id"]))

    def transactions(self) -> Request:
        events = []
        for _ in range(self.rng.randint(*EVENTS_PER_PUSH)):
            self.pushes += 1
            txn = f"S{self.seed}-{self.pushes:09d}"
            if self.world.watched and self.rng.random() < WATCHED_SHARE:
                account = self.rng.choice(self.world.watched)
                # A quarter money in (the monitor settles what is due and signals), the rest small payments out.
                direction = "in" if self.rng.random() < 0.25 else "out"
            else:
                account, direction = self.rng.choice(self.unwatched or self.world.accounts), self.rng.choice(("in", "out"))
            events.append({"transaction_id": txn, "account": account, "direction": direction,
                           "amount_fen": self.rng.randrange(1_000, 200_000), "balance_after_fen": self.rng.randrange(100_000, 5_000_000)})
        return Request("transactions", "POST", "/api/v1/bank/transactions", "POST /api/v1/bank/transactions", body={"events": events},
                       signed_by=self.world.bank_key,
                       acknowledge=lambda body, _: [e["transaction_id"] for e in body["events"] if e["status"] in ("accepted", "duplicate")])

    def _key(self) -> str:
        return uuid.UUID(int=self.rng.getrandbits(128)).hex


def encode(request: Request) -> tuple[dict, bytes | None]:
    headers = {}
    if request.token:
        headers["Authorization"] = f"Bearer {request.token}"
    if request.key:
        headers["Idempotency-Key"] = request.key
    if request.device:
        headers["X-Device-Id"] = request.device
    body = None
    if request.body is not None:
        if request.action == "transactions":
            # The bank stamps events when it sends them (a future time is refused).
            stamp = datetime.now(timezone.utc).isoformat()
            request.body = {"events": [{**e, "occurred_at": e.get("occurred_at", stamp)} for e in request.body["events"]]}
        body = json.dumps(request.body, ensure_ascii=False).encode()
        headers["Content-Type"] = "application/json"
    if request.signed_by:
        key_id, secret = request.signed_by
        timestamp, nonce = str(int(time.time())), uuid.uuid4().hex
        headers.update({"X-Key-Id": key_id, "X-Timestamp": timestamp, "X-Nonce": nonce,
                        "X-Signature": sign(secret, request.method, request.path, timestamp, nonce, body or b"")})
    return headers, body


def _error_code(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return "-"


async def send(client: httpx.AsyncClient, request: Request, stats: Stats, *, retry: bool) -> None:
    """Send one request (again, with the same key, while retrying) and record its final outcome."""
    started = time.monotonic()
    # A write that names itself (Idempotency-Key, the bank's transaction ids) is safe to send again
    # whatever happened to it; a grab names nothing, so it is sent again only when it surely did
    # not arrive (no connection) or was refused as a whole (503), as a careful phone would.
    names_itself = request.key is not None or request.signed_by is not None
    pause, status, response = 0.2, None, None
    while True:
        headers, body = encode(request)
        unsent = False
        try:
            response = await client.request(request.method, request.path, headers=headers, content=body)
            status = response.status_code
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout):
            status, response, unsent = None, None, True
        except httpx.HTTPError:
            status, response = None, None
        # 409 IDEMPOTENCY_KEY_IN_PROGRESS: the first try with this key is still running (or its
        # worker died and the claim goes stale): ask again.
        in_progress = status == 409 and _error_code(response) == "IDEMPOTENCY_KEY_IN_PROGRESS"
        again = retry and request.method == "POST" and (status == 503 or unsent or in_progress or (status is None and names_itself))
        if not again or time.monotonic() - started + pause > RETRY_SECONDS:
            break
        await asyncio.sleep(pause)
        pause = min(pause * 2, 5.0)
    stats.record(request.route, status, time.monotonic() - started)
    if response is None:
        return
    if 200 <= status < 300 and request.acknowledge:
        acknowledged = request.acknowledge(response.json(), request)
        target = stats.acknowledged.setdefault(request.action, [])
        target.extend(acknowledged) if isinstance(acknowledged, list) else target.append(acknowledged)
    elif status >= 400:
        stats.refused(request.route, status, _error_code(response))


LATE_SECONDS = 0.05
# Requests go out through many clients, as they come from many phones and bank systems: one
# client's pool carries a light load on one or two connections, and the kernel hands each
# connection to one API worker, so one client would load one worker of several.
CLIENTS = 32


async def drive(world: World, stats: Stats, *, seconds: float, rate: float | None = None, concurrency: int = 64, seed: int = 1,
                mix: dict[str, float] = MIX, retry: bool = False) -> None:
    """Send the mix for ``seconds``: closed loop (``concurrency`` clients, each sending its next
    request on an answer: capacity) with ``rate`` None, else open loop, ``rate`` starts a second
    with at most ``concurrency`` in flight (a start held back past its time is counted late).
    ``retry``: a write left without an answer, or answered 503, is sent again with the same
    Idempotency-Key or transaction ids, with backoff, for up to RETRY_SECONDS, and its final outcome
    recorded (a grab only when it surely never arrived: see ``send``)."""
    planner = Planner(world, seed, mix)
    per_client = max(1, concurrency // CLIENTS)
    limits = httpx.Limits(max_connections=per_client, max_keepalive_connections=per_client)
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(httpx.AsyncClient(base_url=world.base_url, limits=limits, timeout=TIMEOUT_SECONDS))
                   for _ in range(CLIENTS)]
        deadline = time.monotonic() + seconds
        if rate is None:
            async def client_loop(client: httpx.AsyncClient) -> None:
                while time.monotonic() < deadline:
                    stats.started += 1
                    await send(client, planner.next(), stats, retry=retry)

            await asyncio.gather(*(client_loop(clients[i % CLIENTS]) for i in range(concurrency)))
            return
        slots = asyncio.Semaphore(concurrency)
        tasks: set[asyncio.Task] = set()
        begun, n = time.monotonic(), 0

        async def one(request: Request, client: httpx.AsyncClient) -> None:
            try:
                await send(client, request, stats, retry=retry)
            finally:
                slots.release()

        while True:
            due = begun + n / rate
            if due >= deadline:
                break
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await slots.acquire()
            if time.monotonic() - due > LATE_SECONDS:
                stats.late_starts += 1
            stats.started += 1
            task = asyncio.create_task(one(planner.next(), clients[n % CLIENTS]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
        if tasks:
            await asyncio.gather(*tasks)


# ---- preparing the world -------------------------------------------------------------------------


def prepare(env: dict, base_url: str, *, seed: int = 1, applicants: int = 20_000, grabbers: int = 2_000, borrowers: int = 40) -> World:
    """Make the world on a backend already migrated, demo-loaded and serving at ``base_url``."""
    from infra.settings import Settings

    settings = Settings.from_env(env)
    if not settings.database_url.startswith("postgres"):
        raise SystemExit("the workload runs on PostgreSQL: set DATABASE_URL=postgres://…")
    made = asyncio.run(_bulk(settings, seed=seed, customers=applicants + grabbers + borrowers))
    tokens = made["tokens"]
    rng = random.Random(seed)
    grabbing = [(token, f"dev-{rng.getrandbits(64):016x}") for token in tokens[applicants : applicants + grabbers]]
    loans = _borrow(env, base_url, tokens[applicants + grabbers :])
    return World(
        base_url=base_url,
        applicants=tokens[:applicants],
        grab_campaign_id=made["campaign_id"],
        grabbers=grabbing,
        borrowers=loans,
        bank_key=made["bank_key"],
        accounts=made["watched"] + made["unwatched"],
        watched=made["watched"],
    )


async def _bulk(settings, *, seed: int, customers: int) -> dict:
    from bench import applicants as bulk_applicants
    from bench import daily_job, grab, realtime
    from channels.models import ChannelCredential
    from lending_core.org.models import Bank
    from lending_core.products.service import CATALOGUE, read_catalogue_file
    from lending_core.risk import transactions
    from bench.run import app_stores

    async with app_stores(settings, redis=True) as redis:
        product = read_catalogue_file(CATALOGUE / f"{PRODUCT}.toml")
        tokens = await bulk_applicants.create(customers, bank_code=BANK, purposes=product.consents, secret_key=settings.secret_key,
                                              channel=CHANNEL, seed=seed, wechat_appid=settings.wechat_appid)
        campaign_id = await grab.open_campaign(settings, redis, packets=PACKETS, per_person=PACKETS)
        bank = await Bank.get(code=BANK)
        key_id, secret = f"{BANK}-soak-{transactions.FEED_CHANNEL}", f"soak-{uuid.uuid4().hex}"
        await ChannelCredential.create(key_id=key_id, bank=bank, channel=transactions.FEED_CHANNEL, secret=secret)
    await daily_job.create(settings.database_url, BOOK_LOANS, seed=seed)
    watched, unwatched = (await realtime._accounts(settings.database_url)).get(bank.id, ([], []))
    return {"tokens": tokens, "campaign_id": campaign_id, "bank_key": (key_id, secret), "watched": watched, "unwatched": unwatched}


def _borrow(env: dict, base_url: str, tokens: list[str]) -> list[tuple[str, int]]:
    """Each token's customer takes a loan through the API: apply, contract, sign by SMS code, draw."""
    from bench.run import free_port, start

    with tempfile.TemporaryDirectory(prefix="soak-sms-") as tmp:
        inbox = Path(tmp) / "sms.jsonl"
        port = free_port()
        server = start([str(ROOT / "miniprogram-stub" / "e2e" / "serve.py")], port,
                       {**env, "PORT": str(port), "SMS_INBOX_FILE": str(inbox), "PYTHONPATH": str(ROOT)})
        try:
            from bench.grab import ready

            url = f"http://127.0.0.1:{port}"
            ready(url)
            with httpx.Client(base_url=url, timeout=60) as http:
                return [(token, _take_loan(http, token, inbox)) for token in tokens]
        finally:
            processes.stop(server)


def _take_loan(http: httpx.Client, token: str, inbox: Path) -> int:
    import re

    def call(path: str, body: dict, expect: int, *, key: bool = False) -> dict:
        headers = {"Authorization": f"Bearer {token}", **({"Idempotency-Key": uuid.uuid4().hex} if key else {})}
        answer = http.post(path, json=body, headers=headers)
        if answer.status_code != expect:
            raise SystemExit(f"making a borrower: POST {path} answered {answer.status_code}: {answer.text[:500]}")
        return answer.json()

    application = call("/api/v1/applications", {"product_code": PRODUCT, **LOAN}, 201, key=True)
    if application["status"] != "approved":
        raise SystemExit(f"making a borrower: the application was {application['status']}, not approved")
    contract = call(f"/api/v1/applications/{application['id']}/contract", {"parties": []}, 201, key=True)
    before = inbox.read_text(encoding="utf-8").count("\n") if inbox.exists() else 0
    call(f"/api/v1/contracts/{contract['id']}/signing-code", {}, 202)
    texts = [json.loads(line)["text"] for line in inbox.read_text(encoding="utf-8").splitlines()[before:]]
    code = next((m.group(1) for t in texts for m in [re.search(r"验证码 ([0-9]{6})", t)] if m), None)
    if code is None:
        raise SystemExit("making a borrower: no signing code reached the phone")
    call(f"/api/v1/contracts/{contract['id']}/sign", {"method": "sms_code", "code": code}, 200)
    return call(f"/api/v1/contracts/{contract['id']}/drawdowns", {"amount_fen": DRAWDOWN_FEN}, 201, key=True)["id"]


if __name__ == "__main__":  # a quick look: python -m bench.workload BASE_URL SECONDS (env as the server's)
    world = prepare(dict(os.environ), sys.argv[1], applicants=200, grabbers=50, borrowers=3)
    stats = Stats()
    asyncio.run(drive(world, stats, seconds=float(sys.argv[2]), concurrency=16))
    for figures in stats.figures():
        print(figures)
