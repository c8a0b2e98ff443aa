"""The WeChat mini-program door end to end: our HTTP API, our real WeChat client (wechatpy) and
the fake WeChat server in its own process.

The fake's state lives for the whole session, so every test plays fresh WeChat users (unique
names in the codes) and reads the fake's records filtered by its own openid.
"""

from __future__ import annotations

import base64
import json
import os
import time
from datetime import timedelta
from uuid import uuid4

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from tortoise import connections
from tortoise.transactions import in_transaction

from channels import wechat
from channels.models import WeChatAccount
from fakes.wechat import openid_for, unionid_for
from infra import clock, pii
from infra.outbox import PENDING, SENT, OutboxMessage, relay_once
from lending_core.customers.models import Customer
from lending_core.org.models import Bank
from server.handlers import outbox_handlers
from tests.support import bearer

LOGIN = "/api/v1/channels/wechat/login"
PHONE = "/api/v1/channels/wechat/phone"
ME = "/api/v1/me"


# ---- helpers ------------------------------------------------------------------------------------


def new_user(prefix: str = "u") -> str:
    return f"{prefix}{uuid4().hex[:10]}"


def code_for(user: str) -> str:
    """A wx.login code of ``user``: a fresh one on every call (each code works once)."""
    return f"{user}.{uuid4().hex[:8]}"


def new_phone() -> str:
    return "139" + f"{uuid4().int % 10**8:08d}"


def phone_code(phone: str) -> str:
    return f"{phone}.{uuid4().hex[:8]}"


async def fake_get(fake_wechat: str, path: str):
    async with httpx.AsyncClient(base_url=fake_wechat, timeout=10) as http:
        response = await http.get(path)
    return response


async def inject_fault(fake_wechat: str, endpoint: str, **fault) -> None:
    async with httpx.AsyncClient(base_url=fake_wechat, timeout=10) as http:
        response = await http.post("__fake__/faults", json={"endpoint": endpoint, **fault})
    assert response.status_code == 200


async def fake_session(fake_wechat: str, openid: str) -> dict:
    response = await fake_get(fake_wechat, f"__fake__/sessions/{openid}")
    assert response.status_code == 200, "the fake has no session for this openid"
    return response.json()


async def messages_to(fake_wechat: str, openid: str) -> list[dict]:
    response = await fake_get(fake_wechat, "__fake__/messages")
    return [message for message in response.json() if message.get("touser") == openid]


async def fake_calls(fake_wechat: str, endpoint: str) -> int:
    return (await fake_get(fake_wechat, "__fake__/calls")).json().get(endpoint, 0)


async def login(client, user: str, **extra):
    _, response = await client.post(LOGIN, json={"code": code_for(user), **extra})
    return response


async def signed_in(client, user: str | None = None, **extra) -> dict:
    response = await login(client, user or new_user(), **extra)
    assert response.status == 200, response.text
    return response.json


def claims(access_token: str) -> dict:
    return jwt.decode(access_token, options={"verify_signature": False})


def error_of(response) -> dict:
    return response.json["error"]


def encrypt_for_wechat(session_key: str, payload: dict) -> dict:
    """The older getPhoneNumber form, as WeChat builds it: AES-128-CBC, PKCS#7, under the user's
    session key, with a random IV; both base64."""
    iv = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    plain = padder.update(json.dumps(payload).encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(base64.b64decode(session_key)), modes.CBC(iv)).encryptor()
    cipher_text = encryptor.update(plain) + encryptor.finalize()
    return {"encrypted_data": base64.b64encode(cipher_text).decode(), "iv": base64.b64encode(iv).decode()}


def phone_payload(phone: str, appid: str) -> dict:
    return {
        "phoneNumber": phone,
        "purePhoneNumber": phone,
        "countryCode": "86",
        "watermark": {"appid": appid, "timestamp": int(time.time())},
    }


async def raw_wechat_rows(customer_id: int) -> list[dict]:
    connection = connections.get("default")
    placeholder = "?" if connection.capabilities.dialect == "sqlite" else "$1"
    return await connection.execute_query_dict(f'SELECT * FROM "wechat_account" WHERE customer_id = {placeholder}', [customer_id])


@pytest.fixture
async def some_bank(demo) -> Bank:
    return await Bank.filter(is_active=True).order_by("id").first()


@pytest.fixture
async def other_bank(demo, some_bank) -> Bank:
    return await Bank.filter(is_active=True).exclude(id=some_bank.id).order_by("id").first()


# ---- login ----------------------------------------------------------------------------------------


async def test_first_login_creates_a_customer_whose_token_works(client):
    user = new_user()

    body = await signed_in(client, user)

    assert body["is_new"] is True
    assert body["token_type"] == "Bearer" and body["access_token"] and body["refresh_token"]
    assert body["bank_id"] is None
    assert body["customer"] == {
        "id": body["customer"]["id"],
        "name": None,
        "id_number": None,
        "phone": None,
        "real_name_verified": False,
        "created_at": body["customer"]["created_at"],
    }
    assert await Customer.filter(id=body["customer"]["id"]).exists()
    _, me = await client.get(ME, headers=bearer(body["access_token"]))
    assert me.status == 200, me.text
    assert me.json["id"] == body["customer"]["id"]
    assert me.json["channel"] == "wechat_miniprogram"


async def test_a_second_login_of_the_same_wechat_user_is_the_same_customer(client):
    user = new_user()
    first = await signed_in(client, user)

    second = await signed_in(client, user)

    assert second["is_new"] is False
    assert second["customer"]["id"] == first["customer"]["id"]
    assert second["access_token"] != first["access_token"]
    assert await Customer.all().count() == 1
    assert await WeChatAccount.filter(customer_id=first["customer"]["id"]).count() == 1


async def test_different_wechat_users_are_different_customers(client):
    first = await signed_in(client)
    second = await signed_in(client)

    assert second["is_new"] is True
    assert second["customer"]["id"] != first["customer"]["id"]


async def test_a_user_without_unionid_can_sign_in_twice(client):
    user = new_user("nounion-")
    first = await signed_in(client, user)
    second = await signed_in(client, user)

    assert (first["is_new"], second["is_new"]) == (True, False)
    assert second["customer"]["id"] == first["customer"]["id"]


async def test_openid_and_session_key_are_stored_encrypted_and_never_sent(client, settings, fake_wechat):
    user = new_user()
    openid = openid_for(settings.wechat_appid, user)
    responses = []

    for _ in range(2):  # the second login replaces the session key by an update: encrypted too
        response = await login(client, user)
        assert response.status == 200, response.text
        responses.append(response.text)
        session_key = (await fake_session(fake_wechat, openid))["session_key"]
        customer_id = response.json["customer"]["id"]

        rows = await raw_wechat_rows(customer_id)
        assert len(rows) == 1
        raw = " | ".join(str(value) for value in rows[0].values())
        assert openid not in raw
        assert session_key not in raw
        assert rows[0]["openid_hash"] == pii.lookup_hash("wechat_openid", openid)
        # ...and they open again with our key.
        account = await WeChatAccount.get(customer_id=customer_id)
        assert (account.openid, account.session_key) == (openid, session_key)

    _, me = await client.get(ME, headers=bearer(response.json["access_token"]))
    responses.append(me.text)
    for text in responses:
        assert openid not in text
        assert session_key not in text
        assert unionid_for(user) not in text


async def test_an_invalid_code_is_refused(client):
    _, response = await client.post(LOGIN, json={"code": "not a wx.login code"})

    assert response.status == 400, response.text
    assert error_of(response)["code"] == "WECHAT_REFUSED"
    assert error_of(response)["details"]["wechat_errcode"] == 40029


async def test_a_reused_code_is_refused(client):
    code = code_for(new_user())
    _, first = await client.post(LOGIN, json={"code": code})
    assert first.status == 200, first.text

    _, again = await client.post(LOGIN, json={"code": code})

    assert again.status == 400, again.text
    assert error_of(again)["code"] == "WECHAT_REFUSED"
    assert error_of(again)["details"]["wechat_errcode"] == 40163


@pytest.mark.parametrize("body", [{}, {"code": ""}, {"code": "x" * 129}, {"code": 12345}])
async def test_a_malformed_login_body_is_refused_before_wechat_is_called(client, fake_wechat, body):
    calls = await fake_calls(fake_wechat, "jscode2session")

    _, response = await client.post(LOGIN, json=body)

    assert response.status == 422, response.text
    assert error_of(response)["code"] == "VALIDATION_FAILED"
    assert await fake_calls(fake_wechat, "jscode2session") == calls


@pytest.mark.parametrize("errcode", [-1, 45011])
async def test_wechat_busy_answers_503_with_retry_after_and_creates_nothing(client, fake_wechat, errcode):
    before = await Customer.all().count()
    await inject_fault(fake_wechat, "jscode2session", errcode=errcode, errmsg="system error")

    response = await login(client, new_user())

    assert response.status == 503, response.text
    assert error_of(response)["code"] == "WECHAT_UNAVAILABLE"
    assert int(response.headers["Retry-After"]) > 0
    assert await Customer.all().count() == before
    assert await WeChatAccount.all().count() == 0


async def test_a_wechat_timeout_answers_503_not_500(client, fake_wechat, settings):
    assert settings.wechat_timeout_seconds == 2.0
    await inject_fault(fake_wechat, "jscode2session", mode="delay", seconds=3)
    started = time.monotonic()

    response = await login(client, new_user())

    assert response.status == 503, response.text
    assert error_of(response)["code"] == "WECHAT_UNAVAILABLE"
    assert "Retry-After" in response.headers
    assert time.monotonic() - started < 2.9, "the client should give up at its own timeout"
    assert await Customer.all().count() == 0


# ---- the member bank ----------------------------------------------------------------------------


async def test_login_with_a_bank_picks_it_and_the_next_login_remembers_it(client, some_bank):
    user = new_user()

    first = await signed_in(client, user, bank_id=some_bank.id)

    assert first["bank_id"] == some_bank.id
    assert claims(first["access_token"])["bank"] == some_bank.id
    _, me = await client.get(ME, headers=bearer(first["access_token"]))
    assert me.json["bank_id"] == some_bank.id
    assert [relation["bank_id"] for relation in me.json["banks"]] == [some_bank.id]

    again = await signed_in(client, user)

    assert again["bank_id"] == some_bank.id
    assert claims(again["access_token"])["bank"] == some_bank.id


async def test_login_with_an_unknown_bank_is_404(client, demo):
    response = await login(client, new_user(), bank_id=987654)

    assert response.status == 404, response.text
    assert error_of(response)["code"] == "NOT_FOUND"


async def test_choosing_a_bank_after_login_sets_and_remembers_it(client, some_bank, other_bank):
    user = new_user()
    first = await signed_in(client, user, bank_id=some_bank.id)

    _, chosen = await client.post(f"{ME}/bank", json={"bank_id": other_bank.id}, headers=bearer(first["access_token"]))

    assert chosen.status == 200, chosen.text
    assert chosen.json["bank_id"] == other_bank.id
    assert claims(chosen.json["access_token"])["bank"] == other_bank.id
    _, me = await client.get(ME, headers=bearer(chosen.json["access_token"]))
    assert me.json["bank_id"] == other_bank.id
    assert (await signed_in(client, user))["bank_id"] == other_bank.id


async def test_a_login_without_any_bank_leaves_the_choice_open(client, demo):
    body = await signed_in(client)

    assert body["bank_id"] is None
    assert claims(body["access_token"])["bank"] is None


# ---- phone binding ----------------------------------------------------------------------------


async def test_a_getphonenumber_code_binds_the_phone(client):
    session = await signed_in(client)
    phone = new_phone()

    _, response = await client.post(PHONE, json={"code": phone_code(phone)}, headers=bearer(session["access_token"]))

    assert response.status == 200, response.text
    assert response.json["phone"] == pii.mask_phone(phone)
    assert phone not in response.text
    customer = await Customer.get(id=session["customer"]["id"])
    assert customer.phone == phone
    assert customer.phone_hash == pii.lookup_hash("phone", phone)


@pytest.mark.parametrize("code", ["12345.abc", "not-a-phone-code"])
async def test_a_bad_getphonenumber_code_is_refused(client, code):
    session = await signed_in(client)

    _, response = await client.post(PHONE, json={"code": code}, headers=bearer(session["access_token"]))

    assert response.status == 400, response.text
    assert error_of(response)["code"] == "WECHAT_REFUSED"
    assert error_of(response)["details"]["wechat_errcode"] == 40029
    assert (await Customer.get(id=session["customer"]["id"])).phone_hash is None


async def test_a_used_getphonenumber_code_is_refused(client):
    session = await signed_in(client)
    code = phone_code(new_phone())
    _, first = await client.post(PHONE, json={"code": code}, headers=bearer(session["access_token"]))
    assert first.status == 200, first.text

    _, again = await client.post(PHONE, json={"code": code}, headers=bearer(session["access_token"]))

    assert again.status == 400, again.text
    assert error_of(again)["details"]["wechat_errcode"] == 40163


async def test_phone_binding_needs_a_customer_session(client):
    _, response = await client.post(PHONE, json={"code": phone_code(new_phone())})

    assert response.status == 401, response.text


async def test_a_token_refused_twice_by_wechat_answers_503_not_500(client, fake_wechat):
    session = await signed_in(client)
    await inject_fault(fake_wechat, "getuserphonenumber", errcode=40001, errmsg="invalid credential", times=2)

    _, response = await client.post(PHONE, json={"code": phone_code(new_phone())}, headers=bearer(session["access_token"]))

    assert response.status == 503, response.text
    assert error_of(response)["code"] == "WECHAT_UNAVAILABLE"


async def test_the_older_encrypted_form_binds_the_phone(client, settings, fake_wechat):
    user = new_user()
    session = await signed_in(client, user)
    session_key = (await fake_session(fake_wechat, openid_for(settings.wechat_appid, user)))["session_key"]
    phone = new_phone()

    _, response = await client.post(
        PHONE, json=encrypt_for_wechat(session_key, phone_payload(phone, settings.wechat_appid)), headers=bearer(session["access_token"])
    )

    assert response.status == 200, response.text
    assert response.json["phone"] == pii.mask_phone(phone)
    customer = await Customer.get(id=session["customer"]["id"])
    assert customer.phone_hash == pii.lookup_hash("phone", phone)


def _tamper(body: dict) -> dict:
    cipher_text = bytearray(base64.b64decode(body["encrypted_data"]))
    cipher_text[0] ^= 0xFF  # garbles the whole first block of the plain text
    return {**body, "encrypted_data": base64.b64encode(bytes(cipher_text)).decode()}


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda key, phone, appid: _tamper(encrypt_for_wechat(key, phone_payload(phone, appid))), id="tampered-data"),
        pytest.param(lambda key, phone, appid: encrypt_for_wechat(key, phone_payload(phone, "wx1111111111other")), id="other-appid"),
        pytest.param(
            lambda key, phone, appid: encrypt_for_wechat(base64.b64encode(os.urandom(16)).decode(), phone_payload(phone, appid)),
            id="other-session-key",
        ),
    ],
)
async def test_encrypted_phone_data_that_does_not_open_is_refused(client, settings, fake_wechat, spoil):
    user = new_user()
    session = await signed_in(client, user)
    session_key = (await fake_session(fake_wechat, openid_for(settings.wechat_appid, user)))["session_key"]

    body = spoil(session_key, new_phone(), settings.wechat_appid)
    _, response = await client.post(PHONE, json=body, headers=bearer(session["access_token"]))

    assert response.status == 400, response.text
    assert error_of(response)["code"] == "WECHAT_REFUSED"
    assert error_of(response)["details"]["wechat_errcode"] == -41003
    assert (await Customer.get(id=session["customer"]["id"])).phone_hash is None


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="neither"),
        pytest.param({"code": "13912345678.x", "encrypted_data": "AAAA", "iv": "AAAA"}, id="both"),
        pytest.param({"encrypted_data": "AAAA"}, id="data-without-iv"),
        pytest.param({"iv": "AAAA"}, id="iv-without-data"),
    ],
)
async def test_phone_binding_wants_exactly_one_form(client, body):
    session = await signed_in(client)

    _, response = await client.post(PHONE, json=body, headers=bearer(session["access_token"]))

    assert response.status == 422, response.text
    assert error_of(response)["code"] == "VALIDATION_FAILED"


# ---- subscribe messages -------------------------------------------------------------------------


async def _notify(customer_id: int, data: dict) -> None:
    async with in_transaction():
        await wechat.notify(customer_id, "application_result", data)


async def _relay(app) -> int:
    return await relay_once(outbox_handlers(app.ctx.settings, app.ctx.providers))


async def test_a_subscribe_message_is_sent_after_commit(app, client, settings, fake_wechat):
    user = new_user()
    customer_id = (await signed_in(client, user))["customer"]["id"]
    openid = openid_for(settings.wechat_appid, user)

    await _notify(customer_id, {"thing1": "经营贷", "phrase2": "已通过"})
    assert await messages_to(fake_wechat, openid) == []
    sent = await _relay(app)

    assert sent == 1
    messages = await messages_to(fake_wechat, openid)
    assert len(messages) == 1
    assert messages[0]["template_id"] == settings.wechat_templates["application_result"]
    assert messages[0]["data"] == {"thing1": {"value": "经营贷"}, "phrase2": {"value": "已通过"}}
    assert (await OutboxMessage.get(topic=wechat.SUBSCRIBE_TOPIC)).status == SENT
    assert await _relay(app) == 0
    assert len(await messages_to(fake_wechat, openid)) == 1


async def test_a_message_in_a_rolled_back_transaction_is_never_sent(app, client, settings, fake_wechat):
    user = new_user()
    customer_id = (await signed_in(client, user))["customer"]["id"]

    class Abandon(Exception):
        pass

    with pytest.raises(Abandon):
        async with in_transaction():
            await wechat.notify(customer_id, "application_result", {"thing1": "经营贷"})
            raise Abandon()

    assert await _relay(app) == 0
    assert await messages_to(fake_wechat, openid_for(settings.wechat_appid, user)) == []


async def test_a_user_who_refused_messages_is_not_retried(app, client, settings, fake_wechat):
    user = new_user("refuse-")
    customer_id = (await signed_in(client, user))["customer"]["id"]
    attempts = await fake_calls(fake_wechat, "subscribe_send")

    await _notify(customer_id, {"thing1": "经营贷"})
    await _relay(app)

    assert await fake_calls(fake_wechat, "subscribe_send") == attempts + 1, "WeChat was asked once"
    message = await OutboxMessage.get(topic=wechat.SUBSCRIBE_TOPIC)
    assert (message.status, message.attempts) == (SENT, 1)
    assert await messages_to(fake_wechat, openid_for(settings.wechat_appid, user)) == []


async def test_wechat_busy_leaves_the_message_pending_for_a_retry(app, client, settings, fake_wechat, monkeypatch):
    user = new_user()
    customer_id = (await signed_in(client, user))["customer"]["id"]
    openid = openid_for(settings.wechat_appid, user)
    await _notify(customer_id, {"thing1": "经营贷"})
    await inject_fault(fake_wechat, "subscribe_send", errcode=-1, errmsg="system error")

    assert await _relay(app) == 0

    message = await OutboxMessage.get(topic=wechat.SUBSCRIBE_TOPIC)
    assert (message.status, message.attempts) == (PENDING, 1)
    assert "WeChatUnavailable" in message.last_error
    assert await messages_to(fake_wechat, openid) == []

    later = clock.now() + timedelta(minutes=5)
    monkeypatch.setattr(clock, "now", lambda: later)
    assert await _relay(app) == 1
    assert len(await messages_to(fake_wechat, openid)) == 1
    assert (await OutboxMessage.get(id=message.id)).status == SENT
