"""People, referrals and declined applications at chosen times, for the staff-marketing tests
(quotas and leaderboard, incentives, secondary marketing, the abuse report, analytics)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from infra.actors import Actor
from lending_core.applications.models import Application
from lending_core.customers.models import Customer
from lending_core.org.models import Bank, Staff
from lending_core.products.models import Product
from marketing import funnel
from marketing import service as invites
from marketing.models import InviteCode, InviteReferral, InviteTouch
from tests.marketing.support import new_customer, second_branch_manager

STAGES = ("registered", "applied", "approved", "disbursed")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


def as_staff(staff: Staff) -> Actor:
    return Actor(kind="staff", id=staff.id, bank_id=staff.bank_id, roles=frozenset(staff.roles))


async def staff(username: str) -> Staff:
    return await Staff.get(username=username)


async def code_of(username: str) -> InviteCode:
    return await invites.my_code(as_staff(await staff(username)))


async def referral(
    code: InviteCode,
    *,
    at: datetime,
    stage: str = "registered",
    stage_at: datetime | None = None,
    principal_fen: int | None = None,
    device_id: str | None = None,
    ip: str | None = None,
    channel: str | None = None,
) -> InviteReferral:
    """A new person bound to ``code`` at ``at`` (after a scan on ``channel``, if given), advanced
    to ``stage`` with every stage reached at ``stage_at`` (default ``at``)."""
    referee = await new_customer()
    if channel:
        # The scan that brought them, a minute before they logged in on the same device.
        device_id = device_id or unique("device")
        await InviteTouch.create(
            invite_code=code, channel=channel, device_hash=invites.device_hash(device_id), network_hash=invites.network_hash(ip), at=at - timedelta(minutes=1)
        )
    bound = await invites.bind(referee.id, code.code, device_id=device_id, ip=ip, channel="wechat_miniprogram", at=at)
    if stage != "registered":
        when = stage_at or at
        await funnel.advance(
            referee.id, bound.bank_id, stage, times={s: when for s in STAGES[1:]}, principal_fen=principal_fen if stage == "disbursed" else None
        )
    return await InviteReferral.get(id=bound.id)


async def customer_of(code: InviteCode, *, at: datetime, bank: str = "HZRCB") -> tuple[Customer, InviteCode]:
    """A person ``code`` brought in, who has an invite code of their own at ``bank``."""
    bound = await referral(code, at=at)
    customer = await Customer.get(id=bound.referee_id)
    bank_id = (await Bank.get(code=bank)).id
    own = await invites.my_code(Actor(kind="customer", id=customer.id, bank_id=bank_id, channel="wechat_miniprogram"))
    return customer, own


async def declined_application(customer: Customer, *, bank: str = "HZRCB", product: str = "SHUIYITONG", reasons=("存在未结的被执行记录",)) -> Application:
    """A rejected application, as the lending core stores one (the decision itself is its business)."""
    found = await Product.get(code=product)
    return await Application.create(
        bank_id=(await Bank.get(code=bank)).id,
        customer_id=customer.id,
        product_id=found.id,
        product_version=found.published_version or 1,
        channel="wechat_miniprogram",
        amount_fen=5_000_000,
        term_months=12,
        repayment_method="equal_instalment",
        status="rejected",
        decision={"outcome": "rejected"},
        customer_reasons=list(reasons),
        decided_at=datetime.now(timezone.utc),
    )


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def march_story() -> dict:
    """March 2026 on the bank's calendar, HZRCB unless said: the first branch's account manager
    brought A (drew 30,000 yuan in March), B (approved in March), C (bound in February, applied in
    March), D (bound at 01:00 on 1 April, Shanghai time) and, through a customer he brought in
    February, E (drew 10,000 yuan). The second branch's manager brought F (drew 50,000 yuan) and a
    referral that was voided. LSRCB's manager brought H (drew 80,000 yuan)."""
    manager_code = await code_of("hz.manager")
    await referral(manager_code, at=utc(2026, 3, 5), stage="disbursed", stage_at=utc(2026, 3, 20), principal_fen=3_000_000)
    await referral(manager_code, at=utc(2026, 3, 6), stage="approved", stage_at=utc(2026, 3, 7))
    await referral(manager_code, at=utc(2026, 2, 10), stage="applied", stage_at=utc(2026, 3, 2))
    await referral(manager_code, at=utc(2026, 3, 31, 17))  # 1 April 01:00 in Shanghai
    _, friends_code = await customer_of(manager_code, at=utc(2026, 2, 1))
    via_friend = await referral(friends_code, at=utc(2026, 3, 10), stage="disbursed", stage_at=utc(2026, 3, 15), principal_fen=1_000_000)
    east = await second_branch_manager()
    east_code = await invites.my_code(as_staff(east))
    await referral(east_code, at=utc(2026, 3, 3), stage="disbursed", stage_at=utc(2026, 3, 4), principal_fen=5_000_000)
    voided = await referral(east_code, at=utc(2026, 3, 3), stage="approved")
    await InviteReferral.filter(id=voided.id).update(voided_at=utc(2026, 3, 8), void_reason="self_referral_phone")
    await referral(await code_of("ls.manager"), at=utc(2026, 3, 3), stage="disbursed", principal_fen=8_000_000)
    return {"manager": await staff("hz.manager"), "east": east, "via_friend": via_friend}
