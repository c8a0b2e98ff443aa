"""Staff-wide marketing through HTTP: quotas set by a bank's admins and marketers, and the
leaderboard of staff, branches and banks for a period, with quota attainment and rank.

The story is ``staff_story.march_story``: March 2026 at HZRCB, two branches, a referral
through a staff member's customer, one on each side of the month's end, one voided; LSRCB beside.
"""

from __future__ import annotations

import pytest

from infra.audit import AuditEntry
from lending_core.org.models import Bank, Branch
from marketing.models import Quota
from tests.marketing.staff_story import march_story, staff
from tests.support import StaffConsole

pytestmark = pytest.mark.usefixtures("demo")

QUOTAS = "/api/v1/admin/quotas"
BOARD = "/api/v1/admin/leaderboard"
MARCH = "2026-03"


@pytest.fixture
def console(client) -> StaffConsole:
    return StaffConsole(client)


def metrics(row: dict) -> tuple:
    return (row["referrals"], row["referrals_via_customers"], row["applications"], row["approvals"], row["disbursed_loans"], row["disbursed_fen"])


# ---- quotas ----------------------------------------------------------------------------------------


async def test_a_bank_admin_sets_a_quota_for_a_staff_member_and_it_is_audited(console):
    manager = await staff("hz.manager")

    response = await console.post("hz.admin", QUOTAS, {"staff_id": manager.id, "period": "2026-03", "referrals_target": 4, "disbursed_target_fen": 10_000_000})

    assert response.status == 201, response.text
    body = response.json
    assert (body["staff_id"], body["branch_id"], body["bank_id"], body["period"]) == (manager.id, None, manager.bank_id, "2026-03")
    assert (body["referrals_target"], body["applications_target"], body["disbursed_target_fen"]) == (4, 0, 10_000_000)
    assert await AuditEntry.filter(action="quota.create", object_id=str(body["id"])).count() == 1


async def test_a_marketer_sets_a_branch_quota_for_a_quarter(console):
    branch = await Branch.get(code="HZ02")

    response = await console.post("hz.marketer", QUOTAS, {"branch_id": branch.id, "period": "2026-q2", "approvals_target": 30})

    assert response.status == 201, response.text
    assert (response.json["branch_id"], response.json["staff_id"], response.json["period"]) == (branch.id, None, "2026-Q2")


async def test_one_quota_per_owner_and_period(console):
    manager = await staff("hz.manager")
    first = await console.post("hz.admin", QUOTAS, {"staff_id": manager.id, "period": MARCH, "referrals_target": 4})
    assert first.status == 201, first.text

    again = await console.post("hz.marketer", QUOTAS, {"staff_id": manager.id, "period": MARCH, "referrals_target": 9})
    other_month = await console.post("hz.marketer", QUOTAS, {"staff_id": manager.id, "period": "2026-04", "referrals_target": 9})

    assert (again.status, again.json["error"]["code"]) == (409, "QUOTA_EXISTS")
    assert other_month.status == 201, other_month.text
    assert await Quota.filter(staff_id=manager.id).count() == 2


@pytest.mark.parametrize(
    "body, code",
    [
        ({"period": MARCH, "referrals_target": 4}, "INVALID_QUOTA"),  # no owner
        ({"period": "2026-13", "referrals_target": 4, "owner": "staff"}, "INVALID_QUOTA"),
        ({"period": MARCH, "owner": "staff"}, "INVALID_QUOTA"),  # no positive target
        ({"period": MARCH, "referrals_target": -1, "owner": "staff"}, "VALIDATION_FAILED"),
        ({"period": MARCH, "disbursed_target_fen": 10**14, "owner": "staff"}, "VALIDATION_FAILED"),
        ({"period": MARCH, "referrals_target": 4, "owner": "both"}, "INVALID_QUOTA"),
        ({"period": MARCH, "referrals_target": 4, "bank_id": 1, "owner": "staff"}, "FIELD_NOT_ALLOWED"),
    ],
)
async def test_bad_quotas_are_refused_and_nothing_is_stored(console, body, code):
    manager, branch = await staff("hz.manager"), await Branch.get(code="HZ01")
    owner = body.pop("owner", None)
    if owner in ("staff", "both"):
        body["staff_id"] = manager.id
    if owner == "both":
        body["branch_id"] = branch.id

    response = await console.post("hz.admin", QUOTAS, body)

    assert response.status in (400, 422), response.text
    assert response.json["error"]["code"] == code
    assert await Quota.all().count() == 0


async def test_quotas_are_changed_and_removed_by_managers_only(console):
    manager = await staff("hz.manager")
    quota = (await console.post("hz.admin", QUOTAS, {"staff_id": manager.id, "period": MARCH, "referrals_target": 4})).json

    by_manager = await console.client.patch(f"{QUOTAS}/{quota['id']}", json={"referrals_target": 1}, headers=await console.headers("hz.manager"))
    changed = await console.client.patch(f"{QUOTAS}/{quota['id']}", json={"applications_target": 6}, headers=await console.headers("hz.marketer"))
    zeroed = await console.client.patch(
        f"{QUOTAS}/{quota['id']}", json={"referrals_target": 0, "applications_target": 0}, headers=await console.headers("hz.marketer")
    )

    assert by_manager[1].status == 403
    assert changed[1].status == 200, changed[1].text
    assert (changed[1].json["referrals_target"], changed[1].json["applications_target"]) == (4, 6)
    assert (zeroed[1].status, zeroed[1].json["error"]["code"]) == (422, "INVALID_QUOTA")
    _, removed = await console.client.delete(f"{QUOTAS}/{quota['id']}", headers=await console.headers("hz.admin"))
    assert removed.status == 204
    assert not await Quota.filter(id=quota["id"]).exists()
    assert await AuditEntry.filter(action__in=("quota.update", "quota.delete"), object_id=str(quota["id"])).count() == 2


async def test_an_account_manager_sees_the_quotas_but_cannot_set_them(console):
    manager = await staff("hz.manager")
    await console.post("hz.admin", QUOTAS, {"staff_id": manager.id, "period": MARCH, "referrals_target": 4})

    listed = await console.get("hz.manager", f"{QUOTAS}?period={MARCH}")
    refused = await console.post("hz.manager", QUOTAS, {"staff_id": manager.id, "period": "2026-04", "referrals_target": 4})

    assert [item["staff_id"] for item in listed.json["items"]] == [manager.id]
    assert (refused.status, refused.json["error"]["code"]) == (403, "FORBIDDEN")


async def test_another_banks_staff_can_neither_set_nor_see_our_quotas(console):
    manager, branch = await staff("hz.manager"), await Branch.get(code="HZ01")
    quota = (await console.post("hz.admin", QUOTAS, {"staff_id": manager.id, "period": MARCH, "referrals_target": 4})).json

    for body in ({"staff_id": manager.id, "period": "2026-04", "referrals_target": 1}, {"branch_id": branch.id, "period": MARCH, "referrals_target": 1}):
        response = await console.post("ls.admin", QUOTAS, body)
        assert (response.status, response.json["error"]["code"]) == (404, "NOT_FOUND"), response.text
    assert (await console.get("ls.admin", f"{QUOTAS}/{quota['id']}")).status == 404
    assert (await console.get("ls.admin", QUOTAS)).json["items"] == []
    _, patched = await console.client.patch(f"{QUOTAS}/{quota['id']}", json={"referrals_target": 99}, headers=await console.headers("ls.admin"))
    _, deleted = await console.client.delete(f"{QUOTAS}/{quota['id']}", headers=await console.headers("ls.admin"))
    assert (patched.status, deleted.status) == (404, 404)
    assert (await Quota.get(id=quota["id"])).referrals_target == 4


async def test_the_association_sets_quotas_at_any_bank_but_not_for_itself(console):
    ls_manager, assoc = await staff("ls.manager"), await staff("assoc.admin")

    ok = await console.post("assoc.admin", QUOTAS, {"staff_id": ls_manager.id, "period": MARCH, "referrals_target": 2})
    own = await console.post("assoc.admin", QUOTAS, {"staff_id": assoc.id, "period": MARCH, "referrals_target": 2})

    assert ok.status == 201 and ok.json["bank_id"] == ls_manager.bank_id
    assert (own.status, own.json["error"]["code"]) == (422, "INVALID_QUOTA")


# ---- leaderboard -------------------------------------------------------------------------------------


async def test_the_banks_staff_leaderboard_counts_what_each_reached_in_the_period(console):
    people = await march_story()
    manager, east = people["manager"], people["east"]
    marketer = await staff("hz.marketer")
    await console.post("hz.admin", QUOTAS, {"staff_id": manager.id, "period": MARCH, "referrals_target": 4, "applications_target": 8, "disbursed_target_fen": 10_000_000})
    await console.post("hz.admin", QUOTAS, {"staff_id": east.id, "period": MARCH, "disbursed_target_fen": 5_000_000})
    await console.post("hz.admin", QUOTAS, {"staff_id": marketer.id, "period": MARCH, "referrals_target": 2})

    response = await console.get("hz.manager", f"{BOARD}?period={MARCH}")

    assert response.status == 200, response.text
    body = response.json
    assert (body["period"], body["level"], body["scope"]) == (MARCH, "staff", {"bank_id": manager.bank_id})
    rows = {row["owner_id"]: row for row in body["rows"]}
    assert set(rows) == {manager.id, east.id, marketer.id}
    # A, B and E (through his customer) bound in March; C applied in March; D is April's.
    assert metrics(rows[manager.id]) == (3, 1, 4, 3, 2, 4_000_000)
    assert metrics(rows[east.id]) == (1, 0, 1, 1, 1, 5_000_000)  # the voided referral counts for no one
    assert metrics(rows[marketer.id]) == (0, 0, 0, 0, 0, 0)
    assert rows[manager.id]["attainment_bps"] == {"referrals": 7500, "applications": 5000, "approvals": None, "disbursed_fen": 4000, "overall": 5500}
    assert rows[east.id]["attainment_bps"]["overall"] == 10000
    assert rows[marketer.id]["attainment_bps"]["overall"] == 0
    assert [(row["rank"], row["owner_id"]) for row in body["rows"]] == [(1, east.id), (2, manager.id), (3, marketer.id)]
    assert rows[manager.id]["label"] == "hz.manager" and "*" in rows[manager.id]["name"]
    assert rows[manager.id]["quota"]["disbursed_target_fen"] == 10_000_000


async def test_ranking_by_attainment_and_ties_share_a_rank(console):
    people = await march_story()
    manager, east = people["manager"], people["east"]
    await console.post("hz.admin", QUOTAS, {"staff_id": manager.id, "period": MARCH, "referrals_target": 3})
    await console.post("hz.admin", QUOTAS, {"staff_id": east.id, "period": MARCH, "referrals_target": 1})

    by_attainment = await console.get("hz.admin", f"{BOARD}?period={MARCH}&rank_by=attainment_bps")
    by_approvals = await console.get("hz.admin", f"{BOARD}?period={MARCH}&rank_by=approvals")

    assert [(row["rank"], row["owner_id"]) for row in by_attainment.json["rows"]] == [(1, manager.id), (1, east.id)]
    assert [(row["rank"], row["owner_id"]) for row in by_approvals.json["rows"]] == [(1, manager.id), (2, east.id)]


async def test_a_branch_leaderboard_and_the_branches_of_a_bank(console):
    people = await march_story()
    first, second = await Branch.get(code="HZ01"), await Branch.get(code="HZ02")
    await console.post("hz.admin", QUOTAS, {"branch_id": first.id, "period": MARCH, "disbursed_target_fen": 8_000_000})

    one_branch = await console.get("hz.manager", f"{BOARD}?period={MARCH}&branch_id={first.id}")
    branches = await console.get("hz.manager", f"{BOARD}?period={MARCH}&level=branch")

    assert [row["owner_id"] for row in one_branch.json["rows"]] == [people["manager"].id]
    rows = {row["owner_id"]: row for row in branches.json["rows"]}
    assert metrics(rows[first.id]) == (3, 1, 4, 3, 2, 4_000_000)
    assert metrics(rows[second.id]) == (1, 0, 1, 1, 1, 5_000_000)
    assert rows[first.id]["attainment_bps"]["disbursed_fen"] == 5000 and rows[second.id]["quota"] is None
    assert rows[first.id]["label"] == "HZ01"


async def test_a_period_without_activity_is_empty_and_a_bad_period_is_refused(console):
    await march_story()

    empty = await console.get("hz.admin", f"{BOARD}?period=2025-03")
    bad = await console.get("hz.admin", f"{BOARD}?period=2026-3")
    level = await console.get("hz.admin", f"{BOARD}?period={MARCH}&level=galaxy")

    assert empty.status == 200 and empty.json["rows"] == []
    assert (bad.status, bad.json["error"]["code"]) == (422, "INVALID_QUOTA")
    assert level.status == 422


async def test_another_banks_staff_see_nothing_of_ours_on_the_leaderboard(console):
    people = await march_story()
    hz = await Bank.get(code="HZRCB")
    branch = await Branch.get(code="HZ01")

    own = await console.get("ls.manager", f"{BOARD}?period={MARCH}")
    for path in (f"{BOARD}?period={MARCH}&branch_id={branch.id}", f"{BOARD}?period={MARCH}&bank_id={hz.id}"):
        response = await console.get("ls.manager", path)
        assert (response.status, response.json["error"]["code"]) == (404, "NOT_FOUND"), path

    ls_manager = await staff("ls.manager")
    assert [(row["owner_id"], row["disbursed_fen"]) for row in own.json["rows"]] == [(ls_manager.id, 8_000_000)]
    assert str(people["manager"].id) not in [str(row["owner_id"]) for row in own.json["rows"]]


async def test_the_association_ranks_the_banks(console):
    await march_story()
    hz, ls = await Bank.get(code="HZRCB"), await Bank.get(code="LSRCB")

    response = await console.get("assoc.admin", f"{BOARD}?period={MARCH}&level=bank")
    one_bank = await console.get("assoc.admin", f"{BOARD}?period={MARCH}&bank_id={ls.id}")

    assert response.status == 200, response.text
    assert [(row["rank"], row["owner_id"], row["disbursed_fen"]) for row in response.json["rows"]] == [(1, hz.id, 9_000_000), (2, ls.id, 8_000_000)]
    assert [row["disbursed_fen"] for row in one_bank.json["rows"]] == [8_000_000]
