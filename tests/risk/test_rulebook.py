"""Warning rule books as data: the shipped catalogue is version 1, a change is a new version
proposed by one person and published when a second approves it, and an invalid book never goes
live — refused with every problem named (which rule, what is wrong)."""

from __future__ import annotations

import re

import pytest

from infra.actors import system
from lending_core.approvals.models import ChangeRequest
from lending_core.org.models import Bank
from lending_core.risk import rulebook
from lending_core.risk.library import CATALOGUE, load_library
from lending_core.risk.rulebook_models import RuleBook, RuleBookVersion
from tests.support import StaffConsole

RULES = "/api/v1/admin/risk-rules"
SHIPPED = len(load_library())


@pytest.fixture(autouse=True)
def _fresh_rulebook_cache():
    rulebook.forget_cached()
    yield
    rulebook.forget_cached()


@pytest.fixture
def console(client, demo) -> StaffConsole:
    return StaffConsole(client)


def whole_book_toml() -> str:
    """The shipped files written as one book: ``[[category]]`` for each file's ``[[rules]]`` (and
    ``[category.fires]`` for its sub-tables)."""
    parts = []
    for path in sorted(CATALOGUE.glob("*.toml")):
        text = path.read_text(encoding="utf-8")
        category = re.search(r'^category = "(\w+)"$', text, re.M).group(1)
        text = re.sub(r'^category = "\w+"$', "", text, flags=re.M).replace("[[rules]]", f"[[{category}]]")
        parts.append(text.replace("[rules.", f"[{category}."))
    return "\n".join(parts)


async def propose(console, username: str, body: dict):
    return await console.post(username, f"{RULES}/versions", {"note": "review of the rule book", **body})


async def approve(console, username: str, change_id: int):
    return await console.post(username, f"{RULES}/changes/{change_id}/approve", {"note": "checked"})


async def bank_id(code: str) -> int:
    return (await Bank.get(code=code)).id


# ---- version 1 ----------------------------------------------------------------------------------


async def test_the_shipped_catalogue_is_version_one_of_the_association_book(db):
    assert await rulebook.import_catalogue(system("test")) == 1
    assert await rulebook.import_catalogue(system("test")) == 0  # once only
    book = await RuleBook.get(scope="association")
    assert book.published_version == 1 and book.bank_id is None
    version = await RuleBookVersion.get(book_id=book.id, version=1)
    assert (version.status, version.rule_count) == ("published", SHIPPED)
    assert set(version.rules) == {path.stem for path in CATALOGUE.glob("*.toml")}


async def test_the_batch_gets_the_live_rules_and_they_are_imported_when_first_asked_for(demo):
    hz = await bank_id("HZRCB")
    live = await rulebook.current_rules(hz)
    assert (live.scope, live.version, len(live.library)) == ("association", 1, SHIPPED)
    assert live.library["REP_OVERDUE_30"].fires({**live.library["REP_OVERDUE_30"].fires_on})
    assert await RuleBookVersion.all().count() == 1


# ---- maker-checker --------------------------------------------------------------------------------


async def test_a_rule_change_is_live_only_after_a_second_person_approves_it(console):
    hz = await bank_id("HZRCB")
    response = await propose(console, "assoc.product", {"changes": [{"op": "update", "code": "REP_OVERDUE_30", "set": {"severity": "severe"}}]})
    assert response.status == 202, response.text
    change_id = response.json["change_request"]["id"]
    assert response.json["version"]["version"] == 2 and response.json["version"]["status"] == "proposed"
    assert (await rulebook.current_rules(hz)).library["REP_OVERDUE_30"].severity == "warning"

    refused = await approve(console, "assoc.product", change_id)
    assert (refused.status, refused.json["error"]["code"]) == (403, "SELF_APPROVAL")
    assert (await rulebook.current_rules(hz)).version == 1

    approved = await approve(console, "assoc.product2", change_id)
    assert approved.status == 200, approved.text
    assert approved.json["status"] == "applied"
    live = await rulebook.current_rules(hz)
    assert (live.version, live.library["REP_OVERDUE_30"].severity, len(live.library)) == (2, "severe", SHIPPED)

    versions = (await console.get("assoc.product", f"{RULES}/versions")).json
    assert versions["published_version"] == 2
    assert [(v["version"], v["status"]) for v in versions["versions"]] == [(1, "retired"), (2, "published")]
    diff = (await console.get("assoc.product", f"{RULES}/diff?from=1&to=2")).json
    assert diff["changed"] == [{"code": "REP_OVERDUE_30", "fields": {"severity": {"from": "warning", "to": "severe"}}}]
    assert (diff["added"], diff["removed"], diff["unchanged"]) == ([], [], SHIPPED - 1)


async def test_rules_are_added_and_removed_and_the_version_shows_them(console):
    new_rule = {
        "code": "REP_OVERDUE_INTEREST_ONLY", "name": "仅欠利息未还", "name_en": "Only interest overdue",
        "severity": "watch", "condition": "repayment.overdue_interest_fen > 0 and repayment.overdue_principal_fen == 0",
        "disposal": "提醒客户补缴利息。", "products": "all",
        "fires": {"repayment": {"days_past_due": 3, "overdue_interest_fen": 1200}},
        "quiet": {"repayment": {"days_past_due": 3, "overdue_principal_fen": 50000, "overdue_interest_fen": 1200}},
    }
    changes = [{"op": "put", "category": "repayment", "rule": new_rule}, {"op": "remove", "code": "REP_PARTIAL_PAYMENTS"}]
    response = await propose(console, "assoc.product", {"changes": changes})
    assert response.status == 202, response.text
    assert (await approve(console, "assoc.admin", response.json["change_request"]["id"])).status == 200

    shown = (await console.get("assoc.admin", f"{RULES}/versions/2?category=repayment")).json
    codes = {rule["code"] for rule in shown["rules"]}
    assert "REP_OVERDUE_INTEREST_ONLY" in codes and "REP_PARTIAL_PAYMENTS" not in codes
    assert all(rule["category"] == "repayment" for rule in shown["rules"])
    diff = (await console.get("assoc.admin", f"{RULES}/diff?from=1&to=2")).json
    assert [r["code"] for r in diff["added"]] == ["REP_OVERDUE_INTEREST_ONLY"]
    assert [r["code"] for r in diff["removed"]] == ["REP_PARTIAL_PAYMENTS"]
    live = await rulebook.current_rules(await bank_id("LSRCB"))
    assert live.library["REP_OVERDUE_INTEREST_ONLY"].fires(live.library["REP_OVERDUE_INTEREST_ONLY"].fires_on)


async def test_a_whole_book_in_toml_is_proposed_and_published(console):
    text = whole_book_toml().replace('severity = "watch"\ncondition = "repayment.partial_payments_3m >= 2"', 'severity = "warning"\ncondition = "repayment.partial_payments_3m >= 2"')
    response = await propose(console, "assoc.product", {"book_toml": text})
    assert response.status == 202, response.text
    assert response.json["version"]["rule_count"] == SHIPPED
    assert (await approve(console, "assoc.product2", response.json["change_request"]["id"])).status == 200
    live = await rulebook.current_rules(await bank_id("HZRCB"))
    assert live.library["REP_PARTIAL_PAYMENTS"].severity == "warning"


async def test_one_proposal_at_a_time_and_a_rejected_one_frees_the_book(console):
    change = {"changes": [{"op": "update", "code": "REP_OVERDUE_30", "set": {"severity": "severe"}}]}
    first = await propose(console, "assoc.product", change)
    assert first.status == 202
    second = await propose(console, "assoc.product2", change)
    assert (second.status, second.json["error"]["code"]) == (409, "RULE_BOOK_PROPOSAL_PENDING")
    rejected = await console.post("assoc.product2", f"/api/v1/admin/change-requests/{first.json['change_request']['id']}/reject", {"note": "not now"})
    assert rejected.status == 200
    again = await propose(console, "assoc.product2", change)
    assert again.status == 202, again.text
    statuses = [(v["version"], v["status"]) for v in (await console.get("assoc.product", f"{RULES}/versions")).json["versions"]]
    assert statuses == [(1, "published"), (2, "rejected"), (3, "proposed")]


# ---- an invalid book never goes live ------------------------------------------------------------


async def test_an_invalid_change_is_refused_naming_the_rule_and_the_problem(console):
    changes = [
        {"op": "update", "code": "REP_OVERDUE_30", "set": {"condition": "repayment.days_past_due > 40"}},  # its fixture no longer fires
        {"op": "update", "code": "REP_HABITUALLY_LATE", "set": {"condition": "repayment.late_instalments_12m >= "}},
        {"op": "update", "code": "REP_PARTIAL_PAYMENTS", "set": {"severity": "urgent"}},
        {"op": "put", "category": "bureau", "rule": {**_rule_of("REP_THREE_IN_A_ROW_SIX_IN_ALL"), "code": "REP_OVERDUE_SHARE_HIGH"}},
    ]
    response = await propose(console, "assoc.product", {"changes": changes})
    assert (response.status, response.json["error"]["code"]) == (422, "RULE_BOOK_REFUSED")
    problems = response.json["error"]["details"]["problems"]
    assert "repayment: rule REP_OVERDUE_30: the `fires` fixture does not fire the rule" in problems
    assert any(p.startswith("repayment: rule REP_HABITUALLY_LATE: condition:") for p in problems)
    assert any(p.startswith("repayment: rule REP_PARTIAL_PAYMENTS: severity: 'urgent' is not one of") for p in problems)
    assert any(p.startswith("bureau: rule REP_OVERDUE_SHARE_HIGH: condition: reads no field of its own category bureau") for p in problems)
    assert await RuleBookVersion.all().count() == 1 and await ChangeRequest.all().count() == 0
    assert (await rulebook.current_rules(await bank_id("HZRCB"))).version == 1


async def test_changes_that_name_no_rule_are_refused_with_their_position(console):
    response = await propose(console, "assoc.product", {"changes": [{"op": "remove", "code": "NO_SUCH_RULE"}, {"op": "rename", "code": "X"}]})
    assert response.status == 422
    assert response.json["error"]["details"]["problems"] == [
        "changes[1]: remove: no rule 'NO_SUCH_RULE' in the book",
        "changes[2]: op 'rename' is not one of put, update, remove",
    ]


async def test_a_broken_toml_book_and_a_code_used_twice_are_refused(console):
    broken = await propose(console, "assoc.product", {"book_toml": "[[repayment]]\ncode = "})
    assert broken.status == 422 and broken.json["error"]["details"]["problems"][0].startswith("not valid TOML")
    twice = whole_book_toml() + '\n[[repayment]]\n' + _toml_rule_copy("REP_OVERDUE_30")
    response = await propose(console, "assoc.product", {"book_toml": twice})
    assert response.status == 422
    assert any("rule REP_OVERDUE_30: duplicate code" in p for p in response.json["error"]["details"]["problems"])


async def test_validate_checks_without_saving(console):
    good = await console.post("assoc.product", f"{RULES}/validate", {"changes": [{"op": "remove", "code": "REP_PARTIAL_PAYMENTS"}]})
    assert (good.status, good.json["rules"], good.json["rules_by_category"]["repayment"]) == (200, SHIPPED - 1, 16)
    bad = await console.post("assoc.product", f"{RULES}/validate", {"book": {"nonsense": []}})
    assert bad.status == 422 and bad.json["error"]["details"]["problems"][0].startswith("nonsense: not a category")
    assert await RuleBookVersion.all().count() == 1


async def test_a_version_that_became_invalid_is_not_published_on_approval(console):
    response = await propose(console, "assoc.product", {"changes": [{"op": "update", "code": "REP_OVERDUE_30", "set": {"severity": "severe"}}]})
    version = await RuleBookVersion.get(id=response.json["version"]["id"])
    # What approval would publish is checked again (a rule can name a product withdrawn since):
    # here the stored book is damaged behind the service's back.
    version.rules["repayment"][0]["products"] = ["NO_SUCH_PRODUCT"]
    await version.save(update_fields=["rules"])
    refused = await approve(console, "assoc.product2", response.json["change_request"]["id"])
    assert (refused.status, refused.json["error"]["code"]) == (422, "RULE_BOOK_REFUSED")
    assert any("products: unknown product 'NO_SUCH_PRODUCT'" in p for p in refused.json["error"]["details"]["problems"])
    assert (await RuleBook.get(scope="association")).published_version == 1
    assert (await RuleBookVersion.get(id=version.id)).status == "proposed"
    assert (await ChangeRequest.get(id=response.json["change_request"]["id"])).status == "pending"
    assert (await rulebook.current_rules(await bank_id("HZRCB"))).version == 1


# ---- a bank's own book --------------------------------------------------------------------------


async def test_a_bank_keeps_its_own_book_and_other_banks_keep_the_association_book(console):
    hz, ls = await bank_id("HZRCB"), await bank_id("LSRCB")
    response = await propose(console, "hz.risk", {"bank_id": hz, "changes": [{"op": "remove", "code": "REP_PARTIAL_PAYMENTS"}]})
    assert response.status == 202, response.text
    assert response.json["version"]["version"] == 1 and response.json["version"]["based_on"] is None
    refused = await approve(console, "hz.risk", response.json["change_request"]["id"])
    assert refused.status == 403
    assert (await approve(console, "hz.admin", response.json["change_request"]["id"])).status == 200

    own, other = await rulebook.current_rules(hz), await rulebook.current_rules(ls)
    assert (own.scope, own.version, len(own.library)) == (f"bank:{hz}", 1, SHIPPED - 1)
    assert (other.scope, other.version, len(other.library)) == ("association", 1, SHIPPED)
    live = (await console.get("hz.risk", RULES)).json  # the caller's bank by default
    assert (live["scope"], live["version"]["version"], live["rules_by_category"]["repayment"]) == (f"bank:{hz}", 1, 16)
    elsewhere = (await console.get("ls.risk", RULES)).json
    assert (elsewhere["scope"], elsewhere["rules_by_category"]["repayment"]) == ("association", 17)
    assert (await console.get("assoc.admin", RULES + f"?bank_id={hz}")).json["scope"] == f"bank:{hz}"


async def test_bank_staff_cannot_touch_the_association_book_or_another_banks(console):
    hz = await bank_id("HZRCB")
    association = await propose(console, "hz.risk", {"changes": [{"op": "remove", "code": "REP_PARTIAL_PAYMENTS"}]})
    assert (association.status, association.json["error"]["code"]) == (403, "FORBIDDEN")
    other = await propose(console, "ls.risk", {"bank_id": hz, "changes": [{"op": "remove", "code": "REP_PARTIAL_PAYMENTS"}]})
    assert other.status == 404
    assert (await console.get("ls.risk", f"{RULES}/versions?bank_id={hz}")).status == 404
    assert (await console.get("hz.manager", f"{RULES}/versions")).status == 403  # no risk_rules.read
    # Reading the association's book is open to risk staff of any bank.
    assert (await console.get("ls.risk", f"{RULES}/versions/1")).json["rule_count"] == SHIPPED


def _rule_of(code: str) -> dict:
    book = rulebook.read_catalogue()
    return next(rule for rules in book.values() for rule in rules if rule["code"] == code)


def _toml_rule_copy(code: str) -> str:
    """The rule's text block as written in its shipped file."""
    for path in sorted(CATALOGUE.glob("*.toml")):
        for block in path.read_text(encoding="utf-8").split("[[rules]]")[1:]:
            if f'code = "{code}"' in block:
                return block
    raise LookupError(code)
