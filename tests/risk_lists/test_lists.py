"""Black and grey lists (M15): three levels, bank and all-bank entries, screening by any key,
lifting by a second person, CSV import with a row-level report — and never a clear value out."""

from __future__ import annotations

import itertools
import json
from datetime import date, timedelta

import pytest

from infra import clock, pii
from infra.actors import Actor
from infra.audit import AuditEntry
from infra.errors import IllegalTransition
from infra.identity_numbers import make_test_id_number
from lending_core.approvals.models import ChangeRequest
from lending_core.customers.models import Customer
from lending_core.org.models import Bank
from lending_core.risk_lists import service as lists
from lending_core.risk_lists.models import ListEntry
from server.demo_data import CUSTOMERS
from tests.support import StaffConsole

LISTS = "/api/v1/admin/risk-lists"
CHANGES = "/api/v1/admin/change-requests"
ID_A = make_test_id_number("320102", date(1980, 5, 6), 311)
ID_B = make_test_id_number("330106", date(1975, 11, 30), 422)
PHONE_A, PHONE_B = "13912345678", "15887654321"
UNIONID_A = "oUnion-7Hk2xQ9aZ"


class Console(StaffConsole):
    """Signs staff in once each and makes their requests."""

    async def post(self, username: str, path: str, body: dict):
        _, response = await self.client.post(path, json=body, headers=await self.headers(username))
        return response

    async def get(self, username: str, path: str):
        _, response = await self.client.get(path, headers=await self.headers(username))
        return response

    async def add(self, username: str, **body):
        body.setdefault("reason", "court enforcement record")
        return await self.post(username, LISTS, body)


@pytest.fixture
def console(client, demo) -> Console:
    return Console(client)


async def bank_id(code: str) -> int:
    return (await Bank.get(code=code)).id


def error_code(response) -> str:
    return response.json["error"]["code"]


async def screen(bank: str, *, id_number=None, phone=None, unionid=None, at=None) -> lists.Screening:
    return await lists.screen(
        bank_id=await bank_id(bank),
        id_number_hash=pii.lookup_hash("id_number", id_number) if id_number else None,
        phone_hash=pii.lookup_hash("phone", phone) if phone else None,
        unionid_hash=pii.lookup_hash("wechat_unionid", unionid) if unionid else None,
        at=at or clock.now(),
    )


def assert_no_clear_values(text: str, *values: str) -> None:
    for value in values:
        assert value not in text


# --- adding ------------------------------------------------------------------------------------


@pytest.mark.parametrize("level", ["blacklist_prohibit", "blacklist_restrict", "greylist"])
async def test_a_risk_officer_adds_an_entry_of_each_level(console, level):
    hz = await bank_id("HZRCB")

    response = await console.add("hz.risk", level=level, id_number=ID_A, phone=PHONE_A, reason=f"overdue elsewhere, ID {ID_A}")

    assert response.status == 201, response.text
    entry = response.json
    assert entry["level"] == level
    assert entry["bank_id"] == hz
    assert entry["id_number"] == pii.mask_id_number(ID_A) == ID_A[:4] + "*" * 10 + ID_A[-4:]
    assert entry["phone"] == "139****5678"
    assert entry["has_unionid"] is False
    assert (entry["source"], entry["status"]) == ("staff", "active")
    assert entry["reason"] == f"overdue elsewhere, ID {pii.mask_id_number(ID_A)}"
    assert entry["created_by"].startswith("staff:")
    assert_no_clear_values(response.text, ID_A, PHONE_A)

    stored = await ListEntry.get(id=entry["id"])
    assert stored.id_number_hash == pii.lookup_hash("id_number", ID_A)
    stored_row = (await ListEntry.filter(id=stored.id).values())[0]
    assert_no_clear_values(json.dumps([str(v) for v in stored_row.values()], ensure_ascii=False), ID_A, PHONE_A)
    row = await AuditEntry.get(action="risk_list.add", object_id=str(entry["id"]))
    assert row.bank_id == hz
    assert row.after["level"] == level
    assert_no_clear_values(json.dumps(row.after, ensure_ascii=False), ID_A, PHONE_A)

    assert (await screen("HZRCB", id_number=ID_A)).level == level


async def test_the_caller_sees_the_entry_again_by_id_and_in_the_list(console):
    added = (await console.add("hz.risk", level="greylist", phone=PHONE_A)).json

    by_id = await console.get("hz.reviewer", f"{LISTS}/{added['id']}")
    listed = await console.get("hz.reviewer", f"{LISTS}?level=greylist&status=active")

    assert by_id.status == 200
    assert by_id.json == added
    assert [item["id"] for item in listed.json["items"]] == [added["id"]]
    assert (await console.get("hz.reviewer", f"{LISTS}?level=blacklist_prohibit")).json["items"] == []


async def test_an_entry_needs_a_key_a_valid_id_and_a_known_level(console):
    no_key = await console.add("hz.risk", level="greylist")
    bad_id = await console.add("hz.risk", level="greylist", id_number=ID_A[:-1] + ("0" if ID_A[-1] != "0" else "1"))
    bad_phone = await console.add("hz.risk", level="greylist", phone="12345")
    bad_level = await console.add("hz.risk", level="whitelist", phone=PHONE_A)
    extra = await console.add("hz.risk", level="greylist", phone=PHONE_A, status="lifted")
    past = await console.add("hz.risk", level="greylist", phone=PHONE_A, expires_at=(clock.now() - timedelta(days=1)).isoformat())

    assert (no_key.status, error_code(no_key)) == (422, "MATCH_KEY_REQUIRED")
    assert (bad_id.status, error_code(bad_id)) == (422, "INVALID_ID_NUMBER")
    assert ID_A[:-1] not in bad_id.text
    assert (bad_phone.status, error_code(bad_phone)) == (422, "INVALID_PHONE")
    assert (bad_level.status, error_code(bad_level)) == (422, "VALIDATION_FAILED")
    assert (extra.status, error_code(extra)) == (422, "FIELD_NOT_ALLOWED")
    assert (past.status, error_code(past)) == (422, "EXPIRY_IN_PAST")
    assert await ListEntry.all().count() == 0


async def test_the_same_entry_twice_is_a_conflict(console):
    assert (await console.add("hz.risk", level="greylist", id_number=ID_A)).status == 201

    again = await console.add("hz.admin", level="greylist", id_number=ID_A)
    other_level = await console.add("hz.admin", level="blacklist_restrict", id_number=ID_A)

    assert (again.status, error_code(again)) == (409, "DUPLICATE_LIST_ENTRY")
    assert other_level.status == 201


async def test_a_system_job_adds_entries_it_identified(demo):
    job = Actor(kind="system", id="risk.overdue_watch")

    entry = await lists.add(job, level="blacklist_restrict", id_number=ID_A, reason="90 days overdue", bank_id=await bank_id("LSRCB"))

    assert (entry.source, entry.created_by) == ("system", "system:risk.overdue_watch")
    assert (await screen("LSRCB", id_number=ID_A)).level == "blacklist_restrict"
    assert (await screen("HZRCB", id_number=ID_A)).clear


# --- banks and the association -----------------------------------------------------------------


async def test_bank_staff_cannot_add_an_all_bank_entry_nor_one_for_another_bank(console):
    all_banks = await console.add("hz.risk", level="blacklist_prohibit", id_number=ID_A, bank_id=None)
    other_bank = await console.add("hz.admin", level="blacklist_prohibit", id_number=ID_A, bank_id=await bank_id("LSRCB"))

    assert (all_banks.status, error_code(all_banks)) == (403, "ALL_BANK_ENTRY_FORBIDDEN")
    assert (other_bank.status, error_code(other_bank)) == (404, "NOT_FOUND")
    assert await ListEntry.all().count() == 0


async def test_bank_staff_cannot_see_another_banks_entries(console):
    ours = (await console.add("hz.risk", level="blacklist_prohibit", id_number=ID_A)).json
    theirs = (await console.add("ls.risk", level="greylist", id_number=ID_B)).json

    hidden = await console.get("ls.risk", f"{LISTS}/{ours['id']}")
    ls_list = await console.get("ls.admin", LISTS)
    hz_list = await console.get("hz.reviewer", LISTS)
    association = await console.get("assoc.admin", LISTS)

    assert (hidden.status, error_code(hidden)) == (404, "NOT_FOUND")
    assert [item["id"] for item in ls_list.json["items"]] == [theirs["id"]]
    assert [item["id"] for item in hz_list.json["items"]] == [ours["id"]]
    assert [item["id"] for item in association.json["items"]] == [ours["id"], theirs["id"]]
    lift = await console.post("ls.risk", f"{LISTS}/{ours['id']}/lift", {"reason": "not ours to lift"})
    assert (lift.status, error_code(lift)) == (404, "NOT_FOUND")


async def test_association_entries_apply_to_every_bank(console):
    response = await console.add("assoc.admin", level="blacklist_prohibit", id_number=ID_A, reason="fraud ring, provincial notice")
    assert response.status == 201
    assert response.json["bank_id"] is None

    for bank in await Bank.all():
        result = await lists.screen(bank_id=bank.id, id_number_hash=pii.lookup_hash("id_number", ID_A), at=clock.now())
        assert (result.level, result.entry_ids) == ("blacklist_prohibit", (response.json["id"],))

    # Every bank's staff can read it (it applies to their decisions) but not lift it.
    seen = await console.get("yx.reviewer", f"{LISTS}/{response.json['id']}")
    assert seen.status == 200
    lift = await console.post("hz.risk", f"{LISTS}/{response.json['id']}/lift", {"reason": "customer repaid"})
    assert (lift.status, error_code(lift)) == (403, "ALL_BANK_ENTRY_FORBIDDEN")


async def test_a_bank_entry_does_not_apply_to_other_banks(console):
    assert (await console.add("hz.risk", level="blacklist_prohibit", phone=PHONE_A)).status == 201

    assert (await screen("HZRCB", phone=PHONE_A)).prohibits
    assert (await screen("LSRCB", phone=PHONE_A)).clear
    assert (await screen("YXRCB", phone=PHONE_A)).clear


# --- screening ---------------------------------------------------------------------------------


async def test_screening_matches_by_id_by_phone_and_by_unionid(console):
    by_id = (await console.add("hz.risk", level="greylist", id_number=ID_A)).json["id"]
    by_phone = (await console.add("hz.risk", level="greylist", phone=PHONE_A)).json["id"]
    by_unionid = (await console.add("hz.risk", level="greylist", unionid=UNIONID_A)).json["id"]

    assert (await screen("HZRCB", id_number=ID_A)).entry_ids == (by_id,)
    assert (await screen("HZRCB", phone=PHONE_A)).entry_ids == (by_phone,)
    assert (await screen("HZRCB", unionid=UNIONID_A)).entry_ids == (by_unionid,)
    assert (await screen("HZRCB", id_number=ID_B, phone=PHONE_B, unionid="someone-else")).clear
    assert (await screen("HZRCB")).clear
    flagged = await screen("HZRCB", id_number=ID_A, phone=PHONE_A)
    assert flagged.flagged and flagged.entry_ids == (by_id, by_phone)


async def test_the_strongest_level_wins(console):
    grey = (await console.add("hz.risk", level="greylist", phone=PHONE_A)).json["id"]
    restrict = (await console.add("hz.risk", level="blacklist_restrict", unionid=UNIONID_A)).json["id"]
    prohibit = (await console.add("assoc.admin", level="blacklist_prohibit", id_number=ID_A)).json["id"]

    assert (await screen("HZRCB", phone=PHONE_A, unionid=UNIONID_A)).level == "blacklist_restrict"
    every = await screen("HZRCB", id_number=ID_A, phone=PHONE_A, unionid=UNIONID_A)
    assert (every.level, every.entry_ids) == ("blacklist_prohibit", (prohibit, restrict, grey))
    assert every.prohibits and not every.restricts


async def test_expired_entries_do_not_match(console):
    expires = clock.now() + timedelta(hours=1)
    response = await console.add("hz.risk", level="blacklist_prohibit", id_number=ID_A, expires_at=expires.isoformat())
    assert response.status == 201
    later = expires + timedelta(seconds=1)

    assert (await screen("HZRCB", id_number=ID_A, at=expires - timedelta(seconds=1))).prohibits
    assert (await screen("HZRCB", id_number=ID_A, at=expires)).clear
    assert (await screen("HZRCB", id_number=ID_A, at=later)).clear

    assert await lists.expire_due(later) == 1
    stored = await ListEntry.get(id=response.json["id"])
    assert stored.status == "expired"
    assert await AuditEntry.filter(action="risk_list.expire", object_id=str(stored.id)).count() == 1
    listed = await console.get("hz.risk", f"{LISTS}?status=expired")
    assert [(item["id"], item["status"]) for item in listed.json["items"]] == [(stored.id, "expired")]
    assert (await console.get("hz.risk", f"{LISTS}?status=active")).json["items"] == []


async def test_screening_a_customer_uses_every_key_they_are_known_by(demo):
    name, id_number, phone, bank_code, _ = CUSTOMERS[0]
    customer = await Customer.get(id_number_hash=pii.lookup_hash("id_number", id_number))
    job = Actor(kind="system", id="risk.test")
    await lists.add(job, level="greylist", phone=phone, reason="watch", bank_id=await bank_id(bank_code))

    result = await lists.screen_customer(customer.id, bank_id=await bank_id(bank_code), at=clock.now())

    assert result.level == "greylist"


# --- lifting -----------------------------------------------------------------------------------


async def test_lifting_takes_a_second_person(console):
    entry_id = (await console.add("hz.risk", level="blacklist_prohibit", id_number=ID_A)).json["id"]

    proposed = await console.post("hz.risk", f"{LISTS}/{entry_id}/lift", {"reason": "court order revoked"})
    assert proposed.status == 202, proposed.text
    change = proposed.json
    assert (change["kind"], change["status"], change["target_id"]) == ("risk_list.lift", "pending", str(entry_id))
    assert (await screen("HZRCB", id_number=ID_A)).prohibits

    again = await console.post("hz.admin", f"{LISTS}/{entry_id}/lift", {"reason": "same"})
    assert (again.status, error_code(again)) == (409, "LIFT_ALREADY_PROPOSED")

    self_approval = await console.post("hz.risk", f"{CHANGES}/{change['id']}/approve", {})
    assert (self_approval.status, error_code(self_approval)) == (403, "SELF_APPROVAL")
    assert (await screen("HZRCB", id_number=ID_A)).prohibits

    not_allowed = await console.post("hz.reviewer", f"{CHANGES}/{change['id']}/approve", {})
    assert (not_allowed.status, error_code(not_allowed)) == (403, "FORBIDDEN")

    approved = await console.post("hz.admin", f"{CHANGES}/{change['id']}/approve", {"note": "order seen"})
    assert approved.status == 200, approved.text
    assert approved.json["status"] == "applied"

    assert (await screen("HZRCB", id_number=ID_A)).clear
    entry = (await console.get("hz.risk", f"{LISTS}/{entry_id}")).json
    checker = approved.json["decided_by_id"]
    assert (entry["status"], entry["lifted_by"]) == ("lifted", f"staff:{checker}")
    assert entry["lifted_at"] is not None
    lifted = await AuditEntry.get(action="risk_list.lift", object_type="list_entry", object_id=str(entry_id))
    assert lifted.actor_id == str(checker)
    assert (lifted.before["status"], lifted.after["status"]) == ("active", "lifted")
    assert lifted.after["proposed_by"] == f"staff:{change['proposed_by_id']}"
    assert await AuditEntry.filter(action="change.propose", object_id=str(change["id"])).count() == 1
    assert await AuditEntry.filter(action="change.approve", object_id=str(change["id"])).count() == 1

    twice = await console.post("hz.admin", f"{LISTS}/{entry_id}/lift", {"reason": "again"})
    assert (twice.status, error_code(twice)) == (409, "ILLEGAL_TRANSITION")


async def test_the_association_lifts_its_own_entries_with_two_people(console):
    entry_id = (await console.add("assoc.admin", level="greylist", phone=PHONE_A)).json["id"]
    change = (await console.post("assoc.admin", f"{LISTS}/{entry_id}/lift", {"reason": "cleared"})).json

    bank_checker = await console.post("hz.admin", f"{CHANGES}/{change['id']}/approve", {})
    approved = await console.post("assoc.admin2", f"{CHANGES}/{change['id']}/approve", {})

    assert (bank_checker.status, error_code(bank_checker)) == (404, "NOT_FOUND")
    assert approved.status == 200
    assert (await screen("LSRCB", phone=PHONE_A)).clear


async def test_a_rejected_lift_leaves_the_entry_in_force(console):
    entry_id = (await console.add("hz.risk", level="blacklist_restrict", phone=PHONE_A)).json["id"]
    change = (await console.post("hz.risk", f"{LISTS}/{entry_id}/lift", {"reason": "asked by customer"})).json

    assert (await console.post("hz.admin", f"{CHANGES}/{change['id']}/reject", {"note": "no evidence"})).status == 200

    assert (await screen("HZRCB", phone=PHONE_A)).restricts
    assert (await ListEntry.get(id=entry_id)).status == "active"
    assert await AuditEntry.filter(action="risk_list.lift").count() == 0


# --- importing ---------------------------------------------------------------------------------

IMPORT_ID_BAD = "110101199003071234"  # wrong check character


async def test_a_csv_import_adds_the_good_rows_and_reports_the_bad_ones(console):
    tomorrow = (clock.business_date() + timedelta(days=1)).isoformat()
    csv_text = "\ufefflevel,id_number,phone,reason,expires_on\n" + "\n".join(
        [
            f"blacklist_prohibit,{ID_A},,court enforcement,",  # row 2: good
            f"greylist,,{PHONE_A},many applications,{tomorrow}",  # row 3: good
            f"blacklist_whatever,{ID_B},,x,",  # row 4: unknown level
            f"greylist,{IMPORT_ID_BAD},,typo,",  # row 5: bad ID
            "greylist,,13800,short phone,",  # row 6: bad phone
            "greylist,,,no key,",  # row 7: no key
            f"greylist,{ID_B},,,",  # row 8: no reason
            f"greylist,{ID_B},,late,2020-01-01",  # row 9: expired already
            f"greylist,{ID_B},,odd date,31/12/2099",  # row 10: bad date
            f"blacklist_prohibit,{ID_A},,repeated row,",  # row 11: duplicate of row 2
            f"greylist,{ID_B}",  # row 12: wrong column count
            "",  # blank lines are skipped
            f"限制级,{ID_B},{PHONE_B},chinese level name,",  # row 14: good
        ]
    )

    response = await console.post("hz.risk", f"{LISTS}/import", {"csv": csv_text})

    assert response.status == 200, response.text
    assert response.json == {
        "imported": 3,
        "errors": [
            {"row": 4, "code": "unknown_level"},
            {"row": 5, "code": "invalid_id_number"},
            {"row": 6, "code": "invalid_phone"},
            {"row": 7, "code": "missing_key"},
            {"row": 8, "code": "invalid_reason"},
            {"row": 9, "code": "expires_on_in_past"},
            {"row": 10, "code": "invalid_expires_on"},
            {"row": 11, "code": "duplicate"},
            {"row": 12, "code": "wrong_column_count"},
        ],
    }
    assert_no_clear_values(response.text, IMPORT_ID_BAD, "13800", ID_A, ID_B, PHONE_A, PHONE_B)
    hz = await bank_id("HZRCB")
    assert await ListEntry.filter(bank_id=hz).count() == 3
    assert (await screen("HZRCB", id_number=ID_A)).prohibits
    assert (await screen("HZRCB", phone=PHONE_B)).restricts
    assert (await screen("HZRCB", phone=PHONE_A)).flagged
    grey = await ListEntry.get(level="greylist")
    assert clock.business_date(grey.expires_at - timedelta(seconds=1)).isoformat() == tomorrow
    summary = await AuditEntry.get(action="risk_list.import")
    assert (summary.after["imported"], summary.after["refused"]) == (3, 9)
    every_audit = json.dumps([row.after for row in await AuditEntry.all()], ensure_ascii=False)
    assert_no_clear_values(every_audit, IMPORT_ID_BAD, ID_A, ID_B, PHONE_A, PHONE_B)

    # The same file again adds nothing: every good row is now a duplicate.
    again = await console.post("hz.risk", f"{LISTS}/import", {"csv": csv_text})
    assert again.json["imported"] == 0
    assert [e["row"] for e in again.json["errors"] if e["code"] == "duplicate"] == [2, 3, 11, 14]


@pytest.mark.parametrize(
    ("csv_text", "problem"),
    [
        pytest.param("level,id_number,reason\ngreylist,x,y", "columns", id="missing-phone-column"),
        pytest.param(f"level,id_number,phone,reason,name\ngreylist,{ID_A},,y,张三", "columns", id="unknown-column"),
        pytest.param("level,id_number,phone,reason\n", "no_rows", id="header-only"),
        pytest.param("level,id_number,phone,reason\n" + f"greylist,{ID_A},,r\n" * (lists.MAX_IMPORT_ROWS + 1), "too_many_rows", id="too-many-rows"),
    ],
)
async def test_a_malformed_import_file_is_refused_whole(console, csv_text, problem):
    response = await console.post("hz.risk", f"{LISTS}/import", {"csv": csv_text})

    assert (response.status, error_code(response)) == (422, "INVALID_IMPORT_FILE")
    assert response.json["error"]["details"]["problem"] == problem
    assert_no_clear_values(response.text, ID_A, "张三")
    assert await ListEntry.all().count() == 0


async def test_an_oversized_import_is_refused(demo):
    admin = Actor(kind="staff", id=1, bank_id=None, roles=frozenset({"association_admin"}))
    from lending_core.risk_lists.errors import InvalidImportFile

    with pytest.raises(InvalidImportFile) as refused:
        await lists.import_csv(admin, "level,id_number,phone,reason\n" + "x" * lists.MAX_IMPORT_BYTES, bank_id=None)
    assert refused.value.details["problem"] == "too_large"


async def test_bank_staff_cannot_import_for_all_banks(console):
    response = await console.post("hz.risk", f"{LISTS}/import", {"csv": f"level,id_number,phone,reason\ngreylist,{ID_A},,r", "bank_id": None})

    assert (response.status, error_code(response)) == (403, "ALL_BANK_ENTRY_FORBIDDEN")


# --- permissions -------------------------------------------------------------------------------


@pytest.mark.parametrize("username", ["hz.marketer", "hz.manager", "assoc.product"])
async def test_staff_without_list_permissions_are_refused(console, username):
    entry_id = (await console.add("hz.risk", level="greylist", phone=PHONE_A)).json["id"]

    responses = [
        await console.add(username, level="greylist", phone=PHONE_B),
        await console.get(username, LISTS),
        await console.get(username, f"{LISTS}/{entry_id}"),
        await console.post(username, f"{LISTS}/{entry_id}/lift", {"reason": "x"}),
        await console.post(username, f"{LISTS}/import", {"csv": f"level,id_number,phone,reason\ngreylist,,{PHONE_B},r"}),
    ]

    assert [(r.status, error_code(r)) for r in responses] == [(403, "FORBIDDEN")] * 5
    assert await ListEntry.all().count() == 1
    assert await ChangeRequest.all().count() == 0


async def test_reviewers_read_but_do_not_manage(console):
    entry_id = (await console.add("hz.risk", level="greylist", phone=PHONE_A)).json["id"]

    assert (await console.get("hz.reviewer", f"{LISTS}/{entry_id}")).status == 200
    added = await console.add("hz.reviewer", level="greylist", phone=PHONE_B)
    lift = await console.post("hz.senior", f"{LISTS}/{entry_id}/lift", {"reason": "x"})
    assert (added.status, error_code(added)) == (403, "FORBIDDEN")
    assert (lift.status, error_code(lift)) == (403, "FORBIDDEN")


async def test_adding_is_idempotent_with_a_key(console):
    headers = {**await console.headers("hz.risk"), "Idempotency-Key": "list-add-0001"}
    body = {"level": "greylist", "phone": PHONE_A, "reason": "watch"}

    _, first = await console.client.post(LISTS, json=body, headers=headers)
    _, second = await console.client.post(LISTS, json=body, headers=headers)

    assert (first.status, second.status) == (201, 201)
    assert second.json == first.json
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert await ListEntry.all().count() == 1


# --- the status table, walked whole (STYLE rule 3) ---------------------------------------------

EXPECTED_TABLE = {("lift", "active"): "lifted", ("expire", "active"): "expired"}
STATUSES, EVENTS = ["active", "lifted", "expired"], ["lift", "expire"]


def test_the_list_entry_table_is_the_expected_one():
    assert dict(lists.STATUS.pairs()) == EXPECTED_TABLE
    assert lists.STATUS.statuses == set(STATUSES)


@pytest.mark.parametrize(("event", "status"), list(itertools.product(EVENTS, STATUSES)))
def test_every_event_from_every_status(event, status):
    if (event, status) in EXPECTED_TABLE:
        assert lists.STATUS.next(status, event) == EXPECTED_TABLE[(event, status)]
    else:
        with pytest.raises(IllegalTransition):
            lists.STATUS.next(status, event)
