"""What the console's product page uses: the catalogue with proposals waiting, a version's
definition in its file format, definitions validated and proposed as text, and champion/challenger
simulation over an uploaded applicant CSV (issue 9, product staff)."""

from __future__ import annotations

import pytest

from infra.audit import AuditEntry
from lending_core.products import simulations
from lending_core.products.definition_text import from_text, to_text
from lending_core.products.service import CATALOGUE
from server.simulate import SAMPLE
from tests.lending.flows import ADMIN, PRODUCT, shuiyitong_raw
from tests.support import StaffConsole

SAMPLE_CSV = SAMPLE.read_text(encoding="utf-8")
SAMPLE_ROWS = len(SAMPLE_CSV.strip().splitlines()) - 1


@pytest.fixture
def staff(client, demo) -> StaffConsole:
    return StaffConsole(client)


def cheaper_band_a() -> dict:
    """SHUIYITONG with band A priced 30 bps higher: the same approvals, some rates moved."""
    raw = shuiyitong_raw()
    raw["pricing"]["spread_bps"]["A"] += 30
    return raw


async def listing(staff: StaffConsole, username: str = "assoc.product") -> dict:
    response = await staff.get(username, f"{ADMIN}/products")
    assert response.status == 200, response.text
    return {item["code"]: item for item in response.json["items"]}


def test_every_shipped_definition_reads_back_from_its_text_unchanged():
    import tomllib

    for path in sorted(CATALOGUE.glob("*.toml")):
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        assert from_text(to_text(raw)) == raw, path.name


async def test_association_product_staff_see_every_product_with_owner_version_and_channels(staff):
    products = await listing(staff)

    assert len(products) == len(list(CATALOGUE.glob("*.toml")))
    assert products[PRODUCT]["owner"] == "association" and products[PRODUCT]["published_version"] == 1
    assert "gov_platform" in products[PRODUCT]["channels"] and products[PRODUCT]["pending"] is None
    assert products["YUNXIEDAI"]["owner"] == "YXRCB"


async def test_a_bank_admin_manages_only_the_banks_own_products_and_others_none(staff):
    assert list(await listing(staff, "yx.admin")) == ["YUNXIEDAI"]
    assert list(await listing(staff, "hz.admin")) == []
    assert (await staff.get("hz.marketer", f"{ADMIN}/products")).status == 403
    assert (await staff.get("yx.admin", f"{ADMIN}/products/{PRODUCT}/versions/1")).status == 404


async def test_a_version_is_served_with_its_definition_in_the_file_format(staff):
    response = await staff.get("assoc.product", f"{ADMIN}/products/{PRODUCT}/versions/1")

    assert response.status == 200, response.text
    assert response.json["definition"] == shuiyitong_raw()
    assert from_text(response.json["text"]) == shuiyitong_raw()
    assert "[[admission]]" in response.json["text"]
    assert (await staff.get("assoc.product", f"{ADMIN}/products/{PRODUCT}/versions/9")).status == 404


async def test_text_that_is_not_toml_is_refused_with_its_line_and_column(staff):
    text = to_text(shuiyitong_raw()).replace('lpr_term = "1y"', "lpr_term = 1y")
    line = text.splitlines().index("lpr_term = 1y") + 1

    response = await staff.post("assoc.product", f"{ADMIN}/products/validate", {"text": text})

    assert response.status == 422 and response.json["error"]["code"] == "DEFINITION_REFUSED", response.text
    assert response.json["error"]["details"]["problems"][0].startswith(f"line {line}, column 13:")


async def test_a_definition_as_text_is_validated_with_every_problem_named(staff):
    raw = shuiyitong_raw()
    raw["pricing"]["floor_bps"] = raw["pricing"]["cap_bps"] + 100

    response = await staff.post("assoc.product", f"{ADMIN}/products/validate", {"text": to_text(raw)})

    assert response.status == 422, response.text
    assert f"pricing: floor_bps {raw['pricing']['cap_bps'] + 100} is above cap_bps {raw['pricing']['cap_bps']}" in response.json["error"]["details"]["problems"]
    both = await staff.post("assoc.product", f"{ADMIN}/products/validate", {"text": to_text(raw), "definition": raw})
    assert both.status == 422 and both.json["error"]["code"] == "VALIDATION_FAILED"


async def test_a_version_proposed_as_text_waits_in_the_catalogue_until_a_second_person_approves(staff):
    proposed = await staff.post("assoc.product", f"{ADMIN}/products/versions", {"text": to_text(cheaper_band_a()), "note": "A 档上调 30bp"})
    assert proposed.status == 202, proposed.text

    pending = (await listing(staff))[PRODUCT]["pending"]
    change = proposed.json["change_request"]
    assert pending == {"version": 2, "change_request_id": change["id"], "proposed_by_id": change["proposed_by_id"], "note": "A 档上调 30bp"}
    approved = await staff.post("assoc.product2", f"{ADMIN}/change-requests/{pending['change_request_id']}/approve", {"note": "同意"})
    assert approved.status == 200, approved.text

    after = (await listing(staff))[PRODUCT]
    assert (after["published_version"], after["pending"]) == (2, None)


async def test_a_rejected_proposal_leaves_the_catalogue_and_does_not_block_the_next(staff):
    first = await staff.post("assoc.product", f"{ADMIN}/products/versions", {"definition": cheaper_band_a(), "note": "第一次"})
    rejected = await staff.post("assoc.product2", f"{ADMIN}/change-requests/{first.json['change_request']['id']}/reject", {"note": "不同意"})
    assert rejected.status == 200, rejected.text
    assert (await listing(staff))[PRODUCT]["pending"] is None

    second = await staff.post("assoc.product", f"{ADMIN}/products/versions", {"definition": cheaper_band_a(), "note": "第二次"})

    assert second.status == 202, second.text
    assert second.json["version"]["version"] == 3
    versions = (await staff.get("assoc.product", f"{ADMIN}/products/{PRODUCT}/versions")).json["versions"]
    assert [(v["version"], v["status"]) for v in versions] == [(1, "published"), (2, "rejected"), (3, "proposed")]


async def simulate(staff: StaffConsole, body: dict, username: str = "assoc.product", code: str = PRODUCT):
    return await staff.post(username, f"{ADMIN}/products/{code}/simulations", body)


async def test_a_posted_challenger_is_compared_with_the_published_version_on_the_sample(staff):
    response = await simulate(staff, {"csv": SAMPLE_CSV, "challenger_text": to_text(cheaper_band_a())})

    assert response.status == 200, response.text
    result = response.json
    champion, challenger = result["sides"]
    assert result["applicants"] == SAMPLE_ROWS == champion["applicants"] == challenger["applicants"]
    for side in (champion, challenger):
        assert side["approved"] + side["manual_review"] + side["rejected"] == SAMPLE_ROWS
        assert side["approval_rate"] == round(side["approved"] / SAMPLE_ROWS, 4)
    # Only band A's price moved: the same people approved, band A's rates 30 bps higher (within the cap).
    assert (champion["approved"], champion["rejected"]) == (challenger["approved"], challenger["rejected"])
    assert result["changes_total"] == len(result["changes"]) > 0
    for change in result["changes"]:
        before, after = change["champion"], change["challenger"]
        assert before["band"] == after["band"] == "A" and before["outcome"] == after["outcome"]
        assert 0 < after["rate_bps"] - before["rate_bps"] <= 30
        assert "*" in change["id_number"]
    assert (champion["version"], challenger["version"], challenger["posted_definition"]) == (1, None, True)
    assert await AuditEntry.filter(action="product.simulate").count() == 1


async def test_a_saved_version_is_a_challenger_and_the_published_one_alone_has_no_changes(staff):
    proposed = await staff.post("assoc.product", f"{ADMIN}/products/versions", {"definition": cheaper_band_a(), "note": "待模拟"})
    assert proposed.status == 202, proposed.text

    against_v2 = await simulate(staff, {"csv": SAMPLE_CSV, "challenger_version": 2})
    alone = await simulate(staff, {"csv": SAMPLE_CSV})

    assert against_v2.status == 200 and against_v2.json["sides"][1]["version"] == 2, against_v2.text
    assert against_v2.json["changes_total"] > 0
    assert len(alone.json["sides"]) == 1 and alone.json["changes"] == []
    assert (await simulate(staff, {"csv": SAMPLE_CSV, "challenger_version": 7})).status == 404


async def test_a_bad_csv_is_refused_with_the_line_of_each_problem(staff):
    lines = SAMPLE_CSV.strip().splitlines()
    lines[3] = lines[3].replace(",equal_instalment,", ",monthly,")
    lines[5] = "applicant-x,110101,abc,12,equal_instalment,false"

    response = await simulate(staff, {"csv": "\n".join(lines)})

    assert response.status == 400 and response.json["error"]["code"] == "APPLICANTS_REFUSED", response.text
    problems = response.json["error"]["details"]["problems"]
    assert [p["line"] for p in problems] == [4, 6, 6]
    assert "repayment_method" in problems[0]["problem"] and "id_number" in problems[1]["problem"] and "amount_yuan" in problems[2]["problem"]
    assert response.json["error"]["message"].startswith("line 4: ")
    assert "110101" not in response.text  # an ID number is personal data, even a broken one
    missing = await simulate(staff, {"csv": "label,id_number\nx,1\n"})
    assert missing.status == 400 and missing.json["error"]["details"]["problems"][0]["line"] == 1


async def test_more_applicants_than_the_cap_are_refused_before_anyone_is_looked_up(staff):
    header, first = SAMPLE_CSV.splitlines()[:2]
    too_many = "\n".join([header, *[first] * (simulations.MAX_APPLICANTS + 1)])

    response = await simulate(staff, {"csv": too_many})

    assert response.status == 413 and response.json["error"]["code"] == "TOO_MANY_APPLICANTS", response.text
    assert response.json["error"]["details"] == {"rows": simulations.MAX_APPLICANTS + 1, "max_rows": simulations.MAX_APPLICANTS}
    assert await AuditEntry.filter(action="product.simulate").count() == 0


async def test_only_those_who_manage_the_product_may_simulate_it(staff):
    body = {"csv": SAMPLE_CSV}
    assert (await simulate(staff, body, "hz.reviewer")).status == 403
    assert (await simulate(staff, body, "hz.admin")).status == 404  # a province-wide product: the association's
    own = await simulate(staff, body, "yx.admin", "YUNXIEDAI")
    assert own.status == 200 and own.json["data_of_bank"] == "YXRCB", own.text
