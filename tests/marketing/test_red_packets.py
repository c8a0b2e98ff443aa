"""Red packets: the split adds up, a grab is told only what the database holds, every refusal
is clear, and a pool Redis lost is rebuilt from the database packet for packet."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given, settings as hypothesis_settings, strategies as st

from infra import clock
from infra.actors import system
from infra.audit import AuditEntry
from infra.outbox import OutboxMessage
from lending_core.risk_lists import service as lists
from marketing import campaigns, packets, red_packets
from marketing.models import Campaign, Reward
from server.app import create_app
from tests.marketing.campaign_support import bank_id, red_packet_terms, scheduled_campaign, staff_actor
from tests.marketing.support import new_customer
from tests.support import StartedOnceClient, bearer, customer_token

# ---- the split (pure) ----------------------------------------------------------------------------


@st.composite
def feasible_terms(draw):
    count = draw(st.integers(1, 300))
    low = draw(st.integers(1, 500))
    high = draw(st.integers(low, low + 2_000))
    budget = draw(st.integers(count * low, count * high))
    return budget, count, low, high


@hypothesis_settings(max_examples=300, deadline=None)
@given(feasible_terms(), st.integers(0, 2**62))
def test_a_split_sums_to_the_budget_with_every_packet_in_bounds(terms, seed):
    budget, count, low, high = terms
    amounts = packets.split(budget_fen=budget, count=count, min_fen=low, max_fen=high, seed=seed)
    assert len(amounts) == count
    assert sum(amounts) == budget
    assert all(isinstance(a, int) and low <= a <= high for a in amounts)
    assert amounts == packets.split(budget_fen=budget, count=count, min_fen=low, max_fen=high, seed=seed)  # same seed, same split


def test_a_split_is_random_between_seeds_and_spreads_within_the_bounds():
    first = packets.split(budget_fen=100_000, count=1_000, min_fen=1, max_fen=500, seed=1)
    second = packets.split(budget_fen=100_000, count=1_000, min_fen=1, max_fen=500, seed=2)
    assert first != second
    assert len(set(first)) > 100  # not everyone gets the mean
    assert min(first) < 50 and max(first) > 150


@pytest.mark.parametrize(
    "budget, count, low, high",
    [(9, 10, 1, 100), (1_001, 10, 1, 100), (100, 10, 0, 100), (100, 10, 20, 10), (100, 0, 1, 100)],
)
def test_an_impossible_split_is_refused(budget, count, low, high):
    assert packets.split_problems(budget_fen=budget, count=count, min_fen=low, max_fen=high)
    with pytest.raises(ValueError):
        packets.split(budget_fen=budget, count=count, min_fen=low, max_fen=high, seed=1)


def test_the_edges_of_a_split_are_exact():
    assert packets.split(budget_fen=10, count=10, min_fen=1, max_fen=100, seed=3) == [1] * 10
    assert packets.split(budget_fen=1_000, count=10, min_fen=1, max_fen=100, seed=3) == [100] * 10


# ---- grabbing ------------------------------------------------------------------------------------


def grab_path(campaign_id: int) -> str:
    return f"/api/v1/campaigns/{campaign_id}/red-packets/grab"


async def grabber(app, bank: str = "HZRCB", *, phone: str | None = None, channel: str = "wechat_miniprogram") -> tuple[int, dict]:
    customer = await new_customer(bank=bank, phone=phone)
    return customer.id, bearer(await customer_token(app, customer.id, await bank_id(bank), channel=channel))


async def grab(client, campaign_id: int, headers: dict, **extra):
    _, answer = await client.post(grab_path(campaign_id), headers={**headers, **extra})
    return answer


def pool_keys(settings, campaign_id: int) -> red_packets.PoolKeys:
    return red_packets.PoolKeys.of(settings.redis_key_prefix, campaign_id)


async def forget_terms(app) -> None:
    desk = getattr(app.ctx, "grab_desk", None)
    if desk is not None:
        desk.forget()


@pytest.fixture
async def fresh_desk(app):
    """Each test sees campaigns as the database has them now (the desk keeps them a second)."""
    await forget_terms(app)
    yield
    await forget_terms(app)


async def test_a_win_is_a_committed_reward_with_its_payout_queued(app, client, settings, demo, fresh_desk):
    live = await scheduled_campaign()
    customer_id, headers = await grabber(app)

    answer = await grab(client, live.id, headers)

    assert answer.status == 201, answer.text
    won = answer.json
    reward = await Reward.get(id=won["reward_id"])
    assert (reward.customer_id, reward.campaign_id, reward.status, reward.amount_fen, reward.seq) == (customer_id, live.id, "due", won["amount_fen"], 1)
    assert reward.bank_id == await bank_id("HZRCB")
    expected = red_packets.split_of(await Campaign.get(id=live.id))
    assert won["amount_fen"] == expected[reward.packet_index]
    message = await OutboxMessage.get(topic="marketing.pay_reward")
    assert message.payload == {"reward_id": reward.id} and message.bank_id == reward.bank_id
    assert (await Campaign.get(id=live.id)).committed_fen == won["amount_fen"]
    audit = await AuditEntry.get(action="red_packet.won", object_id=str(live.id))
    assert audit.after["rewards"] == [[reward.id, customer_id, won["amount_fen"]]]
    _, mine = await client.get("/api/v1/me/rewards", headers=headers)
    assert [(r["id"], r["status"], r["amount_fen"]) for r in mine.json["items"]] == [(reward.id, "due", won["amount_fen"])]


async def test_a_second_grab_is_refused_and_changes_nothing(app, client, demo, fresh_desk):
    live = await scheduled_campaign()
    _, headers = await grabber(app)
    assert (await grab(client, live.id, headers)).status == 201

    again = await grab(client, live.id, headers)

    assert again.status == 409 and again.json["error"]["code"] == "ALREADY_GRABBED"
    assert await Reward.filter(campaign_id=live.id).count() == 1


async def test_limits_per_day_and_per_person(app, client, demo, fresh_desk):
    one_a_day = await scheduled_campaign(red_packet_terms(per_person=2, per_day=1))
    two_a_day = await scheduled_campaign(red_packet_terms(per_person=2, per_day=2))
    _, headers = await grabber(app)

    assert (await grab(client, one_a_day.id, headers)).status == 201
    daily = await grab(client, one_a_day.id, headers)
    assert daily.status == 409 and daily.json["error"]["code"] == "DAILY_GRAB_LIMIT_REACHED"
    assert [(await grab(client, two_a_day.id, headers)).status for _ in range(2)] == [201, 201]
    over = await grab(client, two_a_day.id, headers)
    assert over.status == 409 and over.json["error"]["code"] == "GRAB_LIMIT_REACHED"
    assert await Reward.filter(campaign_id=two_a_day.id).order_by("seq").values_list("seq", flat=True) == [1, 2]


async def test_no_grab_from_a_campaign_that_is_not_live(app, client, demo, fresh_desk):
    later = await scheduled_campaign(red_packet_terms(starts_at=clock.now() + timedelta(hours=1)))
    paused = await scheduled_campaign()
    await campaigns.transition(await staff_actor("hz.marketer"), paused.id, "pause")
    draft = await campaigns.create(await staff_actor("hz.marketer"), red_packet_terms())
    _, headers = await grabber(app)

    for campaign_id in (later.id, paused.id, draft.id):
        answer = await grab(client, campaign_id, headers)
        assert answer.status == 409 and answer.json["error"]["code"] == "CAMPAIGN_NOT_LIVE", answer.text
    assert await Reward.all().count() == 0


async def test_a_campaign_paused_after_the_desk_read_it_refuses_at_commit(app, client, settings, demo, fresh_desk):
    live = await scheduled_campaign()
    _, first = await grabber(app)
    assert (await grab(client, live.id, first)).status == 201  # the desk now holds the terms as live
    await Campaign.filter(id=live.id).update(status="paused")  # behind the desk's back
    _, second = await grabber(app)

    answer = await grab(client, live.id, second)

    assert answer.status == 409 and answer.json["error"]["code"] == "CAMPAIGN_NOT_LIVE"
    assert await Reward.filter(campaign_id=live.id).count() == 1  # the refused batch's reward was rolled back
    assert await OutboxMessage.filter(topic=red_packets.PAY_REWARD_TOPIC).count() == 1
    state = await red_packets.pool_state(app.ctx.redis, live.id, key_prefix=settings.redis_key_prefix)
    assert state["packets_left"] == 9  # the packet went back


async def test_other_banks_and_other_channels_are_refused(app, client, demo, fresh_desk):
    theirs = await scheduled_campaign(by="ls.marketer")
    bank_app = await scheduled_campaign(red_packet_terms(channels=("mobile_bank",)))
    _, headers = await grabber(app)

    assert (await grab(client, theirs.id, headers)).json["error"]["code"] == "CAMPAIGN_NOT_FOUND"
    assert (await grab(client, bank_app.id, headers)).json["error"]["code"] == "CHANNEL_NOT_IN_CAMPAIGN"
    assert (await grab(client, 987654321, headers)).status == 404
    referral = await campaigns.create(await staff_actor("hz.marketer"), replace(red_packet_terms(), kind="qr_share", packet_count=None, packet_min_fen=None, packet_max_fen=None))
    await campaigns.submit(await staff_actor("hz.marketer"), referral.id, thresholds=campaigns.ApprovalThresholds(5_000_000))
    assert (await grab(client, referral.id, headers)).json["error"]["code"] == "NOT_A_RED_PACKET_CAMPAIGN"


async def test_a_blacklisted_customer_earns_nothing_and_the_packet_goes_back(app, client, settings, demo, fresh_desk):
    live = await scheduled_campaign()
    phone = "13912340001"
    _, headers = await grabber(app, phone=phone)
    await lists.add(system("test"), level="blacklist_prohibit", id_number=None, phone=phone, unionid=None, reason="fraud", bank_id=await bank_id("HZRCB"))

    answer = await grab(client, live.id, headers)

    assert answer.status == 403 and answer.json["error"]["code"] == "CUSTOMER_BLACKLISTED", answer.text
    assert await Reward.all().count() == 0
    assert (await Campaign.get(id=live.id)).committed_fen == 0
    state = await red_packets.pool_state(app.ctx.redis, live.id, key_prefix=settings.redis_key_prefix)
    assert state["packets_left"] == 10 and state["taken"] == {}


async def test_when_the_pool_is_empty_the_grab_says_so(app, client, demo, fresh_desk):
    live = await scheduled_campaign(red_packet_terms(count=2, budget_fen=100, max_fen=70))
    answers = [await grab(client, live.id, (await grabber(app))[1]) for _ in range(3)]
    assert [a.status for a in answers] == [201, 201, 409]
    assert answers[2].json["error"]["code"] == "RED_PACKETS_GONE"
    assert sum(a.json["amount_fen"] for a in answers[:2]) == 100


async def test_a_device_grabbing_too_fast_is_slowed_down(app, client, demo, fresh_desk):
    limits = app.ctx.settings.grab_limit_device_per_minute
    # A device is one person (its packets count against the per-person limit): let it take more than the velocity allows.
    live = await scheduled_campaign(red_packet_terms(count=50, budget_fen=5_000, per_person=limits + 1))
    device = {"X-Device-Id": "device-0123456789"}
    statuses = []
    for _ in range(limits + 1):
        _, headers = await grabber(app)
        statuses.append((await grab(client, live.id, headers, **device)).status)
    assert statuses == [201] * limits + [429], statuses


async def test_concurrent_grabs_never_oversell_nor_double_grab(app, client, demo, fresh_desk):
    live = await scheduled_campaign(red_packet_terms(count=30, budget_fen=3_000, max_fen=200))
    people = [await grabber(app) for _ in range(40)]
    tries = people + people[:10]  # ten of them try twice, at once

    answers = await asyncio.gather(*(grab(client, live.id, headers) for _, headers in tries))

    won = [a.json for a in answers if a.status == 201]
    codes = Counter(a.json["error"]["code"] for a in answers if a.status != 201)
    assert len(won) == 30
    assert set(codes) <= {"RED_PACKETS_GONE", "ALREADY_GRABBED"}
    rewards = await Reward.filter(campaign_id=live.id).values_list("customer_id", "packet_index", "amount_fen")
    assert len({c for c, _, _ in rewards}) == 30 and len({i for _, i, _ in rewards}) == 30
    assert sum(a for _, _, a in rewards) == 3_000 == (await Campaign.get(id=live.id)).committed_fen
    assert sorted(w["reward_id"] for w in won) == sorted(await Reward.filter(campaign_id=live.id).values_list("id", flat=True))


# ---- Redis lost or down --------------------------------------------------------------------------


async def test_rebuild_pool_puts_back_exactly_what_no_reward_names(app, client, settings, demo, fresh_desk):
    live = await scheduled_campaign(red_packet_terms(count=20, budget_fen=2_000, max_fen=200, per_person=2, per_day=2))
    people = [await grabber(app) for _ in range(5)]
    for _, headers in people:
        assert (await grab(client, live.id, headers)).status == 201
    assert (await grab(client, live.id, people[0][1])).status == 201  # a second packet for the first
    before = await red_packets.pool_state(app.ctx.redis, live.id, key_prefix=settings.redis_key_prefix)
    keys = pool_keys(settings, live.id)
    await app.ctx.redis.delete(keys.pool, keys.taken, keys.seqs, keys.meta, keys.day(clock.now()))  # Redis lost it

    rebuilt = await red_packets.rebuild_pool(app.ctx.redis, live.id, key_prefix=settings.redis_key_prefix)

    after = await red_packets.pool_state(app.ctx.redis, live.id, key_prefix=settings.redis_key_prefix)
    assert (rebuilt.packets_left, rebuilt.packets_taken, rebuilt.people) == (14, 6, 5)
    assert after["packets_left"] == before["packets_left"] == 14
    assert after["taken"] == before["taken"]
    left = [entry.decode() for entry in await app.ctx.redis.lrange(keys.pool, 0, -1)]
    taken = set(await Reward.filter(campaign_id=live.id).values_list("packet_index", flat=True))
    amounts = red_packets.split_of(await Campaign.get(id=live.id))
    assert sorted(left) == sorted(f"{i}:{a}" for i, a in enumerate(amounts) if i not in taken)
    # The limits hold across the loss: the first person has had both of theirs.
    assert (await grab(client, live.id, people[0][1])).json["error"]["code"] == "GRAB_LIMIT_REACHED"
    assert (await grab(client, live.id, people[1][1])).json["seq"] == 2


async def test_a_lost_pool_is_rebuilt_by_the_next_grab_and_drains_to_the_budget(app, client, settings, demo, fresh_desk):
    live = await scheduled_campaign(red_packet_terms(count=8, budget_fen=800, max_fen=150))
    for _ in range(3):
        assert (await grab(client, live.id, (await grabber(app))[1])).status == 201
    keys = pool_keys(settings, live.id)
    await app.ctx.redis.delete(keys.pool, keys.taken, keys.seqs, keys.meta)

    answers = [await grab(client, live.id, (await grabber(app))[1]) for _ in range(6)]

    assert [a.status for a in answers] == [201] * 5 + [409]
    rewards = await Reward.filter(campaign_id=live.id).values_list("packet_index", "amount_fen")
    assert len({i for i, _ in rewards}) == 8
    assert sum(a for _, a in rewards) == 800 == (await Campaign.get(id=live.id)).committed_fen


async def test_redis_down_campaign_routes_answer_503_and_lending_routes_work(settings, demo):
    from redis import asyncio as redis_asyncio

    gone = redis_asyncio.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)  # nothing listens on port 1
    app = create_app(settings, name="redis_down", redis=gone, manage_database=False)
    client = StartedOnceClient(app)
    try:
        live = await scheduled_campaign()
        _, headers = await grabber(app)

        answer = await grab(client, live.id, headers)
        _, listing = await client.get("/api/v1/campaigns", headers=headers)
        _, products = await client.get("/api/v1/products", headers=headers)
        _, rewards = await client.get("/api/v1/me/rewards", headers=headers)
    finally:
        await client.stop()

    assert answer.status == 503, answer.text
    assert answer.json["error"]["code"] == "CAMPAIGNS_UNAVAILABLE"
    assert int(answer.headers["Retry-After"]) >= 1
    assert listing.status == 503 and listing.headers["Retry-After"]
    assert products.status == 200, products.text
    assert rewards.status == 200
    assert await Reward.all().count() == 0 and (await Campaign.get(id=live.id)).committed_fen == 0


async def test_a_desk_closed_mid_grab_commits_what_it_took_from_the_pool_first(settings, redis, demo):
    # A worker stopped (a deploy, Ctrl-C) while grabs are out: each packet taken is committed as a
    # reward before the loops stop, so the pool and the database still agree.
    live = await scheduled_campaign()
    bank = await bank_id()
    desk = red_packets.GrabDesk(redis, settings.redis_key_prefix)
    grabbers = [await new_customer(bank="HZRCB") for _ in range(5)]
    grabs = [asyncio.ensure_future(desk.grab(live.id, red_packets.Grabber(c.id, bank, "wechat_miniprogram", f"dev-{c.id}", "36.1.2.3"))) for c in grabbers]
    while not desk._asks:  # the grabs are asked: the script call and the commit are still to come
        await asyncio.sleep(0)

    await desk.close()

    won = await asyncio.wait_for(asyncio.gather(*grabs), timeout=5)  # none left hanging
    state = await red_packets.pool_state(redis, live.id, key_prefix=settings.redis_key_prefix)
    assert len(won) == await Reward.filter(campaign_id=live.id).count() == 5
    assert live.packet_count - state["packets_left"] == 5


async def test_a_desk_out_of_time_answers_every_grab_it_holds_and_serves_the_next(settings, redis, demo):
    # Redis stops answering while a worker stops: past the drain time the grab in hand is refused
    # (503, nothing taken), not left hanging, and the desk is not left thinking a task is on its way.
    live = await scheduled_campaign()
    bank = await bank_id()
    desk = red_packets.GrabDesk(redis, settings.redis_key_prefix)
    run_script, never = desk._run_script, asyncio.Event()

    async def unanswered(asks):
        await never.wait()

    first, second, third = [await new_customer(bank="HZRCB") for _ in range(3)]

    def grab(customer):
        return desk.grab(live.id, red_packets.Grabber(customer.id, bank, "wechat_miniprogram", f"dev-{customer.id}", "36.1.2.3"))

    desk._run_script = unanswered
    stuck = asyncio.ensure_future(grab(first))
    while not desk._running:
        await asyncio.sleep(0)
    await desk.close(drain_seconds=0.05)

    with pytest.raises(red_packets.CampaignsUnavailable):
        await asyncio.wait_for(stuck, timeout=5)
    desk._run_script = run_script
    # Stopped at once: the task started for this grab is cancelled before it ever runs.
    unstarted = asyncio.ensure_future(grab(second))
    await asyncio.sleep(0)
    await desk.close(drain_seconds=0)
    with pytest.raises(red_packets.CampaignsUnavailable):
        await asyncio.wait_for(unstarted, timeout=5)

    won = await asyncio.wait_for(grab(third), timeout=5)
    assert [r.customer_id for r in await Reward.filter(campaign_id=live.id)] == [third.id] and won.amount_fen > 0
    await desk.close()


async def test_a_stopping_worker_closes_the_grab_desk_before_the_database_and_redis(settings, monkeypatch):
    # Sanic runs shutdown listeners last-registered first: the desk's last commits need both.
    from server import database

    closed = []

    async def close_database():
        closed.append("database")

    async def close_desk(self, **_):
        closed.append("desk")

    class Redis:
        async def aclose(self):
            closed.append("redis")

    monkeypatch.setattr(database, "close_database", close_database)
    monkeypatch.setattr(red_packets.GrabDesk, "close", close_desk)
    app = create_app(settings, redis=Redis())
    app.ctx.grab_desk = red_packets.GrabDesk(None, "test:")
    app.signalize()  # what starting the server does first

    await app._server_event("shutdown", "after", loop=asyncio.get_running_loop())

    assert closed == ["desk", "database", "redis"]
