"""Marketing analytics through HTTP, as JSON and as CSV: per campaign, channel, branch and staff
member — scans, registrations, applications, approvals, disbursed amount, cost so far, cost per
disbursed loan.

November 2026 at HZRCB: the account manager's poster brought R1 (drew 20,000 yuan, in the
referral campaign, rewarded 10 yuan, paid), his QR code brought R2 (approved, no campaign); a
customer he brought in October shared a mini-program code that brought R3 (drew 10,000 yuan, in
the campaign, rewarded 5 yuan, due). Two more scans of his poster brought no one. A red-packet
campaign paid 3 yuan, and a returned reward of 7 yuan costs nothing. LSRCB ran a campaign of its own.
"""

from __future__ import annotations

import csv
import io

import pytest

from lending_core.org.models import Bank, Branch
from marketing.analytics import safe_cell
from marketing.models import Campaign, InviteReferral, InviteTouch, Reward
from tests.marketing.staff_story import code_of, customer_of, referral, staff, utc
from tests.support import StaffConsole

pytestmark = pytest.mark.usefixtures("demo")

ANALYTICS = "/api/v1/admin/marketing/analytics"
WINDOW = "since=2026-11-01T00:00:00Z&until=2026-11-30T00:00:00Z"
FORMULA_NAME = "=HYPERLINK(\"http://evil\",\"点我\")"


@pytest.fixture
def console(client) -> StaffConsole:
    return StaffConsole(client)


async def campaign(bank: str, kind: str, name: str, by: str) -> Campaign:
    return await Campaign.create(
        bank_id=(await Bank.get(code=bank)).id,
        kind=kind,
        name=name,
        status="live",
        starts_at=utc(2026, 11, 1),
        ends_at=utc(2026, 12, 1),
        budget_fen=1_000_000,
        created_by_id=(await staff(by)).id,
    )


async def reward(c: Campaign, amount_fen: int, status: str, ref: InviteReferral | None = None, customer_id: int | None = None) -> Reward:
    made = await Reward.create(
        campaign_id=c.id,
        bank_id=c.bank_id,
        customer_id=customer_id or ref.referee_id,
        kind="red_packet" if ref is None else "referral_cash",
        amount_fen=amount_fen,
        status=status,
        referral_id=ref.id if ref else None,
    )
    await Reward.filter(id=made.id).update(created_at=utc(2026, 11, 20))
    return made


async def story() -> dict:
    referral_campaign = await campaign("HZRCB", "referral_reward", "推荐有礼, \"双十一\"", "hz.marketer")
    packets = await campaign("HZRCB", "red_packet", FORMULA_NAME, "hz.marketer")
    manager_code = await code_of("hz.manager")
    r1 = await referral(manager_code, at=utc(2026, 11, 5), stage="disbursed", stage_at=utc(2026, 11, 10), principal_fen=2_000_000, channel="poster")
    r2 = await referral(manager_code, at=utc(2026, 11, 6), stage="approved", channel="qr")
    _, friends_code = await customer_of(manager_code, at=utc(2026, 10, 20))
    r3 = await referral(friends_code, at=utc(2026, 11, 7), stage="disbursed", stage_at=utc(2026, 11, 9), principal_fen=1_000_000, channel="wxacode")
    await InviteReferral.filter(id__in=[r1.id, r3.id]).update(campaign_id=referral_campaign.id)
    for day in (8, 9):
        await InviteTouch.create(invite_code=manager_code, channel="poster", at=utc(2026, 11, day))
    await reward(referral_campaign, 1_000, "paid", r1)
    await reward(referral_campaign, 500, "due", r3)
    await reward(referral_campaign, 700, "returned", r2)
    await reward(packets, 300, "paid", customer_id=r2.referee_id)
    ls_campaign = await campaign("LSRCB", "referral_reward", "蓝山推荐", "ls.marketer")
    ls_ref = await referral(await code_of("ls.manager"), at=utc(2026, 11, 5), stage="disbursed", principal_fen=4_000_000, channel="qr")
    await InviteReferral.filter(id=ls_ref.id).update(campaign_id=ls_campaign.id)
    await reward(ls_campaign, 900, "paid", ls_ref)
    return {"referral_campaign": referral_campaign, "packets": packets, "ls_campaign": ls_campaign, "manager": await staff("hz.manager")}


def figures(row: dict) -> tuple:
    return (
        row["scans"],
        row["registrations"],
        row["applications"],
        row["approvals"],
        row["disbursed_loans"],
        row["disbursed_fen"],
        row["cost_fen"],
        row["cost_per_disbursed_loan_fen"],
    )


async def rows_by(console: StaffConsole, username: str, by: str) -> dict:
    response = await console.get(username, f"{ANALYTICS}?by={by}&{WINDOW}")
    assert response.status == 200, response.text
    return {row["key"]: row for row in response.json["rows"]}


async def test_per_campaign(console):
    s = await story()

    rows = await rows_by(console, "hz.marketer", "campaign")

    assert set(rows) == {s["referral_campaign"].id, s["packets"].id, None}
    # Scans of the bank's codes while each campaign ran: all five for both.
    assert figures(rows[s["referral_campaign"].id]) == (5, 2, 2, 2, 2, 3_000_000, 1_500, 750)
    assert figures(rows[s["packets"].id]) == (5, 0, 0, 0, 0, 0, 300, None)
    assert figures(rows[None]) == (0, 1, 1, 1, 0, 0, 0, None)  # R2 came without a campaign
    assert rows[s["packets"].id]["label"] == FORMULA_NAME


async def test_per_channel(console):
    await story()

    rows = await rows_by(console, "hz.marketer", "channel")

    assert figures(rows["poster"]) == (3, 1, 1, 1, 1, 2_000_000, 1_000, 1_000)
    assert figures(rows["qr"]) == (1, 1, 1, 1, 0, 0, 0, None)
    assert figures(rows["wxacode"]) == (1, 1, 1, 1, 1, 1_000_000, 500, 500)
    assert figures(rows[None]) == (0, 0, 0, 0, 0, 0, 300, None)  # the red packet came by no referral


async def test_per_staff_member_and_branch_credit_customers_invitations(console):
    s = await story()
    branch = await Branch.get(code="HZ01")

    by_staff = await rows_by(console, "hz.admin", "staff")
    by_branch = await rows_by(console, "hz.admin", "branch")

    # R3 came through his customer's code: credited to him, the scan of that code to no one.
    assert figures(by_staff[s["manager"].id]) == (4, 3, 3, 3, 2, 3_000_000, 1_500, 750)
    assert figures(by_staff[None]) == (1, 0, 0, 0, 0, 0, 300, None)
    assert by_staff[s["manager"].id]["label"].startswith("hz.manager ") and "*" in by_staff[s["manager"].id]["label"]
    assert figures(by_branch[branch.id]) == figures(by_staff[s["manager"].id])


async def test_another_banks_staff_see_only_their_own(console):
    s = await story()
    hz = await Bank.get(code="HZRCB")

    rows = await rows_by(console, "ls.marketer", "campaign")
    reaching = await console.get("ls.marketer", f"{ANALYTICS}?by=campaign&{WINDOW}&bank_id={hz.id}")
    association = await rows_by(console, "assoc.admin", "campaign")

    assert set(rows) == {s["ls_campaign"].id}
    assert figures(rows[s["ls_campaign"].id]) == (1, 1, 1, 1, 1, 4_000_000, 900, 900)
    assert (reaching.status, reaching.json["error"]["code"]) == (404, "NOT_FOUND")
    assert set(association) == {s["referral_campaign"].id, s["packets"].id, s["ls_campaign"].id, None}


async def test_the_csv_export_is_escaped_and_formula_safe(console):
    s = await story()

    _, response = await console.client.get(f"{ANALYTICS}.csv?by=campaign&{WINDOW}", headers=await console.headers("hz.marketer"))

    assert response.status == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff") and "\r\n" in text
    table = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    by_key = {row["campaign_key"]: row for row in table}
    packets = by_key[str(s["packets"].id)]
    assert packets["campaign_label"] == "'" + FORMULA_NAME  # shown as text, never run
    assert (packets["cost_fen"], packets["cost_yuan"], packets["cost_per_disbursed_loan_fen"]) == ("300", "3.00", "")
    referral_row = by_key[str(s["referral_campaign"].id)]
    assert referral_row["campaign_label"] == "推荐有礼, \"双十一\""  # the comma and quotes survive the round trip
    assert (referral_row["disbursed_yuan"], referral_row["cost_per_disbursed_loan_fen"]) == ("30000.00", "750")
    assert '"推荐有礼, ""双十一"""' in text


@pytest.mark.parametrize("value, cell", [("=1+1", "'=1+1"), ("+86", "'+86"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("ok=", "ok="), (-2, -2), (None, "")])
def test_cells_that_would_run_as_formulas_are_prefixed(value, cell):
    assert safe_cell(value) == cell


@pytest.mark.parametrize(
    "query, status",
    [
        (f"by=galaxy&{WINDOW}", 422),
        ("by=campaign&since=2026-11-30T00:00:00Z&until=2026-11-01T00:00:00Z", 400),
        ("by=campaign&since=2024-01-01T00:00:00Z&until=2026-11-01T00:00:00Z", 400),
        ("by=campaign&since=2026-11-01T00:00:00", 422),
    ],
)
async def test_bad_queries_are_refused(console, query, status):
    response = await console.get("hz.marketer", f"{ANALYTICS}?{query}")

    assert response.status == status, response.text


async def test_account_managers_do_not_get_analytics(console):
    response = await console.get("hz.manager", f"{ANALYTICS}?by=staff")

    assert (response.status, response.json["error"]["code"]) == (403, "FORBIDDEN")
