"""Staff incentives under a campaign's rule through HTTP: set by the bank's marketers, computed
per staff member for the loans their referrals drew within the campaign's window, in integer fen.

Same March story as the leaderboard: the first branch's manager has A (30,000 yuan, direct) and
E (10,000 yuan, through his customer), the second branch's manager F (50,000 yuan), LSRCB's
manager H (80,000 yuan). Rule: 50 yuan per loan + 0.15 % of the amount, half for loans through
customers.
"""

from __future__ import annotations

import pytest

from infra.audit import AuditEntry
from lending_core.org.models import Bank
from marketing.models import Campaign, IncentiveRule
from tests.marketing.staff_story import march_story, staff, utc
from tests.support import StaffConsole

pytestmark = pytest.mark.usefixtures("demo")

CAMPAIGNS = "/api/v1/admin/campaigns"
RULE = {"per_disbursed_loan_fen": 5_000, "disbursed_bps": 15, "indirect_share_bps": 5_000}


@pytest.fixture
def console(client) -> StaffConsole:
    return StaffConsole(client)


async def march_campaign(bank: str | None = "HZRCB", *, by: str = "hz.marketer", ends_at=None) -> Campaign:
    """A staff QR-share campaign over March 2026 (made directly: its lifecycle is not the point)."""
    return await Campaign.create(
        bank_id=(await Bank.get(code=bank)).id if bank else None,
        kind="qr_share",
        name="三月全员营销",
        status="ended",
        starts_at=utc(2026, 2, 28, 16),
        ends_at=ends_at or utc(2026, 3, 31, 16),
        budget_fen=10_000_000,
        created_by_id=(await staff(by)).id,
    )


async def put_rule(console: StaffConsole, username: str, campaign_id: int, body: dict):
    _, response = await console.client.put(f"{CAMPAIGNS}/{campaign_id}/incentive-rule", json=body, headers=await console.headers(username))
    return response


async def test_each_staff_member_earns_under_the_campaigns_rule(console):
    people = await march_story()
    campaign = await march_campaign()
    assert (await put_rule(console, "hz.marketer", campaign.id, RULE)).status == 200

    response = await console.get("hz.admin", f"{CAMPAIGNS}/{campaign.id}/incentives")

    assert response.status == 200, response.text
    rows = {row["staff_id"]: row for row in response.json["rows"]}
    manager, east = rows[people["manager"].id], rows[people["east"].id]
    assert (manager["direct_loans"], manager["direct_fen"], manager["indirect_loans"], manager["indirect_fen"]) == (1, 3_000_000, 1, 1_000_000)
    # direct 50.00 + 45.00 yuan; through his customer (50.00 + 15.00) / 2 = 32.50 yuan
    assert manager["amount_fen"] == 9_500 + 3_250
    assert east["amount_fen"] == 5_000 + 7_500
    assert response.json["total_fen"] == 12_750 + 12_500
    assert [row["staff_id"] for row in response.json["rows"]] == [people["manager"].id, people["east"].id]
    assert set(rows) == {people["manager"].id, people["east"].id}  # LSRCB's manager is not in HZRCB's campaign


async def test_the_cap_limits_each_staff_member(console):
    await march_story()
    campaign = await march_campaign()
    await put_rule(console, "hz.admin", campaign.id, {**RULE, "cap_fen": 12_600})

    rows = (await console.get("hz.marketer", f"{CAMPAIGNS}/{campaign.id}/incentives")).json["rows"]

    assert [(row["uncapped_fen"], row["amount_fen"], row["capped"]) for row in rows] == [(12_750, 12_600, True), (12_500, 12_500, False)]


async def test_loans_outside_the_campaigns_window_earn_nothing(console):
    people = await march_story()
    campaign = await march_campaign(ends_at=utc(2026, 3, 10))  # before A's (20 March) and E's (15 March) loans
    await put_rule(console, "hz.marketer", campaign.id, RULE)

    rows = (await console.get("hz.marketer", f"{CAMPAIGNS}/{campaign.id}/incentives")).json["rows"]

    assert [(row["staff_id"], row["amount_fen"]) for row in rows] == [(people["east"].id, 12_500)]


async def test_setting_a_rule_again_replaces_it_and_is_audited(console):
    campaign = await march_campaign()
    await put_rule(console, "hz.marketer", campaign.id, RULE)

    second = await put_rule(console, "hz.admin", campaign.id, {"per_disbursed_loan_fen": 8_000})

    assert second.status == 200, second.text
    assert (second.json["per_disbursed_loan_fen"], second.json["disbursed_bps"], second.json["indirect_share_bps"]) == (8_000, 0, 10_000)
    assert await IncentiveRule.filter(campaign_id=campaign.id).count() == 1
    assert await AuditEntry.filter(action="incentive_rule.set", object_id=str(campaign.id)).count() == 2


@pytest.mark.parametrize(
    "body, code",
    [
        ({}, "INVALID_INCENTIVE_RULE"),  # pays nothing
        ({"per_disbursed_loan_fen": -1}, "VALIDATION_FAILED"),
        ({"disbursed_bps": 10_001}, "VALIDATION_FAILED"),
        ({"per_disbursed_loan_fen": 100, "cap_fen": 0}, "VALIDATION_FAILED"),
        ({"per_disbursed_loan_fen": 1.5}, "VALIDATION_FAILED"),
        ({"per_disbursed_loan_fen": 100, "status": "paid"}, "FIELD_NOT_ALLOWED"),
    ],
)
async def test_bad_rules_are_refused(console, body, code):
    campaign = await march_campaign()

    response = await put_rule(console, "hz.marketer", campaign.id, body)

    assert response.status in (400, 422), response.text
    assert response.json["error"]["code"] == code
    assert not await IncentiveRule.filter(campaign_id=campaign.id).exists()


async def test_no_rule_is_a_404_and_account_managers_cannot_see_incentives(console):
    campaign = await march_campaign()

    missing = await console.get("hz.marketer", f"{CAMPAIGNS}/{campaign.id}/incentives")
    manager = await console.get("hz.manager", f"{CAMPAIGNS}/{campaign.id}/incentives")

    assert (missing.status, missing.json["error"]["code"]) == (404, "NO_INCENTIVE_RULE")
    assert (manager.status, manager.json["error"]["code"]) == (403, "FORBIDDEN")


async def test_another_bank_neither_sees_nor_sets_our_campaigns_rule(console):
    await march_story()
    campaign = await march_campaign()
    await put_rule(console, "hz.marketer", campaign.id, RULE)

    seen = await console.get("ls.admin", f"{CAMPAIGNS}/{campaign.id}/incentives")
    rule = await console.get("ls.admin", f"{CAMPAIGNS}/{campaign.id}/incentive-rule")
    changed = await put_rule(console, "ls.marketer", campaign.id, {"per_disbursed_loan_fen": 1})

    assert [r.status for r in (seen, rule, changed)] == [404, 404, 404]
    assert (await IncentiveRule.get(campaign_id=campaign.id)).per_disbursed_loan_fen == 5_000


async def test_an_association_campaign_shows_each_bank_its_own_staff(console):
    people = await march_story()
    campaign = await march_campaign(None, by="assoc.admin")
    refused = await put_rule(console, "hz.marketer", campaign.id, RULE)
    assert refused.status == 404  # only the association sets an association-wide rule
    assert (await put_rule(console, "assoc.admin", campaign.id, RULE)).status == 200

    hz = await console.get("hz.admin", f"{CAMPAIGNS}/{campaign.id}/incentives")
    ls = await console.get("ls.admin", f"{CAMPAIGNS}/{campaign.id}/incentives")
    everyone = await console.get("assoc.admin", f"{CAMPAIGNS}/{campaign.id}/incentives")

    ls_manager = await staff("ls.manager")
    assert {row["staff_id"] for row in hz.json["rows"]} == {people["manager"].id, people["east"].id}
    assert [(row["staff_id"], row["amount_fen"]) for row in ls.json["rows"]] == [(ls_manager.id, 5_000 + 12_000)]
    assert len(everyone.json["rows"]) == 3
