"""What a reviewer reads about a manual-review case (the console's reviewer page): the queue names
the applicant masked, and a case explains each admission rule in the words of the product
version it was decided on."""

from __future__ import annotations

import pytest

from tests.lending.flows import ADMIN, SHUIYITONG, Staff, applicant

pytestmark = pytest.mark.usefixtures("demo")

NAME = "欧阳明华"


@pytest.fixture
def staff(client) -> Staff:
    return Staff(client)


async def restrict_listed_case(client, staff) -> dict:
    """A small-firm owner on HZRCB's restrict list: manual review with the model's limit at the list cap."""
    customer = await applicant(client, "small_firm", name=NAME)
    await staff.list_person("hz.risk", "blacklist_restrict", customer.id_number)
    case = await customer.applied()
    assert case["status"] == "manual_review"
    return case


async def test_the_queue_names_each_applicant_masked(client, staff):
    case = await restrict_listed_case(client, staff)

    queue = await staff.get("hz.reviewer", f"{ADMIN}/review-queue")

    assert queue.status == 200, queue.text
    item = next(i for i in queue.json["items"] if i["id"] == case["id"])
    assert item["applicant_name"] == "欧**华"
    assert NAME not in queue.text


async def test_a_case_explains_each_rule_with_its_condition_and_words(client, staff):
    case = await restrict_listed_case(client, staff)

    explained = await staff.application("hz.reviewer", case["id"])

    rules = {r["code"]: r for r in explained["decision"]["rules"]}
    assert list(rules) == [rule.code for rule in SHUIYITONG.admission]
    for rule in SHUIYITONG.admission:
        assert (rules[rule.code]["condition"], rules[rule.code]["reason"]) == (rule.rule.text, rule.reason)
    assert explained["product_name"] == SHUIYITONG.name
    assert explained["applicant_name"].endswith(NAME[-1]) and NAME not in str(explained)
    terms = explained["product_terms"]
    assert terms["amount_yuan"] == {"min": SHUIYITONG.amount_yuan.min, "max": SHUIYITONG.amount_yuan.max}
    assert terms["score_base"] + sum(p["points"] for p in explained["decision"]["score_parts"]) == explained["decision"]["score"]
    assert (terms["rate_floor_bps"], terms["rate_cap_bps"]) == (SHUIYITONG.pricing.floor_bps, SHUIYITONG.pricing.cap_bps)


async def test_another_banks_reviewer_gets_no_explanation(client, staff):
    case = await restrict_listed_case(client, staff)

    refused = await staff.get("ls.reviewer", f"{ADMIN}/applications/{case['id']}")

    assert (refused.status, refused.json["error"]["code"]) == (404, "NOT_FOUND")
