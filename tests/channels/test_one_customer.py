"""One customer for the whole association, whatever door they came in by: the mini-program and a
member bank's app lead to one record, and a person found to be known already is merged into
the older record. Real-name verification's refusals, and what a not-yet-verified visitor may do."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from infra.audit import AuditEntry
from infra.identity_numbers import make_test_id_number
from lending_core.customers.models import BankRelationship, Consent, Customer, CustomerIdentity
from lending_core.org.models import Bank
from server.demo_data import bank_app_key_id, bank_app_secret
from tests.channels.signed_client import signed_request
from tests.support import bearer, new_key, staff_token

ME = "/api/v1/me"
WECHAT_LOGIN = "/api/v1/channels/wechat/login"
NAME = "周美玲"
ID_NUMBER = make_test_id_number("320106", date(1990, 2, 14), 248)
PHONE = "13788886666"


async def bank_id(code: str) -> int:
    return (await Bank.get(code=code)).id


async def wechat_login(client, user: str | None = None, attempt: int = 1, **extra) -> tuple[str, dict]:
    user = user or f"u{uuid.uuid4().hex[:12]}"
    _, response = await client.post(WECHAT_LOGIN, json={"code": f"{user}.{attempt}", **extra})
    assert response.status == 200, response.text
    return user, response.json


async def choose_bank(client, token: str, code: str) -> dict:
    _, response = await client.post(f"{ME}/bank", json={"bank_id": await bank_id(code)}, headers=bearer(token))
    assert response.status == 200, response.text
    return response.json


async def real_name(client, token: str, *, name: str = NAME, id_number: str = ID_NUMBER, phone: str = PHONE):
    _, response = await client.post(f"{ME}/real-name", json={"name": name, "id_number": id_number, "phone": phone}, headers=bearer(token))
    return response


async def mobile_bank_session(client, *, bank_code: str = "HZRCB", customer_no: str = "HZ0042"):
    body = {"bank_code": bank_code, "customer_no": customer_no, "name": NAME, "id_number": ID_NUMBER, "phone": PHONE}
    response = await signed_request(
        client,
        bank_app_key_id(bank_code, "mobile_bank"),
        bank_app_secret(bank_code, "mobile_bank"),
        "POST",
        "/api/v1/channels/mobile_bank/sessions",
        body,
    )
    assert response.status == 201, response.text
    return response.json


async def me(client, token: str) -> dict:
    _, response = await client.get(ME, headers=bearer(token))
    assert response.status == 200, response.text
    return response.json


async def grant_consent(client, token: str, purpose: str = "personal_information"):
    _, response = await client.post(f"{ME}/consents", json={"purpose": purpose}, headers=bearer(token, **{"Idempotency-Key": new_key()}))
    return response


async def identity_kinds(customer_id: int) -> set[str]:
    return {i.kind for i in await CustomerIdentity.filter(customer_id=customer_id)}


async def staff_customer_ids(client, username: str) -> list[int]:
    _, response = await client.get("/api/v1/admin/customers?limit=100", headers=bearer(await staff_token(client, username)))
    assert response.status == 200, response.text
    return [c["id"] for c in response.json["items"]]


def assert_error(response, status: int, code: str) -> None:
    assert response.status == status, response.text
    assert response.json["error"]["code"] == code, response.text


# ---- mini-program first, then mobile banking --------------------------------------------------------


async def test_a_mini_program_customer_arriving_through_mobile_banking_is_the_same_record(client, demo):
    _, login = await wechat_login(client)
    chosen = await choose_bank(client, login["access_token"], "HZRCB")
    verified = await real_name(client, chosen["access_token"])
    assert verified.status == 200, verified.text
    customer_id = login["customer"]["id"]
    assert verified.json["customer"]["id"] == customer_id
    assert verified.json["customer"]["real_name_verified"] is True

    session = await mobile_bank_session(client)

    assert session["customer"]["id"] == customer_id
    assert session["is_new"] is False
    assert await Customer.filter(merged_into_id=None, id_number_hash__isnull=False).count() == 3  # two demo customers
    assert {"wechat_openid", "wechat_unionid", "id_number", "bank_customer_no"} <= await identity_kinds(customer_id)
    relationship = await BankRelationship.get(customer_id=customer_id, bank_id=await bank_id("HZRCB"))
    assert relationship.is_bank_customer is True
    assert relationship.first_channel == "wechat_miniprogram"
    assert (await me(client, session["access_token"]))["id"] == customer_id


async def test_a_mini_program_visitor_identified_by_the_bank_app_before_real_name_is_completed(client, demo):
    user, login = await wechat_login(client)

    session = await mobile_bank_session(client)

    # Nothing links the two until the WeChat user verifies their real name …
    assert session["is_new"] is True
    assert session["customer"]["id"] != login["customer"]["id"]
    verified = await real_name(client, login["access_token"])
    assert verified.status == 200, verified.text
    # … and then they are one record: the older one, now holding the bank's identity too.
    assert verified.json["customer"]["id"] == login["customer"]["id"]
    _, again = await wechat_login(client, user, attempt=2)
    assert again["customer"]["id"] == login["customer"]["id"]
    _, again_from_bank = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {(await mobile_bank_session(client))['access_token']}"})
    assert again_from_bank.json["id"] == login["customer"]["id"]


async def test_the_survivor_of_a_merge_is_the_older_record_even_when_it_is_the_mini_program_one(client, demo):
    _, login = await wechat_login(client)
    session = await mobile_bank_session(client)
    older, newer = login["customer"]["id"], session["customer"]["id"]
    assert older < newer

    verified = await real_name(client, login["access_token"])

    assert verified.status == 200, verified.text
    assert verified.json["customer"]["id"] == older
    assert (await Customer.get(id=newer)).merged_into_id == older


# ---- mobile banking first, then the mini-program --------------------------------------------------------


async def test_a_mini_program_user_verifying_as_a_known_bank_customer_is_merged_into_the_bank_record(client, demo):
    session = await mobile_bank_session(client)
    survivor_id = session["customer"]["id"]
    user, login = await wechat_login(client, bank_id=await bank_id("HZRCB"))
    absorbed_id = login["customer"]["id"]
    chosen = await choose_bank(client, login["access_token"], "LSRCB")
    consent = await grant_consent(client, chosen["access_token"])
    assert consent.status == 201, consent.text
    assert absorbed_id != survivor_id

    verified = await real_name(client, chosen["access_token"])

    assert verified.status == 200, verified.text
    assert verified.json["customer"]["id"] == survivor_id
    assert verified.json["bank_id"] == await bank_id("LSRCB")
    assert (await me(client, verified.json["access_token"]))["id"] == survivor_id

    survivor, absorbed = await Customer.get(id=survivor_id), await Customer.get(id=absorbed_id)
    assert survivor.created_at <= absorbed.created_at and survivor_id < absorbed_id
    assert survivor.merged_into_id is None
    assert absorbed.merged_into_id == survivor_id
    # Identities, consents and bank relationships moved to the survivor.
    assert {"wechat_openid", "wechat_unionid", "id_number", "bank_customer_no"} <= await identity_kinds(survivor_id)
    assert await CustomerIdentity.filter(customer_id=absorbed_id).count() == 0
    assert [c.id for c in await Consent.filter(customer_id=survivor_id)] == [consent.json["id"]]
    assert await Consent.filter(customer_id=absorbed_id).count() == 0
    relationships = {r.bank_id: r.is_bank_customer for r in await BankRelationship.filter(customer_id=survivor_id)}
    assert relationships == {await bank_id("HZRCB"): True, await bank_id("LSRCB"): False}
    assert await BankRelationship.filter(customer_id=absorbed_id).count() == 0
    merges = await AuditEntry.filter(action="customer.merge")
    assert [(m.object_type, m.object_id) for m in merges] == [("customer", str(survivor_id))]
    assert merges[0].before == {"absorbed": absorbed_id}
    # The next login lands on the survivor too.
    _, again = await wechat_login(client, user, attempt=2)
    assert again["customer"]["id"] == survivor_id
    # The session issued before the merge now reads as the survivor.
    assert (await me(client, login["access_token"]))["id"] == survivor_id


@pytest.mark.parametrize("username", ["hz.admin", "ls.admin"])
async def test_staff_see_the_merged_person_once(client, demo, username):
    session = await mobile_bank_session(client)
    _, login = await wechat_login(client, bank_id=await bank_id("HZRCB"))
    chosen = await choose_bank(client, login["access_token"], "LSRCB")
    assert (await real_name(client, chosen["access_token"])).status == 200

    listed = await staff_customer_ids(client, username)

    assert listed.count(session["customer"]["id"]) == 1
    assert login["customer"]["id"] not in listed


# ---- real-name refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, phone, reason",
    [(NAME, "13788880000", "phone_not_owned"), ("周错玲", PHONE, "name_id_mismatch")],
    ids=["phone-not-owned", "name-does-not-match"],
)
async def test_a_real_name_mismatch_is_refused_with_its_reason(client, demo, name, phone, reason):
    _, login = await wechat_login(client)

    response = await real_name(client, login["access_token"], name=name, phone=phone)

    assert_error(response, 422, "REAL_NAME_MISMATCH")
    assert response.json["error"]["details"]["reason"] == reason
    assert (await me(client, login["access_token"]))["real_name_verified"] is False
    assert (await Customer.get(id=login["customer"]["id"])).id_number_hash is None


async def test_real_name_verification_unavailable_is_a_503(client, demo):
    _, login = await wechat_login(client)

    response = await real_name(client, login["access_token"], phone="13788889999")

    assert_error(response, 503, "VERIFICATION_UNAVAILABLE")
    assert (await me(client, login["access_token"]))["real_name_verified"] is False


async def test_a_verified_customer_cannot_verify_as_another_person(client, demo):
    _, login = await wechat_login(client)
    assert (await real_name(client, login["access_token"])).status == 200
    someone_else = make_test_id_number("320106", date(1991, 3, 15), 357)

    response = await real_name(client, login["access_token"], name="吴国华", id_number=someone_else, phone="13788887777")

    assert_error(response, 409, "REAL_NAME_ALREADY_VERIFIED")
    customer = await Customer.get(id=login["customer"]["id"])
    assert (customer.name, customer.id_number) == (NAME, ID_NUMBER)


@pytest.mark.parametrize(
    "field, value, code",
    [("id_number", ID_NUMBER[:17] + ("0" if ID_NUMBER[17] != "0" else "1"), "INVALID_ID_NUMBER"), ("phone", "12345678901", "INVALID_PHONE")],
)
async def test_real_name_with_invalid_details_is_refused(client, demo, field, value, code):
    _, login = await wechat_login(client)

    response = await real_name(client, login["access_token"], **{field: value})

    assert_error(response, 422, code)
    assert value not in response.text


# ---- before real name ---------------------------------------------------------------------------------


async def test_a_visitor_without_real_name_can_browse_but_not_consent_before_choosing_a_bank(client, demo):
    _, login = await wechat_login(client)
    token = login["access_token"]
    assert login["bank_id"] is None

    profile = await me(client, token)
    _, banks = await client.get("/api/v1/banks", headers=bearer(token))
    consent = await grant_consent(client, token)

    assert profile["id"] == login["customer"]["id"]
    assert profile["real_name_verified"] is False
    assert profile["bank_id"] is None
    assert banks.status == 200, banks.text
    assert {b["code"] for b in banks.json["items"]} == {"HZRCB", "LSRCB", "YXRCB"}
    assert_error(consent, 409, "BANK_NOT_CHOSEN")
    assert await Consent.all().count() == 0


async def test_a_visitor_without_real_name_may_consent_once_a_bank_is_chosen(client, demo):
    _, login = await wechat_login(client)
    chosen = await choose_bank(client, login["access_token"], "YXRCB")

    consent = await grant_consent(client, chosen["access_token"])

    assert consent.status == 201, consent.text
    assert consent.json["bank_id"] == await bank_id("YXRCB")
    assert consent.json["channel"] == "wechat_miniprogram"
