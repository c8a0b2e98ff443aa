"""Staff attribution rolls up to branch and bank; staff see their own bank's numbers only; a
customer sees the people they invited, masked."""

from __future__ import annotations

from infra import clock
from infra.actors import Actor
from lending_core.customers.models import Customer
from lending_core.org.models import Bank, Branch
from marketing import funnel
from marketing import service as invites
from marketing.models import InviteReferral
from tests.marketing.support import customer_code, new_customer, second_branch_manager, staff_code, staff_member
from tests.support import StaffConsole, bearer, customer_token

SUMMARY = "/api/v1/admin/referrals/summary"


async def referred(code, stage: str = "registered", *, name: str | None = None, principal_fen: int | None = None):
    referee = await new_customer()
    if name:
        await Customer.filter(id=referee.id).update(name=name)
    referral = await invites.bind(referee.id, code.code, device_id=None, ip=None, channel="wechat_miniprogram")
    if stage != "registered":
        now = clock.now()
        await funnel.advance(
            referee.id, referral.bank_id, stage, times={"applied": now, "approved": now, "disbursed": now}, principal_fen=principal_fen
        )
    return referee


async def story() -> dict:
    """HZRCB: the first branch's manager brought three people (registered, applied, approved) and,
    through one of them, a fourth; the second branch's manager one who drew a loan; one referral
    was voided. LSRCB's manager brought one."""
    hz_code = await staff_code("hz.manager")
    friend = await referred(hz_code, "registered")
    await referred(hz_code, "applied")
    await referred(hz_code, "approved")
    await referred(await customer_code(friend, bank="HZRCB"), "applied")
    east = await second_branch_manager()
    east_code = await invites.my_code(as_staff(east))
    await referred(east_code, "disbursed", principal_fen=8_000_000)
    voided = await referred(east_code, "approved")
    await InviteReferral.filter(referee_id=voided.id).update(voided_at=clock.now(), void_reason="self_referral_phone")
    await referred(await staff_code("ls.manager"), "approved")
    return {"manager": await staff_member("hz.manager"), "east": east}


def as_staff(staff) -> Actor:
    return Actor(kind="staff", id=staff.id, bank_id=staff.bank_id, roles=frozenset(staff.roles))


def counts(registered=0, applied=0, approved=0, disbursed=0, principal=0, voided=0) -> dict:
    return {"registered": registered, "applied": applied, "approved": approved, "disbursed": disbursed, "disbursed_principal_fen": principal, "voided": voided}


async def test_a_staff_members_numbers_count_each_stage_reached_and_split_the_credit(client, demo):
    people = await story()
    staff = StaffConsole(client)

    response = await staff.get("hz.manager", f"{SUMMARY}?staff_id={people['manager'].id}")

    assert response.status == 200, response.text
    assert response.json["scope"] == {"staff_id": people["manager"].id, "bank_id": people["manager"].bank_id}
    assert response.json["totals"] == counts(registered=4, applied=3, approved=1)
    assert response.json["by_credit"] == {"customer": counts(registered=1, applied=1), "direct": counts(registered=3, applied=2, approved=1)}


async def test_a_branch_rolls_up_its_staff(client, demo):
    people = await story()
    first_branch = await Branch.get(code="HZ01")
    second_branch = await Branch.get(code="HZ02")
    staff = StaffConsole(client)

    first = await staff.get("hz.marketer", f"{SUMMARY}?branch_id={first_branch.id}")
    second = await staff.get("hz.marketer", f"{SUMMARY}?branch_id={second_branch.id}")

    assert first.json["totals"] == counts(registered=4, applied=3, approved=1)
    assert first.json["by"] == "inviter_staff_id"
    assert first.json["breakdown"] == [{"inviter_staff_id": people["manager"].id, **counts(registered=4, applied=3, approved=1)}]
    assert second.json["totals"] == counts(registered=1, applied=1, approved=1, disbursed=1, principal=8_000_000, voided=1)


async def test_a_bank_rolls_up_its_branches(client, demo):
    await story()
    staff = StaffConsole(client)
    first_branch, second_branch = await Branch.get(code="HZ01"), await Branch.get(code="HZ02")

    response = await staff.get("hz.admin", SUMMARY)

    assert response.status == 200, response.text
    assert response.json["scope"] == {"bank_id": (await Bank.get(code="HZRCB")).id}
    assert response.json["totals"] == counts(registered=5, applied=4, approved=2, disbursed=1, principal=8_000_000, voided=1)
    assert response.json["by"] == "branch_id"
    assert response.json["breakdown"] == [
        {"branch_id": first_branch.id, **counts(registered=4, applied=3, approved=1)},
        {"branch_id": second_branch.id, **counts(registered=1, applied=1, approved=1, disbursed=1, principal=8_000_000, voided=1)},
    ]


async def test_another_banks_staff_see_none_of_it(client, demo):
    people = await story()
    staff = StaffConsole(client)
    hz = await Bank.get(code="HZRCB")
    branch = await Branch.get(code="HZ01")

    for path in (f"{SUMMARY}?staff_id={people['manager'].id}", f"{SUMMARY}?branch_id={branch.id}", f"{SUMMARY}?bank_id={hz.id}"):
        response = await staff.get("ls.manager", path)
        assert response.status == 404, (path, response.text)
        assert response.json["error"]["code"] == "NOT_FOUND"
    own = await staff.get("ls.manager", SUMMARY)
    assert own.json["totals"] == counts(registered=1, applied=1, approved=1)


async def test_the_association_sees_every_bank(client, demo):
    await story()
    staff = StaffConsole(client)

    response = await staff.get("assoc.admin", SUMMARY)

    assert response.status == 200, response.text
    assert response.json["by"] == "bank_id"
    by_bank = {row["bank_id"]: row["registered"] for row in response.json["breakdown"]}
    assert by_bank == {(await Bank.get(code="HZRCB")).id: 5, (await Bank.get(code="LSRCB")).id: 1}


async def test_a_customer_sees_the_people_they_invited_masked(app, client, demo):
    inviter = await new_customer(bank="HZRCB")
    code = await customer_code(inviter, bank="HZRCB")
    await referred(code, "approved", name="王小明")
    await referred(code, "registered")
    hz = await Bank.get(code="HZRCB")
    headers = bearer(await customer_token(app, inviter.id, hz.id))

    _, response = await client.get("/api/v1/referrals", headers=headers)

    assert response.status == 200, response.text
    items = response.json["items"]
    assert [(item["name"], item["stage"]) for item in items] == [("王*明", "approved"), (None, "registered")]
    assert "王小明" not in response.text
    assert items[0]["approved_at"] is not None and items[1]["applied_at"] is None


async def test_a_customer_sees_only_their_own_referees(app, client, demo):
    await referred(await staff_code("hz.manager"))
    someone = await new_customer(bank="HZRCB")
    headers = bearer(await customer_token(app, someone.id, (await Bank.get(code="HZRCB")).id))

    _, response = await client.get("/api/v1/referrals", headers=headers)

    assert response.json["items"] == []
