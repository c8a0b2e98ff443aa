"""The reviewer's page in a real browser: the bank's manual-review queue, a case's decision
explained, and the approve/reject form (issue 9, item 3 and "a reviewer approves a manual-review
case").

Each case is made through the live API as it happens in life: a customer of the data sandbox
applies for 税易通 (SHUIYITONG) in the mini-program and the decision engine sends the case to a
person — a small-firm owner on HZRCB's restrict list (manual review, model limit at the list's
cap), or a persona whose data sources do not answer (manual review, model limit 0). The outcome
is then checked through the API, not on the page that made it.
"""

from __future__ import annotations

import re
from datetime import date

from playwright.sync_api import expect

from infra.identity_numbers import make_test_id_number
from integrations.data_sandbox import PERSONAS
from lending_core.products.service import CATALOGUE, read_catalogue_file

PRODUCT = "SHUIYITONG"
SHUIYITONG = read_catalogue_file(CATALOGUE / f"{PRODUCT}.toml")
LOAN = {"product_code": PRODUCT, "amount_yuan": 50_000, "term_months": 12, "repayment_method": "equal_instalment"}
# This file's customers are born on this day (and phone from this prefix), so no other console
# test's customer is the same person: one person may have only so many live applications.
BORN = date(1979, 3, 14)
PHONE_PREFIX = "1367914"
PERSONA = {p.label: p for p in PERSONAS}
ADMIN = "/api/v1/admin"


def manual_review_case(live, n: int, *, persona: str = "small_firm", name: str = "欧阳明华"):
    """The ``n``-th applicant of this file, applying for SHUIYITONG at HZRCB: a small-firm owner
    is first put on the bank's restrict list (so a person decides); an ``unavailable`` persona
    needs nothing more. Returns the customer and the case as the reviewer's API shows it."""
    serial = PERSONA[persona].first + n
    id_number = make_test_id_number("330102", BORN, serial)
    customer = live.customer(name=name, id_number=id_number, phone=f"{PHONE_PREFIX}{serial:04d}", bank_code="HZRCB")
    if persona == "small_firm":
        listed = live.post("hz.risk", f"{ADMIN}/risk-lists", {"level": "blacklist_restrict", "id_number": id_number, "reason": "涉诉风险信息"})
        assert listed.status_code == 201, listed.text
    application = customer.apply(PRODUCT)
    assert application["status"] == "manual_review", application
    return customer, case_of(live, application["id"])


def case_of(live, application_id: int) -> dict:
    response = live.get("hz.reviewer", f"{ADMIN}/applications/{application_id}")
    assert response.status_code == 200, response.text
    return response.json()


def yuan_text(fen: int) -> str:
    return f"¥{fen // 100:,}.{fen % 100:02d}"


def test_a_reviewer_approves_a_manual_review_case(console, live):
    customer, case = manual_review_case(live, 0)
    decision = case["decision"]
    assert decision["limit_fen"] == SHUIYITONG.restrict_list_cap_yuan * 100

    tab = console("hz.reviewer").open("reviews.html")
    row = tab.page.get_by_test_id(f"row-{case['id']}")
    expect(row).to_contain_text(PRODUCT)
    expect(row).to_contain_text(yuan_text(LOAN["amount_yuan"] * 100))
    expect(row).to_contain_text("欧**华")
    expect(row).to_contain_text("命中黑名单（限制级），不自动批准")
    assert "欧阳明华" not in tab.page.content()
    tab.screenshot("review-queue")

    row.click()
    detail = tab.page.get_by_test_id("case-detail")
    expect(detail).to_have_attribute("data-id", str(case["id"]))
    expect(tab.page).to_have_url(re.compile(rf"reviews\.html#{case['id']}$"))
    expect(row).to_have_class(re.compile(r"\bselected\b"))
    # Every admission rule with its condition, its words and its result.
    for rule in SHUIYITONG.admission:
        shown = detail.get_by_test_id(f"rule-{rule.code}")
        expect(shown).to_contain_text(rule.rule.text)
        expect(shown).to_contain_text(rule.reason)
        expect(shown.locator("td").last).to_have_text("通过")
    # The scorecard adds up: the base and each attribute's points make the score.
    expect(detail.get_by_test_id("score-base")).to_contain_text(str(SHUIYITONG.score_base))
    for part in decision["score_parts"]:
        expect(detail.get_by_test_id(f"score-{part['attribute']}")).to_contain_text(str(part["points"]))
    expect(detail.get_by_test_id("score-total")).to_have_text(f"{decision['score']}（{decision['band']} 档）")
    # The limit and the rate, step by step, in the reviewer's language.
    expect(detail.get_by_test_id("model-limit")).to_have_text(yuan_text(decision["limit_fen"]))
    expect(detail.get_by_test_id("limit-steps")).to_contain_text(f"黑名单（限制级）额度上限 ¥{SHUIYITONG.restrict_list_cap_yuan}")
    expect(detail.get_by_test_id("rate-steps")).to_contain_text(f"LPR（{SHUIYITONG.pricing.lpr_term}）")
    expect(detail.get_by_test_id("rate")).to_have_text(f"{decision['rate_bps'] / 100:.2f}%")
    expect(detail.get_by_test_id("unavailable-sources")).to_contain_text("无")
    tab.screenshot("review-detail")

    note = "纳税记录与经营流水已核实，按模型额度批准"
    detail.get_by_test_id("note").fill(note)
    detail.get_by_test_id("approve").click()

    expect(tab.page.get_by_test_id("notice")).to_contain_text(f"已批准，核定额度 {yuan_text(decision['limit_fen'])}")
    expect(row).to_have_count(0)
    reviewed = case_of(live, case["id"])
    assert (reviewed["status"], reviewed["review_note"], reviewed["limit_yuan"]) == ("approved", note, SHUIYITONG.restrict_list_cap_yuan)
    assert customer.get(f"/api/v1/applications/{case['id']}").json()["status"] == "approved"
    queue = live.get("hz.reviewer", f"{ADMIN}/review-queue", limit=100).json()["items"]
    assert case["id"] not in [item["id"] for item in queue]


def test_a_reviewer_rejects_a_case_opened_by_link_and_the_customer_is_told_why(console, live):
    customer, case = manual_review_case(live, 1, name="司马建平")

    tab = console("hz.reviewer")
    tab.page.goto(f"/console/reviews.html#{case['id']}")
    detail = tab.page.get_by_test_id("case-detail")
    expect(detail).to_have_attribute("data-id", str(case["id"]))

    note = "经核实，您的经营流水暂不满足要求"
    detail.get_by_test_id("note").fill(note)
    detail.get_by_test_id("reject").click()

    expect(tab.page.get_by_test_id("notice")).to_contain_text("已拒绝")
    expect(tab.page.get_by_test_id(f"row-{case['id']}")).to_have_count(0)
    seen = customer.get(f"/api/v1/applications/{case['id']}").json()
    assert (seen["status"], seen["reasons"], seen["limit_yuan"]) == ("rejected", [note], 0)


def test_a_decision_needs_a_reason_and_nothing_changes_without_one(console, live):
    _, case = manual_review_case(live, 2, name="诸葛文斌")

    tab = console("hz.reviewer")
    tab.page.goto(f"/console/reviews.html#{case['id']}")
    detail = tab.page.get_by_test_id("case-detail")
    status = detail.get_by_test_id("review-status")

    detail.get_by_test_id("note").fill("   ")
    detail.get_by_test_id("reject").click()
    expect(status.get_by_test_id("error")).to_contain_text("请填写审批意见")
    # A reason too short for the server: its refusal is shown as it came.
    detail.get_by_test_id("note").fill("好")
    detail.get_by_test_id("approve").click()
    expect(status.get_by_test_id("error")).to_contain_text("VALIDATION_FAILED")
    detail.get_by_test_id("note").fill("")
    detail.get_by_test_id("approve").click()
    expect(status.get_by_test_id("error")).to_contain_text("请填写审批意见")

    assert case_of(live, case["id"])["status"] == "manual_review"
    expect(tab.page.get_by_test_id(f"row-{case['id']}")).to_be_visible()


def test_only_a_senior_reviewer_approves_above_the_models_limit(console, live):
    _, case = manual_review_case(live, 0, persona="unavailable", name="上官志刚")
    assert case["decision"]["limit_fen"] == 0

    tab = console("hz.reviewer")
    tab.page.goto(f"/console/reviews.html#{case['id']}")
    detail = tab.page.get_by_test_id("case-detail")
    for source in ("征信", "税务", "法院"):
        expect(detail.get_by_test_id("unavailable-sources")).to_contain_text(source)
        expect(detail.get_by_test_id("review-reasons")).to_contain_text(f"数据源「{source}」未响应")
    expect(detail.get_by_test_id("rule-TAX_REGISTERED")).to_contain_text("未评估")

    detail.get_by_test_id("limit").fill("30000")
    detail.get_by_test_id("note").fill("已线下核实纳税与经营情况")
    detail.get_by_test_id("approve").click()
    expect(detail.get_by_test_id("review-status").get_by_test_id("error")).to_contain_text("ABOVE_MODEL_LIMIT")
    tab.screenshot("review-refused-above-model")
    assert case_of(live, case["id"])["status"] == "manual_review"

    senior = console("hz.senior")
    senior.page.goto(f"/console/reviews.html#{case['id']}")
    detail = senior.page.get_by_test_id("case-detail")
    detail.get_by_test_id("limit").fill("30000")
    detail.get_by_test_id("note").fill("已线下核实纳税与经营情况，批准高于模型额度")
    detail.get_by_test_id("approve").click()
    expect(senior.page.get_by_test_id("notice")).to_contain_text("已批准，核定额度 ¥30,000.00")
    reviewed = case_of(live, case["id"])
    assert (reviewed["status"], reviewed["limit_yuan"]) == ("approved", 30_000)


def test_another_banks_reviewer_neither_sees_nor_opens_the_case(console, live):
    _, case = manual_review_case(live, 3, name="欧阳明华")

    tab = console("ls.reviewer").open("reviews.html")
    expect(tab.page.get_by_test_id("queue")).to_contain_text(re.compile("申请编号|暂无待审案件"))
    expect(tab.page.get_by_test_id(f"row-{case['id']}")).to_have_count(0)
    tab.page.goto(f"/console/reviews.html#{case['id']}")
    expect(tab.page.get_by_test_id("case").get_by_test_id("error")).to_contain_text("NOT_FOUND")
