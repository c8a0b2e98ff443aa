"""Milestone rewards: referral cash and phone credit for customers who bring others in.

A customer whose invite binds a new person earns, in each referral-reward and phone-credit
campaign running (for the referral's bank) when the person was bound, a reward that is "held":
it waits until the referred person reaches the campaign's milestone (registered, applied,
approved, disbursed). Then, in one transaction, the campaign's budget is reserved (one
conditional UPDATE, so the sum granted never passes the budget), the reward becomes "due" and
its payout is queued in the outbox (``marketing.pay_reward``, paid by ``marketing.payouts`` once
the campaign's payout hold has passed).

The referral's stages reach us as ``marketing.referral_advanced`` messages, at least once and
possibly several stages at a time, so settling is by level, not by edge: every message looks at
where the referral stands now and grants whatever is held and reached. A repeated message finds
nothing left to do.

What earns nothing, recorded as a "failed" reward with its reason so the customer and the
marketer can see why: an inviter on the blacklist at its prohibit level (checked when earning and
again when granting; the customer is told only that the campaign's rules were not met), a
person over the campaign's per-person or per-day limit, a budget already spent. Staff inviters
are paid through staff incentives (``marketing.incentives``), not here.
"""

from __future__ import annotations

import logging
from datetime import datetime

from tortoise.transactions import in_transaction

from infra import audit, clock, outbox
from infra.actors import system
from infra.outbox import OutboxMessage
from infra.transitions import TransitionTable
from lending_core.risk_lists import service as risk_lists
from marketing import campaigns
from marketing.models import (
    DUE,
    FAILED,
    HELD,
    MILESTONES,
    PAID,
    PAYING,
    PHONE_CREDIT,
    REFERRAL_REWARD,
    Campaign,
    InviteReferral,
    Reward,
)
from marketing.payouts import PAY_TOPIC

log = logging.getLogger(__name__)

ACTOR = "marketing.rewards"
REFERRAL_CASH = "referral_cash"
# Campaign kind → the kind of reward it pays.
REWARD_KIND = {REFERRAL_REWARD: REFERRAL_CASH, PHONE_CREDIT: PHONE_CREDIT}
# Rewards that count against a person's limits: earned and not refused or returned.
COUNTED = (HELD, DUE, PAYING, PAID)

MILESTONE = TransitionTable("reward", {("grant", HELD): DUE, ("refuse", HELD): FAILED})

NOT_ELIGIBLE, PER_PERSON_LIMIT, PER_DAY_LIMIT, BUDGET_EXHAUSTED, REFERRAL_VOID = (
    "NOT_ELIGIBLE",
    "PER_PERSON_LIMIT",
    "PER_DAY_LIMIT",
    "BUDGET_EXHAUSTED",
    "REFERRAL_VOID",
)
REASONS = {
    # The customer is not told they are on a blacklist: only that the rules were not met.
    NOT_ELIGIBLE: "不符合活动规则",
    PER_PERSON_LIMIT: "已达本活动每人奖励上限",
    PER_DAY_LIMIT: "已达本活动今日奖励上限",
    BUDGET_EXHAUSTED: "活动预算已用完",
    REFERRAL_VOID: "邀请关系无效",
}


def reached(stage: str, milestone: str) -> bool:
    return MILESTONES.index(stage) >= MILESTONES.index(milestone)


async def on_referral_advanced(message: OutboxMessage) -> None:
    """``marketing.referral_advanced``: earn and grant what the referral's stage now allows."""
    await settle(int(message.payload["referral_id"]))


async def settle(referral_id: int, *, at: datetime | None = None) -> list[Reward]:
    """Earn the inviter's rewards for this referral (held) and grant those whose milestone the
    referred person has reached. Idempotent; returns the referral's rewards."""
    at = at or clock.now()
    async with in_transaction():
        # The referral's row serialises every message about it.
        referral = await InviteReferral.filter(id=referral_id).select_for_update().first()
        if referral is None or referral.inviter_customer_id is None:
            return []
        rewards = {r.campaign_id: r for r in await Reward.filter(referral_id=referral.id, customer_id=referral.inviter_customer_id)}
        if referral.voided_at is not None:
            for reward in rewards.values():
                if reward.status == HELD:
                    await _refuse(reward, REFERRAL_VOID, facts={"void_reason": referral.void_reason})
            return list(rewards.values())
        for campaign in await _campaigns_for(referral):
            if campaign.id not in rewards:
                rewards[campaign.id] = await _earn(referral, campaign, at)
        held = [r for r in rewards.values() if r.status == HELD]
        by_id = {c.id: c for c in await Campaign.filter(id__in=[r.campaign_id for r in held])}
        for reward in held:
            campaign = by_id[reward.campaign_id]
            if campaign.milestone and reached(referral.stage, campaign.milestone):
                await _grant(reward, campaign, referral, at)
        return list(rewards.values())


async def _campaigns_for(referral: InviteReferral) -> list[Campaign]:
    """The milestone campaigns that were running for the referral's bank when it was bound (the
    one it names, when it names one)."""
    found = []
    for kind in REWARD_KIND:
        found += await campaigns.live_campaigns(referral.bank_id, kind, at=referral.bound_at)
    if referral.campaign_id is not None:
        found = [c for c in found if c.id == referral.campaign_id]
    return [c for c in found if c.milestone and c.reward_fen]


async def _earn(referral: InviteReferral, campaign: Campaign, at: datetime) -> Reward:
    inviter_id = referral.inviter_customer_id
    refusal, facts = None, {}
    if await _prohibited(inviter_id, campaign, referral, at):
        refusal, facts = NOT_ELIGIBLE, {"screening": risk_lists.PROHIBIT}
    else:
        mine = Reward.filter(campaign_id=campaign.id, customer_id=inviter_id, status__in=COUNTED)
        if await mine.count() >= campaign.per_person_limit:
            refusal = PER_PERSON_LIMIT
        elif await mine.filter(created_at__gte=clock.business_day_start(clock.business_date(at))).count() >= campaign.per_day_limit:
            refusal = PER_DAY_LIMIT
    # The person's n-th reward in the campaign (unique with both): a concurrent earn of another
    # referral takes the same seq, fails on commit, and its message is retried.
    last = await Reward.filter(campaign_id=campaign.id, customer_id=inviter_id).order_by("-seq").first()
    reward = await Reward.create(
        campaign_id=campaign.id,
        bank_id=campaign.bank_id or referral.bank_id,
        customer_id=inviter_id,
        kind=REWARD_KIND[campaign.kind],
        amount_fen=campaign.reward_fen,
        status=FAILED if refusal else HELD,
        seq=last.seq + 1 if last else 1,
        referral_id=referral.id,
        reason=REASONS[refusal] if refusal else None,
        failure_code=refusal,
    )
    await audit.record(
        system(ACTOR), "reward.refused" if refusal else "reward.earn", "reward", reward.id, bank_id=reward.bank_id,
        after={"status": reward.status, "campaign_id": campaign.id, "referral_id": referral.id, "amount_fen": reward.amount_fen, "failure_code": refusal, **facts},
    )
    return reward


async def _grant(reward: Reward, campaign: Campaign, referral: InviteReferral, at: datetime) -> None:
    """Held → due with the budget reserved and the payout queued, in the caller's transaction."""
    if await _prohibited(reward.customer_id, campaign, referral, at):
        await _refuse(reward, NOT_ELIGIBLE, facts={"screening": risk_lists.PROHIBIT})
        return
    if not await campaigns.reserve_budget(campaign.id, reward.amount_fen):
        await _refuse(reward, BUDGET_EXHAUSTED)
        return
    reward.status = MILESTONE.next(reward.status, "grant")
    await reward.save(update_fields=["status"])
    await outbox.enqueue(PAY_TOPIC, {"reward_id": reward.id}, bank_id=reward.bank_id, not_before=campaigns.payout_not_before(campaign, at))
    await audit.record(
        system(ACTOR), "reward.grant", "reward", reward.id, bank_id=reward.bank_id,
        before={"status": HELD}, after={"status": DUE, "milestone": campaign.milestone, "stage": referral.stage, "amount_fen": reward.amount_fen},
    )


async def _refuse(reward: Reward, code: str, *, facts: dict | None = None) -> None:
    before = reward.status
    reward.status = MILESTONE.next(reward.status, "refuse")
    reward.failure_code, reward.reason = code, REASONS[code]
    await reward.save(update_fields=["status", "failure_code", "reason"])
    await audit.record(
        system(ACTOR), "reward.refused", "reward", reward.id, bank_id=reward.bank_id,
        before={"status": before}, after={"status": FAILED, "failure_code": code, **(facts or {})},
    )


async def _prohibited(customer_id: int, campaign: Campaign, referral: InviteReferral, at: datetime) -> bool:
    # Screening is per bank; with neither the campaign nor the referral naming one, no bank's
    # own entries apply and bank id 0 (never a bank) matches the association-wide ones alone.
    bank_id = campaign.bank_id or referral.bank_id or 0
    screening = await risk_lists.screen_customer(customer_id, bank_id=bank_id, at=at)
    return screening.prohibits



