"""One campaign's report for the console's campaign page: its funnel (the total) and its
leaderboard per branch and staff member, as JSON and CSV.

HZRCB runs campaign A (started ten days ago, ends in ten) after campaign B (ran 40 to 20 days
ago). The account manager's poster brought R1 during A (disbursed 20,000 yuan, rewarded 10 yuan
in A); his QR brought R2 during B (approved three days ago, inside A's window but bound before
it); R4 was bound during A but names campaign B. LSRCB's R3 was bound during A at another bank.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from infra import clock
from lending_core.org.models import Bank, Branch
from marketing.models import Campaign, InviteReferral, Reward
from tests.marketing.staff_story import code_of, referral, staff
from tests.support import StaffConsole

pytestmark = pytest.mark.usefixtures("demo")

FIGURES = ("scans", "registrations", "applications", "approvals", "disbursed_loans", "disbursed_fen", "cost_fen", "cost_per_disbursed_loan_fen")


@pytest.fixture
def console(client) -> StaffConsole:
    return StaffConsole(client)


def figures(row: dict) -> tuple:
    return tuple(row[name] for name in FIGURES)


async def campaign(bank: str, name: str, *, starts_days_ago: int, ends_days_ago: int) -> Campaign:
    now = clock.now()
    return await Campaign.create(
        bank_id=(await Bank.get(code=bank)).id,
        kind="referral_reward",
        name=name,
        status="live",
        starts_at=now - timedelta(days=starts_days_ago),
        ends_at=now - timedelta(days=ends_days_ago),
        budget_fen=1_000_000,
        milestone="disbursed",
        reward_fen=1_000,
        created_by_id=(await staff("hz.marketer")).id,
    )


async def story() -> dict:
    now = clock.now()
    a = await campaign("HZRCB", "推荐有礼 A", starts_days_ago=10, ends_days_ago=-10)
    b = await campaign("HZRCB", "推荐有礼 B", starts_days_ago=40, ends_days_ago=20)
    code = await code_of("hz.manager")
    r1 = await referral(code, at=now - timedelta(days=5), stage="disbursed", stage_at=now - timedelta(days=2), principal_fen=2_000_000, channel="poster")
    await referral(code, at=now - timedelta(days=30), stage="approved", stage_at=now - timedelta(days=3), channel="qr")
    await referral(await code_of("ls.manager"), at=now - timedelta(days=5), stage="applied", channel="qr")
    r4 = await referral(code, at=now - timedelta(days=4))
    await InviteReferral.filter(id=r4.id).update(campaign_id=b.id)
    await Reward.create(campaign_id=a.id, bank_id=a.bank_id, customer_id=r1.referee_id, kind="referral_cash", amount_fen=1_000, status="paid", referral_id=r1.id)
    return {"a": a, "b": b, "manager": await staff("hz.manager"), "branch": await Branch.get(code="HZ01")}


def report(campaign_id: int, by: str = "staff") -> str:
    return f"/api/v1/admin/campaigns/{campaign_id}/analytics?by={by}"


async def test_a_campaigns_leaderboard_and_funnel_count_what_it_brought(console):
    s = await story()

    response = await console.get("hz.marketer", report(s["a"].id))

    assert response.status == 200, response.text
    rows = {row["key"]: row for row in response.json["rows"]}
    # R1 and its scan only: R2 was bound before A, R4 names B, R3 is another bank's.
    assert set(rows) == {s["manager"].id}
    assert figures(rows[s["manager"].id]) == (1, 1, 1, 1, 1, 2_000_000, 1_000, 1_000)
    assert rows[s["manager"].id]["label"].startswith("hz.manager ")
    assert response.json["total"] == {name: rows[s["manager"].id][name] for name in FIGURES}

    by_branch = await console.get("hz.marketer", report(s["a"].id, "branch"))
    assert by_branch.status == 200, by_branch.text
    assert [(row["key"], figures(row)) for row in by_branch.json["rows"]] == [(s["branch"].id, figures(rows[s["manager"].id]))]


async def test_a_referral_counts_its_later_stages_and_the_campaign_it_names(console):
    s = await story()

    response = await console.get("hz.admin", report(s["b"].id))

    assert response.status == 200, response.text
    # R2 (bound during B, approved after it ended) and R4 (named B); B's scans: R2's QR scan.
    assert figures(response.json["total"]) == (1, 2, 1, 1, 0, 0, 0, None)


async def test_the_report_downloads_as_csv(console):
    s = await story()

    response = await console.get("hz.marketer", f"/api/v1/admin/campaigns/{s['a'].id}/analytics.csv?by=branch")

    assert response.status == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert f"campaign-{s['a'].id}-branch.csv" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.body.decode("utf-8-sig"))))
    assert [(int(row["branch_key"]), int(row["applications"]), int(row["disbursed_fen"])) for row in rows] == [(s["branch"].id, 1, 2_000_000)]


async def test_another_banks_campaign_is_not_found_and_the_role_is_checked(console):
    s = await story()

    assert (await console.get("ls.marketer", report(s["a"].id))).status == 404
    assert (await console.get("hz.reviewer", report(s["a"].id))).status == 403
    assert (await console.get("hz.marketer", report(s["a"].id, "channel"))).status == 422
