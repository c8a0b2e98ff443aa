"""Paying rewards through the outbox: WeChat Pay red packets (against the fake WeChat Pay, through
the real wechatpy client) and phone top-ups (the sandbox provider). Each test reads what was
really paid from the fake's own ledger."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from infra import clock
from infra.audit import AuditEntry
from infra.errors import IllegalTransition
from infra.outbox import OutboxMessage, RelayPolicy
from lending_core.customers.models import Customer
from lending_core.org.models import Staff
from marketing import abuse, red_packets, rewards
from marketing import service as invites
from marketing.models import Campaign, Payout, Reward
from marketing.payouts import PAYOUT_STATUS, REWARD_PAYOUT, WAITING_FOR_RECONCILIATION, bill_number, top_up_order_id
from tests.marketing.campaign_support import red_packet_terms, scheduled_campaign
from tests.marketing.payout_support import FakePay, campaign, due_reward, make_due_now, relay_all, wechat_customer
from tests.marketing.support import customer_code, device, new_customer

MCH_ID = "1900000109"


@pytest.fixture
async def pay(fake_wechat, demo):
    fake = FakePay(fake_wechat)
    await fake.reset()
    return fake


# ---- pure parts ---------------------------------------------------------------------------------


def test_the_bill_number_is_wechat_pays_28_character_format():
    bill = bill_number(MCH_ID, date(2025, 3, 7), 4321)
    assert bill == "1900000109" + "20250307" + "0000004321"
    assert len(bill) == 28
    with pytest.raises(ValueError):
        bill_number("12345678", date(2025, 3, 7), 1)  # an 8-digit merchant id
    with pytest.raises(ValueError):
        bill_number(MCH_ID, date(2025, 3, 7), 10**10)
    assert top_up_order_id(date(2025, 3, 7), 12) == "PC202503070000000012"


def test_the_reward_payout_table_allows_exactly_these_moves():
    allowed = dict(REWARD_PAYOUT.pairs())
    assert allowed == {
        ("pay", "due"): "paying",
        ("confirm", "paying"): "paid",
        ("return", "paying"): "returned",
        ("give_up", "paying"): "failed",
        ("confirm", "failed"): "paid",
        ("return", "failed"): "returned",
    }
    for status in REWARD_PAYOUT.statuses | {"held"}:
        for event in REWARD_PAYOUT.events:
            if (event, status) not in allowed:
                with pytest.raises(IllegalTransition):
                    REWARD_PAYOUT.next(status, event)


def test_the_payout_table_allows_exactly_these_moves():
    allowed = dict(PAYOUT_STATUS.pairs())
    assert allowed == {
        ("confirm", "paying"): "paid",
        ("refuse", "paying"): "failed",
        ("give_up", "paying"): "unknown",
        ("confirm", "unknown"): "paid",
        ("refuse", "unknown"): "failed",
    }
    for status in PAYOUT_STATUS.statuses:
        for event in PAYOUT_STATUS.events:
            if (event, status) not in allowed:
                with pytest.raises(IllegalTransition):
                    PAYOUT_STATUS.next(status, event)


# ---- red packets ---------------------------------------------------------------------------------


async def test_a_red_packet_is_paid_once_to_the_winners_openid(settings, redis, pay):
    packets = await campaign("red_packet", budget_fen=10_000)
    winner, openid = await wechat_customer()
    reward, message = await due_reward(packets, winner, 288)

    await relay_all(settings, redis)

    reward = await Reward.get(id=reward.id)
    payout = await Payout.get(reward_id=reward.id)
    assert (reward.status, reward.paid_at is not None) == ("paid", True)
    assert payout.bill_no == bill_number(MCH_ID, clock.business_date(message.created_at), message.id)
    assert (payout.status, payout.amount_fen, payout.attempts) == ("paid", 288, 1)
    assert payout.package and payout.provider_ref
    ledger = await pay.ledger()
    assert [(p["mch_billno"], p["re_openid"], p["total_amount"], p["requests"]) for p in ledger] == [(payout.bill_no, openid, 288, 1)]
    assert (await Campaign.get(id=packets.id)).committed_fen == 288
    assert await AuditEntry.filter(action="reward.paid", object_id=str(reward.id)).count() == 1


async def test_a_repeated_message_pays_nothing_more(settings, redis, pay):
    packets = await campaign("red_packet")
    winner, _ = await wechat_customer()
    reward, message = await due_reward(packets, winner, 150)
    await relay_all(settings, redis)

    # The same message delivered again (a relay whose lease ran out), and a stray second one.
    await OutboxMessage.filter(id=message.id).update(status="pending")
    await OutboxMessage.create(topic=message.topic, payload=message.payload, next_attempt_at=clock.now())
    await relay_all(settings, redis)

    assert [p["requests"] for p in await pay.ledger()] == [1]
    assert await Payout.filter(reward_id=reward.id).count() == 1


async def test_a_busy_wechat_pay_is_retried_with_the_same_bill_number(settings, redis, pay):
    packets = await campaign("red_packet")
    winner, _ = await wechat_customer()
    reward, message = await due_reward(packets, winner, 300)
    await pay.fault(err_code="SYSTEMERROR")

    await relay_all(settings, redis)
    waiting = await OutboxMessage.get(id=message.id)
    assert (waiting.status, waiting.attempts) == ("pending", 1)
    assert waiting.next_attempt_at > clock.now()  # the relay's backoff
    assert (await Reward.get(id=reward.id)).status == "paying"
    assert (await Payout.get(reward_id=reward.id)).last_error_code == "SYSTEMERROR"
    assert await pay.ledger() == []

    await make_due_now()
    await relay_all(settings, redis)
    assert (await Reward.get(id=reward.id)).status == "paid"
    payout = await Payout.get(reward_id=reward.id)
    assert payout.attempts == 2
    assert [(p["mch_billno"], p["requests"]) for p in await pay.ledger()] == [(payout.bill_no, 1)]


async def test_an_answer_lost_after_paying_is_retried_and_paid_once(settings, redis, pay):
    packets = await campaign("red_packet")
    winner, _ = await wechat_customer()
    reward, _ = await due_reward(packets, winner, 520)
    await pay.fault(mode="lost_answer")

    await relay_all(settings, redis)
    assert (await Reward.get(id=reward.id)).status == "paying"
    await make_due_now()
    await relay_all(settings, redis)

    assert (await Reward.get(id=reward.id)).status == "paid"
    assert [(p["total_amount"], p["requests"]) for p in await pay.ledger()] == [(520, 2)]


async def test_a_final_refusal_returns_the_amount_to_the_budget_with_a_reason(settings, redis, pay):
    packets = await campaign("red_packet", budget_fen=5_000)
    winner, _ = await wechat_customer()
    reward, _ = await due_reward(packets, winner, 400)
    assert (await Campaign.get(id=packets.id)).committed_fen == 400
    await pay.fault(err_code="OPENID_ERROR", err_code_des="openid和appid不匹配")

    await relay_all(settings, redis)

    reward = await Reward.get(id=reward.id)
    assert (reward.status, reward.failure_code) == ("returned", "OPENID_ERROR")
    assert reward.reason == "微信账号与小程序不匹配"
    assert (await Payout.get(reward_id=reward.id)).status == "failed"
    assert (await Campaign.get(id=packets.id)).committed_fen == 0
    assert await pay.ledger() == []
    assert await OutboxMessage.filter(status="sent").count() == 1  # done: not retried


async def test_wechat_pays_amount_floor_is_a_final_refusal(settings, redis, pay):
    packets = await campaign("red_packet")
    winner, _ = await wechat_customer()
    reward, _ = await due_reward(packets, winner, 12)  # 0.12 yuan: below WeChat Pay's 0.30

    await relay_all(settings, redis)
    assert ((await Reward.get(id=reward.id)).status, (await Reward.get(id=reward.id)).failure_code) == ("returned", "MONEY_LIMIT")


async def test_a_winner_without_a_mini_program_account_gets_the_amount_returned(settings, redis, pay):
    packets = await campaign("red_packet")
    winner, _ = await wechat_customer(with_account=False)
    reward, _ = await due_reward(packets, winner, 200)

    await relay_all(settings, redis)

    reward = await Reward.get(id=reward.id)
    assert (reward.status, reward.failure_code) == ("returned", "NO_MINI_PROGRAM_ACCOUNT")
    assert (await Campaign.get(id=packets.id)).committed_fen == 0


async def test_the_last_attempt_asks_wechat_pays_record_before_giving_up(settings, redis, pay):
    packets = await campaign("red_packet")
    nothing_there, _ = await wechat_customer()
    unreadable, _ = await wechat_customer()
    returned, first = await due_reward(packets, nothing_there, 200)
    unknown, second = await due_reward(packets, unreadable, 300, seq=2)
    last = RelayPolicy().max_attempts - 1  # the relay counts the attempt it is making
    await OutboxMessage.filter(id__in=[first.id, second.id]).update(attempts=last)
    await OutboxMessage.filter(id=second.id).update(next_attempt_at=clock.now() + timedelta(hours=1))

    # The first: WeChat Pay stays busy, and its record shows nothing paid → returned.
    await pay.fault(err_code="SYSTEMERROR")
    await relay_all(settings, redis)
    reward = await Reward.get(id=returned.id)
    assert (reward.status, reward.failure_code) == ("returned", "NO_FINAL_ANSWER")

    # The second: busy, and the record cannot be read either → failed, budget kept committed.
    await pay.fault(err_code="SYSTEMERROR")
    await pay.fault(endpoint="gethbinfo", err_code="SYSTEMERROR")
    await make_due_now()
    await relay_all(settings, redis)
    reward = await Reward.get(id=unknown.id)
    assert (reward.status, reward.reason) == ("failed", WAITING_FOR_RECONCILIATION)
    assert (await Payout.get(reward_id=unknown.id)).status == "unknown"
    assert (await Campaign.get(id=packets.id)).committed_fen == 300
    assert await pay.ledger() == []


async def test_a_refusal_on_a_retry_cannot_return_money_already_paid(settings, redis, pay):
    packets = await campaign("red_packet")
    winner, _ = await wechat_customer()
    reward, _ = await due_reward(packets, winner, 666)
    await pay.fault(mode="lost_answer")
    await relay_all(settings, redis)

    # The retry is refused (as WeChat Pay refuses a bill number repeated with other terms), but
    # WeChat Pay's record shows the first attempt paid.
    await pay.fault(err_code="FATAL_ERROR")
    await make_due_now()
    await relay_all(settings, redis)

    reward = await Reward.get(id=reward.id)
    assert reward.status == "paid"
    assert (await Campaign.get(id=packets.id)).committed_fen == 666
    assert len(await pay.ledger()) == 1


# ---- phone credit --------------------------------------------------------------------------------


async def test_phone_credit_is_topped_up_once(settings, redis, pay):
    credit = await campaign("phone_credit")
    inviter, _ = await wechat_customer(phone="13912345671")
    reward, message = await due_reward(credit, inviter, 1000, kind="phone_credit")

    await relay_all(settings, redis)

    reward = await Reward.get(id=reward.id)
    payout = await Payout.get(reward_id=reward.id)
    assert reward.status == "paid"
    assert (payout.channel, payout.bill_no) == ("phone_topup", top_up_order_id(clock.business_date(message.created_at), message.id))
    assert payout.provider_ref.startswith("TU")
    assert await pay.ledger() == []  # not a red packet


async def test_a_pending_top_up_is_asked_again_until_it_succeeds(settings, redis, pay):
    credit = await campaign("phone_credit")
    inviter, _ = await wechat_customer(phone="13912345674")  # the sandbox confirms numbers ending in 4 later
    reward, message = await due_reward(credit, inviter, 2000, kind="phone_credit")

    await relay_all(settings, redis)
    assert (await Reward.get(id=reward.id)).status == "paying"
    assert (await OutboxMessage.get(id=message.id)).status == "pending"

    await make_due_now()
    await relay_all(settings, redis)
    assert (await Reward.get(id=reward.id)).status == "paid"


@pytest.mark.parametrize(
    "phone, code, reason",
    [
        ("17012345678", "CARRIER_UNSUPPORTED", "暂不支持该号码所属运营商"),
        ("13912340000", "NUMBER_SUSPENDED", "号码已停机"),
        (None, "NO_PHONE", "未绑定手机号，无法充值话费"),
    ],
)
async def test_a_failed_top_up_returns_the_amount_and_says_why(settings, redis, pay, phone, code, reason):
    credit = await campaign("phone_credit", budget_fen=5000)
    inviter, _ = await wechat_customer(phone=phone)
    reward, _ = await due_reward(credit, inviter, 1000, kind="phone_credit")

    await relay_all(settings, redis)

    reward = await Reward.get(id=reward.id)
    assert (reward.status, reward.failure_code, reward.reason) == ("returned", code, reason)
    assert (await Campaign.get(id=credit.id)).committed_fen == 0


async def test_no_phone_appears_in_logs_or_the_audit(settings, redis, pay, caplog):
    credit = await campaign("phone_credit")
    inviter, _ = await wechat_customer(phone="17012345678")
    reward, _ = await due_reward(credit, inviter, 1000, kind="phone_credit")
    with caplog.at_level("DEBUG"):
        await relay_all(settings, redis)
    assert "17012345678" not in caplog.text
    audits = await AuditEntry.filter(object_type="reward", object_id=str(reward.id)).values_list("after", flat=True)
    assert audits and "17012345678" not in str(audits)


# ---- a farm's phone ------------------------------------------------------------------------------


async def _on_phone(phone: str, customer, others: int = 0) -> None:
    """The customer and ``others`` more customers have all signed in on ``phone``."""
    await invites.note_device("customer", customer.id, phone)
    for _ in range(others):
        await invites.note_device("customer", (await new_customer()).id, phone)


async def test_a_reward_to_a_customer_on_a_phone_more_than_three_customers_use_is_returned_unpaid(settings, redis, pay):
    packets = await campaign("red_packet", budget_fen=5_000)
    winner, _ = await wechat_customer()
    await _on_phone(device(), winner, abuse.PAYOUT_DEVICE_LIMIT)  # four on the phone
    reward, _ = await due_reward(packets, winner, 300)

    await relay_all(settings, redis)

    reward = await Reward.get(id=reward.id)
    assert (reward.status, reward.failure_code, reward.reason) == ("returned", "SHARED_DEVICE", "不符合活动规则")
    assert (await Payout.get(reward_id=reward.id)).status == "failed"
    assert (await Campaign.get(id=packets.id)).committed_fen == 0
    assert await pay.ledger() == []
    assert await AuditEntry.filter(action="reward.returned", object_id=str(reward.id)).count() == 1


async def test_a_family_phone_and_an_account_managers_phone_are_paid(settings, redis, pay):
    packets = await campaign("red_packet", budget_fen=5_000, per_person_limit=1)
    family, _ = await wechat_customer()
    await _on_phone(device(), family, abuse.PAYOUT_DEVICE_LIMIT - 1)  # three on the phone
    helped, _ = await wechat_customer()
    branch_phone = device()
    await _on_phone(branch_phone, helped, 10)
    await invites.note_device("staff", (await Staff.get(username="hz.manager")).id, branch_phone)
    rewards = [(await due_reward(packets, who, 300))[0] for who in (family, helped)]

    await relay_all(settings, redis)

    assert [(await Reward.get(id=r.id)).status for r in rewards] == ["paid", "paid"]
    assert len(await pay.ledger()) == 2


async def test_the_phone_is_checked_before_the_first_attempt_only(settings, redis, pay):
    # A later attempt may follow a payment WeChat Pay made and could not confirm: refusing it then
    # would return money that is out.
    packets = await campaign("red_packet")
    winner, _ = await wechat_customer()
    phone = device()
    await _on_phone(phone, winner)
    reward, _ = await due_reward(packets, winner, 300)
    await pay.fault(err_code="SYSTEMERROR")
    await relay_all(settings, redis)
    assert (await Reward.get(id=reward.id)).status == "paying"

    await _on_phone(phone, winner, abuse.PAYOUT_DEVICE_LIMIT)
    await make_due_now()
    await relay_all(settings, redis)
    assert (await Reward.get(id=reward.id)).status == "paid"


async def test_a_campaigns_hold_lets_the_check_see_a_farm_fill_the_winners_phone(settings, redis, pay):
    live = await scheduled_campaign(replace(red_packet_terms(), payout_hold_minutes=60))
    phone = device()
    first, _ = await wechat_customer()
    await _on_phone(phone, first)  # alone on the phone when it wins: it looks like anybody
    desk = red_packets.GrabDesk(redis, settings.redis_key_prefix)
    try:
        won = await desk.grab(live.id, red_packets.Grabber(first.id, live.bank_id, "wechat_miniprogram", phone, "117.136.0.9"))
    finally:
        await desk.close()

    await relay_all(settings, redis)
    message = await OutboxMessage.filter(topic="marketing.pay_reward").get()
    assert (message.status, message.attempts) == ("pending", 0)  # held
    assert message.next_attempt_at >= clock.now() + timedelta(minutes=59)

    await _on_phone(phone, first, abuse.PAYOUT_DEVICE_LIMIT)  # the farm moves in during the hold
    await make_due_now()  # the hour passes
    await relay_all(settings, redis)
    reward = await Reward.get(id=won.reward_id)
    assert (reward.status, reward.failure_code) == ("returned", "SHARED_DEVICE")
    assert await pay.ledger() == []


async def test_a_referral_reward_granted_in_a_campaign_with_a_hold_is_paid_after_it(settings, redis, pay):
    cash = await campaign("referral_reward", milestone="registered", payout_hold_minutes=30)
    inviter, _ = await wechat_customer()
    code = await customer_code(await Customer.get(id=inviter.id), device_id=device())
    friend = await new_customer()
    referral = await invites.bind(friend.id, code.code, device_id=device(), ip="36.1.2.3", channel="wechat_miniprogram")

    (reward,) = await rewards.settle(referral.id)

    assert reward.status == "due"
    message = await OutboxMessage.filter(topic="marketing.pay_reward").get()
    assert message.next_attempt_at >= clock.now() + timedelta(minutes=29)
    await relay_all(settings, redis)
    assert (await OutboxMessage.get(id=message.id)).status == "pending"  # held
    await make_due_now()
    await relay_all(settings, redis)
    assert (await Reward.get(id=reward.id)).status == "paid"
    assert (await Campaign.get(id=cash.id)).committed_fen == 1000
