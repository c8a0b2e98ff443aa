"""The red-packet rush, for real: 10,000 grabs (a fifth from people who already grabbed) over
HTTP, through many concurrent connections, at a running server of two worker processes, on a
pool of 1,000 packets. Exactly 1,000 people win, each once; the amounts add up to the budget to
the fen; the database and Redis tell the same story."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest

from bench import applicants
from infra.outbox import OutboxMessage
from marketing import red_packets
from marketing.models import Campaign, Reward
from tests.marketing.campaign_support import red_packet_terms, scheduled_campaign
from tests.support import free_port, wait_until_listening

ROOT = Path(__file__).resolve().parents[2]
PACKETS, BUDGET_FEN, PEOPLE, REPEATS, CONNECTIONS = 1_000, 150_000, 8_000, 2_000, 128


@pytest.fixture
def real_stores(settings):
    if settings.uses_embedded_database or settings.uses_embedded_redis:
        pytest.skip(
            "needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL): the embedded SQLite file and in-process "
            "Redis serve one process, and this test runs a two-worker server over a real socket"
        )
    return settings


@pytest.fixture
def grab_server(real_stores):
    port = free_port()
    env = {
        **os.environ,
        "APP_ENV": "test",
        "DATABASE_URL": real_stores.database_url,
        "REDIS_URL": real_stores.redis_url,
        "REDIS_KEY_PREFIX": real_stores.redis_key_prefix,
        "SECRET_KEY": real_stores.secret_key,
        "PORT": str(port),
        "RUN_EMBEDDED_WORKERS": "false",
        "LOG_LEVEL": "WARNING",
        # Every request comes from 127.0.0.1: the per-address limit is not what this test is about.
        "GRAB_LIMIT_ADDRESS_PER_MINUTE": "1000000",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--workers", "2"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        wait_until_listening(port, server, seconds=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


async def test_ten_thousand_grabs_at_a_thousand_packets(real_stores, redis, demo, grab_server):
    live = await scheduled_campaign(red_packet_terms(count=PACKETS, budget_fen=BUDGET_FEN, min_fen=30, max_fen=300))
    tokens = await applicants.create(PEOPLE, bank_code="HZRCB", purposes=(), secret_key=real_stores.secret_key, channel="wechat_miniprogram")
    people = list(range(PEOPLE))
    # A fifth of the grabs are second tries by people who already grabbed (some of them while
    # their first is still in flight).
    tries = people + random.Random(6).sample(people, REPEATS)
    random.Random(7).shuffle(tries[: PEOPLE // 2])
    gate = asyncio.Semaphore(CONNECTIONS)
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)

    async with httpx.AsyncClient(base_url=grab_server, limits=limits, timeout=60) as http:

        async def grab(person: int):
            async with gate:
                answer = await http.post(
                    f"/api/v1/campaigns/{live.id}/red-packets/grab",
                    headers={"Authorization": f"Bearer {tokens[person]}", "X-Device-Id": f"device-{person:08d}"},
                )
                return person, answer.status_code, answer.json()

        answers = await asyncio.gather(*(grab(person) for person in tries))

    statuses = Counter(status for _, status, _ in answers)
    refusals = Counter(body["error"]["code"] for _, status, body in answers if status != 201)
    assert statuses[201] == PACKETS, (statuses, refusals)
    assert set(refusals) <= {"RED_PACKETS_GONE", "ALREADY_GRABBED"}, refusals
    assert sum(statuses.values()) == PEOPLE + REPEATS

    won = {body["reward_id"]: (person, body["amount_fen"]) for person, status, body in answers if status == 201}
    winners = [person for person, _ in won.values()]
    assert len(set(winners)) == PACKETS  # nobody won twice
    assert sum(amount for _, amount in won.values()) == BUDGET_FEN

    # The database agrees with what the winners were told…
    rows = await Reward.filter(campaign_id=live.id).values_list("id", "customer_id", "packet_index", "amount_fen", "status")
    assert len(rows) == PACKETS
    assert {r[0] for r in rows} == set(won)
    assert len({r[1] for r in rows}) == PACKETS and len({r[2] for r in rows}) == PACKETS
    assert sum(r[3] for r in rows) == BUDGET_FEN == (await Campaign.get(id=live.id)).committed_fen
    assert {r[4] for r in rows} == {"due"}
    assert {r[0]: r[3] for r in rows} == {reward_id: amount for reward_id, (_, amount) in won.items()}
    split = red_packets.split_of(await Campaign.get(id=live.id))
    assert all(split[index] == amount for _, _, index, amount, _ in rows)
    assert await OutboxMessage.filter(topic="marketing.pay_reward").count() == PACKETS

    # …and Redis agrees with the database: the pool is empty and it took the same people once each.
    state = await red_packets.pool_state(redis, live.id, key_prefix=real_stores.redis_key_prefix)
    assert state["loaded"] and state["packets_left"] == 0
    assert state["taken"] == {customer_id: 1 for _, customer_id, _, _, _ in rows}

