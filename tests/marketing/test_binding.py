"""Binding a new customer to their inviter: each rule with a case it allows and one it refuses.

The rules are parameters (``BindingRules``) with the association's defaults: the first touch
within 30 days names the inviter, only new customers are referred, nobody refers themselves (same
person, same device, same phone), and no referral leads back to its referee (A→B→A, or longer).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from infra import clock
from infra.audit import AuditEntry
from infra.outbox import OutboxMessage
from lending_core.customers.models import BankRelationship, Customer
from lending_core.org.models import Bank
from marketing import service as invites
from marketing.errors import NotANewCustomer, ReferralLoop, SelfReferral, UnknownInviteCode
from marketing.models import InviteReferral, InviteTouch
from marketing.service import BindingRules
from tests.marketing.support import LOGIN, customer_code, device, login_code, new_customer, staff_code, staff_member, wechat_user

CHANNEL = "wechat_miniprogram"
NO_NEWNESS = BindingRules(new_customers_only=False)


def phone() -> str:
    return f"139{uuid.uuid4().int % 10**7:07d}{uuid.uuid4().int % 8 + 1}"


async def bind(customer, code, *, device_id=None, rules=invites.DEFAULT_RULES, at=None):
    return await invites.bind(customer.id, code.code if hasattr(code, "code") else code, device_id=device_id, ip="203.0.113.9", channel=CHANNEL, rules=rules, at=at)


async def scanned(code, device_id: str, *, days_ago: float) -> None:
    await InviteTouch.create(invite_code=code, channel="wxacode", device_hash=invites.device_hash(device_id), at=clock.now() - timedelta(days=days_ago))


# ---- the binding itself ---------------------------------------------------------------------------


async def test_a_new_customer_is_bound_to_a_staff_inviter_with_branch_and_bank(demo):
    code = await staff_code("hz.manager")
    manager = await staff_member("hz.manager")
    referee = await new_customer()

    referral = await bind(referee, code, device_id=device())

    assert (referral.inviter_staff_id, referral.inviter_customer_id, referral.staff_credit) == (manager.id, None, "direct")
    assert (referral.branch_id, referral.bank_id) == (manager.branch_id, manager.bank_id)
    assert referral.stage == "registered" and referral.bound_at is not None
    assert referral.campaign_id is None
    assert await AuditEntry.filter(action="referral.bind", object_id=str(referral.id)).exists()
    announced = await OutboxMessage.get(topic=invites.REFERRAL_TOPIC)
    assert announced.payload["referral_id"] == referral.id and announced.payload["stage"] == "registered"


async def test_binding_twice_keeps_the_first_inviter(demo):
    first, second = await staff_code("hz.manager"), await staff_code("hz.reviewer")
    referee = await new_customer()

    bound = await bind(referee, first)
    again = await bind(referee, second)

    assert again.id == bound.id and again.invite_code_id == first.id
    assert await InviteReferral.all().count() == 1


async def test_an_unknown_code_binds_nothing(demo):
    with pytest.raises(UnknownInviteCode):
        await bind(await new_customer(), "ACEFGH34")


async def test_a_disabled_staff_members_code_binds_nothing(demo):
    code = await staff_code("hz.manager")
    manager = await staff_member("hz.manager")
    manager.is_active = False
    await manager.save()

    with pytest.raises(UnknownInviteCode):
        await bind(await new_customer(), code)


async def test_a_customer_brought_in_by_staff_shares_the_credit_for_whom_they_invite(demo):
    manager = await staff_member("hz.manager")
    friend = await new_customer()
    await bind(friend, await staff_code("hz.manager"))
    friends_code = await customer_code(friend, bank="HZRCB")
    referee = await new_customer()

    referral = await bind(referee, friends_code)

    assert referral.inviter_customer_id == friend.id
    assert (referral.inviter_staff_id, referral.staff_credit, referral.branch_id) == (manager.id, "customer", manager.branch_id)


# ---- first touch within the window ---------------------------------------------------------------


async def test_the_first_touch_within_the_window_names_the_inviter(demo):
    phone_device = device()
    earlier, later = await staff_code("hz.manager"), await staff_code("hz.reviewer")
    await scanned(earlier, phone_device, days_ago=10)
    referee = await new_customer()

    referral = await bind(referee, later, device_id=phone_device)

    assert referral.invite_code_id == earlier.id
    assert referral.first_touch_at < clock.now() - timedelta(days=9)


async def test_a_touch_older_than_the_window_does_not_count(demo):
    phone_device = device()
    stale, fresh = await staff_code("hz.manager"), await staff_code("hz.reviewer")
    await scanned(stale, phone_device, days_ago=31)
    referee = await new_customer()

    referral = await bind(referee, fresh, device_id=phone_device)

    assert referral.invite_code_id == fresh.id


async def test_the_window_is_a_parameter(demo):
    phone_device = device()
    earlier, later = await staff_code("hz.manager"), await staff_code("hz.reviewer")
    await scanned(earlier, phone_device, days_ago=10)

    referral = await bind(await new_customer(), later, device_id=phone_device, rules=BindingRules(touch_window=timedelta(days=7)))

    assert referral.invite_code_id == later.id


# ---- new customers only --------------------------------------------------------------------------


async def test_someone_who_arrived_after_the_invite_is_new(demo):
    referral = await bind(await new_customer(), await staff_code("hz.manager"))

    assert referral is not None


async def test_someone_known_before_the_invite_is_not_referred(demo):
    old_hand = await new_customer(days_ago=2)

    with pytest.raises(NotANewCustomer):
        await bind(old_hand, await staff_code("hz.manager"))
    assert await InviteTouch.filter(customer_id=old_hand.id).count() == 1, "the touch is recorded all the same"


async def test_a_known_customer_of_a_bank_is_not_referred(demo):
    customer = await new_customer(bank="HZRCB")
    await BankRelationship.filter(customer_id=customer.id).update(is_bank_customer=True)

    with pytest.raises(NotANewCustomer):
        await bind(customer, await staff_code("hz.manager"))


async def test_new_customers_only_is_a_parameter(demo):
    referral = await bind(await new_customer(days_ago=2), await staff_code("hz.manager"), rules=NO_NEWNESS)

    assert referral is not None


# ---- no self-referral ----------------------------------------------------------------------------


async def test_nobody_refers_themselves(demo):
    customer = await new_customer()
    own = await customer_code(customer)

    with pytest.raises(SelfReferral) as refused:
        await bind(customer, own)
    assert refused.value.by == "person"


async def test_a_referee_on_the_inviters_own_device_is_the_inviter(demo):
    shared = device()
    inviter = await new_customer()
    code = await customer_code(inviter, device_id=shared)  # the inviter asked for their code on it

    with pytest.raises(SelfReferral) as refused:
        await bind(await new_customer(), code, device_id=shared)
    assert refused.value.by == "device"
    assert await bind(await new_customer(), code, device_id=device()) is not None


async def test_a_staff_member_cannot_refer_someone_on_their_own_device(demo):
    work_phone = device()
    code = await staff_code("hz.manager", device_id=work_phone)

    with pytest.raises(SelfReferral):
        await bind(await new_customer(), code, device_id=work_phone)


async def test_a_referee_with_the_inviters_phone_is_the_inviter(demo):
    number = phone()
    inviter = await new_customer(phone=number)
    code = await customer_code(inviter)

    with pytest.raises(SelfReferral) as refused:
        await bind(await new_customer(phone=number), code)
    assert refused.value.by == "phone"
    assert await bind(await new_customer(phone=phone()), code) is not None


async def test_a_staff_member_cannot_refer_their_own_phone(demo):
    number = phone()
    manager = await staff_member("hz.manager")
    manager.phone = number
    await manager.save()

    with pytest.raises(SelfReferral):
        await bind(await new_customer(phone=number), await staff_code("hz.manager"))


async def test_the_device_and_phone_rules_are_parameters(demo):
    shared, number = device(), phone()
    inviter = await new_customer(phone=number)
    code = await customer_code(inviter, device_id=shared)
    lenient = BindingRules(same_device_is_self=False, same_phone_is_self=False)

    assert await bind(await new_customer(phone=number), code, device_id=shared, rules=lenient) is not None


# ---- no loops ------------------------------------------------------------------------------------


async def test_a_referral_cannot_lead_back_to_its_referee(demo):
    a, b = await new_customer(), await new_customer()
    await bind(b, await customer_code(a))  # A invited B

    with pytest.raises(ReferralLoop):
        await bind(a, await customer_code(b), rules=NO_NEWNESS)  # B inviting A: A→B→A


async def test_nor_down_a_longer_chain(demo):
    a, b, c = await new_customer(), await new_customer(), await new_customer()
    await bind(b, await customer_code(a))
    await bind(c, await customer_code(b))  # A→B→C

    with pytest.raises(ReferralLoop):
        await bind(a, await customer_code(c), rules=NO_NEWNESS)
    outsider = await new_customer()
    assert (await bind(outsider, await customer_code(c))).inviter_customer_id == c.id


# ---- at login, through the API -------------------------------------------------------------------


async def login(client, *, scene: str | None = None, device_id: str | None = None, bank_id: int | None = None, user: str | None = None):
    body = {"code": login_code(user or wechat_user()), **({"scene": scene} if scene else {}), **({"device_id": device_id} if device_id else {})}
    if bank_id:
        body["bank_id"] = bank_id
    _, response = await client.post(LOGIN, json=body)
    assert response.status == 200, response.text
    return response.json


async def test_a_login_with_a_staff_code_binds_and_takes_the_inviters_bank(client, demo):
    code = await staff_code("ls.manager")

    session = await login(client, scene=code.code.lower(), device_id=device())

    assert session["referral"]["bound"] is True
    assert session["bank_id"] == (await Bank.get(code="LSRCB")).id
    customer = await Customer.get(id=session["customer"]["id"])
    assert customer.last_bank_id == session["bank_id"]
    referral = await InviteReferral.get(referee_id=customer.id)
    assert referral.id == session["referral"]["referral_id"]
    assert referral.channel == CHANNEL


async def test_a_bank_chosen_at_login_wins_over_the_invite(client, demo):
    code = await staff_code("ls.manager")
    chosen = (await Bank.get(code="YXRCB")).id

    session = await login(client, scene=code.code, bank_id=chosen)

    assert session["bank_id"] == chosen
    assert session["referral"]["bound"] is True


async def test_a_refused_binding_does_not_refuse_the_login(client, demo):
    user, shared = wechat_user(), device()
    first = await login(client, user=user, device_id=shared)
    own = await customer_code(await Customer.get(id=first["customer"]["id"]))

    again = await login(client, user=user, scene=own.code, device_id=shared)

    assert again["referral"] == {"bound": False, "refused": "self_referral"}
    assert again["access_token"]


async def test_a_login_with_an_unknown_code_logs_in_without_a_bank(client, demo):
    session = await login(client, scene="ACEFGH34")

    assert session["referral"] == {"bound": False, "refused": "unknown_code"}
    assert session["bank_id"] is None


async def test_a_login_without_a_scene_says_nothing_of_referrals(client, demo):
    session = await login(client, device_id=device())

    assert "referral" not in session
