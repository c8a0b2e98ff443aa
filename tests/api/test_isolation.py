"""Tenancy and object-level access, tried the way an attacker would: a staff member of bank A
(HZRCB, ``hz.*``) reaching for bank B's (LSRCB, ``ls.*``) objects by id in the path, in the query,
in the body and through every list; roles without a permission; customers reaching for each
other's consents. Whatever is not the caller's is a 404 (or simply absent), never a leak."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest

from infra.actors import system
from infra.audit import AuditEntry
from infra.identity_numbers import make_test_id_number
from lending_core.approvals.models import ChangeRequest
from lending_core.customers import service as customers
from lending_core.customers.models import BankRelationship, Consent, Customer
from lending_core.org.models import Bank, Branch, Staff
from tests.support import bearer, customer_token, new_key, staff_token

ADMIN = "/api/v1/admin"
ME = "/api/v1/me"
LS_ONLY_PHONE = "13700000077"


@dataclass(frozen=True)
class Bank_:
    """One bank's ids as the tests need them."""

    id: int
    branch_ids: list[int]
    staff_ids: list[int]
    customer_id: int  # a customer related to this bank only
    change_id: int  # a pending change request of this bank


@dataclass(frozen=True)
class World:
    hz: Bank_
    ls: Bank_
    yx_id: int


def assert_error(response, status: int, code: str) -> None:
    assert response.status == status, response.text
    assert response.json["error"]["code"] == code, response.text


async def headers(client, username: str) -> dict:
    return bearer(await staff_token(client, username))


async def propose(client, proposer: str, target: str) -> int:
    target_id = (await Staff.get(username=target)).id
    _, response = await client.post(
        f"{ADMIN}/staff/{target_id}/roles",
        json={"roles": ["account_manager", "reviewer"], "reason": "covers the loan desk"},
        headers=await headers(client, proposer),
    )
    assert response.status == 202, response.text
    return response.json["id"]


async def bank_ids(code: str, customer_id: int, change_id: int) -> Bank_:
    bank = await Bank.get(code=code)
    return Bank_(
        id=bank.id,
        branch_ids=[b.id for b in await Branch.filter(bank_id=bank.id)],
        staff_ids=[s.id for s in await Staff.filter(bank_id=bank.id)],
        customer_id=customer_id,
        change_id=change_id,
    )


@pytest.fixture
async def world(client, demo) -> World:
    """Demo data, plus a customer known only to LSRCB and a pending change request in each of HZRCB and LSRCB."""
    ls_bank = await Bank.get(code="LSRCB")
    ls_customer = await customers.register(
        system("t"),
        name="赵小蓝",
        id_number=make_test_id_number("330102", date(1988, 5, 5), 303),
        phone=LS_ONLY_PHONE,
        bank_id=ls_bank.id,
        channel="branch",
    )
    hz_customer = await Customer.get(relationships__bank__code="HZRCB")
    return World(
        hz=await bank_ids("HZRCB", hz_customer.id, await propose(client, "hz.admin", "hz.manager")),
        ls=await bank_ids("LSRCB", ls_customer.id, await propose(client, "ls.admin", "ls.manager")),
        yx_id=(await Bank.get(code="YXRCB")).id,
    )


async def all_items(client, path: str, headers: dict) -> list[dict]:
    """Every item of a list route, page by page."""
    items, after = [], 0
    separator = "&" if "?" in path else "?"
    while True:
        _, response = await client.get(f"{path}{separator}limit=100&after={after}", headers=headers)
        assert response.status == 200, response.text
        items += response.json["items"]
        after = response.json["next_after"]
        if after is None:
            return items


def object_paths(bank: Bank_) -> dict[str, str]:
    return {
        "bank": f"{ADMIN}/banks/{bank.id}",
        "branch": f"{ADMIN}/branches/{bank.branch_ids[0]}",
        "staff": f"{ADMIN}/staff/{bank.staff_ids[0]}",
        "customer": f"{ADMIN}/customers/{bank.customer_id}",
        "change": f"{ADMIN}/change-requests/{bank.change_id}",
    }


KINDS = ["bank", "branch", "staff", "customer", "change"]


# --- ids in the path -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_staff_cannot_read_another_banks_object_by_id(client, world, kind):
    _, response = await client.get(object_paths(world.ls)[kind], headers=await headers(client, "hz.admin"))
    assert_error(response, 404, "NOT_FOUND")
    assert "LSRCB" not in response.text and "蓝山" not in response.text


@pytest.mark.parametrize("kind", KINDS)
async def test_staff_can_read_their_own_banks_object_by_id(client, world, kind):
    _, response = await client.get(object_paths(world.hz)[kind], headers=await headers(client, "hz.admin"))
    assert response.status == 200, response.text


@pytest.mark.parametrize("kind", KINDS)
async def test_association_staff_can_read_any_banks_object_by_id(client, world, kind):
    _, response = await client.get(object_paths(world.ls)[kind], headers=await headers(client, "assoc.admin"))
    assert response.status == 200, response.text


async def test_staff_cannot_see_association_staff_by_id(client, world):
    assoc_admin = await Staff.get(username="assoc.admin")
    _, response = await client.get(f"{ADMIN}/staff/{assoc_admin.id}", headers=await headers(client, "hz.admin"))
    assert_error(response, 404, "NOT_FOUND")


async def test_another_banks_object_and_a_missing_one_look_the_same(client, world):
    hz = await headers(client, "hz.admin")
    _, other = await client.get(f"{ADMIN}/staff/{world.ls.staff_ids[0]}", headers=hz)
    _, missing = await client.get(f"{ADMIN}/staff/987654", headers=hz)
    assert (other.status, other.json) == (missing.status, missing.json)


# --- ids in the query ----------------------------------------------------------------------------


async def test_bank_id_in_the_query_does_not_widen_the_branch_list(client, world):
    items = await all_items(client, f"{ADMIN}/branches?bank_id={world.ls.id}", await headers(client, "hz.admin"))
    assert items == []


async def test_branch_id_in_the_query_does_not_widen_the_staff_list(client, world):
    items = await all_items(client, f"{ADMIN}/staff?branch_id={world.ls.branch_ids[0]}", await headers(client, "hz.admin"))
    assert items == []


async def test_association_staff_can_filter_by_another_bank(client, world):
    items = await all_items(client, f"{ADMIN}/branches?bank_id={world.ls.id}", await headers(client, "assoc.admin"))
    assert sorted(i["id"] for i in items) == sorted(world.ls.branch_ids)


# --- ids in the body -----------------------------------------------------------------------------


def new_staff(**fields) -> dict:
    return {"username": "planted.user", "name": "冒名者", "roles": ["bank_admin"], "password": "Strong-pass-2026", **fields}


@pytest.mark.parametrize("where", ["bank_id", "branch_id", "bank_and_branch"])
async def test_staff_cannot_create_staff_in_another_bank(client, world, where):
    body = {
        "bank_id": new_staff(bank_id=world.ls.id),
        "branch_id": new_staff(branch_id=world.ls.branch_ids[0]),
        "bank_and_branch": new_staff(bank_id=world.ls.id, branch_id=world.ls.branch_ids[0]),
    }[where]
    before = await Staff.all().count()
    _, response = await client.post(f"{ADMIN}/staff", json=body, headers=await headers(client, "hz.admin"))
    assert_error(response, 404, "NOT_FOUND")
    assert await Staff.all().count() == before
    assert not await Staff.filter(username="planted.user").exists()


async def test_own_bank_with_another_banks_branch_is_refused(client, world):
    before = await Staff.all().count()
    _, response = await client.post(
        f"{ADMIN}/staff", json=new_staff(bank_id=world.hz.id, branch_id=world.ls.branch_ids[0]), headers=await headers(client, "hz.admin")
    )
    assert_error(response, 404, "NOT_FOUND")
    assert await Staff.all().count() == before


async def test_staff_can_create_staff_in_their_own_branch(client, world):
    _, response = await client.post(
        f"{ADMIN}/staff", json=new_staff(branch_id=world.hz.branch_ids[0]), headers=await headers(client, "hz.admin")
    )
    assert response.status == 201, response.text
    assert (response.json["bank_id"], response.json["branch_id"]) == (world.hz.id, world.hz.branch_ids[0])


@pytest.mark.parametrize("decision", ["approve", "reject", "withdraw"])
async def test_staff_cannot_decide_another_banks_change(client, world, decision):
    _, response = await client.post(
        f"{ADMIN}/change-requests/{world.ls.change_id}/{decision}", json={}, headers=await headers(client, "hz.admin")
    )
    assert_error(response, 404, "NOT_FOUND")
    change = await ChangeRequest.get(id=world.ls.change_id)
    assert (change.status, change.decided_by_id) == ("pending", None)
    ls_manager = await Staff.get(username="ls.manager")
    assert ls_manager.roles == ["account_manager"]


async def test_a_second_admin_of_the_same_bank_can_approve(client, world):
    _, response = await client.post(
        f"{ADMIN}/change-requests/{world.hz.change_id}/approve", json={"note": "ok"}, headers=await headers(client, "hz.admin2")
    )
    assert response.status == 200, response.text
    assert response.json["status"] == "applied"


async def test_staff_cannot_propose_roles_for_another_banks_staff(client, world):
    ls_manager = await Staff.get(username="ls.manager")
    before = await ChangeRequest.all().count()
    _, response = await client.post(
        f"{ADMIN}/staff/{ls_manager.id}/roles",
        json={"roles": ["bank_admin"], "reason": "takeover"},
        headers=await headers(client, "hz.admin"),
    )
    assert_error(response, 404, "NOT_FOUND")
    assert await ChangeRequest.all().count() == before


# --- every list ----------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["branches", "staff", "change-requests", "audit"])
async def test_every_list_holds_only_the_callers_bank(client, world, route):
    items = await all_items(client, f"{ADMIN}/{route}", await headers(client, "hz.admin"))
    assert items, f"{route} should list the caller's own bank's rows"
    assert {item["bank_id"] for item in items} == {world.hz.id}


async def test_the_bank_list_holds_only_the_callers_bank(client, world):
    items = await all_items(client, f"{ADMIN}/banks", await headers(client, "hz.admin"))
    assert [item["id"] for item in items] == [world.hz.id]


async def test_the_customer_list_holds_no_customer_of_another_bank_only(client, world):
    items = await all_items(client, f"{ADMIN}/customers", await headers(client, "hz.admin"))
    listed = {item["id"] for item in items}
    ls_only = {
        r.customer_id
        for r in await BankRelationship.filter(bank_id=world.ls.id)
        if not await BankRelationship.filter(customer_id=r.customer_id, bank_id=world.hz.id).exists()
    }
    assert world.ls.customer_id in ls_only
    assert world.hz.customer_id in listed
    assert not listed & ls_only


async def test_the_audit_list_hides_another_banks_rows_that_exist(client, world):
    ls_rows = await AuditEntry.filter(bank_id=world.ls.id).values_list("id", flat=True)
    assert ls_rows
    items = await all_items(client, f"{ADMIN}/audit", await headers(client, "hz.admin"))
    assert not {item["id"] for item in items} & set(ls_rows)


@pytest.mark.parametrize("route", ["branches", "staff", "change-requests", "audit"])
async def test_association_staff_lists_span_banks(client, world, route):
    items = await all_items(client, f"{ADMIN}/{route}", await headers(client, "assoc.admin"))
    assert {world.hz.id, world.ls.id} <= {item["bank_id"] for item in items}


async def test_association_staff_see_every_bank(client, world):
    items = await all_items(client, f"{ADMIN}/banks", await headers(client, "assoc.admin"))
    assert {item["id"] for item in items} == {world.hz.id, world.ls.id, world.yx_id}


async def test_association_staff_see_customers_of_every_bank(client, world):
    items = await all_items(client, f"{ADMIN}/customers", await headers(client, "assoc.admin"))
    assert {world.hz.customer_id, world.ls.customer_id} <= {item["id"] for item in items}


# --- roles without the permission ----------------------------------------------------------------


@pytest.mark.parametrize(
    "username, method, path",
    [
        ("hz.marketer", "get", f"{ADMIN}/customers"),
        ("hz.marketer", "get", f"{ADMIN}/customers/{{hz_customer}}"),
        ("hz.manager", "get", f"{ADMIN}/audit"),
        ("hz.senior", "get", f"{ADMIN}/audit"),
        ("hz.manager", "post", f"{ADMIN}/staff/{{hz_staff}}/roles"),
    ],
)
async def test_a_role_without_the_permission_is_403(client, world, username, method, path):
    path = path.format(hz_customer=world.hz.customer_id, hz_staff=world.hz.staff_ids[0])
    kwargs = {"json": {"roles": ["bank_admin"], "reason": "self-promotion"}} if method == "post" else {}
    _, response = await getattr(client, method)(path, headers=await headers(client, username), **kwargs)
    assert_error(response, 403, "FORBIDDEN")


async def test_a_checker_without_staff_manage_cannot_approve(client, world):
    _, response = await client.post(
        f"{ADMIN}/change-requests/{world.hz.change_id}/approve", json={}, headers=await headers(client, "hz.senior")
    )
    assert_error(response, 403, "FORBIDDEN")
    assert (await ChangeRequest.get(id=world.hz.change_id)).status == "pending"


async def test_the_maker_cannot_approve_their_own_change(client, world):
    _, response = await client.post(
        f"{ADMIN}/change-requests/{world.hz.change_id}/approve", json={}, headers=await headers(client, "hz.admin")
    )
    assert_error(response, 403, "SELF_APPROVAL")
    assert (await ChangeRequest.get(id=world.hz.change_id)).status == "pending"


UNMASK = {"field": "phone", "reason": "verifying the applicant by phone"}


async def unmask_rows(customer_id: int) -> int:
    return await AuditEntry.filter(action="pii.unmask", object_id=str(customer_id)).count()


async def test_unmask_without_the_permission_is_403_and_not_audited(client, world):
    _, response = await client.post(
        f"{ADMIN}/customers/{world.hz.customer_id}/unmask", json=UNMASK, headers=await headers(client, "hz.reviewer")
    )
    assert_error(response, 403, "FORBIDDEN")
    assert await unmask_rows(world.hz.customer_id) == 0


async def test_unmask_of_an_own_bank_customer_is_served_and_audited(client, world):
    senior = await Staff.get(username="hz.senior")
    _, response = await client.post(
        f"{ADMIN}/customers/{world.hz.customer_id}/unmask", json=UNMASK, headers=await headers(client, "hz.senior")
    )
    assert response.status == 200, response.text
    assert response.json == {"field": "phone", "value": (await Customer.get(id=world.hz.customer_id)).phone}
    assert response.headers.get("cache-control") == "no-store"
    row = await AuditEntry.get(action="pii.unmask", object_id=str(world.hz.customer_id))
    assert (row.actor_kind, row.actor_id, row.bank_id, row.object_type) == ("staff", str(senior.id), world.hz.id, "customer")
    assert row.after["field"] == "phone"


async def test_unmask_of_another_banks_customer_is_404_and_reveals_nothing(client, world):
    _, response = await client.post(
        f"{ADMIN}/customers/{world.ls.customer_id}/unmask", json=UNMASK, headers=await headers(client, "hz.senior")
    )
    assert_error(response, 404, "NOT_FOUND")
    assert LS_ONLY_PHONE not in response.text
    assert await unmask_rows(world.ls.customer_id) == 0


async def test_customer_list_shows_personal_data_only_masked(client, world):
    items = await all_items(client, f"{ADMIN}/customers", await headers(client, "assoc.admin"))
    assert LS_ONLY_PHONE not in str(items)
    assert "赵小蓝" not in str(items)


# --- customers -----------------------------------------------------------------------------------


@pytest.fixture
async def two_customers(app, world) -> tuple[dict, dict]:
    """Headers of the HZRCB customer and of the LSRCB-only customer."""
    first = bearer(await customer_token(app, world.hz.customer_id, world.hz.id))
    second = bearer(await customer_token(app, world.ls.customer_id, world.ls.id))
    return first, second


async def grant(client, customer_headers: dict, key: str | None = None) -> dict:
    _, response = await client.post(
        f"{ME}/consents", json={"purpose": "credit_bureau"}, headers={**customer_headers, "Idempotency-Key": key or new_key()}
    )
    assert response.status == 201, response.text
    return response.json


async def test_a_customer_cannot_read_another_customers_consent(client, two_customers):
    first, second = two_customers
    consent = await grant(client, first)
    _, response = await client.get(f"{ME}/consents/{consent['id']}", headers=second)
    assert_error(response, 404, "NOT_FOUND")
    _, own = await client.get(f"{ME}/consents/{consent['id']}", headers=first)
    assert own.status == 200 and own.json["id"] == consent["id"]


async def test_a_customer_does_not_see_another_customers_consents_in_the_list(client, two_customers):
    first, second = two_customers
    consent = await grant(client, first)
    items = await all_items(client, f"{ME}/consents", second)
    assert consent["id"] not in {item["id"] for item in items}
    assert consent["id"] in {item["id"] for item in await all_items(client, f"{ME}/consents", first)}


async def test_an_idempotency_key_is_scoped_to_its_customer(client, world, two_customers):
    first, second = two_customers
    key = new_key()
    consent = await grant(client, first, key)
    _, response = await client.post(f"{ME}/consents", json={"purpose": "credit_bureau"}, headers={**second, "Idempotency-Key": key})
    assert response.status == 201, response.text
    assert response.headers.get("idempotent-replayed") is None
    assert response.json["id"] != consent["id"]
    assert response.json["bank_id"] == world.ls.id
    assert await Consent.filter(customer_id=world.ls.customer_id).count() == 1


async def test_me_shows_only_the_callers_own_profile(client, world, two_customers):
    _, second = two_customers
    _, response = await client.get(ME, headers=second)
    assert response.status == 200, response.text
    assert response.json["id"] == world.ls.customer_id
    assert {b["bank_id"] for b in response.json["banks"]} == {world.ls.id}


async def test_staff_tokens_cannot_use_customer_routes(client, two_customers):
    consent = await grant(client, two_customers[0])
    staff = await headers(client, "assoc.admin")
    for path in (ME, f"{ME}/consents", f"{ME}/consents/{consent['id']}"):
        _, response = await client.get(path, headers=staff)
        assert_error(response, 401, "TOKEN_INVALID")


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", ME),
        ("get", f"{ME}/consents"),
        ("get", f"{ME}/consents/1"),
        ("post", f"{ME}/consents"),
        ("get", f"{ADMIN}/banks"),
        ("get", f"{ADMIN}/customers"),
        ("get", f"{ADMIN}/customers/1"),
        ("get", f"{ADMIN}/audit"),
        ("post", f"{ADMIN}/staff"),
        ("post", f"{ADMIN}/customers/1/unmask"),
        ("post", f"{ADMIN}/change-requests/1/approve"),
    ],
)
async def test_anonymous_requests_are_401(client, world, method, path):
    kwargs = {"json": {"purpose": "credit_bureau"}} if method == "post" else {}
    _, response = await getattr(client, method)(path, **kwargs)
    assert_error(response, 401, "TOKEN_INVALID")
