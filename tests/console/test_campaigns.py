"""营销活动 in the browser: a marketer creates and schedules a campaign, sees its funnel move after a
customer arrives by their code and applies; pauses, resumes and ends a campaign with its buttons;
bad terms are refused with the reason and create nothing; a budget above the threshold waits for
the bank admin's approval; another bank's campaign is "not found".

People and phone numbers here are this file's own (born 1984-06-15, phones 1398415…): the live
backend is shared by every console test of the session, so counts are compared before and after,
never assumed to start at zero.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, date, datetime, timedelta

from infra.identity_numbers import make_test_id_number

ADMIN = "/api/v1/admin"
CAMPAIGNS = f"{ADMIN}/campaigns"
# A clean salaried persona of the data sandbox (sequences 101-199): approved by SHUIYITONG.
APPROVED_SERIAL = 131
PRODUCT = "SHUIYITONG"
FUNNEL = ("scans", "registrations", "applications", "approvals", "disbursed_loans")


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


def campaign_ids(live, username: str) -> set[int]:
    found, after = set(), 0
    while after is not None:
        body = live.get(username, CAMPAIGNS, limit=100, after=after).json()
        found |= {c["id"] for c in body["items"]}
        after = body["next_after"]
    return found


def live_campaign(live, username: str, **terms) -> dict:
    """A campaign created and scheduled through the API, running from a minute ago."""
    now = datetime.now(UTC)
    body = {
        "kind": "qr_share",
        "name": unique("接口活动"),
        "starts_at": (now - timedelta(minutes=1)).isoformat(),
        "ends_at": (now + timedelta(days=7)).isoformat(),
        "budget_fen": 100_000,
        **terms,
    }
    created = live.post(username, CAMPAIGNS, body)
    assert created.status_code == 201, created.text
    return created.json()


def funnel_on_page(tab) -> dict:
    tab.page.get_by_test_id("funnel").wait_for()
    return {key: int(tab.page.get_by_test_id(f"bar-{key}").inner_text()) for key in FUNNEL}


def status_shown(tab) -> str:
    return tab.page.get_by_test_id("detail-status").get_attribute("data-status")


def click_action(tab, event: str, then_status: str) -> None:
    tab.page.get_by_test_id(f"action-{event}").click()
    tab.page.locator(f"[data-testid=detail-status][data-status={then_status}]").wait_for()


def test_a_marketer_creates_a_campaign_and_sees_its_funnel_move_after_a_referred_application(console, live):
    name = unique("推荐有礼·冬季")
    tab = console("hz.marketer").open("campaigns.html")
    form = tab.page.get_by_test_id("create-form")
    form.get_by_test_id("input-kind").select_option("referral_reward")
    form.get_by_test_id("input-name").fill(name)
    form.get_by_test_id("input-budget_yuan").fill("20000")
    form.get_by_test_id("input-milestone").select_option("applied")
    form.get_by_test_id("input-reward_yuan").fill("8.80")
    form.get_by_test_id("input-per_person_limit").fill("5")
    form.get_by_test_id("input-payout_hold_minutes").fill("60")
    form.get_by_test_id("create").click()
    tab.page.get_by_test_id("campaign-detail").wait_for()

    campaign_id = int(tab.page.get_by_test_id("campaign-detail").get_attribute("data-campaign-id"))
    assert tab.page.url.endswith(f"#{campaign_id}")
    created = live.get("hz.marketer", f"{CAMPAIGNS}/{campaign_id}").json()
    # What was typed in yuan reached the server in fen.
    assert (created["name"], created["status"], created["budget_fen"], created["reward_fen"], created["milestone"]) == (name, "draft", 2_000_000, 880, "applied")
    assert created["payout_hold_minutes"] == 60
    assert tab.page.get_by_test_id(f"campaign-{campaign_id}").is_visible()

    click_action(tab, "submit", "live")  # starting now, within the budget threshold: runs at once
    before = funnel_on_page(tab)

    # A customer sees the marketer's code (a scan), arrives by it (registration) and applies.
    code = live.get("hz.marketer", f"{ADMIN}/invite-code").json()["code"]
    scan = live.http.post(f"/api/v1/invite-codes/{code}/scans", json={"channel": "poster", "device_id": uuid.uuid4().hex})
    assert scan.status_code == 201, scan.text
    customer = live.customer(
        name="钱多多", id_number=make_test_id_number("330109", date(1984, 6, 15), APPROVED_SERIAL), phone="13984150131", bank_code="HZRCB", scene=code
    )
    application = customer.apply(PRODUCT)
    if application["status"] == "manual_review":  # the amount is above what the model approves alone
        reviewed = live.post("hz.senior", f"{ADMIN}/applications/{application['id']}/review", {"decision": "approve", "note": "资料已核实"})
        assert reviewed.status_code == 200, reviewed.text
    else:
        assert application["status"] == "approved", application

    # The referral's stage moves when the worker relays the application's event: wait for it.
    report = f"{CAMPAIGNS}/{campaign_id}/analytics"
    deadline = time.monotonic() + 30
    while live.get("hz.marketer", report, by="staff").json()["total"]["approvals"] <= before["approvals"] and time.monotonic() < deadline:
        time.sleep(0.5)

    tab.page.reload()
    tab.page.get_by_test_id("campaign-detail").wait_for()
    after = funnel_on_page(tab)
    assert after["scans"] >= before["scans"] + 1, (before, after)
    assert after["registrations"] >= before["registrations"] + 1, (before, after)
    assert after["applications"] >= before["applications"] + 1, (before, after)
    assert after["approvals"] >= before["approvals"] + 1, (before, after)
    # The leaderboard credits the marketer whose code brought the customer.
    marketer = live.get("hz.marketer", "/api/v1/staff/me").json()
    mine = tab.page.get_by_test_id("leaderboard-staff").get_by_test_id(f"row-{marketer['id']}")
    assert "hz.marketer" in mine.inner_text()
    assert tab.page.get_by_test_id("leaderboard-branch").locator("tbody tr").count() >= 1
    tab.screenshot("campaign-detail")

    with tab.page.expect_download() as download:
        tab.page.get_by_test_id("export-staff").click()
    exported = download.value.path().read_text(encoding="utf-8-sig")
    assert exported.splitlines()[0].startswith("staff_key,staff_label,scans,registrations,applications")
    assert any(line.startswith(f"{marketer['id']},hz.marketer ") for line in exported.splitlines())


def test_pause_resume_and_end_through_the_buttons_and_red_packet_stock(console, live):
    campaign = live_campaign(live, "hz.marketer", kind="red_packet", budget_fen=50_000, packet_count=40, packet_min_fen=100, packet_max_fen=2_000)
    assert live.post("hz.marketer", f"{CAMPAIGNS}/{campaign['id']}/submit").status_code == 200

    tab = console("hz.marketer").open(f"campaigns.html#{campaign['id']}")
    tab.page.get_by_test_id("campaign-detail").wait_for()
    assert status_shown(tab) == "live"
    stock = tab.page.get_by_test_id("packet-stock")
    stock.get_by_test_id("bar-packets_left").wait_for()
    assert stock.get_by_test_id("bar-packets_left").inner_text() == "40"
    assert tab.page.get_by_test_id("budget-spent").inner_text() == "¥0.00"
    tab.screenshot("campaign-red-packet")

    click_action(tab, "pause", "paused")
    assert live.get("hz.marketer", f"{CAMPAIGNS}/{campaign['id']}").json()["status"] == "paused"
    tab.page.get_by_test_id(f"campaign-{campaign['id']}").get_by_text("已暂停").wait_for()  # the list follows
    click_action(tab, "resume", "live")
    click_action(tab, "end", "ended")
    assert live.get("hz.marketer", f"{CAMPAIGNS}/{campaign['id']}").json()["status"] == "ended"
    # An ended campaign offers nothing more to do.
    assert tab.page.get_by_test_id("actions").locator("button").count() == 0


def test_bad_terms_show_the_reason_and_create_nothing(console, live):
    known = campaign_ids(live, "hz.marketer")
    tab = console("hz.marketer").open("campaigns.html")
    tab.page.get_by_test_id("campaign-list").locator("table, p.empty").first.wait_for()
    tab.screenshot("campaigns-list")
    form = tab.page.get_by_test_id("create-form")
    form.get_by_test_id("input-name").fill(unique("坏活动"))

    form.get_by_test_id("input-budget_yuan").fill("abc")
    form.get_by_test_id("create").click()
    assert "abc" in form.get_by_test_id("error").inner_text()

    # Ends before it starts: the server's own check names the field.
    form.get_by_test_id("input-budget_yuan").fill("1000")
    form.get_by_test_id("input-starts_at").fill("2030-05-02T10:00")
    form.get_by_test_id("input-ends_at").fill("2030-05-01T10:00")
    form.get_by_test_id("create").click()
    form.get_by_test_id("problems").wait_for()
    assert "CAMPAIGN_INVALID" in form.get_by_test_id("error").inner_text()
    assert "ends_at" in form.get_by_test_id("problems").inner_text()

    assert campaign_ids(live, "hz.marketer") == known
    assert tab.page.get_by_test_id("campaign-detail").count() == 0


def test_a_budget_above_the_threshold_waits_for_the_bank_admins_approval(console, live):
    campaign = live_campaign(live, "hz.marketer", budget_fen=6_000_000)  # above the 50,000 yuan threshold

    marketer = console("hz.marketer").open(f"campaigns.html#{campaign['id']}")
    click_action(marketer, "submit", "pending_approval")
    # The marketer cannot approve their own budget: no button for it.
    assert marketer.page.get_by_test_id("action-approve").count() == 0

    admin = console("hz.admin").open(f"campaigns.html#{campaign['id']}")
    click_action(admin, "approve", "live")
    assert live.get("hz.marketer", f"{CAMPAIGNS}/{campaign['id']}").json()["approved_by"] is not None


def test_another_banks_campaign_is_not_found(console, live):
    theirs = live_campaign(live, "ls.marketer", name=unique("蓝山活动"))

    tab = console("hz.marketer").open(f"campaigns.html#{theirs['id']}")

    tab.page.get_by_test_id("not-found").wait_for()
    assert f"#{theirs['id']}" in tab.page.get_by_test_id("not-found").inner_text()
    assert tab.page.get_by_test_id("campaign-detail").count() == 0
    assert tab.page.get_by_test_id(f"campaign-{theirs['id']}").count() == 0
