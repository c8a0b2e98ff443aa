"""Milestone rewards: an inviting customer's referral cash and phone credit are held until the
person they brought reaches the campaign's milestone, then granted against the budget and paid —
and blacklisted inviters, people over their limits and spent budgets earn nothing."""

from __future__ import annotations

import pytest

from infra.actors import system
from infra.errors import IllegalTransition
from lending_core.org.models import Bank
from lending_core.risk_lists import service as risk_lists
from marketing import funnel, rewards
from marketing import service as invites
from marketing.models import Campaign, InviteReferral, Reward
from tests.marketing.payout_support import FakePay, campaign, relay_all, wechat_customer
from tests.marketing.support import customer_code, device, new_customer, staff_code

CHANNEL = "wechat_miniprogram"


@pytest.fixture
async def pay(fake_wechat, demo):
    fake = FakePay(fake_wechat)
    await fake.reset()
    return fake


async def refer(code) -> InviteReferral:
    """A new person arrives with ``code`` and is bound to its owner."""
    referee = await new_customer()
    return await invites.bind(referee.id, code.code, device_id=device(), ip="203.0.113.9", channel=CHANNEL)


async def reach(referral: InviteReferral, stage: str) -> None:
    await funnel.advance(referral.referee_id, referral.bank_id, stage, times={})


def test_the_milestone_table():
    assert dict(rewards.MILESTONE.pairs()) == {("grant", "held"): "due", ("refuse", "held"): "failed"}
    for status in ("due", "paying", "paid", "failed", "returned"):
        for event in ("grant", "refuse"):
            with pytest.raises(IllegalTransition):
                rewards.MILESTONE.next(status, event)


async def test_referral_cash_is_held_until_the_milestone_then_paid_to_the_inviter(settings, redis, pay):
    cash = await campaign("referral_reward", milestone="approved", reward_fen=1000, budget_fen=10_000)
    inviter, openid = await wechat_customer()
    referral = await refer(await customer_code(inviter))

    await relay_all(settings, redis)
    reward = await Reward.get(campaign_id=cash.id)
    assert (reward.status, reward.customer_id, reward.kind, reward.amount_fen) == ("held", inviter.id, "referral_cash", 1000)
    assert reward.referral_id == referral.id
    assert (await Campaign.get(id=cash.id)).committed_fen == 0  # nothing reserved while held

    await reach(referral, "applied")
    await relay_all(settings, redis)
    assert (await Reward.get(id=reward.id)).status == "held"

    await reach(referral, "approved")
    await relay_all(settings, redis)
    assert (await Reward.get(id=reward.id)).status == "paid"
    assert (await Campaign.get(id=cash.id)).committed_fen == 1000
    assert [(p["re_openid"], p["total_amount"]) for p in await pay.ledger()] == [(openid, 1000)]

    # Later stages and repeated messages grant nothing more.
    await reach(referral, "disbursed")
    await rewards.settle(referral.id)
    await relay_all(settings, redis)
    assert await Reward.filter(campaign_id=cash.id).count() == 1
    assert len(await pay.ledger()) == 1


async def test_phone_credit_with_a_registered_milestone_is_granted_at_once(settings, redis, pay):
    credit = await campaign("phone_credit", milestone="registered", reward_fen=2000)
    inviter, _ = await wechat_customer(phone="13912345671")
    await refer(await customer_code(inviter))

    await relay_all(settings, redis)

    reward = await Reward.get(campaign_id=credit.id)
    assert (reward.kind, reward.status) == ("phone_credit", "paid")
    assert (await Campaign.get(id=credit.id)).committed_fen == 2000


async def test_a_blacklist_prohibited_inviter_earns_nothing(settings, redis, pay):
    cash = await campaign("referral_reward", milestone="registered")
    inviter, _ = await wechat_customer(phone="13912345679")
    bank = await Bank.get(code="HZRCB")
    await risk_lists.add(system("test"), level=risk_lists.PROHIBIT, phone="13912345679", reason="court enforcement", bank_id=bank.id)

    await refer(await customer_code(inviter))
    await relay_all(settings, redis)

    reward = await Reward.get(campaign_id=cash.id)
    # The customer is told the rules were not met, not that they are on a blacklist.
    assert (reward.status, reward.failure_code, reward.reason) == ("failed", "NOT_ELIGIBLE", "不符合活动规则")
    assert (await Campaign.get(id=cash.id)).committed_fen == 0
    assert await pay.ledger() == []


async def test_an_inviter_blacklisted_while_held_earns_nothing_at_the_milestone(settings, redis, pay):
    cash = await campaign("referral_reward", milestone="approved")
    inviter, _ = await wechat_customer(phone="13912345678")
    referral = await refer(await customer_code(inviter))
    await relay_all(settings, redis)
    assert (await Reward.get(campaign_id=cash.id)).status == "held"

    await risk_lists.add(system("test"), level=risk_lists.PROHIBIT, phone="13912345678", reason="fraud", bank_id=None)
    await reach(referral, "approved")
    await relay_all(settings, redis)

    assert (await Reward.get(campaign_id=cash.id)).failure_code == "NOT_ELIGIBLE"
    assert await pay.ledger() == []


async def test_over_the_budget_a_reward_is_not_granted_and_says_why(settings, redis, pay):
    cash = await campaign("referral_reward", milestone="registered", reward_fen=1000, budget_fen=1500, per_person_limit=5, per_day_limit=5)
    inviter, _ = await wechat_customer()
    code = await customer_code(inviter)
    await refer(code)
    await refer(code)

    await relay_all(settings, redis)

    statuses = sorted(await Reward.filter(campaign_id=cash.id).values_list("status", "failure_code", "reason"))
    assert statuses == [("failed", "BUDGET_EXHAUSTED", "活动预算已用完"), ("paid", None, None)]
    assert (await Campaign.get(id=cash.id)).committed_fen == 1000


@pytest.mark.parametrize("limits, code", [({"per_person_limit": 2, "per_day_limit": 1}, "PER_DAY_LIMIT"), ({"per_person_limit": 1, "per_day_limit": 1}, "PER_PERSON_LIMIT")])
async def test_per_person_and_per_day_limits(settings, redis, pay, limits, code):
    cash = await campaign("referral_reward", milestone="approved", **limits)
    inviter, _ = await wechat_customer()
    invite = await customer_code(inviter)
    await refer(invite)
    await refer(invite)

    await relay_all(settings, redis)

    found = sorted(await Reward.filter(campaign_id=cash.id).order_by("seq").values_list("seq", "status", "failure_code"))
    assert found == [(1, "held", None), (2, "failed", code)]


async def test_staff_inviters_earn_no_customer_reward(settings, redis, pay):
    cash = await campaign("referral_reward", milestone="registered")
    await refer(await staff_code("hz.manager"))
    await relay_all(settings, redis)
    assert await Reward.filter(campaign_id=cash.id).count() == 0


async def test_a_campaign_not_running_when_the_person_was_bound_rewards_nothing(settings, redis, pay):
    cash = await campaign("referral_reward", milestone="registered")
    await Campaign.filter(id=cash.id).update(status="paused")
    inviter, _ = await wechat_customer()
    await refer(await customer_code(inviter))
    await relay_all(settings, redis)
    assert await Reward.filter(campaign_id=cash.id).count() == 0


async def test_a_voided_referral_forfeits_its_held_reward(settings, redis, pay):
    cash = await campaign("referral_reward", milestone="disbursed")
    inviter, _ = await wechat_customer()
    referral = await refer(await customer_code(inviter))
    await relay_all(settings, redis)

    await InviteReferral.filter(id=referral.id).update(voided_at=referral.bound_at, void_reason="self_referral_phone")
    await rewards.settle(referral.id)

    reward = await Reward.get(campaign_id=cash.id)
    assert (reward.status, reward.failure_code) == ("failed", "REFERRAL_VOID")
