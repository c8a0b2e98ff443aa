"""Bad input on contracts: each a clear 4xx with a stable code, and nothing changed."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from infra import clock
from infra.outbox import OutboxMessage
from lending_core.applications.models import Application
from lending_core.contracts import service as contracts
from lending_core.contracts.models import Contract, ContractParty, EvidenceRecord
from tests.contracts.flows import (
    YANGGUANGEDAI,
    ask_for_contract,
    approved_borrower,
    contract_path,
    error_code,
    party,
    relay_contract_messages,
    sign_with_code,
    signing_code,
    signs,
    state_of,
    stranger,
    verified_customer,
)
from tests.lending.flows import applicant, new_phone

pytestmark = pytest.mark.usefixtures("demo")


def refused(response, status: int, code: str) -> dict:
    assert (response.status, error_code(response)) == (status, code), response.text
    return response.json["error"]


@pytest.fixture
async def awaiting(client):
    """A sunshine-loan contract awaiting signatures; the guarantor is a customer already."""
    borrower, application = await approved_borrower(client)
    guarantor = await verified_customer(client, "home_owner", name="周海燕")
    co_borrower = stranger(client, name="陈美玲")
    made = await ask_for_contract(borrower, application["id"], [party("guarantor", guarantor), party("co_borrower", co_borrower)])
    assert made.status == 201, made.text
    return {"borrower": borrower, "guarantor": guarantor, "co_borrower": co_borrower, "application": application, "id": made.json["id"]}


# ---- asking for the contract ------------------------------------------------------------------


async def test_no_contract_for_an_application_that_is_not_approved(client):
    declined = await applicant(client, "court_enforcement", consents=YANGGUANGEDAI.consents)
    application = await declined.applied("YANGGUANGEDAI", amount_yuan=100_000, term_months=12, repayment_method="equal_instalment")
    assert application["status"] != "approved"

    response = await ask_for_contract(declined, application["id"], [
        party("guarantor", stranger(client, name="周海燕")), party("co_borrower", stranger(client, name="陈美玲", n=1))])

    error = refused(response, 409, "APPLICATION_NOT_APPROVED")
    assert error["details"] == {"status": application["status"]}
    assert await Contract.all().count() == 0
    assert (await Application.get(id=application["id"])).status == application["status"]


async def test_the_required_guarantor_cannot_be_left_out(client):
    borrower, application = await approved_borrower(client)

    response = await ask_for_contract(borrower, application["id"], [party("co_borrower", stranger(client, name="陈美玲"))])

    error = refused(response, 422, "SIGNATORY_MISSING")
    assert error["details"] == {"missing": ["guarantor"]}
    assert await Contract.all().count() == 0 and await ContractParty.all().count() == 0
    assert await EvidenceRecord.all().count() == 0
    assert (await Application.get(id=application["id"])).status == "approved"
    assert await OutboxMessage.filter(topic__startswith="contracts.").count() == 0


@pytest.mark.parametrize(
    ("parties", "status", "code"),
    [
        ([("guarantor", "周海燕", None), ("co_borrower", "陈美玲", None), ("guarantor", "吴国强", None)], 422, "SIGNATORY_NOT_ALLOWED"),
        ([("guarantor", "周海燕", None), ("co_borrower", "陈美玲", "borrower")], 422, "PARTY_IS_BORROWER"),
        ([("guarantor", "周海燕", "23456789012"), ("co_borrower", "陈美玲", None)], 422, "INVALID_PARTY"),
        ([("guarantor", "周海燕", None), ("co_borrower", "1234", None)], 422, "INVALID_PARTY"),
        ([("guarantor", "周海燕", "same"), ("co_borrower", "陈美玲", "same")], 422, "INVALID_PARTY"),
        ([("borrower", "周海燕", None), ("co_borrower", "陈美玲", None)], 422, "VALIDATION_FAILED"),
    ],
    ids=["guarantor twice", "borrower's own phone", "not a mobile", "not a name", "one phone for two", "borrower as a role"],
)
async def test_parties_must_be_who_the_product_asks_for(client, parties, status, code):
    borrower, application = await approved_borrower(client)
    shared = new_phone()
    phones = {None: None, "borrower": borrower.phone, "same": shared}
    body = [{"role": role, "name": name, "phone": phones.get(phone, phone) or new_phone()} for role, name, phone in parties]

    refused(await ask_for_contract(borrower, application["id"], body), status, code)

    assert await Contract.all().count() == 0
    assert (await Application.get(id=application["id"])).status == "approved"


async def test_a_body_cannot_set_the_terms(client):
    borrower, application = await approved_borrower(client)
    response = await borrower.post(f"/api/v1/applications/{application['id']}/contract",
                                   {"parties": [], "limit_fen": 1}, key="k-terms")
    refused(response, 422, "FIELD_NOT_ALLOWED")
    without_key = await borrower.post(f"/api/v1/applications/{application['id']}/contract", {"parties": []})
    refused(without_key, 400, "IDEMPOTENCY_KEY_REQUIRED")
    assert await Contract.all().count() == 0


# ---- signing ---------------------------------------------------------------------------------------


async def test_signing_twice_is_refused_and_changes_nothing(app, awaiting):
    borrower = awaiting["borrower"]
    await signs(app, borrower, awaiting["id"])
    before = await state_of(awaiting["id"])

    code_again = await borrower.post(contract_path(awaiting["id"], "signing-code"), {})
    twice = await sign_with_code(borrower, awaiting["id"], "000000")

    refused(code_again, 409, "ALREADY_SIGNED")
    refused(twice, 409, "ALREADY_SIGNED")
    assert await state_of(awaiting["id"]) == before


async def test_someone_who_is_not_a_party_cannot_sign(app, client, awaiting):
    outsider = await verified_customer(client, "deposit_holder", name="吴国强")
    before = await state_of(awaiting["id"])

    refused(await outsider.post(contract_path(awaiting["id"], "signing-code"), {}), 404, "CONTRACT_NOT_FOUND")
    refused(await sign_with_code(outsider, awaiting["id"], "123456"), 404, "CONTRACT_NOT_FOUND")
    refused(await outsider.get(contract_path(awaiting["id"])), 404, "CONTRACT_NOT_FOUND")
    refused(await sign_with_code(outsider, 999_999, "123456"), 404, "CONTRACT_NOT_FOUND")

    assert await state_of(awaiting["id"]) == before


async def test_someone_with_the_invited_phone_but_another_name_is_not_the_party(app, client, awaiting):
    co_borrower = awaiting["co_borrower"]
    impostor = stranger(client, name="赵大海", n=2)
    impostor.phone = co_borrower.phone  # holds the phone, but is someone else
    await impostor.log_in("HZRCB")
    await impostor.verify_real_name()

    refused(await impostor.get(contract_path(awaiting["id"])), 404, "CONTRACT_NOT_FOUND")
    refused(await impostor.post(contract_path(awaiting["id"], "signing-code"), {}), 404, "CONTRACT_NOT_FOUND")
    assert (await impostor.get("/api/v1/contracts")).json["items"] == []
    assert (await ContractParty.get(contract_id=awaiting["id"], role="co_borrower")).customer_id is None


async def test_a_wrong_code_counts_and_too_many_lock_the_code_until_a_new_one(app, awaiting):
    borrower = awaiting["borrower"]
    allowed = app.ctx.settings.sms_code_max_attempts
    code = await signing_code(app, borrower, awaiting["id"])
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    before = await state_of(awaiting["id"])

    left = [refused(await sign_with_code(borrower, awaiting["id"], wrong), 422, "SIGNING_CODE_WRONG")["details"]["attempts_left"]
            for _ in range(allowed)]
    locked = await sign_with_code(borrower, awaiting["id"], code)  # the right code, too late

    assert left == list(range(allowed - 1, -1, -1))
    refused(locked, 423, "SIGNING_CODE_LOCKED")
    assert await state_of(awaiting["id"]) == before
    # A new code is throttled for a minute, then unlocks signing.
    too_soon = await borrower.post(contract_path(awaiting["id"], "signing-code"), {})
    refused(too_soon, 429, "SIGNING_CODE_TOO_SOON")
    assert int(too_soon.headers["Retry-After"]) > 0
    party = await ContractParty.get(contract_id=awaiting["id"], role="borrower")
    await ContractParty.filter(id=party.id).update(code_expires_at=party.code_expires_at - timedelta(seconds=61))
    fresh = await signing_code(app, borrower, awaiting["id"])
    signed = await sign_with_code(borrower, awaiting["id"], fresh)
    assert signed.status == 200, signed.text


async def test_a_code_works_once_and_not_after_it_lapses(app, awaiting):
    borrower = awaiting["borrower"]
    refused(await sign_with_code(borrower, awaiting["id"], "123456"), 409, "SIGNING_CODE_NOT_SENT")
    code = await signing_code(app, borrower, awaiting["id"])
    await ContractParty.filter(contract_id=awaiting["id"], role="borrower").update(code_expires_at=clock.now() - timedelta(seconds=1))
    before = await state_of(awaiting["id"])

    refused(await sign_with_code(borrower, awaiting["id"], code), 422, "SIGNING_CODE_EXPIRED")

    assert await state_of(awaiting["id"]) == before


async def test_the_code_is_kept_only_as_a_keyed_hash(app, awaiting):
    borrower = awaiting["borrower"]
    code = await signing_code(app, borrower, awaiting["id"])
    party = await ContractParty.get(contract_id=awaiting["id"], role="borrower")
    assert party.code_hash and code not in party.code_hash and len(party.code_hash) == 64
    assert party.code_hash not in {hashlib.sha256(code.encode()).hexdigest(),
                                   hashlib.sha256(f"{awaiting['id']}:{party.id}:{code}".encode()).hexdigest()}


async def test_a_code_that_did_not_leave_can_be_asked_for_again_at_once(app, awaiting):
    borrower = awaiting["borrower"]
    sms = app.ctx.providers.sms
    sms.available = False
    try:
        down = await borrower.post(contract_path(awaiting["id"], "signing-code"), {})
    finally:
        sms.available = True
    refused(down, 503, "SMS_UNAVAILABLE")
    assert (await ContractParty.get(contract_id=awaiting["id"], role="borrower")).code_hash is None
    assert (await signs(app, borrower, awaiting["id"]))["my_signature"]["method"] == "sms_code"


@pytest.mark.parametrize(
    "body",
    [
        {"method": "sms_code"},
        {"method": "sms_code", "code": "12345"},
        {"method": "sms_code", "code": "123456", "liveness_token": "x"},
        {"method": "ca_certificate", "signature": "AAAA"},
        {"method": "handwriting", "code": "123456"},
    ],
    ids=["no code", "short code", "code with a token", "certificate without chain", "unknown method"],
)
async def test_a_signing_body_must_fit_its_method(awaiting, body):
    before = await state_of(awaiting["id"])
    refused(await awaiting["borrower"].post(contract_path(awaiting["id"], "sign"), body), 422, "VALIDATION_FAILED")
    assert await state_of(awaiting["id"]) == before


# ---- expiry ------------------------------------------------------------------------------------------


async def test_an_unsigned_contract_expires_and_its_application_lapses(app, awaiting):
    borrower = awaiting["borrower"]
    await signs(app, borrower, awaiting["id"])
    await Contract.filter(id=awaiting["id"]).update(sign_by=clock.now() - timedelta(minutes=1))
    before = await state_of(awaiting["id"])

    # Past sign_by the contract cannot be signed, even before the daily job has run.
    refused(await awaiting["guarantor"].post(contract_path(awaiting["id"], "signing-code"), {}), 410, "CONTRACT_EXPIRED")
    refused(await sign_with_code(awaiting["guarantor"], awaiting["id"], "123456"), 410, "CONTRACT_EXPIRED")
    assert await state_of(awaiting["id"]) == before

    assert await contracts.expire_unsigned(clock.now()) == 1
    assert await contracts.expire_unsigned(clock.now()) == 0  # safe to run twice

    contract = await Contract.get(id=awaiting["id"])
    assert contract.status == "expired"
    assert (await Application.get(id=awaiting["application"]["id"])).status == "lapsed"
    last = await EvidenceRecord.filter(contract_id=contract.id).order_by("-sequence").first()
    assert last.kind == "expired" and last.detail["unsigned_roles"] == "co_borrower,guarantor"
    refused(await sign_with_code(awaiting["guarantor"], awaiting["id"], "123456"), 410, "CONTRACT_EXPIRED")
    # The evidence of an expired contract still verifies once the queued entry is notarised.
    await relay_contract_messages(app)
    report = await borrower.get(contract_path(awaiting["id"], "evidence"))
    assert report.json["ok"] is True, report.json["first_failure"]
    # The lapsed approval no longer counts as live credit: the borrower may apply again.
    again = await borrower.apply("YANGGUANGEDAI", amount_yuan=100_000, term_months=12, repayment_method="equal_instalment")
    assert again.status == 201, again.text


async def test_a_contract_before_its_deadline_does_not_expire(awaiting):
    assert await contracts.expire_unsigned(clock.now()) == 0
    assert (await Contract.get(id=awaiting["id"])).status == "awaiting_signatures"


async def test_an_effective_contract_cannot_be_signed_again_by_anyone(app, client, awaiting):
    for person in ("borrower", "guarantor"):
        await signs(app, awaiting[person], awaiting["id"])
    co_borrower = awaiting["co_borrower"]
    await co_borrower.log_in("HZRCB")
    await co_borrower.verify_real_name()
    await signs(app, co_borrower, awaiting["id"])
    before = await state_of(awaiting["id"])

    refused(await sign_with_code(co_borrower, awaiting["id"], "123456"), 409, "ALREADY_SIGNED")
    assert await state_of(awaiting["id"]) == before
    assert before["status"] == "effective"
