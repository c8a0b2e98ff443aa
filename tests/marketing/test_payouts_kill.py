"""The payout worker killed at the worst moment — WeChat Pay has accepted a payment and our commit
has not recorded it — then restarted: every winner is paid exactly once, by the fake WeChat Pay's
own ledger.

The worker is the real relay process (``python -m server.cli relay``) with the fault hook
``PAYOUT_FAULT=crash_after_wechat_pay_accepted``: it writes the bill number to a marker file and
freezes, and the test sends it SIGKILL. The killed worker's outbox lease would keep the message
for a minute; the test moves the lease's end into the past instead of waiting for it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

from infra import clock
from infra.outbox import OutboxMessage
from marketing.models import Payout, Reward
from tests.conftest import ENV
from tests.marketing.payout_support import FakePay, campaign, due_reward, wechat_customer

WINNERS = 5


def start_relay(settings, tmp_path, **extra: str) -> subprocess.Popen:
    env = {
        **ENV,
        "DATABASE_URL": settings.database_url,
        "WECHAT_API_BASE": settings.wechat_api_base,
        "WECHAT_TIMEOUT_MS": "2000",
        "NOTARY_DIR": str(tmp_path / "notary"),
        "REDIS_KEY_PREFIX": settings.redis_key_prefix,
        "LOG_LEVEL": "WARNING",
        **extra,
    }
    if settings.redis_url:
        env["REDIS_URL"] = settings.redis_url
    log = open(tmp_path / f"relay-{len(list(tmp_path.glob('relay-*')))}.log", "w")
    return subprocess.Popen([sys.executable, "-m", "server.cli", "relay"], env=env, stdout=log, stderr=subprocess.STDOUT)


async def wait_for(check, *, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def test_killed_after_wechat_pay_accepted_then_restarted_pays_every_winner_once(settings, fake_wechat, demo, tmp_path):
    pay = FakePay(fake_wechat)
    await pay.reset()
    packets = await campaign("red_packet", budget_fen=100_000)
    winners = {}
    for n in range(WINNERS):
        customer, openid = await wechat_customer()
        reward, _ = await due_reward(packets, customer, 100 + 37 * n)
        winners[reward.id] = (openid, reward.amount_fen)

    marker = tmp_path / "payout.marker"
    crashing = start_relay(settings, tmp_path, PAYOUT_FAULT="crash_after_wechat_pay_accepted", PAYOUT_FAULT_MARKER=str(marker))
    try:
        async def marked():
            return marker.exists() and marker.read_text().strip()

        frozen_bill = await wait_for(marked, seconds=60, what="the worker to reach the fault point")
    finally:
        os.kill(crashing.pid, signal.SIGKILL)
        crashing.wait(timeout=10)
    assert crashing.returncode == -signal.SIGKILL
    # The worst moment: WeChat Pay paid this bill, and our database does not say so. The relay
    # sends payouts side by side, so others may have been caught in flight with it: those WeChat
    # Pay paid and we did not record must be asked for again; those we recorded, never.
    paid_there = {p["mch_billno"] for p in await pay.ledger()}
    recorded_here = {p.bill_no for p in await Payout.filter(status="paid")}
    assert frozen_bill in paid_there and frozen_bill not in recorded_here
    frozen = await Payout.get(bill_no=frozen_bill)
    assert frozen.status == "paying"
    assert (await Reward.get(id=frozen.reward_id)).status == "paying"
    caught_in_flight = paid_there - recorded_here

    # The dead worker's lease is skipped rather than waited for (60 s).
    await OutboxMessage.filter(status="sending").update(lease_until=clock.now() - timedelta(seconds=1))
    restarted = start_relay(settings, tmp_path)
    try:
        async def all_paid():
            return await Reward.filter(id__in=list(winners), status="paid").count() == WINNERS

        await wait_for(all_paid, seconds=90, what="every winner to be paid")
    finally:
        restarted.terminate()
        restarted.wait(timeout=15)

    ledger = await pay.ledger()
    payouts = {p.bill_no: p for p in await Payout.filter(reward_id__in=list(winners))}
    # Exactly one payment per winner, to the winner, of the winner's amount.
    assert len(ledger) == WINNERS
    assert {p["mch_billno"] for p in ledger} == set(payouts)
    for packet in ledger:
        openid, amount = winners[payouts[packet["mch_billno"]].reward_id]
        assert (packet["re_openid"], packet["total_amount"]) == (openid, amount)
    # The bills caught mid-payment were asked for again, and WeChat Pay answered the original.
    requests = {p["mch_billno"]: p["requests"] for p in ledger}
    asked_twice = {bill for bill, count in requests.items() if count == 2}
    assert caught_in_flight <= asked_twice  # (a request still on its way at the kill may add to them)
    assert not asked_twice & recorded_here  # what we had recorded as paid was never asked for again
    assert all(count <= 2 for count in requests.values())
    assert all(p.status == "paid" for p in payouts.values())
    assert await OutboxMessage.filter(status="sent", topic="marketing.pay_reward").count() == WINNERS
