"""Red packets: the pool in Redis, the grab, and the group commit that makes a win true.

The pool. A campaign's budget is split once, deterministically from the campaign's seed
(``marketing.packets``), into numbered packets. Redis holds the packets not yet taken and who took
how many, all under one hash tag per campaign (``{cmp:<id>}``) so one Lua script can touch them
atomically, on Redis Cluster too. Redis is not the record (DESIGN.md, "Durability"): every taken
packet is a ``Reward`` row naming its packet, so ``rebuild_pool`` draws the split again and puts
back exactly the packets no row names. A pool that is missing (Redis restarted, failed over, or
the campaign was never loaded) is rebuilt on the next grab.

The grab. One script decides a grab: the velocity counters (device, network address, the
customer's own — a mini-program customer is one openid), the per-person and per-day limits, then
LPOP one packet and count it. No two grabs can take one packet and no person can pass their
limit, whatever the concurrency, because Redis runs the script alone. A device is one person
too: the packets taken from it count against the per-person limit, however many accounts it
opens (a reward farm runs many on each phone). Those counts, like the velocity counters, are not
in the database (a reward does not name its device): a pool rebuilt after Redis lost them
starts them afresh.

Telling the winner. A win is told only once it is committed: its ``Reward`` row (status "due")
and its payout message (``marketing.pay_reward`` in the outbox) in one transaction. Doing that per
request would make every grab wait for its own round trips and commit. Instead each worker has
one ``GrabDesk``: requests that arrive together are decided by one script call (one Redis round
trip for the lot), and the wins are committed together in one transaction (group commit), while
the next lot is already being decided. On PostgreSQL the commit of a batch is one statement
(screening, budget, rewards, outbox messages and the audit row together: one round trip, atomic
by itself). Each request waits for one shared script call and one shared commit; the batches
grow with the load (whatever arrived while the last call was out), so there is no timer to tune. A win the commit
refuses (the customer is on the prohibit-level blacklist, screened in the commit in one query for
the batch; the campaign was paused meanwhile) goes back to the pool.

No oversell, by two locks: Redis hands each packet out once, and the database refuses a second
row for one packet (unique campaign + packet_index) — the second lock holds even if the pool was
rebuilt while a grab was in flight.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import datetime, timedelta
from typing import NamedTuple

from redis.exceptions import RedisError
from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from infra import audit, clock, outbox, sql
from infra.actors import system
from infra.errors import DomainError
from infra.rate_limit import Limit, RateLimited, window
from lending_core.customers.service import WECHAT_UNIONID
from lending_core.risk_lists import service as risk_lists
from marketing import campaigns, packets
from marketing.errors import (
    AlreadyGrabbed,
    CampaignNotFound,
    CampaignNotLive,
    CampaignsUnavailable,
    ChannelNotInCampaign,
    CustomerBlacklisted,
    DailyGrabLimitReached,
    GrabLimitReached,
    NotARedPacketCampaign,
    RedPacketsGone,
)
from marketing.models import DUE, RED_PACKET, Campaign, Reward
from marketing.service import address_hash, device_hash

log = logging.getLogger(__name__)

PAY_REWARD_TOPIC = "marketing.pay_reward"
GRAB_ACTOR = "red_packet.grab"
REBUILD_LOCK_SECONDS = 60
REBUILD_WAIT_SECONDS = 10.0
PUSH_CHUNK = 10_000
SCRIPTS_IN_FLIGHT = 4
# One commit at a time per worker: every commit updates the campaign row's budget, so commits of one
# campaign queue on that row anyway; the wins that come meanwhile go in the next, larger batch. With
# four at once, two workers' commits piled up on the row (grab 34% of bare, p99 53 ms; with one, 43%
# and 15 ms; one worker alike either way: docs/benchmarks.md).
COMMITS_IN_FLIGHT = 1


@dataclass(frozen=True)
class GrabLimits:
    """Grabs one device, one network address and one customer may attempt per window, in every
    campaign. An address is shared by everyone behind a carrier's NAT: its limit is looser."""

    per_device: Limit = Limit(20, 60)
    per_address: Limit = Limit(600, 60)
    per_customer: Limit = Limit(20, 60)


class Grabber(NamedTuple):  # one a grab, like Won: tuples, made faster than frozen dataclasses
    customer_id: int
    bank_id: int | None
    channel: str | None
    device_id: str | None = None
    ip: str | None = None


class Won(NamedTuple):
    reward_id: int
    campaign_id: int
    amount_fen: int
    seq: int
    status: str = DUE


@dataclass(frozen=True)
class GrabTerms:
    """What a grab needs to know of its campaign: read from the database at most once a second
    per worker (the commit checks the campaign again, so a stale copy can refuse late, never
    grant wrongly)."""

    id: int
    bank_id: int | None
    kind: str
    status: str
    starts_at: datetime
    ends_at: datetime
    per_person_limit: int
    per_day_limit: int
    channels: tuple[str, ...]
    payout_hold_minutes: int = 0

    def effective_status(self, at: datetime) -> str:
        return campaigns.effective_status(self, at)  # duck-typed: status, starts_at, ends_at


# ---- keys ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolKeys:
    """A campaign's keys, all under one hash tag so its scripts run on one Redis Cluster slot."""

    tag: str

    @classmethod
    def of(cls, key_prefix: str, campaign_id: int) -> "PoolKeys":
        return cls(f"{key_prefix}{{cmp:{campaign_id}}}")

    @property
    def pool(self) -> str:  # packets not yet taken, "index:amount"
        return f"{self.tag}:pool"

    @property
    def taken(self) -> str:  # customer id → packets taken
        return f"{self.tag}:taken"

    @property
    def taken_by_device(self) -> str:  # device hash → packets taken from that device
        return f"{self.tag}:taken:device"

    @property
    def seqs(self) -> str:  # customer id → the last reward number given (never goes back)
        return f"{self.tag}:seq"

    @property
    def meta(self) -> str:  # the pool's generation: present only when the pool is loaded
        return f"{self.tag}:meta"

    @property
    def lock(self) -> str:
        return f"{self.tag}:rebuild"

    def day(self, at: datetime) -> str:  # customer id → packets taken on this business date
        return f"{self.tag}:day:{clock.business_date(at):%Y%m%d}"

    def velocity(self, kind: str, who: str) -> str:
        return f"{self.tag}:v:{kind}:{who}"


# One call decides a whole batch of grabs of one campaign. KEYS: pool, taken, seqs, day, meta,
# taken by device, then each grab's velocity counters in order. ARGV: per-person limit, per-day
# limit, day-key TTL, then per grab: customer id, device hash ("" for none), counter count, and
# (limit, TTL) per counter.
# Answers per grab: "W<index>:<amount>:<seq>" (won), "R<n>" (the n-th counter is over its limit),
# "L" (per-person limit), "D" (per-day limit), "E" (pool empty); or {"NOPOOL"} for the batch
# when the pool is not loaded, and the pool's generation last.
GRAB_SCRIPT = """
local generation = redis.call('GET', KEYS[5])
if not generation then return {'NOPOOL'} end
local per_person, per_day, day_ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local out, arg, key = {}, 4, 7
local counted_day = false
while arg <= #ARGV do
  local customer, device, counters = ARGV[arg], ARGV[arg + 1], tonumber(ARGV[arg + 2])
  arg = arg + 3
  local over = 0
  for j = 1, counters do
    local count = redis.call('INCR', KEYS[key])
    if count == 1 then redis.call('EXPIRE', KEYS[key], tonumber(ARGV[arg + 1])) end
    if over == 0 and count > tonumber(ARGV[arg]) then over = j end
    key, arg = key + 1, arg + 2
  end
  if over > 0 then
    out[#out + 1] = 'R' .. over
  elseif tonumber(redis.call('HGET', KEYS[2], customer) or '0') >= per_person then
    out[#out + 1] = 'L'
  elseif device ~= '' and tonumber(redis.call('HGET', KEYS[6], device) or '0') >= per_person then
    out[#out + 1] = 'L'
  elseif tonumber(redis.call('HGET', KEYS[4], customer) or '0') >= per_day then
    out[#out + 1] = 'D'
  else
    local packet = redis.call('LPOP', KEYS[1])
    if not packet then
      out[#out + 1] = 'E'
    else
      redis.call('HINCRBY', KEYS[2], customer, 1)
      redis.call('HINCRBY', KEYS[4], customer, 1)
      if device ~= '' then redis.call('HINCRBY', KEYS[6], device, 1) end
      counted_day = true
      out[#out + 1] = 'W' .. packet .. ':' .. redis.call('HINCRBY', KEYS[3], customer, 1)
    end
  end
end
if counted_day then redis.call('EXPIRE', KEYS[4], day_ttl) end
out[#out + 1] = generation
return out
"""

# Puts refused wins back: the packet into the pool, the person's counts down. Only into the
# generation they came from: a pool rebuilt since already has them back.
# KEYS: pool, taken, day, meta, taken by device. ARGV: generation, then (packet, customer, device) triples.
UNDO_SCRIPT = """
if redis.call('GET', KEYS[4]) ~= ARGV[1] then return 0 end
for i = 2, #ARGV, 3 do
  redis.call('LPUSH', KEYS[1], ARGV[i])
  redis.call('HINCRBY', KEYS[2], ARGV[i + 1], -1)
  redis.call('HINCRBY', KEYS[3], ARGV[i + 1], -1)
  if ARGV[i + 2] ~= '' then redis.call('HINCRBY', KEYS[5], ARGV[i + 2], -1) end
end
return 1
"""


# ---- the pool ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolState:
    packets_left: int
    packets_taken: int
    people: int
    generation: str


def split_of(campaign: Campaign) -> list[int]:
    """The campaign's packets, packet ``i`` being ``split_of(c)[i]`` fen, always the same."""
    return packets.split(
        budget_fen=campaign.budget_fen,
        count=campaign.packet_count,
        min_fen=campaign.packet_min_fen,
        max_fen=campaign.packet_max_fen,
        seed=campaign.packet_seed,
    )


async def rebuild_pool(redis, campaign_id: int, *, key_prefix: str, at: datetime | None = None) -> PoolState:
    """Load the campaign's pool into Redis from the database: the packets no reward names, and how
    many each person took (in all and today). Used to load a pool the first time and to rebuild
    one Redis lost; safe to run again at any time (a grab in flight meanwhile may find its packet
    taken by the database's unique index, and is refused rather than granted twice)."""
    at = at or clock.now()
    campaign = await Campaign.filter(id=campaign_id).first()
    if campaign is None:
        raise CampaignNotFound()
    if campaign.kind != RED_PACKET:
        raise NotARedPacketCampaign()
    amounts = await asyncio.to_thread(split_of, campaign)
    taken = await Reward.filter(campaign_id=campaign_id, packet_index__not_isnull=True).values_list(
        "customer_id", "seq", "packet_index", "created_at"
    )
    day_start, day_end = business_day_bounds(at)
    counts, today, seqs = Counter(), Counter(), {}
    taken_indices = set()
    for customer_id, seq, index, created_at in taken:
        taken_indices.add(index)
        counts[customer_id] += 1
        seqs[customer_id] = max(seq, seqs.get(customer_id, 0))
        if day_start <= created_at < day_end:
            today[customer_id] += 1
    left = [f"{i}:{amount}" for i, amount in enumerate(amounts) if i not in taken_indices]
    keys = PoolKeys.of(key_prefix, campaign_id)
    generation = secrets.token_hex(8)
    # One MULTI: a grab sees the old pool or the whole new one, never half of it.
    pipe = redis.pipeline(transaction=True)
    pipe.delete(keys.pool, keys.taken, keys.seqs, keys.day(at), keys.meta)
    for start in range(0, len(left), PUSH_CHUNK):
        pipe.rpush(keys.pool, *left[start : start + PUSH_CHUNK])
    if counts:
        pipe.hset(keys.taken, mapping=dict(counts))
        pipe.hset(keys.seqs, mapping=seqs)
    if today:
        pipe.hset(keys.day(at), mapping=dict(today))
        pipe.expire(keys.day(at), DAY_KEY_TTL)
    pipe.set(keys.meta, generation)
    await pipe.execute()
    log.info("red-packet pool loaded", extra={"campaign_id": campaign_id, "packets_left": len(left), "packets_taken": len(taken_indices)})
    return PoolState(len(left), len(taken_indices), len(counts), generation)


async def pool_state(redis, campaign_id: int, *, key_prefix: str) -> dict:
    """What Redis holds for the campaign (for checks and the console): packets left, and who took how many."""
    keys = PoolKeys.of(key_prefix, campaign_id)
    pipe = redis.pipeline(transaction=False)
    pipe.get(keys.meta)
    pipe.llen(keys.pool)
    pipe.hgetall(keys.taken)
    generation, left, taken = await pipe.execute()
    return {
        "loaded": generation is not None,
        "packets_left": int(left),
        "taken": {int(k): int(v) for k, v in taken.items() if int(v)},
    }


DAY_KEY_TTL = 2 * 24 * 3600


def business_day_bounds(at: datetime) -> tuple[datetime, datetime]:
    """The UTC instants the business date of ``at`` (Asia/Shanghai) starts and ends."""
    start = clock.business_day_start(clock.business_date(at))
    return start, start + timedelta(days=1)


# ---- the desk: batched decisions, group commit ---------------------------------------------------


# A keyed hash per grab costs more than the rest of the counting: the same devices and addresses
# come back all through a rush, so their hashes are remembered (bounded).
_device_hash = lru_cache(maxsize=65_536)(device_hash)
_address_hash = lru_cache(maxsize=65_536)(address_hash)


def _device_key(grabber: Grabber) -> str:
    return _device_hash(grabber.device_id) if grabber.device_id else ""


@dataclass
class _Ask:
    terms: GrabTerms
    grabber: Grabber
    counters: list[tuple[str, Limit, int, int]]  # key, limit, ttl, retry_after
    future: asyncio.Future

    @property
    def campaign_id(self) -> int:
        return self.terms.id


@dataclass
class _Win:
    ask: _Ask
    packet: str
    index: int
    amount_fen: int
    seq: int
    generation: str

    @property
    def campaign_id(self) -> int:
        return self.ask.terms.id


@dataclass
class GrabDesk:
    """One per worker process: decides concurrent grabs in one script call per campaign and
    commits their wins together (group commit). It has no loop of its own: the grabs start the
    tasks that serve them, in the event loop that serves the requests."""

    redis: object
    key_prefix: str
    limits: GrabLimits = field(default_factory=GrabLimits)
    max_batch: int = 512
    terms_ttl_seconds: float = 1.0
    _asks: list = field(default_factory=list)  # grabs waiting for a script call
    _wins: list = field(default_factory=list)  # wins waiting for a commit
    _running: set = field(default_factory=set)  # the tasks deciding and committing now
    _starting: bool = False  # a task is started that will take every grab waiting
    _scripts_out: int = 0
    _commits_out: int = 0
    _terms: dict = field(default_factory=dict)
    _rebuilding: dict = field(default_factory=dict)

    # -- the request's side --

    async def grab(self, campaign_id: int, grabber: Grabber, *, at: datetime | None = None) -> Won:
        at = at or clock.now()
        terms = await self.terms(campaign_id)
        if terms.bank_id is not None and terms.bank_id != grabber.bank_id:
            raise CampaignNotFound()  # another bank's campaign: as if it did not exist
        if terms.kind != RED_PACKET:
            raise NotARedPacketCampaign()
        if terms.channels and grabber.channel not in terms.channels:
            raise ChannelNotInCampaign()
        if terms.effective_status(at) != campaigns.LIVE:
            raise CampaignNotLive(details={"status": terms.effective_status(at)})
        ask = _Ask(terms, grabber, self._counters(terms.id, grabber), asyncio.get_running_loop().create_future())
        self._asks.append(ask)
        self._dispatch()
        return await ask.future

    def _counters(self, campaign_id: int, grabber: Grabber) -> list[tuple[str, Limit, int, int]]:
        keys, now = PoolKeys.of(self.key_prefix, campaign_id), time.time()
        wanted = [("customer", str(grabber.customer_id), self.limits.per_customer)]
        if grabber.device_id:
            wanted.append(("device", _device_hash(grabber.device_id), self.limits.per_device))
        if grabber.ip and (address := _address_hash(grabber.ip)):
            wanted.append(("address", address, self.limits.per_address))
        counters = []
        for kind, who, limit in wanted:
            counter = window(keys.velocity(kind, who), limit, now)
            counters.append((counter.key, limit, counter.ttl_seconds, counter.retry_after))
        return counters

    async def terms(self, campaign_id: int) -> GrabTerms:
        """The campaign's terms as of at most a second ago. One read per campaign at a time, in a
        task of its own: a request that gives up (its client left) must not cancel the read the
        others are waiting for."""
        cached = self._terms.get(campaign_id)
        if cached is None or cached[0] <= time.monotonic():
            self._forget_expired()
            read = asyncio.get_running_loop().create_task(_read_terms(campaign_id), context=contextvars.Context())
            cached = (time.monotonic() + self.terms_ttl_seconds, read)
            self._terms[campaign_id] = cached
            read.add_done_callback(lambda done: self._forget_failed(campaign_id, done))
        read = cached[1]
        if read.done():
            return read.result()  # a refusal (no such campaign) is remembered as long as an answer
        return await asyncio.shield(read)

    def _forget_expired(self) -> None:
        # The campaign id comes from the path and a refusal is remembered like an answer: without
        # this, grabs at ever new ids (ended campaigns, made-up ones) would grow the dict for the
        # life of the worker. Swept only on a miss, so at most once a second per live campaign.
        now = time.monotonic()
        for campaign_id in [key for key, (expires, _) in self._terms.items() if expires <= now]:
            del self._terms[campaign_id]

    def _forget_failed(self, campaign_id: int, read: asyncio.Task) -> None:
        if read.cancelled() or (read.exception() is not None and not isinstance(read.exception(), DomainError)):
            if self._terms.get(campaign_id, (None, None))[1] is read:
                del self._terms[campaign_id]  # the database was unreachable: ask again next time

    def forget(self, campaign_id: int | None = None) -> None:
        """Drop cached campaign terms (all, or one campaign's)."""
        if campaign_id is None:
            self._terms.clear()
        else:
            self._terms.pop(campaign_id, None)

    # -- the work --
    #
    # Each hand-over from one task to another costs a grab a turn of the event loop (about a
    # millisecond when the worker is busy), so there are as few as can be: the first grab of a
    # turn starts one task, which takes every grab asked by then, calls the script, and commits
    # the wins itself. While its script call is out the next grabs start the next task (up to
    # SCRIPTS_IN_FLIGHT); wins that find COMMITS_IN_FLIGHT commits out wait, and whichever commit
    # ends first takes them all in its next batch.

    def _dispatch(self) -> None:
        if self._asks and not self._starting and self._scripts_out < SCRIPTS_IN_FLIGHT:
            self._starting = True
            # A context of its own: the task serves every request, so it must not inherit the
            # first one's (its request id, or a transaction it happened to be in).
            task = asyncio.get_running_loop().create_task(self._work(), context=contextvars.Context())
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _work(self) -> None:
        self._starting = False
        batch, self._asks = self._asks[: self.max_batch], self._asks[self.max_batch :]
        held = list(batch)  # the grabs this task answers
        try:
            self._scripts_out += 1
            try:
                by_campaign = _by_campaign(batch)
                if len(by_campaign) == 1:
                    wins = await self._decide(batch)
                else:
                    wins = [win for found in await asyncio.gather(*map(self._decide, by_campaign.values())) for win in found]
            finally:
                self._scripts_out -= 1
                self._dispatch()  # the grabs held back while SCRIPTS_IN_FLIGHT calls were out
            self._wins.extend(wins)
            while self._wins and self._commits_out < COMMITS_IN_FLIGHT:
                wins, self._wins = self._wins, []
                held += [win.ask for win in wins]
                self._commits_out += 1
                try:
                    await self._commit_batch(wins)
                finally:
                    self._commits_out -= 1
        except asyncio.CancelledError:
            # Cancelled by ``close`` past its drain time: no request may wait for ever. (A win whose
            # commit was out may yet be committed: the customer finds it among their rewards.)
            _fail_all(held, CampaignsUnavailable())
            raise

    async def close(self, *, drain_seconds: float = 10.0) -> None:
        """Return once every grab asked has been decided and every packet taken from the pool
        committed (or the time is up, when what is still running is cancelled): a worker stopped
        between the two would leave packets out of the pool with no reward until the pool is next
        rebuilt."""
        deadline = time.monotonic() + drain_seconds
        while (self._asks or self._wins or self._running) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        # Out of time: the grabs still waiting are refused first, so that no task the
        # cancellations end starts another for them.
        waiting, self._asks, unsaved, self._wins = self._asks, [], self._wins, []
        _fail_all(waiting + [win.ask for win in unsaved], CampaignsUnavailable())
        for task in list(self._running):
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._starting = False  # a task cancelled before it ran never cleared it

    async def _decide(self, asks: list[_Ask]) -> list[_Win]:
        """One campaign's grabs decided by one script call: the wins, the others answered."""
        try:
            answers = await self._run_script(asks)
            if answers[0] == b"NOPOOL":
                await self._rebuild(asks[0].terms.id)
                answers = await self._run_script(asks)
                if answers[0] == b"NOPOOL":
                    raise CampaignsUnavailable("the red-packet pool is being loaded; try again shortly", retry_after=1)
        except CampaignsUnavailable as exc:
            _fail_all(asks, exc)
            return []
        except (RedisError, OSError) as exc:
            log.warning("red-packet pool unavailable: %s", type(exc).__name__)
            _fail_all(asks, CampaignsUnavailable())
            return []
        except Exception as exc:  # never leave a request waiting forever
            log.exception("red-packet grab failed")
            _fail_all(asks, exc)
            return []
        generation = answers[-1].decode()
        wins = []
        for ask, answer in zip(asks, answers):
            answer = answer.decode()
            if answer[0] == "W":
                index, amount, seq = answer[1:].split(":")
                wins.append(_Win(ask, f"{index}:{amount}", int(index), int(amount), int(seq), generation))
            else:
                _settle(ask.future, exc=_refusal(answer, ask))
        return wins

    async def _run_script(self, asks: list[_Ask]) -> list:
        terms = asks[0].terms
        keys = PoolKeys.of(self.key_prefix, terms.id)
        now = clock.now()
        key_list = [keys.pool, keys.taken, keys.seqs, keys.day(now), keys.meta, keys.taken_by_device]
        args: list = [terms.per_person_limit, terms.per_day_limit, DAY_KEY_TTL]
        for ask in asks:
            args += [ask.grabber.customer_id, _device_key(ask.grabber), len(ask.counters)]
            for key, limit, ttl, _ in ask.counters:
                key_list.append(key)
                args += [limit.requests, ttl]
        return await self._script(GRAB_SCRIPT)(keys=key_list, args=args)

    def _script(self, source: str):
        scripts = self.__dict__.setdefault("_scripts", {})
        if source not in scripts:
            scripts[source] = self.redis.register_script(source)
        return scripts[source]

    async def _rebuild(self, campaign_id: int) -> None:
        """Load a missing pool once: one rebuild per worker at a time, one across workers (a lock
        in Redis); the others wait for the pool to appear."""
        running = self._rebuilding.get(campaign_id)
        if running is None:
            running = asyncio.ensure_future(self._rebuild_once(campaign_id))
            self._rebuilding[campaign_id] = running
            running.add_done_callback(lambda _: self._rebuilding.pop(campaign_id, None))
        await asyncio.shield(running)

    async def _rebuild_once(self, campaign_id: int) -> None:
        keys = PoolKeys.of(self.key_prefix, campaign_id)
        token = secrets.token_hex(8)
        if await self.redis.set(keys.lock, token, nx=True, ex=REBUILD_LOCK_SECONDS):
            try:
                if not await self.redis.exists(keys.meta):
                    await rebuild_pool(self.redis, campaign_id, key_prefix=self.key_prefix)
            finally:
                if await self.redis.get(keys.lock) == token.encode():
                    await self.redis.delete(keys.lock)
            return
        deadline = time.monotonic() + REBUILD_WAIT_SECONDS
        while time.monotonic() < deadline and not await self.redis.exists(keys.meta):
            await asyncio.sleep(0.05)

    async def _commit_batch(self, batch: list[_Win]) -> None:
        for campaign_wins in _by_campaign(batch).values():
            try:
                await self._commit(campaign_wins)
            except Exception:  # never leave a request waiting forever
                log.exception("red-packet commit failed")
                for win in campaign_wins:
                    _settle(win.ask.future, exc=CampaignsUnavailable())

    async def _commit(self, wins: list[_Win]) -> None:
        """Commit one campaign's wins together; if they are refused as a whole (one bad row spoils
        the statement), commit each alone so only the bad one fails."""
        try:
            outcomes = await _record_wins(wins)
        except Exception as exc:
            if len(wins) > 1:
                for win in wins:
                    await self._commit([win])
                return
            outcomes = {id(wins[0]): await _failure(wins[0], exc)}
        refused = [win for win in wins if not isinstance(outcomes[id(win)], Won) and _packet_free(outcomes[id(win)])]
        if refused:
            await self._undo(refused)
        for win in wins:
            outcome = outcomes[id(win)]
            if isinstance(outcome, Won):
                _settle(win.ask.future, result=outcome)
            else:
                _settle(win.ask.future, exc=outcome)

    async def _undo(self, wins: list[_Win]) -> None:
        for campaign_wins in _by_campaign(wins).values():
            keys = PoolKeys.of(self.key_prefix, campaign_wins[0].ask.terms.id)
            args = [campaign_wins[0].generation]
            for win in campaign_wins:
                args += [win.packet, win.ask.grabber.customer_id, _device_key(win.ask.grabber)]
            try:
                await self._script(UNDO_SCRIPT)(keys=[keys.pool, keys.taken, keys.day(clock.now()), keys.meta, keys.taken_by_device], args=args)
            except (RedisError, OSError):
                # The packets stay out of the pool until it is rebuilt from the database.
                log.warning("could not return %d refused red packets to the pool", len(campaign_wins))


class _PacketTaken(CampaignsUnavailable):
    """The packet was granted to someone else meanwhile (the pool was rebuilt): try again."""


def _packet_free(outcome) -> bool:
    return not isinstance(outcome, _PacketTaken)


async def _failure(win: _Win, exc: Exception) -> Exception:
    """What to tell a lone win the commit refused, and whether its packet may go back."""
    if isinstance(exc, IntegrityError):
        if await Reward.filter(campaign_id=win.ask.terms.id, packet_index=win.index).exists():
            return _PacketTaken(retry_after=1)
        return CampaignsUnavailable(retry_after=1)
    if isinstance(exc, DomainError):
        return exc
    log.warning("red-packet win not committed: %s", type(exc).__name__)
    return CampaignsUnavailable()


def _by_campaign(items: list) -> dict[int, list]:
    """Grabs or wins by their campaign, in order."""
    grouped: dict[int, list] = {}
    for item in items:
        grouped.setdefault(item.campaign_id, []).append(item)
    return grouped


def _settle(future: asyncio.Future, *, result=None, exc: Exception | None = None) -> None:
    if future.done():  # the request was cancelled (client gone): the outcome stands regardless
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


def _fail_all(asks: list[_Ask], exc: Exception) -> None:
    for ask in asks:
        _settle(ask.future, exc=exc)


def _refusal(answer: str, ask: _Ask) -> Exception:
    if answer[0] == "R":
        _, _, _, retry_after = ask.counters[int(answer[1:]) - 1]
        return RateLimited(retry_after=retry_after)
    if answer == "L":
        return AlreadyGrabbed() if ask.terms.per_person_limit == 1 else GrabLimitReached(details={"limit": ask.terms.per_person_limit})
    if answer == "D":
        return DailyGrabLimitReached(details={"limit": ask.terms.per_day_limit})
    return RedPacketsGone()


# ---- the commit ----------------------------------------------------------------------------------


async def _read_terms(campaign_id: int) -> GrabTerms:
    row = await Campaign.filter(id=campaign_id).values(
        "id", "bank_id", "kind", "status", "starts_at", "ends_at", "per_person_limit", "per_day_limit", "channels", "payout_hold_minutes"
    )
    if not row:
        raise CampaignNotFound()
    found = row[0]
    return GrabTerms(**{**found, "channels": tuple(found["channels"] or ())})


# A customer's keys as the lists know them (the unionid as a column, so that the match below is
# three plain equalities the lists' indexes can answer). In the batch statement it is read per
# winner by primary key ("OFFSET 0" keeps the planner from joining the whole customer table).
_CUSTOMER_KEYS = (
    "SELECT c.id, c.id_number_hash, c.phone_hash, (SELECT i.value_hash FROM customer_identity i "
    f"WHERE i.customer_id = c.id AND i.kind = '{WECHAT_UNIONID}' ORDER BY i.id LIMIT 1) AS unionid_hash FROM customer c"
)


def _screening(*, bank: str, at: str) -> str:
    """The strongest list level of customer keys ``k`` at ``bank`` (SQL, embedding the lists' own match)."""
    level = risk_lists.matching_entries_sql(
        bank=bank, at=at, keys={"id_number_hash": ["k.id_number_hash"], "phone_hash": ["k.phone_hash"], "unionid_hash": ["k.unionid_hash"]}
    ).replace("SELECT e.id, e.level", "SELECT e.level", 1)
    return f"({level} LIMIT 1)"


def _reward_bank(win: _Win) -> int | None:
    # A bank's campaign pays in that bank's name; an association-wide one in the grabber's bank.
    return win.ask.terms.bank_id if win.ask.terms.bank_id is not None else win.ask.grabber.bank_id


async def _record_wins(wins: list[_Win]) -> dict[int, object]:
    """Commit one campaign's wins: screen the winners against the blacklist, commit their amounts
    to the budget (all refused if the campaign stopped being live), write their rewards, their
    payout messages and one audit row. Returns each win's outcome by ``id(win)``."""
    connection = connections.get("default")
    if connection.capabilities.dialect == "postgres":
        return await _record_wins_postgres(connection, wins)
    # The embedded database serves one worker at demo load: the ORM, in one transaction, will do.
    async with in_transaction():
        return await _record_wins_orm(wins)


# The whole commit of a batch as one statement, so one round trip and atomic by itself: the wins
# come in as arrays; prohibited customers are left out; the budget moves only if the campaign is
# live and the sum fits; rewards, their outbox messages and the audit row follow from that.
_COMMIT_POSTGRES = f"""
WITH w AS (
  SELECT * FROM unnest($3::bigint[], $4::bigint[], $5::bigint[], $6::int[], $7::int[]) AS w(bank_id, customer_id, amount_fen, seq, packet_index)
), barred AS (
  SELECT DISTINCT w.customer_id FROM w CROSS JOIN LATERAL ({_CUSTOMER_KEYS} WHERE c.id = w.customer_id OFFSET 0) k
  WHERE {_screening(bank="w.bank_id", at="$2")} = '{risk_lists.PROHIBIT}'
), kept AS (
  SELECT w.* FROM w WHERE w.customer_id NOT IN (SELECT customer_id FROM barred)
), total AS (
  SELECT COALESCE(SUM(amount_fen), 0) AS fen, COUNT(*) AS n FROM kept
), budget AS (
  UPDATE campaign SET committed_fen = campaign.committed_fen + total.fen, updated_at = $2 FROM total
  WHERE campaign.id = $1 AND total.n > 0 AND campaign.status IN ('scheduled', 'live')
    AND campaign.starts_at <= $2 AND campaign.ends_at > $2 AND campaign.committed_fen + total.fen <= campaign.budget_fen
  RETURNING campaign.id, campaign.bank_id
), won AS (
  INSERT INTO reward (campaign_id, bank_id, customer_id, kind, amount_fen, status, seq, packet_index, created_at)
  SELECT budget.id, kept.bank_id, kept.customer_id, '{RED_PACKET}', kept.amount_fen, '{DUE}', kept.seq, kept.packet_index, $2 FROM kept, budget
  RETURNING id, bank_id, customer_id, amount_fen, packet_index
), queued AS (
  INSERT INTO outbox_message (topic, payload, bank_id, status, attempts, next_attempt_at, created_at)
  SELECT $8, jsonb_build_object('reward_id', won.id), won.bank_id, '{outbox.PENDING}', 0, $9, $2 FROM won
), audited AS (
  INSERT INTO audit_entry (at, actor_kind, actor_id, bank_id, action, object_type, object_id, after)
  SELECT $2, 'system', '{GRAB_ACTOR}', budget.bank_id, 'red_packet.won', 'campaign', budget.id::text,
    jsonb_build_object('rewards', (SELECT jsonb_agg(jsonb_build_array(id, customer_id, amount_fen) ORDER BY id) FROM won), 'total_fen', total.fen)
  FROM budget, total
)
SELECT 'won' AS outcome, customer_id, packet_index, id FROM won
UNION ALL SELECT 'barred', customer_id, NULL, NULL FROM barred
UNION ALL SELECT 'live', NULL, NULL, id FROM budget
"""


async def _record_wins_postgres(connection, wins: list[_Win]) -> dict[int, object]:
    terms = wins[0].ask.terms
    at = clock.now()
    rows = await connection.execute_query_dict(
        _COMMIT_POSTGRES,
        [
            terms.id,
            at,
            [_reward_bank(w) for w in wins],
            [w.ask.grabber.customer_id for w in wins],
            [w.amount_fen for w in wins],
            [w.seq for w in wins],
            [w.index for w in wins],
            PAY_REWARD_TOPIC,
            campaigns.payout_not_before(terms, at),  # duck-typed, as effective_status
        ],
    )
    reward_ids = {row["packet_index"]: row["id"] for row in rows if row["outcome"] == "won"}
    barred = {row["customer_id"] for row in rows if row["outcome"] == "barred"}
    outcomes: dict[int, object] = {}
    for win in wins:
        if win.ask.grabber.customer_id in barred:
            outcomes[id(win)] = CustomerBlacklisted()
        elif win.index in reward_ids:
            outcomes[id(win)] = Won(reward_ids[win.index], terms.id, win.amount_fen, win.seq)
        else:
            outcomes[id(win)] = CampaignNotLive()
    return outcomes


async def _record_wins_orm(wins: list[_Win]) -> dict[int, object]:
    at = clock.now()
    terms = wins[0].ask.terms
    outcomes: dict[int, object] = {}
    barred: set[int] = set()
    for win in wins:
        customer_id = win.ask.grabber.customer_id
        if customer_id not in barred:
            level = await sql.fetch_one(
                f"SELECT {_screening(bank=':bank', at=':at')} AS level FROM ({_CUSTOMER_KEYS} WHERE c.id = :customer) k",
                bank=_reward_bank(win), at=at, customer=customer_id,
            )
            if level and level["level"] == risk_lists.PROHIBIT:
                barred.add(customer_id)
    kept = [win for win in wins if win.ask.grabber.customer_id not in barred]
    outcomes.update({id(win): CustomerBlacklisted() for win in wins if win.ask.grabber.customer_id in barred})
    if not kept:
        return outcomes
    total = sum(win.amount_fen for win in kept)
    live = await sql.fetch_one(
        "UPDATE campaign SET committed_fen = committed_fen + :total, updated_at = :at "
        "WHERE id = :id AND status IN ('scheduled', 'live') AND starts_at <= :at AND ends_at > :at "
        "AND committed_fen + :total <= budget_fen RETURNING id",
        total=total, at=at, id=terms.id,
    )
    if live is None:
        outcomes.update({id(win): CampaignNotLive() for win in kept})
        return outcomes
    rewards = []
    pay_from = campaigns.payout_not_before(terms, at)
    for win in kept:
        reward = await Reward.create(
            campaign_id=terms.id, bank_id=_reward_bank(win), customer_id=win.ask.grabber.customer_id, kind=RED_PACKET,
            amount_fen=win.amount_fen, status=DUE, seq=win.seq, packet_index=win.index, created_at=at,
        )
        await outbox.enqueue(PAY_REWARD_TOPIC, {"reward_id": reward.id}, bank_id=reward.bank_id, not_before=pay_from)
        outcomes[id(win)] = Won(reward.id, terms.id, win.amount_fen, win.seq)
        rewards.append([reward.id, reward.customer_id, reward.amount_fen])
    await audit.record(system(GRAB_ACTOR), "red_packet.won", "campaign", terms.id, bank_id=terms.bank_id, after={"rewards": rewards, "total_fen": total})
    return outcomes


# ---- reading -------------------------------------------------------------------------------------


def my_rewards(customer_id: int):
    return Reward.filter(customer_id=customer_id)

