"""我的营销 in the browser: an account manager's invite code, QR and poster, their quota and rank,
and their branch's declined applicants followed up — each checked against what the API says.

People and phone numbers here are this file's own (born 1979-09-23, phones 1397731…): the live
backend is shared by every console test of the session.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from playwright.sync_api import expect

from infra.identity_numbers import make_test_id_number
from marketing.performance import current_month

ADMIN = "/api/v1/admin"
# A court-enforcement persona of the data sandbox (sequences 401-449): declined by SHUIYITONG.
DECLINED_SERIAL = 411
PRODUCT = "SHUIYITONG"


def declined_applicant(live, *, inviter: str, name: str, serial: int, phone: str, bank_code: str = "HZRCB") -> dict:
    """A customer who came through ``inviter``'s code, applied for SHUIYITONG and was declined."""
    code = live.get(inviter, f"{ADMIN}/invite-code").json()["code"]
    customer = live.customer(
        name=name, id_number=make_test_id_number("330106", date(1979, 9, 23), serial), phone=phone, bank_code=bank_code, scene=code
    )
    application = customer.apply(PRODUCT)
    assert application["status"] == "rejected", application
    return application


def show_row(tab, testid: str):
    """The row, after asking for further pages of the list until it is there."""
    row = tab.page.get_by_test_id(testid)
    secondary = tab.page.get_by_test_id("secondary")
    secondary.locator("table, p.empty").first.wait_for()
    while not row.count() and tab.page.get_by_test_id("more-declined").count():
        tab.page.get_by_test_id("more-declined").click()
        tab.page.wait_for_timeout(300)
    return row


def test_an_account_manager_sees_their_invite_code_qr_and_poster(console, live):
    invite = live.get("hz.manager", f"{ADMIN}/invite-code").json()

    tab = console("hz.manager").open("me.html")

    assert tab.page.get_by_test_id("invite-code").inner_text() == invite["code"]
    for image in ("invite-qr", "invite-poster"):
        tab.page.get_by_test_id(image).wait_for()
        assert tab.page.get_by_test_id(image).evaluate("img => img.complete && img.naturalWidth") > 0, image
    with tab.page.expect_download() as download:
        tab.page.get_by_test_id("download-poster").click()
    assert download.value.suggested_filename == f"海报-{invite['code']}.png"
    assert download.value.path().read_bytes().startswith(b"\x89PNG")
    tab.screenshot("me-invite")


def test_the_quota_a_marketer_sets_shows_with_the_managers_rank(console, live):
    period = current_month(datetime.now(UTC))
    manager = live.get("hz.manager", "/api/v1/staff/me").json()
    targets = {"referrals_target": 37, "approvals_target": 9, "disbursed_target_fen": 12_345_600}
    created = live.post("hz.marketer", f"{ADMIN}/quotas", {"staff_id": manager["id"], "period": period, **targets})
    if created.status_code == 409:  # another test of the session gave them one for this month: set ours
        existing = live.get("hz.marketer", f"{ADMIN}/quotas", staff_id=manager["id"], period=period).json()["items"][0]
        created = live.http.patch(f"{ADMIN}/quotas/{existing['id']}", json=targets, headers=live.headers(live.token("hz.marketer")))
    assert created.status_code in (200, 201), created.text
    board = live.get("hz.manager", f"{ADMIN}/leaderboard", period=period, level="staff", bank_id=manager["bank_id"]).json()["rows"]
    mine = next(row for row in board if row["owner_id"] == manager["id"])

    tab = console("hz.manager").open("me.html")
    tab.page.get_by_test_id("my-rank").wait_for()
    # The period the quota was set for (this month, or last month's if the month turned since).
    tab.page.get_by_test_id("period").select_option(period)

    quota = tab.page.get_by_test_id("my-quota")
    assert quota.get_by_test_id("target-referrals").inner_text() == "37"
    assert quota.get_by_test_id("target-approvals").inner_text() == "9"
    assert quota.get_by_test_id("target-disbursed_fen").inner_text() == "¥123,456.00"
    assert quota.get_by_test_id("actual-referrals").inner_text() == str(mine["referrals"])
    assert quota.get_by_test_id("target-applications").count() == 0  # no target set, no row
    assert tab.page.get_by_test_id("rank-bank").inner_text() == f"第 {mine['rank']} 名 / 共 {len(board)} 人"
    assert "selected" in tab.page.get_by_test_id("board-hz.manager").get_attribute("class")


def test_a_declined_applicant_of_the_branch_is_listed_masked_and_followed_up(console, live):
    application = declined_applicant(live, inviter="hz.manager", name="欧阳秋实", serial=DECLINED_SERIAL, phone="13977310012")

    tab = console("hz.manager").open("me.html")

    row = show_row(tab, f"declined-{application['id']}")
    assert "欧**实" in row.inner_text() and "未跟进" in row.inner_text()
    assert application["reasons"] and application["reasons"][0] in row.inner_text()
    assert "欧阳秋实" not in tab.page.content()

    row.get_by_test_id("open-follow-up").click()
    form = tab.page.get_by_test_id("follow-up-form")
    form.locator("select[name=outcome]").select_option("interested")
    form.locator("textarea[name=note]").fill("已电话联系 13977310012，客户有意向，等营业执照办好再申请")
    form.locator("input[name=next_contact_on]").fill("2099-01-15")
    form.get_by_role("button", name="保存跟进").click()

    detail = tab.page.get_by_test_id("follow-up-detail")
    expect(detail.get_by_test_id("notice")).to_contain_text("跟进已记录")
    row = tab.page.get_by_test_id(f"declined-{application['id']}")
    assert "有意向" in row.get_by_test_id("last-follow-up").inner_text()
    assert "2099-01-15" in row.inner_text()
    recorded = live.get("hz.manager", f"{ADMIN}/secondary-marketing/applicants/{application['id']}/follow-ups").json()["items"]
    assert [(f["outcome"], f["staff_id"]) for f in recorded] == [("interested", live.get("hz.manager", "/api/v1/staff/me").json()["id"])]
    assert detail.get_by_test_id(f"follow-up-{recorded[0]['id']}").is_visible()
    # The note is kept as written but shown scrubbed: no phone number on the screen.
    assert "客户有意向" in detail.inner_text() and "13977310012" not in tab.page.content()

    # Re-invited to another of the bank's products: the declined one is not offered.
    reinvite = detail.get_by_test_id("reinvite-form")
    offered = reinvite.locator("select[name=product_code] option").evaluate_all("options => options.map(o => o.value)")
    assert offered and PRODUCT not in offered
    reinvite.locator("select[name=product_code]").select_option(offered[0])
    reinvite.locator("select[name=channel]").select_option("wechat")
    reinvite.get_by_role("button", name="发送再次邀约").click()
    expect(detail.get_by_test_id("notice")).to_contain_text("再次邀约已发送")
    assert detail.get_by_test_id(f"reinvitation-{offered[0]}").is_visible()
    sent = live.get("hz.manager", f"{ADMIN}/secondary-marketing/applicants/{application['id']}/reinvitations").json()["items"]
    assert [(r["product_code"], r["channel"]) for r in sent] == [(offered[0], "wechat")]
    tab.screenshot("me-secondary")


def test_each_role_sees_only_the_sections_it_can_use(console):
    reviewer = console("hz.reviewer").open("me.html")
    reviewer.page.get_by_test_id("invite-code").wait_for()
    reviewer.page.get_by_test_id("my-rank").wait_for()
    assert reviewer.page.get_by_test_id("secondary").count() == 0

    marketer = console("hz.marketer").open("me.html")
    secondary = marketer.page.get_by_test_id("secondary")
    assert "全行" in secondary.locator("h2").inner_text()
    marketer.page.wait_for_function("document.querySelectorAll('[data-testid=branch-filter] option').length > 1")
    assert marketer.page.get_by_test_id("branch-filter").locator("option").all_inner_texts() == ["全行", "河州营业部", "河州城东支行"]
    manager = console("hz.manager").open("me.html")
    assert manager.page.get_by_test_id("branch-filter").count() == 0
    assert "本网点" in manager.page.get_by_test_id("secondary").locator("h2").inner_text()
