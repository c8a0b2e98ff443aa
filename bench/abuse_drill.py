"""The abuse drill (issue 10.5): a reward farm beside ordinary users, through the real controls.

    python -m bench.abuse_drill [--farm 1000] [--ordinary 1000] [--devices 20] [--seed 7]   (make abuse-drill)

Runs in-process against PostgreSQL and Redis (DATABASE_URL, default database ``rcb_abuse``,
dropped and recreated; REDIS_URL, default db 8, under a key prefix of its own), with the demo's
banks and staff. Two live campaigns of one bank: referral cash paid when the person brought in
registers (the lowest milestone, so only the marketing controls stand between a farm and the
money: no credit decision filters it) and red packets, one per person.

The farm: ``--farm`` accounts opened one after another round ``--devices`` phones, each phone with
one network address of its own. Every account asks for its own invite code on its phone and makes
one attempt to earn a farm account a referral reward, as the referee of:

- its own code (self-referral by the person), 10 %;
- the code of an account that lives on the same phone (self-referral by device), 20 %;
- a ring: ten accounts invite one another round (A→B→…→J→A), 20 %;
- the code of an account on another of the farm's phones, the one with the fewest referees so
  far (spreading under the per-person limit), 50 %;

(the referrals from a code, same phone or other, ride on the account's first login, as a shared
link's would; the first accounts, with nobody to invite them yet, refer themselves)

and one red-packet grab from its phone and address. A grab refused for velocity is retried
after its ``retry_after``, as a patient farm would: the same attempt, not a new one.

Both campaigns hold payouts for ``HOLD_MINUTES`` (``payout_hold_minutes``), as a bank running
rewards against farms would. The drill lets the hold pass (the payout messages are made due) and
runs the real payout handler, paying into a WeChat Pay stand-in that records what it paid.

The ordinary users: ``--ordinary`` people, each on a phone of their own. A quarter are customers of
some weeks' standing who invite three friends each (the rest); 40 % of everybody sits behind a
carrier NAT, in groups of 20 to 50 sharing one address. Each friend logs in with the code it was
sent, and everybody grabs once (retrying velocity refusals as the farm does).

Counted from what the database holds afterwards:

- farm attempts: one referral attempt and one grab per account; rewards reaching the farm:
  referral rewards and red packets paid to farm accounts;
- ordinary users wrongly refused: people with a legitimate binding, referral reward or grab
  refused (a friend not bound, an inviter's reward not paid, a grab not won or its packet not
  paid).

Targets: farm rewards ≤ 1 % of its attempts; ordinary users wrongly refused ≤ 1 %. The run
writes its section of docs/reliability.md itself. Fixed seed: the same run every time.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench.run import app_stores, machine, postgres_env, write_drill_section
from infra.settings import DEMO_WECHAT_PAY_MCH_ID

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/rcb_abuse"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/8"
APPID = "wx0000000000demo"
CHANNEL = "wechat_miniprogram"
BANK = "HZRCB"
TARGET = 0.01
RING = 10
FARM_MODES = (("self", 0.10), ("same_device", 0.20), ("ring", 0.20), ("cross_device", 0.50))
INVITERS_SHARE, FRIENDS_EACH = 0.25, 3
NAT_SHARE, NAT_GROUP = 0.40, (20, 50)
GRAB_ROUNDS, GRAB_CONCURRENCY = 6, 50
HOLD_MINUTES = 60


@dataclass
class Person:
    customer_id: int
    device_id: str
    ip: str
    farm: bool
    code: str | None = None


@dataclass
class Outcome:
    farm_accounts: int
    farm_phones: int
    ordinary_users: int
    farm_attempts: int = 0
    farm_rewards: int = 0  # referral rewards and red packets paid to farm accounts
    farm_referral_rewards: int = 0
    farm_packets: int = 0
    farm_won: int = 0  # red packets farm accounts won (paid or not)
    farm_payouts: Counter = field(default_factory=Counter)  # how each farm reward that reached a payout ended
    farm_binds: Counter = field(default_factory=Counter)  # outcome of each farm referral attempt
    farm_grabs: Counter = field(default_factory=Counter)
    ordinary_refused: int = 0
    ordinary_refusals: Counter = field(default_factory=Counter)
    grab_retry_rounds: int = 0
    seconds: float = 0.0

    @property
    def farm_ratio(self) -> float:
        return self.farm_rewards / self.farm_attempts if self.farm_attempts else 0.0

    @property
    def ordinary_ratio(self) -> float:
        return self.ordinary_refused / self.ordinary_users if self.ordinary_users else 0.0


# ---- the population ------------------------------------------------------------------------------


async def _arrive(bank_id: int, device_id: str, ip: str, *, farm: bool, days_ago: int = 0, scene: str | None = None) -> tuple[Person, object]:
    """A first mini-program login as the login route makes it: the customer and their
    mini-program account, their bank, the device noted and, with a ``scene`` invite code, the
    binding (or why not)."""
    from channels import wechat
    from channels.sessions import TokenPolicy
    from infra import clock
    from lending_core.customers.models import Customer
    from marketing import service as invites

    login = await wechat.login(DrillMiniProgram(), f"o{uuid.uuid4().hex}", bank_id=bank_id,
                              policy=TokenPolicy(secret_key="abuse-drill-made-up-signing-key-of-32-bytes", access_ttl_seconds=900, refresh_ttl_seconds=3600))
    customer_id = login.customer.id
    if days_ago:
        await Customer.filter(id=customer_id).update(created_at=clock.now() - timedelta(days=days_ago))
    arrival = await invites.on_login(customer_id, scene=scene, device_id=device_id, ip=ip, channel=CHANNEL)
    return Person(customer_id, device_id, ip, farm), arrival


class DrillMiniProgram:
    """Stands in for WeChat's ``code2session`` (``channels.ports.MiniProgram``): the login code
    the drill makes up is the person's openid."""

    appid = APPID

    async def code_to_session(self, code: str):
        from channels.ports import WeChatSession

        return WeChatSession(openid=code, unionid=None, session_key="drill-session-key")


async def _code(person: Person, bank_id: int) -> str:
    from infra.actors import Actor
    from marketing import service as invites

    actor = Actor(kind="customer", id=person.customer_id, bank_id=bank_id, channel=CHANNEL)
    person.code = (await invites.my_code(actor, device_id=person.device_id)).code
    return person.code


async def _login_with(person: Person, code: str):
    """The referee opens the shared link: a login whose scene is the code (``api/channels.py``)."""
    from marketing import service as invites

    return await invites.on_login(person.customer_id, scene=code, device_id=person.device_id, ip=person.ip, channel=CHANNEL)


def _ordinary_addresses(rng: random.Random, count: int) -> list[str]:
    """Own addresses for most; carrier-NAT groups of 20–50 sharing one address for the rest."""
    addresses = [f"36.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}" for _ in range(count)]
    behind_nat = rng.sample(range(count), int(count * NAT_SHARE))
    start = 0
    while start < len(behind_nat):
        size = rng.randint(*NAT_GROUP)
        shared = f"100.{64 + rng.randrange(64)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"  # RFC 6598 carrier-grade NAT
        for index in behind_nat[start : start + size]:
            addresses[index] = shared
        start += size
    return addresses


# ---- the drill -----------------------------------------------------------------------------------


async def run_drill(redis, *, key_prefix: str, farm: int = 1000, ordinary: int = 1000, devices: int = 20, seed: int = 7) -> Outcome:
    """Run the drill on an open database holding the demo data; returns what it counted."""
    from lending_core.org.models import Bank, Staff
    from marketing import red_packets, rewards
    from marketing.models import HELD, PAID, Campaign, InviteReferral, Reward

    started = time.monotonic()
    rng = random.Random(seed)
    bank_id = (await Bank.get(code=BANK)).id
    creator = await Staff.get(username="hz.manager")
    now = datetime.now(timezone.utc)
    window = {"status": "live", "starts_at": now - timedelta(days=1), "ends_at": now + timedelta(days=30), "bank_id": bank_id, "created_by_id": creator.id,
              "payout_hold_minutes": HOLD_MINUTES}
    people = farm + ordinary
    cash = await Campaign.create(kind="referral_reward", name="邀请有礼(演练)", milestone="registered", reward_fen=1_000,
                                 per_person_limit=5, per_day_limit=5, budget_fen=1_000 * people, **window)
    packets = await Campaign.create(kind="red_packet", name="红包(演练)", per_person_limit=1, per_day_limit=1, packet_count=people * 2,
                                    packet_min_fen=10, packet_max_fen=500, budget_fen=people * 2 * 100, packet_seed=seed, **window)
    outcome = Outcome(farm, devices, ordinary)

    # The farm: every account on one of its phones, each phone with one address; every account asks for its code.
    farm_ips = [f"117.{136 + k % 4}.{rng.randrange(256)}.{rng.randrange(1, 255)}" for k in range(devices)]
    farm_people: list[Person] = []
    modes = rng.choices([m for m, _ in FARM_MODES], weights=[w for _, w in FARM_MODES], k=farm)
    referees_of: Counter = Counter()
    attempts = 0

    def tally(mode: str, arrival) -> None:
        nonlocal attempts
        attempts += 1
        outcome.farm_binds[f"{mode}:{'bound' if arrival and arrival.referral else (arrival.refused if arrival else 'none')}"] += 1

    ring_members: list[Person] = []
    for j, mode in enumerate(modes):
        phone, ip = f"farm-phone-{j % devices}", farm_ips[j % devices]
        mates = [p for p in farm_people if p.device_id == phone]
        others = [p for p in farm_people if p.device_id != phone]
        if mode == "same_device" and not mates or mode == "cross_device" and not others:
            mode = "self"  # nobody to invite it yet: the farm's first accounts refer themselves
        if mode in ("same_device", "cross_device"):
            # The account's first login carries the code of an account on the same phone, or of the
            # farm account on another phone with the fewest referees so far.
            inviter = rng.choice(mates) if mode == "same_device" else min(others, key=lambda p: (referees_of[p.customer_id], rng.random()))
            referees_of[inviter.customer_id] += 1
            person, arrival = await _arrive(bank_id, phone, ip, farm=True, scene=inviter.code)
            tally(mode, arrival)
        else:
            person, _ = await _arrive(bank_id, phone, ip, farm=True)
        await _code(person, bank_id)
        if mode == "self":
            tally(mode, await _login_with(person, person.code))
        elif mode == "ring":
            ring_members.append(person)
        farm_people.append(person)
    # Rings of accounts that exist: each invites the next, the last the first (A→B→…→J→A).
    for start in range(0, len(ring_members), RING):
        ring = ring_members[start : start + RING]
        for k, member in enumerate(ring):
            tally("ring", await _login_with(ring[(k + 1) % len(ring)], member.code))

    # The ordinary users: established inviters first, then their friends, whose first login carries
    # the code they were sent.
    addresses = _ordinary_addresses(rng, ordinary)
    inviters_count = max(1, int(ordinary * INVITERS_SHARE))
    ordinary_people: list[Person] = []
    refused_ordinary: set[int] = set()
    for i in range(ordinary):
        phone = f"phone-{rng.getrandbits(64):016x}"
        if i < inviters_count:
            person, _ = await _arrive(bank_id, phone, addresses[i], farm=False, days_ago=40)
            await _code(person, bank_id)
        else:
            inviter = ordinary_people[((i - inviters_count) // FRIENDS_EACH) % inviters_count]
            person, arrival = await _arrive(bank_id, phone, addresses[i], farm=False, scene=inviter.code)
            if arrival is None or arrival.referral is None:
                refused_ordinary.add(person.customer_id)
                outcome.ordinary_refusals[f"bind:{arrival.refused if arrival else 'none'}"] += 1
        ordinary_people.append(person)
    friends = ordinary_people[inviters_count:]

    # Rewards: the milestone is "registered", so settling grants at once (what the outbox listener does).
    for referral_id in await InviteReferral.all().values_list("id", flat=True):
        await rewards.settle(referral_id)

    # Grabs: everybody once, farm and ordinary interleaved, a few at a time as requests arrive.
    desk = red_packets.GrabDesk(redis, key_prefix)
    try:
        everyone = farm_people + ordinary_people
        rng.shuffle(everyone)
        final: dict[int, str] = {}
        pending = everyone
        for round_no in range(GRAB_ROUNDS):
            retry, wait = [], 0
            for start in range(0, len(pending), GRAB_CONCURRENCY):
                chunk = pending[start : start + GRAB_CONCURRENCY]
                results = await asyncio.gather(*(_grab(desk, packets.id, bank_id, p) for p in chunk))
                for person, (result, retry_after) in zip(chunk, results):
                    if result == "rate_limited":
                        retry.append(person)
                        wait = max(wait, retry_after)
                    final[person.customer_id] = result
            if not retry:
                break
            outcome.grab_retry_rounds = round_no + 1
            if round_no + 1 < GRAB_ROUNDS:
                await asyncio.sleep(wait)
            pending = retry
    finally:
        await desk.close()

    await _pay_after_the_hold()

    # Count what the database holds.
    farm_ids = {p.customer_id for p in farm_people}
    outcome.farm_referral_rewards = await Reward.filter(campaign_id=cash.id, customer_id__in=farm_ids, status=PAID).count()
    outcome.farm_packets = await Reward.filter(campaign_id=packets.id, customer_id__in=farm_ids, status=PAID).count()
    outcome.farm_won = await Reward.filter(campaign_id=packets.id, customer_id__in=farm_ids).count()
    outcome.farm_rewards = outcome.farm_referral_rewards + outcome.farm_packets
    for status, code in await Reward.filter(campaign_id__in=[cash.id, packets.id], customer_id__in=farm_ids, status__not=HELD).values_list("status", "failure_code"):
        outcome.farm_payouts[f"{status}:{code}" if code else status] += 1
    outcome.farm_attempts = attempts + len(farm_people)
    for person in farm_people:
        outcome.farm_grabs[final[person.customer_id]] += 1
    unpaid = dict(await Reward.filter(campaign_id=packets.id, status__not=PAID).values_list("customer_id", "failure_code"))
    for person in ordinary_people:
        if final[person.customer_id] != "won":
            refused_ordinary.add(person.customer_id)
            outcome.ordinary_refusals[f"grab:{final[person.customer_id]}"] += 1
        elif person.customer_id in unpaid:
            refused_ordinary.add(person.customer_id)
            outcome.ordinary_refusals[f"packet:{unpaid[person.customer_id]}"] += 1
    # Each bound friend should have earned their inviter a reward held or granted.
    ordinary_referrals = await InviteReferral.filter(referee_id__in=[f.customer_id for f in friends]).values_list("id", "inviter_customer_id")
    earned = {r: (status, code) for r, status, code in await Reward.filter(
        campaign_id=cash.id, referral_id__in=[r for r, _ in ordinary_referrals]).values_list("referral_id", "status", "failure_code")}
    for referral_id, inviter_id in ordinary_referrals:
        status, code = earned.get(referral_id, ("none", None))
        if status != PAID:
            refused_ordinary.add(inviter_id)
            outcome.ordinary_refusals[f"reward:{code or status}"] += 1
    outcome.ordinary_refused = len(refused_ordinary)
    outcome.seconds = time.monotonic() - started
    return outcome


class DrillWeChatPay:
    """Stands in for WeChat Pay (``marketing.ports.WeChatPay``): pays every bill once and keeps a
    record of it. The drill measures our controls; the real client and the protocol are proved
    against the fake WeChat Pay in ``tests/integrations`` and the faults drill."""

    mch_id, appid = DEMO_WECHAT_PAY_MCH_ID, APPID

    def __init__(self) -> None:
        self.paid: dict[str, object] = {}

    async def send_mini_program_red_packet(self, *, bill_no: str, openid: str, amount_fen: int, act_name: str, wishing: str, remark: str):
        from marketing.ports import RedPacketRecord, RedPacketSent

        if bill_no not in self.paid:
            self.paid[bill_no] = RedPacketRecord(bill_no, "SENT", amount_fen, openid, f"drill{len(self.paid) + 1:012d}")
        return RedPacketSent(bill_no, self.paid[bill_no].detail_id, amount_fen, package=f"drill-{bill_no}")

    async def red_packet_record(self, bill_no: str):
        return self.paid.get(bill_no)

    def open_packet_params(self, package: str) -> dict:
        return {"package": package}


async def _pay_after_the_hold() -> int:
    """Let the campaigns' payout hold pass (the payout messages become due now) and relay them
    through the real payout handler; returns how many were handled."""
    from infra import clock
    from infra.outbox import OutboxMessage, relay_once
    from marketing.payouts import PAY_TOPIC, Payer
    from server.handlers import mini_program_openids

    await OutboxMessage.filter(topic=PAY_TOPIC, status="pending").update(next_attempt_at=clock.now())
    pay = DrillWeChatPay()
    # No top-up provider: the drill's campaigns pay red packets and referral cash (sent as a red
    # packet), never phone credit.
    handlers = {PAY_TOPIC: Payer(wechat_pay=pay, top_up=None, openids=mini_program_openids(APPID))}
    handled = 0
    while sent := await relay_once(handlers):
        handled += sent
    return handled


async def _grab(desk, campaign_id: int, bank_id: int, person: Person) -> tuple[str, int]:
    from infra.errors import DomainError
    from infra.rate_limit import RateLimited
    from marketing.red_packets import Grabber

    try:
        await desk.grab(campaign_id, Grabber(person.customer_id, bank_id, CHANNEL, person.device_id, person.ip))
        return "won", 0
    except RateLimited as limited:
        return "rate_limited", limited.retry_after
    except DomainError as refused:
        return type(refused).__name__, 0


# ---- the report ----------------------------------------------------------------------------------


def verdict(value: float) -> str:
    return "**met**" if value <= TARGET else "**missed**"


def report(outcome: Outcome, command: str) -> str:
    from marketing.abuse import PAYOUT_DEVICE_LIMIT

    binds = ", ".join(f"{k} {v}" for k, v in sorted(outcome.farm_binds.items()))
    grabs = ", ".join(f"{k} {v}" for k, v in sorted(outcome.farm_grabs.items()))
    refusals = ", ".join(f"{k} {v}" for k, v in sorted(outcome.ordinary_refusals.items())) or "none"
    payouts = ", ".join(f"{k} {v}" for k, v in sorted(outcome.farm_payouts.items())) or "none"
    return f"""## Abuse drill (issue 10.5)

Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}; PostgreSQL and Redis on this machine,
in-process through the service functions the routes call. Command: `{command}` ({outcome.seconds:.0f} s,
grab retry rounds after velocity refusals: {outcome.grab_retry_rounds}). What the farm and the ordinary users do
is in `bench/abuse_drill.py`.

| figure | value | target | |
| --- | --- | --- | --- |
| rewards reaching the farm / its attempts | {outcome.farm_rewards:,} / {outcome.farm_attempts:,} = {outcome.farm_ratio:.1%} | ≤ 1% | {verdict(outcome.farm_ratio)} |
| ordinary users wrongly refused | {outcome.ordinary_refused:,} / {outcome.ordinary_users:,} = {outcome.ordinary_ratio:.1%} | ≤ 1% | {verdict(outcome.ordinary_ratio)} |

- Farm: {outcome.farm_accounts:,} accounts; paid {outcome.farm_referral_rewards:,} referral rewards and {outcome.farm_packets:,} of the {outcome.farm_won:,} red packets it won.
- Farm referral attempts (mode:outcome): {binds}.
- Farm grabs: {grabs}.
- Farm rewards after the payout hold (status:code): {payouts}.
- Ordinary refusals (what:why): {refusals}.
- What bounds the farm's take: a phone counts as one person for red packets; a phone another
  customer already uses brings no new referee; and a reward to a customer on a phone more than
  {PAYOUT_DEVICE_LIMIT} customers use is not paid (checked when the campaign's {HOLD_MINUTES}-minute payout hold
  ends, so a farm's first account on a phone, which looks like anybody when it wins, is caught
  once the farm has filled the phone).
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--farm", type=int, default=1000)
    parser.add_argument("--ordinary", type=int, default=1000)
    parser.add_argument("--devices", type=int, default=20, help="phones (and addresses) the farm's accounts share")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-doc", action="store_true", help="print the figures without writing docs/reliability.md")
    args = parser.parse_args()
    outcome = asyncio.run(_main(args))
    command = "make abuse-drill" if sys.argv[1:] == [] else "python -m bench.abuse_drill " + " ".join(sys.argv[1:])
    text = report(outcome, command)
    print(text)
    if not args.no_doc:
        write_drill_section("abuse", text)


async def _main(args) -> Outcome:
    from infra.settings import Settings
    from server import database, demo_data

    env = {"APP_ENV": "dev", **postgres_env(DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, "the drill's controls")}
    settings = Settings.from_env(env)
    await database.recreate_postgres_database(settings.database_url)
    await database.apply_migrations(settings.database_url)
    prefix = f"abuse-drill:{uuid.uuid4().hex[:8]}:"
    async with app_stores(settings, redis=True) as redis:
        try:
            await demo_data.load()
            return await run_drill(redis, key_prefix=prefix, farm=args.farm, ordinary=args.ordinary, devices=args.devices, seed=args.seed)
        finally:
            keys = [key async for key in redis.scan_iter(match=prefix + "*")]
            if keys:
                await redis.delete(*keys)


if __name__ == "__main__":
    main()
