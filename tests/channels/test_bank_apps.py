"""The member banks' own apps open customer sessions with signed server-to-server requests:
the session is scoped to the app's channel and bank, the person becomes a verified customer of
that bank, and every refusal happens before the body is read and is logged for security review."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import date

import jwt
import pytest
from redis import asyncio as redis_asyncio

from channels.models import ChannelCredential
from infra.identity_numbers import make_test_id_number
from lending_core.customers.models import BankRelationship, Customer, CustomerFirm, CustomerIdentity, Firm
from lending_core.org.models import Bank
from server.demo_data import bank_app_key_id, bank_app_secret
from tests.channels.signed_client import encode, signed_headers
from tests.support import StartedOnceClient, bearer

ME = "/api/v1/me"
CHANNELS = ("mobile_bank", "enterprise_bank", "direct_bank")
NAME = "赵立新"
ID_NUMBER = make_test_id_number("330102", date(1988, 5, 6), 117)
PHONE = "13912345678"
FIRM = {"name": "河州市立新农机合作社", "unified_social_credit_code": "93330102MA2B3C4D5E", "legal_representative": NAME}


def session_path(channel: str) -> str:
    return f"/api/v1/channels/{channel}/sessions"


def person(bank_code: str = "HZRCB", channel: str = "mobile_bank", **changes) -> dict:
    body = {"bank_code": bank_code, "customer_no": "C0001234", "name": NAME, "id_number": ID_NUMBER, "phone": PHONE}
    if channel == "enterprise_bank":
        body["firm"] = FIRM
    return {**body, **changes}


def key(channel: str, bank_code: str = "HZRCB") -> tuple[str, str]:
    return bank_app_key_id(bank_code, channel), bank_app_secret(bank_code, channel)


async def open_session(client, channel: str = "mobile_bank", body: dict | None = None, *, bank_code: str = "HZRCB", path_channel=None):
    key_id, secret = key(channel, bank_code)
    path = session_path(path_channel or channel)
    raw = encode(body if body is not None else person(bank_code, channel))
    _, response = await client.post(path, content=raw, headers=signed_headers(key_id, secret, "POST", path, raw))
    return response


def assert_error(response, status: int, code: str) -> None:
    assert response.status == status, response.text
    assert response.json["error"]["code"] == code, response.text


def security_warnings(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "security" and r.levelno == logging.WARNING]


def assert_no_personal_data(records: list[logging.LogRecord]) -> None:
    for record in records:
        text = record.getMessage() + repr(vars(record))
        for value in (NAME, ID_NUMBER, PHONE, "C0001234"):
            assert value not in text, f"the security log carries personal data: {text}"


async def hz_id() -> int:
    return (await Bank.get(code="HZRCB")).id


# ---- opening a session ------------------------------------------------------------------------


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_signed_request_opens_a_session_scoped_to_the_channel_and_bank(client, demo, channel):
    response = await open_session(client, channel)

    assert response.status == 201, response.text
    assert response.json["is_new"] is True
    assert response.json["bank_id"] == await hz_id()
    claims = jwt.decode(response.json["access_token"], options={"verify_signature": False})
    assert claims["chn"] == channel
    assert claims["bank"] == await hz_id()
    assert claims["aud"] == "customer"

    _, me = await client.get(ME, headers=bearer(response.json["access_token"]))
    assert me.status == 200, me.text
    assert me.json["id"] == response.json["customer"]["id"]
    assert me.json["channel"] == channel
    assert me.json["bank_id"] == await hz_id()
    assert me.json["real_name_verified"] is True


async def test_the_person_becomes_a_verified_customer_of_that_bank(client, demo):
    response = await open_session(client)

    customer = await Customer.get(id=response.json["customer"]["id"])
    assert customer.real_name_verified_at is not None
    assert (customer.name, customer.id_number, customer.phone) == (NAME, ID_NUMBER, PHONE)
    relationship = await BankRelationship.get(customer_id=customer.id)
    assert relationship.bank_id == await hz_id()
    assert relationship.is_bank_customer is True
    assert relationship.first_channel == "mobile_bank"
    kinds = {(i.kind, i.issuer) for i in await CustomerIdentity.filter(customer_id=customer.id)}
    assert kinds == {("id_number", "cn"), ("bank_customer_no", "HZRCB")}
    # The answer masks what it shows.
    assert NAME not in response.text and ID_NUMBER not in response.text and PHONE not in response.text


@pytest.mark.parametrize("second_channel", CHANNELS)
async def test_the_same_person_again_is_the_same_customer(client, demo, second_channel):
    first = await open_session(client, "mobile_bank")
    customers_before = await Customer.all().count()

    again = await open_session(client, second_channel)

    assert again.status == 201, again.text
    assert again.json["is_new"] is False
    assert again.json["customer"]["id"] == first.json["customer"]["id"]
    assert await Customer.all().count() == customers_before
    assert await BankRelationship.filter(customer_id=first.json["customer"]["id"]).count() == 1


async def test_a_bank_customer_known_to_one_bank_arriving_through_another_gets_a_second_relationship(client, demo):
    first = await open_session(client, "mobile_bank")
    other = await open_session(client, "direct_bank", person("LSRCB", customer_no="LS778899"), bank_code="LSRCB")

    assert other.status == 201, other.text
    assert other.json["customer"]["id"] == first.json["customer"]["id"]
    relationships = await BankRelationship.filter(customer_id=first.json["customer"]["id"]).order_by("id")
    assert [(r.bank_id, r.is_bank_customer) for r in relationships] == [
        (await hz_id(), True),
        ((await Bank.get(code="LSRCB")).id, True),
    ]


# ---- signature refusals -----------------------------------------------------------------------

PATH = session_path("mobile_bank")
KEY_ID, SECRET = key("mobile_bank")


def no_headers(raw: bytes) -> tuple[str, dict, bytes]:
    return PATH, {"Content-Type": "application/json"}, raw


def forged(raw: bytes):
    return PATH, signed_headers(KEY_ID, "not-the-secret", "POST", PATH, raw), raw


def body_altered(raw: bytes):
    return PATH, signed_headers(KEY_ID, SECRET, "POST", PATH, encode(person())), raw + b" "


def query_added(raw: bytes):
    return PATH + "?as=admin", signed_headers(KEY_ID, SECRET, "POST", PATH, raw), raw


def query_altered(raw: bytes):
    return PATH + "?v=2", signed_headers(KEY_ID, SECRET, "POST", PATH + "?v=1", raw), raw


def path_altered(raw: bytes):
    # Signed for the direct bank route, sent to mobile banking's.
    return PATH, signed_headers(KEY_ID, SECRET, "POST", session_path("direct_bank"), raw), raw


def unknown_key(raw: bytes):
    return PATH, signed_headers("XXRCB-mobile_bank", SECRET, "POST", PATH, raw), raw


def old_timestamp(raw: bytes):
    return PATH, signed_headers(KEY_ID, SECRET, "POST", PATH, raw, timestamp=int(time.time()) - 600), raw


def future_timestamp(raw: bytes):
    return PATH, signed_headers(KEY_ID, SECRET, "POST", PATH, raw, timestamp=int(time.time()) + 600), raw


REFUSALS = [
    pytest.param(no_headers, "SIGNATURE_REQUIRED", None, "missing", id="no-signature"),
    pytest.param(forged, "SIGNATURE_INVALID", KEY_ID, "bad_signature", id="forged"),
    pytest.param(body_altered, "SIGNATURE_INVALID", KEY_ID, "bad_signature", id="body-altered"),
    pytest.param(query_added, "SIGNATURE_INVALID", KEY_ID, "bad_signature", id="query-added"),
    pytest.param(query_altered, "SIGNATURE_INVALID", KEY_ID, "bad_signature", id="query-altered"),
    pytest.param(path_altered, "SIGNATURE_INVALID", KEY_ID, "bad_signature", id="path-altered"),
    pytest.param(unknown_key, "SIGNATURE_INVALID", "XXRCB-mobile_bank", "unknown_key", id="unknown-key"),
    pytest.param(old_timestamp, "SIGNATURE_EXPIRED", KEY_ID, "timestamp", id="10-minutes-old"),
    pytest.param(future_timestamp, "SIGNATURE_EXPIRED", KEY_ID, "timestamp", id="10-minutes-ahead"),
]


@pytest.mark.parametrize("build, code, logged_key, reason", REFUSALS)
async def test_a_badly_signed_request_is_refused_and_logged(client, demo, caplog, build, code, logged_key, reason):
    customers_before = await Customer.all().count()
    path, headers, raw = build(encode(person()))

    with caplog.at_level(logging.WARNING, logger="security"):
        _, response = await client.post(path, content=raw, headers=headers)

    assert_error(response, 401, code)
    assert await Customer.all().count() == customers_before
    warnings = security_warnings(caplog)
    assert [(r.key_id, r.reason) for r in warnings] == [(logged_key, reason)]
    assert_no_personal_data(warnings)


@pytest.mark.parametrize("build, code, logged_key, reason", REFUSALS)
async def test_the_signature_is_checked_before_the_body_is_read(client, demo, build, code, logged_key, reason):
    path, headers, raw = build(b'{"bank_code": "HZRCB", not json')

    _, response = await client.post(path, content=raw, headers=headers)

    assert_error(response, 401, code)


async def test_a_disabled_key_is_refused(client, demo):
    await ChannelCredential.filter(key_id=KEY_ID).update(is_active=False)

    response = await open_session(client)

    assert_error(response, 401, "SIGNATURE_INVALID")


async def test_a_replayed_request_is_refused(client, demo, caplog):
    raw = encode(person())
    headers = signed_headers(KEY_ID, SECRET, "POST", PATH, raw)
    _, first = await client.post(PATH, content=raw, headers=headers)
    assert first.status == 201, first.text

    with caplog.at_level(logging.WARNING, logger="security"):
        _, replay = await client.post(PATH, content=raw, headers=headers)

    assert_error(replay, 401, "NONCE_REPLAYED")
    assert [(r.key_id, r.reason) for r in security_warnings(caplog)] == [(KEY_ID, "replay")]


async def test_a_replayed_nonce_is_refused_even_on_a_differently_signed_request(client, demo):
    nonce = uuid.uuid4().hex
    raw = encode(person())
    _, first = await client.post(PATH, content=raw, headers=signed_headers(KEY_ID, SECRET, "POST", PATH, raw, nonce=nonce))
    assert first.status == 201, first.text
    other = encode(person(customer_no="C0009999"))

    _, replay = await client.post(PATH, content=other, headers=signed_headers(KEY_ID, SECRET, "POST", PATH, other, nonce=nonce))

    assert_error(replay, 401, "NONCE_REPLAYED")


# ---- keys speak for one channel and one bank -----------------------------------------------------


async def test_a_key_of_another_channel_is_refused(client, demo, caplog):
    with caplog.at_level(logging.WARNING, logger="security"):
        response = await open_session(client, "mobile_bank", path_channel="direct_bank")

    assert_error(response, 401, "CHANNEL_KEY_MISMATCH")
    assert await Customer.filter(phone_hash__isnull=False).count() == 2  # the demo customers only
    warnings = security_warnings(caplog)
    assert [r.key_id for r in warnings] == [KEY_ID]
    assert "channel" in warnings[0].getMessage()
    assert_no_personal_data(warnings)


async def test_a_key_of_another_channel_is_refused_before_the_body_is_read(client, demo):
    path = session_path("direct_bank")
    raw = b'{"bank_code": "HZRCB", not json'

    _, response = await client.post(path, content=raw, headers=signed_headers(KEY_ID, SECRET, "POST", path, raw))

    assert_error(response, 401, "CHANNEL_KEY_MISMATCH")


async def test_a_bank_key_cannot_speak_for_another_bank(client, demo, caplog):
    customers_before = await Customer.all().count()

    with caplog.at_level(logging.WARNING, logger="security"):
        response = await open_session(client, "mobile_bank", person("LSRCB"))

    assert_error(response, 403, "BANK_KEY_MISMATCH")
    assert await Customer.all().count() == customers_before
    warnings = security_warnings(caplog)
    assert [r.key_id for r in warnings] == [KEY_ID]
    assert "bank" in warnings[0].getMessage()
    assert_no_personal_data(warnings)


# ---- enterprise banking carries the firm ------------------------------------------------------------


async def test_enterprise_banking_requires_the_firm(client, demo):
    customers_before = await Customer.all().count()
    body = person(channel="enterprise_bank")
    del body["firm"]

    response = await open_session(client, "enterprise_bank", body)

    assert_error(response, 422, "FIRM_REQUIRED")
    assert await Customer.all().count() == customers_before
    assert await Firm.all().count() == 0


@pytest.mark.parametrize(
    "legal_representative, role",
    [(NAME, "legal_representative"), ("钱国强", "agent")],
    ids=["is-the-legal-representative", "acts-for-the-firm"],
)
async def test_enterprise_banking_links_the_person_to_the_firm(client, demo, legal_representative, role):
    body = person(channel="enterprise_bank", firm={**FIRM, "legal_representative": legal_representative})

    response = await open_session(client, "enterprise_bank", body)

    assert response.status == 201, response.text
    link = await CustomerFirm.get(customer_id=response.json["customer"]["id"]).prefetch_related("firm")
    assert link.role == role
    assert link.bank_id == await hz_id()
    assert link.firm.unified_social_credit_code == FIRM["unified_social_credit_code"]
    assert link.firm.name == FIRM["name"]


# ---- the person's details are checked, and never echoed -----------------------------------------------

BAD_ID = ID_NUMBER[:17] + ("0" if ID_NUMBER[17] != "0" else "1")  # wrong check character
BAD_PHONE = "12345678901"


@pytest.mark.parametrize(
    "field, value, code",
    [("id_number", BAD_ID, "INVALID_ID_NUMBER"), ("phone", BAD_PHONE, "INVALID_PHONE")],
)
async def test_invalid_details_in_a_signed_body_are_refused(client, demo, field, value, code):
    customers_before = await Customer.all().count()
    identities_before = await CustomerIdentity.all().count()

    response = await open_session(client, "mobile_bank", person(**{field: value}))

    assert_error(response, 422, code)
    assert value not in response.text
    assert await Customer.all().count() == customers_before
    assert await CustomerIdentity.all().count() == identities_before
    assert await BankRelationship.filter(first_channel="mobile_bank").count() == 0


# ---- Redis down -----------------------------------------------------------------------------------


async def test_without_redis_replays_cannot_be_told_so_the_request_is_refused(settings, demo):
    from server.app import create_app

    unreachable = redis_asyncio.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1, socket_timeout=1)
    app = create_app(
        settings, name=f"test_no_redis_{uuid.uuid4().hex[:8]}", redis=unreachable, manage_database=False
    )
    client = StartedOnceClient(app)
    try:
        response = await open_session(client)
    finally:
        await client.stop()
        await unreachable.aclose()

    assert response.status == 503, response.text
    assert response.json["error"]["code"] == "DEPENDENCY_UNAVAILABLE"
    assert await Customer.filter(phone_hash__isnull=False).count() == 2  # the demo customers only
