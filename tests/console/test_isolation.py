"""A staff member of one bank cannot see another bank's data (issue 9, done-when).

LSRCB's staff and customers make a campaign, a quota, a declined application and a case waiting
for manual review through the API; HZRCB's marketer and reviewer, signed in to the console, then
find none of them in their lists and are refused each of them by id — asked from inside the
signed-in page, with the console's own session, as any page of the console would ask. HZRCB's own
objects made the same way are there, so an empty list cannot pass for isolation.

People and phone numbers here are this file's own (born 1977-05-14, phones 1397732…).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from infra.identity_numbers import make_test_id_number
from marketing.performance import current_month

ADMIN = "/api/v1/admin"
PRODUCT = "SHUIYITONG"
# Data-sandbox personas by ID sequence: court enforcement is declined; sources that do not answer
# send the application to a person (manual review).
COURT_ENFORCEMENT, SOURCES_UNAVAILABLE = 421, 991
REFUSED = (403, 404)

# The console's own way to call the API: the page's bearer token from its session storage.
FETCH = """async ([method, path, body]) => {
  const { access } = JSON.parse(sessionStorage.getItem("console.tokens"));
  const headers = { Authorization: `Bearer ${access}`, "Idempotency-Key": crypto.randomUUID() };
  if (body !== null) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === null ? undefined : JSON.stringify(body) });
  return { status: response.status, text: await response.text() };
}"""


def from_page(tab, method: str, path: str, body: dict | None = None) -> dict:
    """{status, text} of one API call made by the signed-in page with its own session."""
    return tab.page.evaluate(FETCH, [method, path, body])


def listed_ids(answer: dict) -> set[int]:
    assert answer["status"] == 200, answer
    return {item["id"] for item in json.loads(answer["text"])["items"]}


def applicant(live, *, bank_code: str, name: str, serial: int, phone: str, inviter: str) -> dict:
    """A customer brought to ``bank_code`` by ``inviter``'s code who applied for SHUIYITONG (the
    code chooses the bank)."""
    scene = live.get(inviter, f"{ADMIN}/invite-code").json()["code"]
    customer = live.customer(
        name=name, id_number=make_test_id_number("330106", date(1977, 5, 14), serial), phone=phone, bank_code=bank_code, scene=scene
    )
    return customer.apply(PRODUCT)


def campaign(live, username: str, name: str) -> dict:
    now = datetime.now(UTC)
    terms = {
        "kind": "red_packet",
        "name": name,
        "starts_at": (now + timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(days=7)).isoformat(),
        "budget_fen": 100_000,
        "packet_count": 100,
        "packet_min_fen": 100,
        "packet_max_fen": 5_000,
    }
    response = live.post(username, f"{ADMIN}/campaigns", terms)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture(scope="module")
def lsrcb(live) -> dict:
    """LSRCB's objects, made by its own staff and customers."""
    suffix = uuid.uuid4().hex[:6]
    manager = live.get("ls.manager", "/api/v1/staff/me").json()
    quota = live.post("ls.marketer", f"{ADMIN}/quotas", {"staff_id": manager["id"], "period": "2031-Q2", "referrals_target": 50})
    assert quota.status_code == 201, quota.text
    declined = applicant(live, bank_code="LSRCB", name="上官蓝山", serial=COURT_ENFORCEMENT, phone="13977320011", inviter="ls.manager")
    assert declined["status"] == "rejected", declined
    in_review = applicant(live, bank_code="LSRCB", name="司徒远山", serial=SOURCES_UNAVAILABLE, phone="13977320012", inviter="ls.marketer")
    assert in_review["status"] == "manual_review", in_review
    branches = live.get("ls.admin", f"{ADMIN}/branches").json()["items"]
    return {
        "bank_id": live.bank_id("LSRCB"),
        "campaign": campaign(live, "ls.marketer", f"蓝山隔离活动-{suffix}"),
        "quota": quota.json(),
        "declined": declined,
        "in_review": in_review,
        "branch_ids": [b["id"] for b in branches],
        "manager": manager,
        "customer_id": live.get("ls.reviewer", f"{ADMIN}/applications/{in_review['id']}").json()["customer_id"],
    }


@pytest.fixture(scope="module")
def hzrcb(live) -> dict:
    """HZRCB's own objects of the same kinds: what its staff must see."""
    declined = applicant(live, bank_code="HZRCB", name="欧阳河州", serial=COURT_ENFORCEMENT + 1, phone="13977320021", inviter="hz.manager")
    assert declined["status"] == "rejected", declined
    in_review = applicant(live, bank_code="HZRCB", name="司徒河州", serial=SOURCES_UNAVAILABLE + 1, phone="13977320022", inviter="hz.marketer")
    assert in_review["status"] == "manual_review", in_review
    return {"campaign": campaign(live, "hz.marketer", f"河州活动-{uuid.uuid4().hex[:6]}"), "declined": declined, "in_review": in_review}


def test_a_marketer_of_one_bank_sees_and_reaches_none_of_anothers_objects(console, live, lsrcb, hzrcb):
    tab = console("hz.marketer").open("me.html")

    # Lists: the console's secondary-marketing table and branch filter, and the campaigns the console lists.
    secondary = tab.page.get_by_test_id("secondary")
    secondary.get_by_test_id(f"declined-{hzrcb['declined']['id']}").wait_for()
    assert secondary.get_by_test_id(f"declined-{lsrcb['declined']['id']}").count() == 0
    assert "上官" not in secondary.inner_text()
    tab.page.wait_for_function("document.querySelectorAll('[data-testid=branch-filter] option').length > 1")
    shown_branches = tab.page.get_by_test_id("branch-filter").locator("option").evaluate_all("options => options.map(o => o.value)")
    assert not set(map(str, lsrcb["branch_ids"])) & set(shown_branches)
    campaigns = listed_ids(from_page(tab, "GET", f"{ADMIN}/campaigns?limit=100", None))
    assert hzrcb["campaign"]["id"] in campaigns and lsrcb["campaign"]["id"] not in campaigns
    tab.page.get_by_test_id("invite-poster").wait_for()
    tab.screenshot("isolation-marketer")

    # LSRCB's objects by id, read and written with the console's own session: refused, and unchanged.
    campaign_id, quota_id, declined_id = lsrcb["campaign"]["id"], lsrcb["quota"]["id"], lsrcb["declined"]["id"]
    attempts = [
        ("GET", f"{ADMIN}/campaigns/{campaign_id}", None),
        ("PATCH", f"{ADMIN}/campaigns/{campaign_id}", {"name": "改名"}),
        ("POST", f"{ADMIN}/campaigns/{campaign_id}/submit", {}),
        ("GET", f"{ADMIN}/campaigns/{campaign_id}/incentives", None),
        ("PUT", f"{ADMIN}/campaigns/{campaign_id}/incentive-rule", {"per_disbursed_loan_fen": 100}),
        ("GET", f"{ADMIN}/quotas/{quota_id}", None),
        ("PATCH", f"{ADMIN}/quotas/{quota_id}", {"referrals_target": 1}),
        ("GET", f"{ADMIN}/secondary-marketing/applicants/{declined_id}/follow-ups", None),
        ("POST", f"{ADMIN}/secondary-marketing/applicants/{declined_id}/follow-ups", {"note": "越权跟进", "outcome": "contacted"}),
        ("GET", f"{ADMIN}/secondary-marketing/applicants?branch_id={lsrcb['branch_ids'][0]}", None),
        ("GET", f"{ADMIN}/leaderboard?period={current_month(datetime.now(UTC))}&branch_id={lsrcb['branch_ids'][0]}", None),
        ("GET", f"{ADMIN}/leaderboard?period={current_month(datetime.now(UTC))}&bank_id={lsrcb['bank_id']}", None),
        ("GET", f"{ADMIN}/branches/{lsrcb['branch_ids'][0]}", None),
        ("GET", f"{ADMIN}/staff/{lsrcb['manager']['id']}", None),
        ("GET", f"{ADMIN}/quotas?staff_id={lsrcb['manager']['id']}", None),
    ]
    for method, path, body in attempts:
        answer = from_page(tab, method, path, body)
        if path.startswith(f"{ADMIN}/quotas?"):
            # A filter over the caller's own bank: allowed, and without the other bank's quota.
            assert quota_id not in listed_ids(answer)
            continue
        assert answer["status"] in REFUSED, (method, path, answer)
        assert lsrcb["campaign"]["name"] not in answer["text"]
    assert live.get("ls.marketer", f"{ADMIN}/campaigns/{campaign_id}").json()["name"] == lsrcb["campaign"]["name"]
    assert live.get("ls.marketer", f"{ADMIN}/quotas/{quota_id}").json()["referrals_target"] == 50
    assert live.get("ls.manager", f"{ADMIN}/secondary-marketing/applicants/{declined_id}/follow-ups").json()["items"] == []


def test_a_reviewer_of_one_bank_cannot_see_or_decide_anothers_application(console, live, lsrcb, hzrcb):
    tab = console("hz.reviewer").open("me.html")
    case_id, declined_id = lsrcb["in_review"]["id"], lsrcb["declined"]["id"]

    listed = listed_ids(from_page(tab, "GET", f"{ADMIN}/review-queue?limit=100", None))
    assert hzrcb["in_review"]["id"] in listed and case_id not in listed
    assert case_id in {item["id"] for item in live.get("ls.reviewer", f"{ADMIN}/review-queue", limit=100).json()["items"]}

    for method, path, body in [
        ("GET", f"{ADMIN}/applications/{case_id}", None),
        ("GET", f"{ADMIN}/applications/{declined_id}", None),
        ("POST", f"{ADMIN}/applications/{case_id}/review", {"decision": "approve", "note": "越权审批", "limit_yuan": 10_000}),
        ("GET", f"{ADMIN}/customers/{lsrcb['customer_id']}", None),
    ]:
        answer = from_page(tab, method, path, body)
        assert answer["status"] in REFUSED, (method, path, answer)
    assert live.get("ls.reviewer", f"{ADMIN}/applications/{case_id}").json()["status"] == "manual_review"

    # A senior reviewer may see personal data in clear — of their own bank's customers only.
    senior = console("hz.senior").open("me.html")
    answer = from_page(senior, "POST", f"{ADMIN}/customers/{lsrcb['customer_id']}/unmask", {"field": "id_number", "reason": "核实客户身份信息"})
    assert answer["status"] in REFUSED, answer
    assert from_page(senior, "GET", f"{ADMIN}/applications/{case_id}", None)["status"] in REFUSED
