"""The open platform: a government or partner platform hands over an applicant with their consent
(idempotent on its own reference) and follows only the applicants it referred, within its scopes
and its rate limit."""

from __future__ import annotations

import asyncio
import hashlib
import time
from datetime import date

import pytest

from channels.models import PartnerApp, Referral
from infra.identity_numbers import make_test_id_number
from lending_core.customers.consents import CURRENT
from lending_core.customers.models import BankRelationship, Consent, Customer
from lending_core.customers.service import find_by_id_number
from lending_core.org.models import Bank
from server.demo_data import DEMO_PARTNER_KEY, DEMO_PARTNER_SECRET, bank_app_key_id, bank_app_secret
from tests.channels.signed_client import encode, signed_headers, signed_request

APPLICANTS = "/api/v1/open/applicants"
REFERRALS = "/api/v1/open/referrals"
REQUIRED = ["personal_information", "credit_bureau"]
NAME = "孙桂芳"
ID_NUMBER = make_test_id_number("330521", date(1979, 11, 23), 86)
PHONE = "13655501234"


def applicant(external_ref: str = "SME-2026-0001", **changes) -> dict:
    return {
        "external_ref": external_ref,
        "bank_code": "HZRCB",
        "name": NAME,
        "id_number": ID_NUMBER,
        "phone": PHONE,
        "consents": REQUIRED,
        "product_code": "AGRI-01",
        **changes,
    }


async def hand_over(client, body: dict | None = None, *, key: str = DEMO_PARTNER_KEY, secret: str = DEMO_PARTNER_SECRET):
    return await signed_request(client, key, secret, "POST", APPLICANTS, body if body is not None else applicant())


async def get(client, path: str, *, key: str = DEMO_PARTNER_KEY, secret: str = DEMO_PARTNER_SECRET):
    return await signed_request(client, key, secret, "GET", path)


async def partner_app(app_key: str, *, scopes=("products:read", "applicants:write", "referrals:read"), rate_limit_per_minute=120):
    secret = f"secret-of-{app_key}"
    await PartnerApp.create(app_key=app_key, name=f"partner {app_key}", secret=secret, scopes=list(scopes), rate_limit_per_minute=rate_limit_per_minute)
    return app_key, secret


def assert_error(response, status: int, code: str) -> None:
    assert response.status == status, response.text
    assert response.json["error"]["code"] == code, response.text


async def bank_id(code: str) -> int:
    return (await Bank.get(code=code)).id


# ---- handing over an applicant --------------------------------------------------------------------


async def test_a_signed_handover_creates_a_referral(client, demo):
    response = await hand_over(client)

    assert response.status == 201, response.text
    referral = await Referral.get(id=response.json["id"])
    assert response.json["external_ref"] == "SME-2026-0001"
    assert response.json["bank_id"] == referral.bank_id == await bank_id("HZRCB")
    assert response.json["product_code"] == "AGRI-01"
    assert response.json["status"] == "handed_over"
    assert referral.partner_id == (await PartnerApp.get(app_key=DEMO_PARTNER_KEY)).id


async def test_the_applicant_becomes_a_customer_with_the_consents_recorded(client, demo):
    response = await hand_over(client)

    customer = await find_by_id_number(ID_NUMBER)
    assert customer is not None
    assert (customer.name, customer.phone) == (NAME, PHONE)
    assert (await Referral.get(id=response.json["id"])).customer_id == customer.id
    relationship = await BankRelationship.get(customer_id=customer.id)
    assert (relationship.bank_id, relationship.first_channel) == (await bank_id("HZRCB"), "gov_platform")
    consents = await Consent.filter(customer_id=customer.id).order_by("purpose")
    assert [c.purpose for c in consents] == sorted(REQUIRED)
    for consent in consents:
        current = CURRENT[consent.purpose]
        assert consent.channel == f"gov_platform:{DEMO_PARTNER_KEY}"
        assert consent.bank_id == await bank_id("HZRCB")
        assert consent.text == current.text
        assert consent.text_version == current.version
        assert consent.text_sha256 == hashlib.sha256(current.text.encode("utf-8")).hexdigest()
        assert consent.granted_at is not None and consent.revoked_at is None


async def test_the_same_handover_again_returns_the_first_referral(client, demo):
    first = await hand_over(client)
    counts = (await Customer.all().count(), await Consent.all().count(), await Referral.all().count())

    again = await hand_over(client)

    assert again.status == 200, again.text
    assert again.json["id"] == first.json["id"]
    assert (await Customer.all().count(), await Consent.all().count(), await Referral.all().count()) == counts
    assert counts[2] == 1


async def test_a_person_known_through_another_door_is_found_not_duplicated(client, demo):
    body = {"bank_code": "HZRCB", "customer_no": "HZ5550001", "name": NAME, "id_number": ID_NUMBER, "phone": PHONE}
    door = "/api/v1/channels/mobile_bank/sessions"
    session = await signed_request(
        client, bank_app_key_id("HZRCB", "mobile_bank"), bank_app_secret("HZRCB", "mobile_bank"), "POST", door, body
    )
    assert session.status == 201, session.text
    customers_before = await Customer.all().count()

    response = await hand_over(client, applicant(bank_code="LSRCB"))

    assert response.status == 201, response.text
    known = session.json["customer"]["id"]
    assert await Customer.all().count() == customers_before
    assert (await Referral.get(id=response.json["id"])).customer_id == known
    assert {c.purpose for c in await Consent.filter(customer_id=known)} == set(REQUIRED)
    relationships = {r.bank_id: r for r in await BankRelationship.filter(customer_id=known)}
    assert set(relationships) == {await bank_id("HZRCB"), await bank_id("LSRCB")}
    assert relationships[await bank_id("HZRCB")].is_bank_customer is True  # left as the bank said
    assert relationships[await bank_id("LSRCB")].first_channel == "gov_platform"


@pytest.mark.parametrize(
    "consents, missing",
    [(["personal_information"], ["credit_bureau"]), (["credit_bureau", "tax"], ["personal_information"])],
)
async def test_a_handover_without_the_required_consents_is_refused(client, demo, consents, missing):
    customers_before = await Customer.all().count()

    response = await hand_over(client, applicant(consents=consents))

    assert_error(response, 422, "CONSENT_MISSING")
    assert response.json["error"]["details"]["missing"] == missing
    assert await Customer.all().count() == customers_before
    assert await Referral.all().count() == 0
    assert await Consent.all().count() == 0


async def test_a_handover_with_an_unknown_consent_purpose_is_refused(client, demo):
    response = await hand_over(client, applicant(consents=[*REQUIRED, "everything"]))

    assert_error(response, 422, "CONSENT_MISSING")
    assert response.json["error"]["details"]["unknown"] == ["everything"]
    assert await Referral.all().count() == 0


async def test_a_handover_to_an_unknown_bank_is_not_found(client, demo):
    customers_before = await Customer.all().count()

    response = await hand_over(client, applicant(bank_code="NOSUCHRCB"))

    assert_error(response, 404, "NOT_FOUND")
    assert await Customer.all().count() == customers_before
    assert await Referral.all().count() == 0


async def test_a_partner_with_a_long_app_key_can_hand_over(client, demo):
    key, secret = await partner_app("provincial-sme-finance-platform")

    response = await hand_over(client, key=key, secret=secret)

    assert response.status == 201, response.text


# ---- scopes, rate limits, isolation --------------------------------------------------------------------


async def test_a_partner_without_the_scope_is_refused(client, demo):
    key, secret = await partner_app("readonly-app", scopes=["referrals:read"])

    response = await hand_over(client, key=key, secret=secret)

    assert_error(response, 403, "SCOPE_MISSING")
    assert response.json["error"]["details"] == {"scope": "applicants:write"}
    assert await Referral.all().count() == 0
    listed = await get(client, REFERRALS, key=key, secret=secret)
    assert listed.status == 200, listed.text


async def test_a_partner_over_its_rate_limit_is_told_when_to_retry(client, demo):
    key, secret = await partner_app("slow-app", rate_limit_per_minute=3)
    if 60 - time.time() % 60 < 3:  # keep the four requests inside one minute window
        await asyncio.sleep(3)

    allowed = [await get(client, REFERRALS, key=key, secret=secret) for _ in range(3)]
    refused = await get(client, REFERRALS, key=key, secret=secret)

    assert [r.status for r in allowed] == [200, 200, 200]
    assert_error(refused, 429, "RATE_LIMITED")
    assert 1 <= int(refused.headers["Retry-After"]) <= 61
    # Another partner's budget is its own.
    assert (await get(client, REFERRALS)).status == 200


async def test_a_partner_sees_only_its_own_referrals(client, demo):
    mine = await hand_over(client)
    other_key, other_secret = await partner_app("other-platform")

    theirs = await get(client, f"{REFERRALS}/{mine.json['id']}", key=other_key, secret=other_secret)
    their_list = await get(client, REFERRALS, key=other_key, secret=other_secret)
    my_one = await get(client, f"{REFERRALS}/{mine.json['id']}")
    my_list = await get(client, REFERRALS)

    assert_error(theirs, 404, "NOT_FOUND")
    assert their_list.status == 200 and their_list.json["items"] == []
    assert my_one.status == 200 and my_one.json == {**mine.json, "applications": []}
    assert [r["id"] for r in my_list.json["items"]] == [mine.json["id"]]


async def test_the_same_external_ref_from_two_partners_is_two_referrals(client, demo):
    other_key, other_secret = await partner_app("other-platform")

    mine = await hand_over(client)
    theirs = await hand_over(client, key=other_key, secret=other_secret)

    assert (mine.status, theirs.status) == (201, 201)
    assert mine.json["id"] != theirs.json["id"]


# ---- signatures --------------------------------------------------------------------------------------


async def test_an_unsigned_handover_is_refused_before_the_body_is_read(client, demo):
    _, response = await client.post(APPLICANTS, content=b"{not json", headers={"Content-Type": "application/json"})

    assert_error(response, 401, "SIGNATURE_REQUIRED")


async def test_a_handover_signed_with_a_wrong_secret_is_refused(client, demo):
    raw = encode(applicant())

    _, response = await client.post(APPLICANTS, content=raw, headers=signed_headers(DEMO_PARTNER_KEY, "guess", "POST", APPLICANTS, raw))

    assert_error(response, 401, "SIGNATURE_INVALID")
    assert await Referral.all().count() == 0


async def test_the_signed_path_includes_the_query_string(client, demo):
    signed = signed_headers(DEMO_PARTNER_KEY, DEMO_PARTNER_SECRET, "GET", f"{REFERRALS}?limit=1", b"")

    _, response = await client.get(f"{REFERRALS}?limit=100", headers=signed)

    assert_error(response, 401, "SIGNATURE_INVALID")
    assert (await get(client, f"{REFERRALS}?limit=1")).status == 200
