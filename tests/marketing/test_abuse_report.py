"""The suspicious-cluster report through HTTP: many referees on one device or one network,
referral rings, bursts on one code — each bank's own, the association's all.

November 2026 at HZRCB: four people bound on one phone to the account manager's code (and two
on another phone, below the threshold); the admin's code brought five people an hour apart
from one /24 network; the marketer's code five within four minutes; three customers invite each
other round in a ring (the binding rules refuse that, so the rows are written as a race past them
would leave them) beside an innocent chain. At LSRCB one phone brought three people.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from infra.actors import Actor
from lending_core.customers.models import Customer
from lending_core.org.models import Bank
from marketing import service as invites
from marketing.models import InviteReferral
from tests.marketing.staff_story import code_of, referral, utc
from tests.marketing.support import new_customer
from tests.support import StaffConsole

pytestmark = pytest.mark.usefixtures("demo")

REPORT = "/api/v1/admin/marketing/abuse-report"
WINDOW = "since=2026-11-01T00:00:00Z&until=2026-11-21T00:00:00Z"


@pytest.fixture
def console(client) -> StaffConsole:
    return StaffConsole(client)


async def customers_in_a_ring(size: int, bank_id: int) -> list[Customer]:
    people = [await new_customer() for _ in range(size)]
    codes = [await invites.my_code(Actor(kind="customer", id=p.id, bank_id=bank_id, channel="wechat_miniprogram")) for p in people]
    for i, person in enumerate(people):
        inviter = people[i - 1]  # the last invites the first: a ring
        await InviteReferral.create(
            referee_id=person.id,
            invite_code_id=codes[i - 1].id,
            inviter_customer_id=inviter.id,
            bank_id=bank_id,
            first_touch_at=utc(2026, 11, 12),
            channel="wechat_miniprogram",
            bound_at=utc(2026, 11, 12),
        )
    return people


async def story() -> dict:
    hz, ls = await Bank.get(code="HZRCB"), await Bank.get(code="LSRCB")
    manager, admin, marketer = await code_of("hz.manager"), await code_of("hz.admin"), await code_of("hz.marketer")
    farm = [await referral(manager, at=utc(2026, 11, 3 + day), device_id="farm-phone-0001") for day in range(4)]
    await referral(manager, at=utc(2026, 11, 8), device_id="shared-phone-0002")
    await referral(manager, at=utc(2026, 11, 9), device_id="shared-phone-0002")
    for hour in range(5):
        await referral(admin, at=utc(2026, 11, 10, hour), ip=f"10.1.2.{10 + hour}")
    for minute in range(5):
        await referral(marketer, at=utc(2026, 11, 11, 9, minute))
    ring = await customers_in_a_ring(3, hz.id)
    chain_start = await referral(admin, at=utc(2026, 11, 13))  # admin → a customer → another: no ring
    first = await Customer.get(id=chain_start.referee_id)
    await referral(await invites.my_code(Actor(kind="customer", id=first.id, bank_id=hz.id, channel="wechat_miniprogram")), at=utc(2026, 11, 14))
    ls_code = await code_of("ls.manager")
    for day in range(3):
        await referral(ls_code, at=utc(2026, 11, 15 + day), device_id="ls-farm-phone-0003")
    return {"hz": hz, "ls": ls, "farm": farm, "ring": ring, "marketer_code": marketer}


async def test_a_bank_sees_its_device_network_ring_and_burst_clusters(console):
    s = await story()

    response = await console.get("hz.risk", f"{REPORT}?{WINDOW}&per_network=5")

    assert response.status == 200, response.text
    body = response.json
    assert body["scope"] == {"bank_id": s["hz"].id}
    assert [(d["referees"], d["invite_codes"]) for d in body["devices"]] == [(4, 1)]
    device = body["devices"][0]
    assert sorted(r["referral_id"] for r in device["referrals"]) == sorted(r.id for r in s["farm"])
    assert device["key_ref"] == invites.device_hash("farm-phone-0001")[:16]
    assert [n["referees"] for n in body["networks"]] == [5]
    assert [ring["customer_ids"] for ring in body["rings"]] == [[p.id for p in s["ring"]]]
    assert [(b["invite_code"], b["referees"]) for b in body["bursts"]] == [(s["marketer_code"].code, 5)]
    assert body["bursts"][0]["starting_at"].startswith("2026-11-11T09:00:00")


async def test_thresholds_are_parameters(console):
    await story()

    strict = await console.get("hz.risk", f"{REPORT}?{WINDOW}&per_device=2&burst_count=6")

    assert sorted(d["referees"] for d in strict.json["devices"]) == [2, 4]
    assert strict.json["bursts"] == []
    assert strict.json["networks"] == []  # five on one network is under the default ten


async def test_the_window_bounds_what_is_reported(console):
    await story()

    before = await console.get("hz.marketer", f"{REPORT}?since=2026-10-01T00:00:00Z&until=2026-11-04T00:00:00Z")

    assert before.json["devices"] == [] and before.json["bursts"] == []


async def test_another_bank_sees_only_its_own_and_the_association_sees_all(console):
    s = await story()

    ls_report = await console.get("ls.risk", f"{REPORT}?{WINDOW}")
    reaching = await console.get("ls.risk", f"{REPORT}?{WINDOW}&bank_id={s['hz'].id}")
    everyone = await console.get("assoc.admin", f"{REPORT}?{WINDOW}")
    one_bank = await console.get("assoc.admin", f"{REPORT}?{WINDOW}&bank_id={s['ls'].id}")

    assert [d["referees"] for d in ls_report.json["devices"]] == [3]
    assert ls_report.json["rings"] == [] and ls_report.json["bursts"] == []
    assert (reaching.status, reaching.json["error"]["code"]) == (404, "NOT_FOUND")
    assert sorted(d["referees"] for d in everyone.json["devices"]) == [3, 4]
    assert len(everyone.json["rings"]) == 1
    assert [d["referees"] for d in one_bank.json["devices"]] == [3]


async def test_account_managers_do_not_get_the_report(console):
    response = await console.get("hz.manager", REPORT)

    assert (response.status, response.json["error"]["code"]) == (403, "FORBIDDEN")


async def test_a_window_without_time_zone_is_refused(console):
    response = await console.get("hz.risk", f"{REPORT}?since=2026-11-01T00:00:00")

    assert response.status == 422, response.text


async def test_long_chains_are_no_ring(console):
    hz = await Bank.get(code="HZRCB")
    start = await referral(await code_of("hz.manager"), at=utc(2026, 11, 1))
    current = await Customer.get(id=start.referee_id)
    for step in range(6):
        code = await invites.my_code(Actor(kind="customer", id=current.id, bank_id=hz.id, channel="wechat_miniprogram"))
        nxt = await referral(code, at=utc(2026, 11, 1) + timedelta(hours=step + 1))
        current = await Customer.get(id=nxt.referee_id)

    response = await console.get("hz.risk", f"{REPORT}?{WINDOW}")

    assert response.json["rings"] == []
