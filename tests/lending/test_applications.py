"""Quotes, applications and the review queue through HTTP (Lending core, "Done when").

Every customer here is a persona of the data sandbox applying for SHUIYITONG (税易通) at a
member bank: a small firm or high-tech firm owner is approved, a person under court enforcement
is declined, the "unavailable" and "slow" personas' sources do not answer. Staff are the demo's:
hz.* at HZRCB, ls.* at LSRCB, assoc.* at the association.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from tortoise import connections
from tortoise.backends.base.client import TransactionalDBClient

from lending_core.approvals.models import ChangeRequest
from lending_core.applications.models import Application
from lending_core.decisions.engine import GENERIC_REFUSAL, UNSECURED_CAP_REASON
from lending_core.products import regulation
from lending_core.products.models import BankProductSetting, Product, ProductVersion
from lending_core.products.service import CATALOGUE, read_catalogue_file
from tests.lending.flows import (
    ADMIN,
    LOAN,
    PRODUCT,
    SHUIYITONG,
    Customer,
    Staff,
    applicant,
    application_count,
    bank_id,
    error_code,
    shuiyitong_raw,
)
from tests.support import StartedOnceClient, bearer, customer_token

pytestmark = pytest.mark.usefixtures("demo")

RULE_CODES = [rule.code for rule in SHUIYITONG.admission]
RESTRICT_CAP_YUAN = SHUIYITONG.restrict_list_cap_yuan


@pytest.fixture
def staff(client) -> Staff:
    return Staff(client)


@pytest.fixture
def bureau(app):
    return app.ctx.providers.data_sources.credit_bureau


def assert_refused(response, status: int, code: str) -> dict:
    assert (response.status, error_code(response)) == (status, code), response.text
    return response.json["error"]


# ---- quote and apply ---------------------------------------------------------------------------


async def test_a_quote_pulls_no_credit_report_and_creates_no_application(client, bureau):
    customer = await applicant(client, "small_firm")
    pulls = bureau.calls

    response = await customer.quote()

    assert response.status == 200, response.text
    assert response.json["indicative"] is True
    assert response.json["outcome"] == "approved"
    assert response.json["limit_yuan"] > 0
    assert bureau.calls == pulls
    assert await application_count() == 0


async def test_a_quote_needs_no_credit_bureau_consent(client):
    customer = await applicant(client, "small_firm", consents=tuple(p for p in SHUIYITONG.consents if p != "credit_bureau"))

    response = await customer.quote()

    assert response.status == 200, response.text


async def test_an_application_pulls_the_credit_report_once(client, bureau):
    customer = await applicant(client, "small_firm")
    await customer.quote()
    pulls = bureau.calls

    await customer.applied()

    assert bureau.calls == pulls + 1


@pytest.mark.parametrize("persona", ["small_firm", "high_tech_firm"])
async def test_a_firm_owner_with_good_tax_records_is_approved(client, persona):
    customer = await applicant(client, persona)

    application = await customer.applied()

    assert application["status"] == "approved"
    assert application["product_code"] == PRODUCT
    assert application["product_version"] == 1
    assert SHUIYITONG.amount_yuan.min <= application["limit_yuan"] <= SHUIYITONG.amount_yuan.max
    assert application["annual_rate_bps"] >= SHUIYITONG.pricing.floor_bps
    assert application["reasons"] == []
    assert await customer.application(application["id"]) == application


async def test_a_person_under_court_enforcement_is_told_why_in_plain_words(client):
    customer = await applicant(client, "court_enforcement", 1)

    application = await customer.applied()

    assert application["status"] == "rejected"
    assert application["limit_yuan"] == 0 and application["annual_rate_bps"] is None
    assert "存在未结的被执行记录" in application["reasons"]
    for reason in application["reasons"]:
        assert not re.search(r"\d", reason), reason
        assert "score" not in reason.lower(), reason
        assert not any(code in reason for code in RULE_CODES), reason


async def test_when_the_sources_do_not_answer_a_person_decides_and_staff_see_which(client, staff):
    customer = await applicant(client, "unavailable")

    application = await customer.applied()

    assert application["status"] == "manual_review"
    decision = (await staff.application("hz.reviewer", application["id"]))["decision"]
    for source in SHUIYITONG.data_sources:
        assert f"data source {source} did not answer" in decision["review_reasons"]
    assert {"rules", "score_parts", "limit_steps", "rate_steps"} <= set(decision)


async def test_when_the_sources_are_too_slow_the_case_goes_to_a_person(settings, redis, demo):
    """The sandbox's slow persona sleeps 30 s: the data-source timeout must end the wait."""
    from server.app import create_app

    app = create_app(
        replace(settings, data_source_timeout_seconds=0.2), redis=redis, manage_database=False, name=f"slow_{uuid.uuid4().hex[:10]}"
    )
    client = StartedOnceClient(app)
    try:
        customer = await applicant(client, "slow")
        started = time.monotonic()

        application = await customer.applied()

        assert time.monotonic() - started < 10
        assert application["status"] == "manual_review"
        decision = (await Staff(client).application("hz.reviewer", application["id"]))["decision"]
        assert "data source credit_bureau did not answer" in decision["review_reasons"]
    finally:
        await client.stop()


# ---- bad input: a 4xx with its own code, and nothing written -------------------------------------


async def test_an_unknown_product_is_not_found(client):
    customer = await applicant(client, "small_firm")

    assert_refused(await customer.apply("NO_SUCH_LOAN"), 404, "PRODUCT_NOT_FOUND")
    assert await application_count() == 0


async def test_a_product_not_offered_through_the_customers_channel_is_refused(client, app):
    customer = await applicant(client, "small_firm")
    assert "enterprise_bank" not in SHUIYITONG.channels
    token = await customer_token(app, customer.customer_id, customer.bank_id, channel="enterprise_bank")

    _, response = await client.post(
        "/api/v1/applications", json={"product_code": PRODUCT, **LOAN}, headers=bearer(token, **{"Idempotency-Key": uuid.uuid4().hex})
    )

    assert_refused(response, 422, "PRODUCT_NOT_OFFERED")
    assert await application_count() == 0


async def test_a_product_the_customers_bank_does_not_offer_is_refused(client):
    product = await Product.get(code=PRODUCT)
    await BankProductSetting.create(bank_id=await bank_id("HZRCB"), product=product, offered=False)
    customer = await applicant(client, "small_firm")

    assert_refused(await customer.apply(), 422, "PRODUCT_NOT_OFFERED")
    assert await application_count() == 0


async def test_another_banks_own_product_is_refused(client):
    own = [d for d in map(read_catalogue_file, sorted(CATALOGUE.glob("*.toml"))) if d.owner == "YXRCB" and "wechat_miniprogram" in d.channels]
    if not own:
        pytest.skip("the catalogue has no YXRCB-owned mini-program product yet to ask for from another bank")
    customer = await applicant(client, "small_firm", bank="HZRCB", consents=own[0].consents)

    assert_refused(await customer.apply(own[0].code), 422, "PRODUCT_NOT_OFFERED")
    assert await application_count() == 0


@pytest.mark.parametrize(
    "loan, field",
    [
        ({"amount_yuan": SHUIYITONG.amount_yuan.min - 1}, "amount_yuan"),
        ({"amount_yuan": SHUIYITONG.amount_yuan.max + 1}, "amount_yuan"),
        ({"term_months": SHUIYITONG.term_months.min - 1}, "term_months"),
        ({"term_months": SHUIYITONG.term_months.max + 1}, "term_months"),
        ({"repayment_method": "bullet", "term_months": 12}, "repayment_method"),
    ],
    ids=["amount-below", "amount-above", "term-below", "term-above", "method-not-allowed"],
)
async def test_a_loan_outside_the_products_bounds_is_refused(client, loan, field):
    customer = await applicant(client, "small_firm")

    error = assert_refused(await customer.apply(**loan), 422, "REQUEST_OUT_OF_BOUNDS")

    assert [problem["field"] for problem in error["details"]] == [field]
    assert await application_count() == 0


async def test_an_application_without_every_consent_is_refused(client):
    customer = await applicant(client, "small_firm", consents=("personal_information",))

    error = assert_refused(await customer.apply(), 422, "CONSENTS_MISSING")

    assert error["details"]["missing"] == sorted(set(SHUIYITONG.consents) - {"personal_information"})
    assert await application_count() == 0


async def test_a_customer_without_real_name_verification_cannot_apply(client):
    customer = await applicant(client, "small_firm", verified=False)

    assert_refused(await customer.apply(), 409, "REAL_NAME_REQUIRED")
    assert await application_count() == 0


async def test_an_application_needs_an_idempotency_key(client):
    customer = await applicant(client, "small_firm")

    assert_refused(await customer.apply(key=None), 400, "IDEMPOTENCY_KEY_REQUIRED")
    assert await application_count() == 0


async def test_the_bureau_is_asked_with_no_database_transaction_open(client, bureau, monkeypatch):
    # A slow bureau (timeouts are seconds) must not hold one of the worker's pooled connections.
    customer = await applicant(client, "small_firm")
    in_transaction_when_asked = []
    ask = bureau.report

    async def report(id_number: str, name: str):
        in_transaction_when_asked.append(isinstance(connections.get("default"), TransactionalDBClient))
        return await ask(id_number, name)

    monkeypatch.setattr(bureau, "report", report)

    assert (await customer.apply()).status == 201
    assert in_transaction_when_asked == [False]


async def test_two_applications_sent_at_once_with_one_key_pull_the_bureau_once(client, bureau):
    customer = await applicant(client, "small_firm")
    key = uuid.uuid4().hex
    pulls = bureau.calls

    first, second = await asyncio.gather(customer.apply(key=key), customer.apply(key=key))

    assert (first.status, second.status) == (201, 201), second.text
    assert first.json == second.json
    assert sorted(r.headers.get("Idempotent-Replayed", "") for r in (first, second)) == ["", "true"]
    assert bureau.calls == pulls + 1
    assert await application_count() == 1


async def test_a_replayed_application_is_the_same_application(client, bureau):
    customer = await applicant(client, "small_firm")
    key = uuid.uuid4().hex
    first = await customer.apply(key=key)
    pulls = bureau.calls

    again = await customer.apply(key=key)

    assert (first.status, again.status) == (201, 201), again.text
    assert again.json == first.json
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert bureau.calls == pulls
    assert await application_count() == 1
    listed = await customer.get("/api/v1/applications")
    assert [item["id"] for item in listed.json["items"]] == [first.json["id"]]


# ---- across member banks: cooling-off and live applications --------------------------------------


async def test_a_declined_applicant_waits_out_the_cooling_off_period(client):
    customer = await applicant(client, "court_enforcement", 1)
    declined = await customer.applied()
    assert declined["status"] == "rejected"

    error = assert_refused(await customer.apply(), 409, "COOLING_OFF")

    cooling_off = timedelta(days=SHUIYITONG.cooling_off_days)
    assert error["details"]["apply_again_after"] == (datetime.fromisoformat(declined["decided_at"]) + cooling_off).date().isoformat()
    assert await application_count() == 1


async def test_a_declined_applicant_cannot_shop_the_next_bank(client):
    customer = await applicant(client, "court_enforcement", 1, bank="HZRCB")
    assert (await customer.applied())["status"] == "rejected"
    await customer.choose_bank("LSRCB")
    await customer.consent(*SHUIYITONG.consents)  # consents are given to each bank

    assert_refused(await customer.apply(), 409, "COOLING_OFF")
    assert await application_count() == 1


async def test_the_live_application_cap_counts_every_bank(client):
    customer = await applicant(client, "small_firm", bank="HZRCB")
    assert (await customer.applied())["status"] == "approved"
    assert SHUIYITONG.max_live_applications == 1

    assert_refused(await customer.apply(), 409, "TOO_MANY_LIVE_APPLICATIONS")
    await customer.choose_bank("LSRCB")
    await customer.consent(*SHUIYITONG.consents)
    assert_refused(await customer.apply(), 409, "TOO_MANY_LIVE_APPLICATIONS")
    assert await application_count() == 1


async def test_concurrent_applications_still_respect_the_live_application_cap(client):
    customer = await applicant(client, "small_firm")

    responses = await asyncio.gather(*(customer.apply() for _ in range(5)))

    assert sorted(r.status for r in responses) == [201, 409, 409, 409, 409]
    assert await application_count() == 1


async def test_a_contracted_credit_line_still_counts_against_the_unsecured_credit_cap(client):
    customer = await applicant(client, "small_firm", bank="HZRCB")
    first = await customer.applied()
    assert (first["status"], first["limit_yuan"]) == ("approved", regulation.UNSECURED_CREDIT_CAP_YUAN)
    # The contract step (Contracts and servicing) takes the approved application on.
    await Application.filter(id=first["id"]).update(status="contracted")
    await customer.choose_bank("LSRCB")
    await customer.consent(*SHUIYITONG.consents)

    response = await customer.apply()

    if response.status == 201:
        assert (response.json["status"], response.json["limit_yuan"]) == ("rejected", 0), response.text
        assert UNSECURED_CAP_REASON in response.json["reasons"]
    else:
        assert_refused(response, 409, "TOO_MANY_LIVE_APPLICATIONS")


# ---- black and grey lists --------------------------------------------------------------------------


async def test_a_prohibit_listed_applicant_is_declined_without_being_told_why(client, staff):
    customer = await applicant(client, "small_firm")
    await staff.list_person("hz.risk", "blacklist_prohibit", customer.id_number)

    application = await customer.applied()

    assert application["status"] == "rejected"
    assert application["reasons"] == [GENERIC_REFUSAL]
    decision = (await staff.application("hz.reviewer", application["id"]))["decision"]
    assert "on the blacklist (prohibit)" in decision["review_reasons"]


async def test_another_banks_list_does_not_decide_for_this_bank(client, staff):
    customer = await applicant(client, "small_firm", bank="HZRCB")
    await staff.list_person("ls.risk", "blacklist_prohibit", customer.id_number)

    assert (await customer.applied())["status"] == "approved"


async def test_a_restrict_listed_applicant_goes_to_a_person_with_a_capped_limit(client, staff):
    customer = await applicant(client, "small_firm")
    await staff.list_person("hz.risk", "blacklist_restrict", customer.id_number)

    application = await customer.applied()

    assert application["status"] == "manual_review"
    decision = (await staff.application("hz.reviewer", application["id"]))["decision"]
    assert decision["limit_fen"] == RESTRICT_CAP_YUAN * 100
    assert any("restrict" in reason for reason in decision["review_reasons"])


async def test_a_greylisted_applicant_is_decided_as_usual_and_flagged_for_staff(client, staff):
    customer = await applicant(client, "small_firm")
    await staff.list_person("hz.risk", "greylist", customer.id_number)

    application = await customer.applied()

    assert application["status"] == "approved"
    decision = (await staff.application("hz.reviewer", application["id"]))["decision"]
    assert decision["flags"] == ["greylist"]
    assert application["reasons"] == []


# ---- the review queue ------------------------------------------------------------------------------


async def manual_review_case(client, staff, n: int = 0) -> tuple[Customer, dict]:
    """A small-firm owner on HZRCB's restrict list: manual review, model limit at the list cap."""
    customer = await applicant(client, "small_firm", n)
    await staff.list_person("hz.risk", "blacklist_restrict", customer.id_number)
    application = await customer.applied()
    assert application["status"] == "manual_review"
    return customer, application


async def test_the_review_queue_is_the_banks_own(client, staff):
    _, case = await manual_review_case(client, staff)

    hz_queue = await staff.get("hz.reviewer", f"{ADMIN}/review-queue")
    ls_queue = await staff.get("ls.reviewer", f"{ADMIN}/review-queue")

    assert [item["id"] for item in hz_queue.json["items"]] == [case["id"]]
    assert hz_queue.json["items"][0]["decision"]["review_reasons"]
    assert ls_queue.status == 200 and ls_queue.json["items"] == []
    assert_refused(await staff.get("ls.reviewer", f"{ADMIN}/applications/{case['id']}"), 404, "NOT_FOUND")
    assert_refused(await staff.review("ls.reviewer", case["id"], "approve"), 404, "NOT_FOUND")


async def test_a_reviewer_approves_within_the_models_limit(client, staff):
    customer, case = await manual_review_case(client, staff)

    response = await staff.review("hz.reviewer", case["id"], "approve", limit_yuan=RESTRICT_CAP_YUAN - 10_000)

    assert response.status == 200, response.text
    assert (response.json["status"], response.json["limit_yuan"]) == ("approved", RESTRICT_CAP_YUAN - 10_000)
    seen = await customer.application(case["id"])
    assert (seen["status"], seen["limit_yuan"]) == ("approved", RESTRICT_CAP_YUAN - 10_000)
    queue = await staff.get("hz.reviewer", f"{ADMIN}/review-queue")
    assert queue.json["items"] == []


async def test_only_a_senior_reviewer_approves_above_the_models_limit(client, staff):
    customer = await applicant(client, "unavailable")  # nothing known: the model's limit is 0
    case = await customer.applied()
    assert case["status"] == "manual_review" and case["limit_yuan"] == 0

    assert_refused(await staff.review("hz.reviewer", case["id"], "approve", limit_yuan=30_000), 403, "ABOVE_MODEL_LIMIT")
    assert (await customer.application(case["id"]))["status"] == "manual_review"
    response = await staff.review("hz.senior", case["id"], "approve", limit_yuan=30_000)

    assert response.status == 200, response.text
    assert (response.json["status"], response.json["limit_yuan"]) == ("approved", 30_000)


async def test_even_a_senior_reviewer_stays_within_the_associations_unsecured_credit_cap(client, staff):
    cap = regulation.UNSECURED_CREDIT_CAP_YUAN
    assert SHUIYITONG.unsecured and SHUIYITONG.amount_yuan.max > cap
    customer = await applicant(client, "unavailable")
    case = await customer.applied()
    assert case["status"] == "manual_review"

    response = await staff.review("hz.senior", case["id"], "approve", limit_yuan=cap + 50_000)

    assert_refused(response, 422, "REQUEST_OUT_OF_BOUNDS")
    assert (await customer.application(case["id"]))["status"] == "manual_review"


async def test_a_rejection_note_is_what_the_customer_is_told(client, staff):
    customer, case = await manual_review_case(client, staff)
    note = "经核实，您的经营流水暂不满足要求"

    response = await staff.review("hz.reviewer", case["id"], "reject", note=note)

    assert response.status == 200, response.text
    seen = await customer.application(case["id"])
    assert (seen["status"], seen["reasons"], seen["limit_yuan"]) == ("rejected", [note], 0)


async def test_a_case_is_reviewed_once(client, staff):
    _, case = await manual_review_case(client, staff)
    assert (await staff.review("hz.reviewer", case["id"], "approve", limit_yuan=RESTRICT_CAP_YUAN)).status == 200

    assert_refused(await staff.review("hz.senior", case["id"], "reject", note="重复审批"), 409, "ILLEGAL_TRANSITION")
    assert (await staff.application("hz.reviewer", case["id"]))["status"] == "approved"


# ---- secondary marketing ---------------------------------------------------------------------------


async def test_secondary_marketing_lists_the_banks_declined_applicants_masked(client, staff):
    declined_here = [await applicant(client, "court_enforcement", n, name=name) for n, name in ((1, "欧阳明华"), (2, "司马建平"))]
    approved_here = await applicant(client, "small_firm", name="诸葛文斌")
    declined_there = await applicant(client, "court_enforcement", 3, bank="LSRCB", name="上官志刚")
    ids = {}
    for customer in [*declined_here, approved_here, declined_there]:
        ids[customer.name] = (await customer.applied())["id"]

    response = await staff.get("hz.manager", f"{ADMIN}/secondary-marketing")

    assert response.status == 200, response.text
    items = response.json["items"]
    assert sorted(item["application_id"] for item in items) == sorted(ids[c.name] for c in declined_here)
    assert all(item["reasons"] and item["product_code"] == PRODUCT for item in items)
    assert sorted(item["customer"]["name"] for item in items) == ["司**平", "欧**华"]
    for clear in ("欧阳明华", "司马建平", "上官志刚", "诸葛文斌"):
        assert clear not in response.text


# ---- product versions while applications flow -------------------------------------------------------


def new_version_definition() -> dict:
    """SHUIYITONG v2: band A priced 30 bps higher, and bullet repayment for up to a year.
    (One changed definition for every test: parsed versions are kept per process.)"""
    raw = shuiyitong_raw()
    raw["pricing"]["spread_bps"]["A"] += 30
    raw["repayment_methods"] = [*raw["repayment_methods"], "bullet"]
    raw["term_months"]["max"] = 12
    return raw


async def propose(staff: Staff, username: str, definition: dict, note: str = "A 档利差上调 30bp，增加到期还本付息"):
    return await staff.post(username, f"{ADMIN}/products/versions", {"definition": definition, "note": note})


async def publish_new_version(staff: Staff) -> None:
    proposed = await propose(staff, "assoc.product", new_version_definition())
    assert proposed.status == 202, proposed.text
    approved = await staff.post("assoc.product2", f"{ADMIN}/change-requests/{proposed.json['change_request']['id']}/approve", {"note": "复核同意"})
    assert approved.status == 200, approved.text


async def test_a_new_version_applies_to_new_applications_and_not_to_decided_ones(client, staff):
    earlier = await (await applicant(client, "small_firm", 1)).applied()
    proposed = await propose(staff, "assoc.product", new_version_definition())
    assert proposed.status == 202, proposed.text
    assert proposed.json["version"]["version"] == 2
    meanwhile = await (await applicant(client, "small_firm", 2)).applied()

    approved = await staff.post("assoc.product2", f"{ADMIN}/change-requests/{proposed.json['change_request']['id']}/approve", {"note": "复核同意"})
    assert approved.status == 200, approved.text
    customer = await applicant(client, "small_firm", 3)
    later = await customer.applied()

    assert (earlier["product_version"], meanwhile["product_version"], later["product_version"]) == (1, 1, 2)
    assert later["annual_rate_bps"] == earlier["annual_rate_bps"] + 30
    assert (await staff.application("hz.reviewer", earlier["id"]))["product_version"] == 1
    versions = await staff.get("assoc.product", f"{ADMIN}/products/{PRODUCT}/versions")
    assert versions.json["published_version"] == 2
    assert [(v["version"], v["status"]) for v in versions.json["versions"]] == [(1, "retired"), (2, "published")]


async def test_a_bullet_loan_is_for_a_year_at_most(client, staff):
    await publish_new_version(staff)
    customer = await applicant(client, "small_firm")

    error = assert_refused(await customer.apply(repayment_method="bullet", term_months=18), 422, "REQUEST_OUT_OF_BOUNDS")

    assert any(problem["field"] == "term_months" and problem.get("why") for problem in error["details"])
    assert await application_count() == 0
    assert (await customer.applied(repayment_method="bullet", term_months=12))["product_version"] == 2


async def test_the_proposer_cannot_publish_their_own_version(client, staff):
    proposed = await propose(staff, "assoc.product", new_version_definition())
    assert proposed.status == 202, proposed.text

    response = await staff.post("assoc.product", f"{ADMIN}/change-requests/{proposed.json['change_request']['id']}/approve", {"note": "自己批"})

    assert_refused(response, 403, "SELF_APPROVAL")
    assert (await Product.get(code=PRODUCT)).published_version == 1
    assert (await ProductVersion.get(id=proposed.json["version"]["id"])).status == "proposed"


async def test_a_second_proposal_waits_for_the_first(client, staff):
    assert (await propose(staff, "assoc.product", new_version_definition())).status == 202

    assert_refused(await propose(staff, "assoc.product2", new_version_definition()), 409, "VERSION_CONFLICT")
    assert await ProductVersion.filter(product__code=PRODUCT).count() == 2


async def test_an_invalid_definition_is_refused_with_every_problem_and_nothing_saved(client, staff):
    raw = shuiyitong_raw()
    raw["repayment_methods"] = [*raw["repayment_methods"], "bullet"]  # with terms up to 36 months
    raw["admission"][0]["rule"] = "property.count > 0"  # property is not among its data sources
    versions, changes = await ProductVersion.all().count(), await ChangeRequest.all().count()

    checked = await staff.post("assoc.product", f"{ADMIN}/products/validate", {"definition": raw})
    proposed = await propose(staff, "assoc.product", raw)

    for response in (checked, proposed):
        problems = assert_refused(response, 422, "DEFINITION_REFUSED")["details"]["problems"]
        assert "repayment_methods: bullet repayment is allowed only for terms up to 12 months" in problems
        assert any(p.startswith("admission[AGE_22_60].rule") and "property" in p for p in problems), problems
    assert (await ProductVersion.all().count(), await ChangeRequest.all().count()) == (versions, changes)
