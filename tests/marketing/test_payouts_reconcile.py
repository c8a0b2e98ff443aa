"""Reconciliation: our red-packet payouts of a day against WeChat Pay's records, with differences
planted on both sides."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from infra import clock
from infra.outbox import OutboxMessage
from marketing.models import Payout, Reward
from marketing.payouts import bill_number, reconcile
from server.providers import build_providers
from tests.conftest import ENV
from tests.marketing.payout_support import FakePay, campaign, due_reward, relay_all, wechat_customer

MCH_ID = "1900000109"


@pytest.fixture
async def pay(fake_wechat, demo):
    fake = FakePay(fake_wechat)
    await fake.reset()
    return fake


async def test_reconciliation_reports_each_planted_difference_and_nothing_else(settings, redis, pay, tmp_path):
    packets = await campaign("red_packet", budget_fen=100_000)
    people = [await wechat_customer() for _ in range(5)]
    matched, _ = await due_reward(packets, people[0][0], 200)
    mismatched, _ = await due_reward(packets, people[1][0], 300)
    refunded, _ = await due_reward(packets, people[2][0], 400)
    await relay_all(settings, redis)
    assert await Reward.filter(status="paid").count() == 3
    day = clock.business_date()

    # Ours says another amount than WeChat Pay paid.
    await Payout.filter(reward_id=mismatched.id).update(amount_fen=301)
    # WeChat Pay sent the packet back: never opened within 24 hours.
    refunded_bill = (await Payout.get(reward_id=refunded.id)).bill_no
    await pay.packet(refunded_bill, "refund")
    # Ours says paid, WeChat Pay never heard of the bill.
    ghost, ghost_message = await due_reward(packets, people[3][0], 500)
    await OutboxMessage.filter(id=ghost_message.id).delete()
    ghost_bill = bill_number(MCH_ID, day, 9_000_001)
    await Reward.filter(id=ghost.id).update(status="paid", paid_at=clock.now())
    await Payout.create(
        reward_id=ghost.id, bank_id=ghost.bank_id, customer_id=ghost.customer_id, channel="wechat_red_packet", bill_no=ghost_bill,
        business_date=day, outbox_message_id=9_000_001, amount_fen=500, status="paid", paid_at=clock.now(),
    )
    # WeChat Pay paid a bill of one of our messages, and we have no payout for it.
    unrecorded, message = await due_reward(packets, people[4][0], 600)
    await OutboxMessage.filter(id=message.id).update(status="sent")  # as if its payout row were lost
    wechat_pay = build_providers(settings, redis).wechat_pay
    unrecorded_bill = bill_number(MCH_ID, clock.business_date(message.created_at), message.id)
    await wechat_pay.send_mini_program_red_packet(
        bill_no=unrecorded_bill, openid=people[4][1], amount_fen=600, act_name="测试", wishing="恭喜", remark="备注"
    )

    report = await reconcile(day, wechat_pay)

    found = {(d.kind, d.bill_no): (d.ours_fen, d.theirs_fen, d.our_status, d.their_status) for d in report.differences}
    mismatched_bill = (await Payout.get(reward_id=mismatched.id)).bill_no
    assert found == {
        ("amount_mismatch", mismatched_bill): (301, 300, "paid", "SENT"),
        ("refunded_unclaimed", refunded_bill): (400, 400, "paid", "REFUND"),
        ("here_not_there", ghost_bill): (500, None, "paid", None),
        ("paid_there_not_here", unrecorded_bill): (None, 600, None, "SENT"),
    }
    assert report.matched == 1
    assert report.checked == 5
    by_bill = {d.bill_no: d.reward_id for d in report.differences}
    assert by_bill[unrecorded_bill] == unrecorded.id

    # The same through the command line, as the daily job runs it.
    command = subprocess.run(
        [sys.executable, "-m", "server.cli", "reconcile-payouts", "--date", day.isoformat()],
        env={**ENV, "DATABASE_URL": settings.database_url, "WECHAT_API_BASE": settings.wechat_api_base, "NOTARY_DIR": str(tmp_path), "LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert command.returncode == 3, command.stderr
    printed = json.loads(command.stdout)
    assert sorted(d["kind"] for d in printed["differences"]) == ["amount_mismatch", "here_not_there", "paid_there_not_here", "refunded_unclaimed"]


async def test_a_day_that_matches_reports_no_difference(settings, redis, pay):
    packets = await campaign("red_packet")
    winner, _ = await wechat_customer()
    await due_reward(packets, winner, 250)
    await relay_all(settings, redis)

    report = await reconcile(clock.business_date(), build_providers(settings, redis).wechat_pay)

    assert (report.checked, report.matched, report.differences) == (1, 1, [])
