"""Secondary marketing (二次营销) through HTTP: account managers see their branch's declined
applicants with the reasons they were given, record follow-ups and re-invite them to another
product — which queues a message and decides nothing.

HZRCB's first-branch manager brought P1 (declined for SHUIYITONG) and P4 (approved); P2's home
branch is the second branch (declined); P3 was declined at LSRCB.
"""

from __future__ import annotations

import pytest
from tortoise import connections

from infra.audit import AuditEntry
from infra.outbox import OutboxMessage
from lending_core.applications.models import Application
from lending_core.customers.models import BankRelationship, Customer
from lending_core.org.models import Bank, Branch
from marketing.models import FollowUp, Reinvitation
from marketing.secondary import REINVITE_TOPIC
from tests.marketing.staff_story import code_of, declined_application, referral, utc
from tests.marketing.support import new_customer, second_branch_manager
from tests.support import StaffConsole

pytestmark = pytest.mark.usefixtures("demo")

APPLICANTS = "/api/v1/admin/secondary-marketing/applicants"
PHONE = "13812345678"


@pytest.fixture
def console(client) -> StaffConsole:
    return StaffConsole(client)


async def named(customer_id: int, name: str) -> Customer:
    await Customer.filter(id=customer_id).update(name=name)
    return await Customer.get(id=customer_id)


async def story() -> dict:
    code = await code_of("hz.manager")
    p1 = await named((await referral(code, at=utc(2026, 11, 2))).referee_id, "欧阳明华")
    p4 = await named((await referral(code, at=utc(2026, 11, 2))).referee_id, "诸葛文斌")
    p2 = await named((await new_customer()).id, "司马建平")
    hz, ls = await Bank.get(code="HZRCB"), await Bank.get(code="LSRCB")
    east_branch = await Branch.get(code="HZ02")
    await BankRelationship.create(customer_id=p2.id, bank_id=hz.id, home_branch_id=east_branch.id, first_channel="counter")
    p3 = await named((await new_customer()).id, "上官志刚")
    approved = await declined_application(p4)
    await Application.filter(id=approved.id).update(status="approved", customer_reasons=[])
    return {
        "p1": await declined_application(p1),
        "p2": await declined_application(p2, reasons=("近3个月查询次数过多",)),
        "p3": await declined_application(p3, bank="LSRCB"),
        "east_branch": east_branch,
        "hz": hz,
        "ls": ls,
    }


def ids(response) -> list[int]:
    assert response.status == 200, response.text
    return [item["application_id"] for item in response.json["items"]]


async def test_an_account_manager_sees_their_branchs_declined_applicants_masked(console):
    s = await story()

    response = await console.get("hz.manager", APPLICANTS)

    assert ids(response) == [s["p1"].id]
    item = response.json["items"][0]
    assert (item["customer"]["name"], item["reasons"], item["product_code"]) == ("欧**华", ["存在未结的被执行记录"], "SHUIYITONG")
    assert item["follow_ups"]["count"] == 0
    for clear in ("欧阳明华", "司马建平", "上官志刚", "诸葛文斌"):
        assert clear not in response.text


async def test_the_second_branch_sees_its_own_and_a_marketer_the_whole_bank(console):
    s = await story()
    east = await second_branch_manager()
    first_branch = await Branch.get(code="HZ01")

    east_list = await console.get(east.username, APPLICANTS)
    whole_bank = await console.get("hz.marketer", APPLICANTS)
    narrowed = await console.get("hz.marketer", f"{APPLICANTS}?branch_id={s['east_branch'].id}")
    reaching = await console.get("hz.manager", f"{APPLICANTS}?branch_id={s['east_branch'].id}")

    assert ids(east_list) == [s["p2"].id]
    assert sorted(ids(whole_bank)) == sorted([s["p1"].id, s["p2"].id])
    assert ids(narrowed) == [s["p2"].id]
    assert (reaching.status, reaching.json["error"]["code"]) == (404, "NOT_FOUND")
    assert ids(await console.get("hz.manager", f"{APPLICANTS}?branch_id={first_branch.id}")) == [s["p1"].id]


async def test_another_banks_staff_see_nothing_of_ours(console):
    s = await story()

    theirs = await console.get("ls.marketer", APPLICANTS)
    reaching = await console.get("ls.marketer", f"{APPLICANTS}?branch_id={s['east_branch'].id}")
    follow_ups = await console.get("ls.marketer", f"{APPLICANTS}/{s['p1'].id}/follow-ups")
    recorded = await console.post("ls.marketer", f"{APPLICANTS}/{s['p1'].id}/follow-ups", {"note": "电话联系", "outcome": "contacted"})
    reinvited = await console.post("ls.marketer", f"{APPLICANTS}/{s['p1'].id}/reinvitations", {"product_code": "KUAIEDAI", "channel": "sms"})

    assert ids(theirs) == [s["p3"].id]
    assert [r.status for r in (reaching, follow_ups, recorded, reinvited)] == [404, 404, 404, 404]
    assert await FollowUp.all().count() == 0 and await Reinvitation.all().count() == 0


async def test_a_follow_up_is_recorded_encrypted_audited_and_shown_scrubbed(console):
    s = await story()
    path = f"{APPLICANTS}/{s['p1'].id}/follow-ups"

    response = await console.post("hz.manager", path, {"note": f"客户说换号了 {PHONE}，下周再联系", "outcome": "interested", "next_contact_on": "2026-12-07"})

    assert response.status == 201, response.text
    assert (response.json["outcome"], response.json["next_contact_on"]) == ("interested", "2026-12-07")
    assert PHONE not in response.text and "138****5678" in response.json["note"]
    stored = await connections.get("default").execute_query_dict("SELECT note FROM secondary_follow_up")
    assert PHONE not in stored[0]["note"] and "下周" not in stored[0]["note"]  # encrypted at rest
    audit = await AuditEntry.get(action="secondary.follow_up", object_id=str(s["p1"].id))
    assert PHONE not in str(audit.after)
    listed = await console.get("hz.manager", path)
    assert [item["id"] for item in listed.json["items"]] == [response.json["id"]] and PHONE not in listed.text
    summary = (await console.get("hz.manager", APPLICANTS)).json["items"][0]["follow_ups"]
    assert (summary["count"], summary["last_outcome"], summary["next_contact_on"]) == (1, "interested", "2026-12-07")


@pytest.mark.parametrize(
    "body",
    [
        {"note": "", "outcome": "contacted"},
        {"note": "ok", "outcome": "approved"},  # a follow-up records no credit decision
        {"note": "ok", "outcome": "contacted", "next_contact_on": "next week"},
        {"note": "x" * 1001, "outcome": "contacted"},
        {"note": "ok", "outcome": "contacted", "staff_id": 1},
    ],
)
async def test_bad_follow_ups_are_refused(console, body):
    s = await story()

    response = await console.post("hz.manager", f"{APPLICANTS}/{s['p1'].id}/follow-ups", body)

    assert response.status == 422, response.text
    assert await FollowUp.all().count() == 0


async def test_a_manager_cannot_follow_up_another_branchs_applicant_nor_an_approved_one(console):
    s = await story()
    approved = await Application.get(status="approved")

    other_branch = await console.post("hz.manager", f"{APPLICANTS}/{s['p2'].id}/follow-ups", {"note": "ok", "outcome": "contacted"})
    not_declined = await console.post("hz.manager", f"{APPLICANTS}/{approved.id}/follow-ups", {"note": "ok", "outcome": "contacted"})
    reviewer = await console.post("hz.reviewer", f"{APPLICANTS}/{s['p1'].id}/follow-ups", {"note": "ok", "outcome": "contacted"})

    assert [r.status for r in (other_branch, not_declined, reviewer)] == [404, 404, 403]


async def test_a_reinvitation_queues_one_message_and_decides_nothing(console):
    s = await story()
    applications_before = await Application.all().count()

    response = await console.post("hz.manager", f"{APPLICANTS}/{s['p1'].id}/reinvitations", {"product_code": "KUAIEDAI", "channel": "sms"})

    assert response.status == 201, response.text
    assert (response.json["product_code"], response.json["channel"]) == ("KUAIEDAI", "sms")
    messages = await OutboxMessage.filter(topic=REINVITE_TOPIC)
    assert len(messages) == 1
    payload = messages[0].payload
    assert (payload["customer_id"], payload["product_code"], payload["channel"], payload["reinvitation_id"]) == (
        s["p1"].customer_id,
        "KUAIEDAI",
        "sms",
        response.json["id"],
    )
    assert payload["invite_code"] == (await code_of("hz.manager")).code
    assert "欧阳明华" not in str(payload)
    assert await Application.all().count() == applications_before
    assert (await Application.get(id=s["p1"].id)).status == "rejected"
    assert await AuditEntry.filter(action="secondary.reinvite", object_id=str(s["p1"].id)).count() == 1
    listed = await console.get("hz.manager", f"{APPLICANTS}/{s['p1'].id}/reinvitations")
    assert [item["id"] for item in listed.json["items"]] == [response.json["id"]]


async def test_reinviting_to_the_same_product_twice_or_after_do_not_contact_is_refused(console):
    s = await story()
    path = f"{APPLICANTS}/{s['p1'].id}/reinvitations"

    same = await console.post("hz.manager", path, {"product_code": "SHUIYITONG", "channel": "wechat"})
    first = await console.post("hz.manager", path, {"product_code": "KUAIEDAI", "channel": "wechat"})
    twice = await console.post("hz.manager", path, {"product_code": "kuaiedai", "channel": "sms"})
    unknown = await console.post("hz.manager", path, {"product_code": "NOSUCH", "channel": "sms"})
    await console.post("hz.manager", f"{APPLICANTS}/{s['p1'].id}/follow-ups", {"note": "客户要求不再联系", "outcome": "do_not_contact"})
    after = await console.post("hz.manager", path, {"product_code": "JINYITONG", "channel": "sms"})

    assert (same.status, same.json["error"]["code"]) == (409, "SAME_PRODUCT")
    assert first.status == 201, first.text
    assert (twice.status, twice.json["error"]["code"]) == (409, "ALREADY_REINVITED")
    assert (unknown.status, unknown.json["error"]["code"]) == (404, "PRODUCT_NOT_FOUND")
    assert (after.status, after.json["error"]["code"]) == (409, "DO_NOT_CONTACT")
    assert await OutboxMessage.filter(topic=REINVITE_TOPIC).count() == 1
