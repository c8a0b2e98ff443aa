"""Every refusal is ``{"error": {"code", "message", "details"}}`` with the right status and a
stable code: never a stack trace, never a 500 for bad input, never the submitted personal data,
and a refused request changes nothing."""

from __future__ import annotations

import re
import socket
import uuid
from dataclasses import replace
from datetime import date, timedelta

import httpx
import jwt
import pytest

from infra import clock
from infra.audit import AuditEntry
from infra.identity_numbers import make_test_id_number
from lending_core.customers.models import Customer
from lending_core.org.models import Bank, Staff
from tests.support import bearer, customer_token, new_key, staff_token

ADMIN = "/api/v1/admin"
ME = "/api/v1/me"
LOGIN = "/api/v1/staff/login"
JSON = {"content-type": "application/json"}
TOO_BIG_FOR_BIGINT = str(2**63)

# Personal data planted in refused requests: none of it may come back.
PLANTED_ID_NUMBER = make_test_id_number("110101", date(1970, 1, 1), 777)
PLANTED_PHONE = "13912345678"
PLANTED_NAME = "欧阳锋"


def assert_error(response, status: int, code: str) -> dict:
    """The response is our error envelope with this status and code; returns the error object."""
    assert response.status == status, response.text
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    assert re.fullmatch(r"[A-Za-z0-9._-]{8,64}", response.headers.get("x-request-id", "")), response.headers
    assert "Traceback" not in response.text and 'File "' not in response.text
    body = response.json
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    return error


def assert_nothing_echoed(response, *planted: str) -> None:
    for value in planted:
        assert value not in response.text, f"{value!r} echoed in {response.text}"


def problem_fields(error: dict) -> set[str]:
    return {problem["field"] for problem in error["details"]}


async def staff_id(username: str) -> int:
    return (await Staff.get(username=username)).id


async def bank_id(code: str) -> int:
    return (await Bank.get(code=code)).id


def new_staff_body(**overrides) -> dict:
    body = {
        "username": f"t.{uuid.uuid4().hex[:10]}",
        "name": "测试员",
        "roles": ["account_manager"],
        "password": "Strong-pass-2026",
    }
    return {**body, **overrides}


async def counts() -> tuple[int, int]:
    return await Staff.all().count(), await AuditEntry.all().count()


@pytest.fixture
async def hz_admin(client, demo) -> dict:
    return bearer(await staff_token(client, "hz.admin"))


@pytest.fixture
async def assoc_admin(client, demo) -> dict:
    return bearer(await staff_token(client, "assoc.admin"))


@pytest.fixture
async def customer(app, demo) -> dict:
    """The HZRCB demo customer's headers for /api/v1/me."""
    first = await Customer.all().order_by("id").first()
    return bearer(await customer_token(app, first.id, await bank_id("HZRCB")))


# --- the body ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b'{"username": "hz.admin",}',
        b"{'username': 'hz.admin'}",
        b'{"username": "hz.admin" "password": "x"}',
        b"NaN",
        b"\xff\xfe{}",
        b'{"username": "\\ud800", "password": "x"}',
        b"[" * 5000 + b"]" * 5000,
    ],
    ids=["truncated", "trailing-comma", "single-quotes", "missing-comma", "nan", "not-utf8", "lone-surrogate", "deep"],
)
async def test_malformed_json_is_400(client, demo, raw):
    _, response = await client.post(LOGIN, content=raw, headers=JSON)
    assert_error(response, 400, "MALFORMED_JSON")


@pytest.mark.parametrize("raw", [b"[]", b'[{"username": "hz.admin"}]', b'"hz.admin"', b"1", b"null", b"true"])
async def test_json_that_is_not_an_object_is_422(client, demo, raw):
    _, response = await client.post(LOGIN, content=raw, headers=JSON)
    assert_error(response, 422, "VALIDATION_FAILED")


async def test_malformed_json_on_an_authenticated_route_is_400(client, hz_admin):
    _, response = await client.post(f"{ADMIN}/staff", content=b'{"username": ', headers={**hz_admin, **JSON})
    assert_error(response, 400, "MALFORMED_JSON")


WRONG_FIELDS = [
    # (route, who, body, fields the details must name)
    (LOGIN, None, {}, {"username", "password"}),
    (LOGIN, None, {"username": 123, "password": ["x"]}, {"username", "password"}),
    (LOGIN, None, {"username": "", "password": "x"}, {"username"}),
    (LOGIN, None, {"username": None, "password": "x"}, {"username"}),
    (f"{ADMIN}/staff", "admin", new_staff_body(username="Bad Name!", roles="account_manager"), {"username", "roles"}),
    (f"{ADMIN}/staff", "admin", new_staff_body(roles=[]), {"roles"}),
    (f"{ADMIN}/staff", "admin", new_staff_body(bank_id="one"), {"bank_id"}),
    (f"{ADMIN}/staff", "admin", new_staff_body(bank_id=0), {"bank_id"}),
    (f"{ADMIN}/staff", "admin", new_staff_body(branch_id=-3), {"branch_id"}),
    (f"{ADMIN}/staff", "admin", new_staff_body(bank_id=10**30), {"bank_id"}),
    (f"{ADMIN}/staff", "admin", {k: v for k, v in new_staff_body().items() if k != "password"}, {"password"}),
    (f"{ADMIN}/staff/1/roles", "admin", {"roles": ["account_manager"]}, {"reason"}),
    (f"{ADMIN}/staff/1/roles", "admin", {"roles": "account_manager", "reason": "promotion"}, {"roles"}),
    (f"{ADMIN}/change-requests/1/approve", "admin", {"note": 7}, {"note"}),
    (f"{ADMIN}/customers/1/unmask", "senior", {"field": "password", "reason": "abc"}, {"field", "reason"}),
    (f"{ME}/consents", "customer", {"purpose": 5}, {"purpose"}),
    (f"{ME}/consents", "customer", {}, {"purpose"}),
]


@pytest.mark.parametrize("path, who, body, fields", WRONG_FIELDS)
async def test_wrong_types_and_missing_fields_are_422_naming_the_fields(client, app, demo, path, who, body, fields):
    headers = await headers_for(client, app, who)
    _, response = await client.post(path, json=body, headers=headers)
    error = assert_error(response, 422, "VALIDATION_FAILED")
    assert problem_fields(error) == fields
    for problem in error["details"]:
        assert set(problem) == {"field", "problem", "message"}


NOT_ALLOWED = [
    # (route, who, body, the unknown fields)
    (LOGIN, None, {"username": "hz.admin", "password": "x", "roles": ["association_admin"]}, {"roles"}),
    (f"{ADMIN}/staff", "admin", new_staff_body(is_active=True, failed_logins=0), {"is_active", "failed_logins"}),
    (f"{ADMIN}/staff", "admin", new_staff_body(password_hash="scrypt$1$1$1$x$y", id=1), {"password_hash", "id"}),
    (f"{ADMIN}/staff/1/roles", "admin", {"roles": ["bank_admin"], "reason": "x", "status": "applied"}, {"status"}),
    (f"{ADMIN}/staff/1/roles", "admin", {"roles": ["bank_admin"], "reason": "x", "bank_id": 2}, {"bank_id"}),
    (f"{ADMIN}/change-requests/1/approve", "admin", {"status": "applied", "decided_by_id": 1}, {"status", "decided_by_id"}),
    (f"{ADMIN}/customers/1/unmask", "senior", {"field": "phone", "reason": "checking", "bank_id": 2}, {"bank_id"}),
    (f"{ME}/consents", "customer", {"purpose": "credit_bureau", "bank_id": 2, "customer_id": 2}, {"bank_id", "customer_id"}),
    (f"{ME}/consents", "customer", {"purpose": "credit_bureau", "limit": 500000, "rate": "0.01", "amount": 10**6}, {"limit", "rate", "amount"}),
    (f"{ME}/consents", "customer", {"purpose": "credit_bureau", "status": "granted"}, {"status"}),
]


@pytest.mark.parametrize("path, who, body, fields", NOT_ALLOWED)
async def test_unknown_fields_are_refused_not_ignored(client, app, demo, path, who, body, fields):
    headers = await headers_for(client, app, who)
    _, response = await client.post(path, json=body, headers=headers)
    error = assert_error(response, 422, "FIELD_NOT_ALLOWED")
    assert set(error["details"]) == fields


async def headers_for(client, app, who: str | None) -> dict:
    if who is None:
        return {}
    if who == "customer":
        first = await Customer.all().order_by("id").first()
        return bearer(await customer_token(app, first.id, await bank_id("HZRCB")), **{"Idempotency-Key": new_key()})
    return bearer(await staff_token(client, f"hz.{who}"))


async def test_mass_assignment_on_staff_creation_creates_nothing(client, hz_admin):
    before = await counts()
    _, response = await client.post(
        f"{ADMIN}/staff", json=new_staff_body(roles=["bank_admin"], is_active=True, locked_until=None), headers=hz_admin
    )
    assert_error(response, 422, "FIELD_NOT_ALLOWED")
    assert await counts() == before


@pytest.mark.parametrize(
    "content_type, raw",
    [
        ("text/plain", b'{"username": "hz.admin", "password": "x"}'),
        ("application/x-www-form-urlencoded", b"username=hz.admin&password=x"),
        ("multipart/form-data; boundary=xyz", b'--xyz\r\nContent-Disposition: form-data; name="username"\r\n\r\nhz.admin\r\n--xyz--\r\n'),
        ("application/xml", b"<login><username>hz.admin</username></login>"),
    ],
)
async def test_a_body_that_is_not_json_is_415(client, demo, content_type, raw):
    _, response = await client.post(LOGIN, content=raw, headers={"content-type": content_type})
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


async def test_json_with_a_charset_is_accepted(client, demo):
    _, response = await client.post(
        LOGIN, content=b'{"username": "hz.admin", "password": "Demo-pass-2026"}', headers={"content-type": "application/json; charset=utf-8"}
    )
    assert response.status == 200, response.text


# --- oversized bodies ----------------------------------------------------------------------------
# Sanic enforces REQUEST_MAX_SIZE in its own HTTP server (which `server.cli serve` runs), not in the
# ASGI test client: these tests serve the app on a real socket.


async def _serve(app):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True)
    await server.startup()
    return server, f"http://127.0.0.1:{port}"


@pytest.fixture
async def small_limit_server(settings, redis, demo):
    from server.app import create_app

    app = create_app(
        replace(settings, max_request_bytes=1024), name=f"test_small_{uuid.uuid4().hex[:10]}", redis=redis, manage_database=False
    )
    server, url = await _serve(app)
    try:
        yield url
    finally:
        server.close()
        await server.wait_closed()


async def test_a_body_over_the_limit_is_413(small_limit_server):
    raw = b'{"username": "hz.admin", "password": "' + b"x" * 2048 + b'"}'
    async with httpx.AsyncClient(base_url=small_limit_server) as http:
        response = await http.post(LOGIN, content=raw, headers=JSON)
    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert set(response.json()["error"]) == {"code", "message", "details"}


async def test_a_body_under_the_limit_is_served(small_limit_server):
    async with httpx.AsyncClient(base_url=small_limit_server) as http:
        response = await http.post(LOGIN, json={"username": "hz.admin", "password": "Demo-pass-2026"})
    assert response.status_code == 200, response.text


# --- routes and methods --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/v1/nope", "/api/v1/admin", f"{ADMIN}/bankz", "/wp-login.php", f"{ADMIN}/customers/by-id-number/{PLANTED_ID_NUMBER}"]
)
async def test_unknown_route_is_404(client, demo, path):
    _, response = await client.get(path)
    assert_error(response, 404, "ROUTE_NOT_FOUND")
    assert_nothing_echoed(response, PLANTED_ID_NUMBER)


@pytest.mark.parametrize(
    "method, path", [("delete", f"{ADMIN}/banks"), ("get", LOGIN), ("put", f"{ME}/consents"), ("patch", f"{ADMIN}/staff/1")]
)
async def test_wrong_method_is_405(client, demo, method, path):
    _, response = await getattr(client, method)(path)
    assert_error(response, 405, "METHOD_NOT_ALLOWED")


# --- tokens --------------------------------------------------------------------------------------


def _claims(audience: str, subject: int, *, bank: int | None, expires_in: int) -> dict:
    now = clock.now()
    return {
        "aud": audience,
        "sub": str(subject),
        "sid": 1,
        "bank": bank,
        "chn": "console" if audience == "staff" else "wechat_miniprogram",
        "iat": int((now - timedelta(hours=1)).timestamp()),
        "exp": int((now + timedelta(seconds=expires_in)).timestamp()),
    }


async def forged_staff_token(settings, kind: str) -> str:
    staff = await Staff.get(username="hz.admin")
    if kind == "expired":
        return jwt.encode(_claims("staff", staff.id, bank=staff.bank_id, expires_in=-60), settings.secret_key, algorithm="HS256")
    if kind == "wrong-key":
        return jwt.encode(_claims("staff", staff.id, bank=staff.bank_id, expires_in=600), "k" * 48, algorithm="HS256")
    if kind == "alg-none":
        return jwt.encode(_claims("staff", staff.id, bank=staff.bank_id, expires_in=600), None, algorithm="none")
    if kind == "no-audience":
        claims = _claims("staff", staff.id, bank=staff.bank_id, expires_in=600)
        del claims["aud"]
        return jwt.encode(claims, settings.secret_key, algorithm="HS256")
    raise ValueError(kind)


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Bearer garbage", "Bearer a.b.c", "Basic aHouYWRtaW46RGVtby1wYXNzLTIwMjY=", "Token abc"],
)
async def test_missing_or_garbage_bearer_is_401(client, demo, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    _, response = await client.get(f"{ADMIN}/banks", headers=headers)
    assert_error(response, 401, "TOKEN_INVALID")


@pytest.mark.parametrize("kind, code", [("expired", "TOKEN_EXPIRED"), ("wrong-key", "TOKEN_INVALID"), ("alg-none", "TOKEN_INVALID"), ("no-audience", "TOKEN_INVALID")])
async def test_forged_or_expired_staff_tokens_are_401(client, settings, demo, kind, code):
    token = await forged_staff_token(settings, kind)
    _, response = await client.get(f"{ADMIN}/banks", headers=bearer(token))
    assert_error(response, 401, code)


async def test_expired_customer_token_is_401_expired(client, settings, demo):
    first = await Customer.all().order_by("id").first()
    token = jwt.encode(_claims("customer", first.id, bank=await bank_id("HZRCB"), expires_in=-1), settings.secret_key, algorithm="HS256")
    _, response = await client.get(ME, headers=bearer(token))
    assert_error(response, 401, "TOKEN_EXPIRED")


async def test_customer_token_is_refused_on_staff_routes(client, customer):
    _, response = await client.get(f"{ADMIN}/banks", headers=customer)
    assert_error(response, 401, "TOKEN_INVALID")


async def test_staff_token_is_refused_on_customer_routes(client, hz_admin):
    _, response = await client.get(ME, headers=hz_admin)
    assert_error(response, 401, "TOKEN_INVALID")


async def test_a_disabled_staff_members_token_stops_working(client, hz_admin):
    await Staff.filter(username="hz.admin").update(is_active=False)
    _, response = await client.get(f"{ADMIN}/banks", headers=hz_admin)
    assert_error(response, 401, "INVALID_CREDENTIALS")


async def test_wrong_password_is_401_without_saying_which_part_was_wrong(client, demo):
    _, unknown = await client.post(LOGIN, json={"username": "nobody.here", "password": "Demo-pass-2026"})
    _, wrong = await client.post(LOGIN, json={"username": "hz.admin", "password": "wrong-pass-1"})
    assert assert_error(unknown, 401, "INVALID_CREDENTIALS") == assert_error(wrong, 401, "INVALID_CREDENTIALS")


async def test_consent_without_an_idempotency_key_is_400(client, app, demo):
    first = await Customer.all().order_by("id").first()
    token = await customer_token(app, first.id, await bank_id("HZRCB"))
    _, response = await client.post(f"{ME}/consents", json={"purpose": "credit_bureau"}, headers=bearer(token))
    assert_error(response, 400, "IDEMPOTENCY_KEY_REQUIRED")


# --- query strings and path ids ------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, field",
    [
        (f"{ADMIN}/banks?limit=0", "limit"),
        (f"{ADMIN}/banks?limit=101", "limit"),
        (f"{ADMIN}/banks?limit=abc", "limit"),
        (f"{ADMIN}/banks?limit=-5", "limit"),
        (f"{ADMIN}/banks?limit=1.5", "limit"),
        (f"{ADMIN}/banks?limit=1&limit=2", "limit"),
        (f"{ADMIN}/staff?after=-1", "after"),
        (f"{ADMIN}/staff?after=abc", "after"),
        (f"{ADMIN}/staff?after={TOO_BIG_FOR_BIGINT}", "after"),
        (f"{ADMIN}/branches?bank_id=0", "bank_id"),
        (f"{ADMIN}/branches?bank_id=x", "bank_id"),
        (f"{ADMIN}/staff?branch_id=-1", "branch_id"),
        (f"{ADMIN}/change-requests?status=approved", "status"),
        (f"{ADMIN}/audit?object_type={'x' * 49}", "object_type"),
    ],
)
async def test_invalid_query_parameters_are_422(client, hz_admin, path, field):
    _, response = await client.get(path, headers=hz_admin)
    error = assert_error(response, 422, "VALIDATION_FAILED")
    assert problem_fields(error) == {field}


@pytest.mark.parametrize("path", [f"{ADMIN}/banks?sort=name", f"{ADMIN}/staff?bank_id=2", f"{ADMIN}/customers?phone={PLANTED_PHONE}"])
async def test_unknown_query_parameters_are_422_field_not_allowed(client, hz_admin, path):
    _, response = await client.get(path, headers=hz_admin)
    assert_error(response, 422, "FIELD_NOT_ALLOWED")
    assert_nothing_echoed(response, PLANTED_PHONE)


@pytest.mark.parametrize("path", [f"{ADMIN}/branches?bank_id={TOO_BIG_FOR_BIGINT}", f"{ADMIN}/staff?branch_id={'9' * 25}"])
async def test_query_ids_that_overflow_are_422_not_500(client, hz_admin, path):
    _, response = await client.get(path, headers=hz_admin)
    assert_error(response, 422, "VALIDATION_FAILED")


@pytest.mark.parametrize(
    "method, path, who, status, code",
    [
        ("get", f"{ADMIN}/banks/{'9' * 25}", "admin", 404, "NOT_FOUND"),
        ("get", f"{ADMIN}/banks/{2**63 - 1}", "admin", 404, "NOT_FOUND"),
        ("get", f"{ADMIN}/banks/{TOO_BIG_FOR_BIGINT}", "admin", 404, "NOT_FOUND"),
        ("get", f"{ADMIN}/banks/0", "admin", 404, "NOT_FOUND"),
        ("get", f"{ADMIN}/banks/-1", "admin", 404, "NOT_FOUND"),
        ("get", f"{ADMIN}/staff/{'9' * 25}", "admin", 404, "NOT_FOUND"),
        ("get", f"{ADMIN}/customers/{'9' * 25}", "admin", 404, "NOT_FOUND"),
        ("get", f"{ADMIN}/change-requests/{'9' * 25}", "admin", 404, "NOT_FOUND"),
        ("get", f"{ME}/consents/{'9' * 25}", "customer", 404, "NOT_FOUND"),
        ("get", f"{ADMIN}/banks/abc", "admin", 404, "ROUTE_NOT_FOUND"),
        ("get", f"{ADMIN}/banks/1.5", "admin", 404, "ROUTE_NOT_FOUND"),
        ("get", f"{ADMIN}/banks/1e3", "admin", 404, "ROUTE_NOT_FOUND"),
        ("get", f"{ADMIN}/branches/0x1", "admin", 404, "ROUTE_NOT_FOUND"),
        ("get", f"{ME}/consents/one", "customer", 404, "ROUTE_NOT_FOUND"),
        ("post", f"{ADMIN}/change-requests/{'9' * 25}/withdraw", "admin", 404, "NOT_FOUND"),
    ],
)
async def test_path_ids_that_overflow_or_are_not_ints(client, app, demo, method, path, who, status, code):
    _, response = await getattr(client, method)(path, headers=await headers_for(client, app, who))
    assert_error(response, status, code)


async def test_path_id_overflow_on_a_write_is_404(client, hz_admin):
    _, response = await client.post(
        f"{ADMIN}/staff/{'9' * 25}/roles", json={"roles": ["account_manager"], "reason": "promotion"}, headers=hz_admin
    )
    assert_error(response, 404, "NOT_FOUND")
    _, response = await client.post(f"{ADMIN}/change-requests/{'9' * 25}/approve", json={}, headers=hz_admin)
    assert_error(response, 404, "NOT_FOUND")


# --- personal data never comes back ---------------------------------------------------------------


async def test_invalid_phone_on_staff_creation_is_422_and_not_echoed(client, hz_admin):
    before = await counts()
    bad_phone = "23912345678"
    _, response = await client.post(f"{ADMIN}/staff", json=new_staff_body(name=PLANTED_NAME, phone=bad_phone), headers=hz_admin)
    assert_error(response, 422, "INVALID_PHONE")
    assert_nothing_echoed(response, bad_phone, PLANTED_NAME)
    assert await counts() == before


PII_BODIES = [
    # (route, who, body or raw bytes, status, code)
    (f"{ME}/consents", "customer", {"purpose": "credit_bureau", "id_number": PLANTED_ID_NUMBER, "name": PLANTED_NAME, "phone": PLANTED_PHONE}, 422, "FIELD_NOT_ALLOWED"),
    (f"{ME}/consents", "customer", {"purpose": PLANTED_ID_NUMBER}, 422, "UNKNOWN_CONSENT_PURPOSE"),
    (f"{ME}/consents", "customer", {"purpose": {"id_number": PLANTED_ID_NUMBER}}, 422, "VALIDATION_FAILED"),
    (f"{ME}/consents", "customer", b'{"purpose": "' + PLANTED_ID_NUMBER.encode() + b'", "phone": "' + PLANTED_PHONE.encode(), 400, "MALFORMED_JSON"),
    (f"{ADMIN}/staff", "admin", new_staff_body(name=PLANTED_NAME * 30, phone=PLANTED_PHONE), 422, "VALIDATION_FAILED"),
    (f"{ADMIN}/staff", "admin", new_staff_body(name=PLANTED_NAME, phone=PLANTED_PHONE * 2), 422, "VALIDATION_FAILED"),
    (f"{ADMIN}/staff", "admin", new_staff_body(name=PLANTED_NAME, phone=PLANTED_PHONE, username=f"Hz.{PLANTED_ID_NUMBER}"), 422, "VALIDATION_FAILED"),
    (f"{ADMIN}/staff", "admin", new_staff_body(name=PLANTED_NAME, phone=PLANTED_PHONE, password=PLANTED_ID_NUMBER[:4]), 400, "INVALID_INPUT"),
    (f"{ADMIN}/staff", "admin", new_staff_body(name=PLANTED_NAME, phone=PLANTED_PHONE, id_number=PLANTED_ID_NUMBER), 422, "FIELD_NOT_ALLOWED"),
    (f"{ADMIN}/customers/1/unmask", "senior", {"field": "passport", "reason": f"{PLANTED_NAME} {PLANTED_ID_NUMBER}"}, 422, "VALIDATION_FAILED"),
    (LOGIN, None, {"username": PLANTED_PHONE, "password": PLANTED_ID_NUMBER}, 401, "INVALID_CREDENTIALS"),
    (LOGIN, None, {"username": PLANTED_NAME * 40, "password": PLANTED_ID_NUMBER}, 422, "VALIDATION_FAILED"),
]


@pytest.mark.parametrize("path, who, body, status, code", PII_BODIES)
async def test_errors_never_echo_personal_data(client, app, demo, path, who, body, status, code):
    headers = await headers_for(client, app, who)
    before = await counts()
    if isinstance(body, bytes):
        _, response = await client.post(path, content=body, headers={**headers, **JSON})
    else:
        _, response = await client.post(path, json=body, headers=headers)
    assert_error(response, status, code)
    assert_nothing_echoed(response, PLANTED_ID_NUMBER, PLANTED_PHONE, PLANTED_NAME)
    assert await counts() == before


# --- refusals change nothing ---------------------------------------------------------------------


async def test_refused_staff_creations_change_nothing(client, hz_admin):
    ls_bank = await bank_id("LSRCB")
    refused = [
        (new_staff_body(bank_id=ls_bank), 404, "NOT_FOUND"),
        (new_staff_body(roles=["association_admin"]), 422, "INVALID_ROLES"),
        (new_staff_body(roles=["root"]), 422, "INVALID_ROLES"),
        (new_staff_body(username="hz.manager"), 409, "USERNAME_TAKEN"),
        (new_staff_body(password="short"), 400, "INVALID_INPUT"),
        (new_staff_body(roles=["bank_admin"], is_active=True), 422, "FIELD_NOT_ALLOWED"),
    ]
    before = await counts()
    for body, status, code in refused:
        _, response = await client.post(f"{ADMIN}/staff", json=body, headers=hz_admin)
        assert_error(response, status, code)
    assert await counts() == before


async def test_a_staff_creation_without_the_permission_is_403_and_changes_nothing(client, demo):
    headers = bearer(await staff_token(client, "hz.manager"))
    before = await counts()
    _, response = await client.post(f"{ADMIN}/staff", json=new_staff_body(), headers=headers)
    assert_error(response, 403, "FORBIDDEN")
    assert await counts() == before


async def test_a_refused_idempotent_request_stores_nothing_and_the_key_can_be_reused(client, hz_admin):
    key = new_key()
    _, refused = await client.post(f"{ADMIN}/staff", json=new_staff_body(roles=["root"]), headers={**hz_admin, "Idempotency-Key": key})
    assert_error(refused, 422, "INVALID_ROLES")
    _, created = await client.post(f"{ADMIN}/staff", json=new_staff_body(), headers={**hz_admin, "Idempotency-Key": key})
    assert created.status == 201, created.text


async def test_association_creating_staff_for_a_bank_that_does_not_exist_is_404(client, assoc_admin):
    before = await counts()
    _, response = await client.post(f"{ADMIN}/staff", json=new_staff_body(bank_id=99999, roles=["bank_admin"]), headers=assoc_admin)
    assert_error(response, 404, "NOT_FOUND")
    assert await counts() == before


async def test_association_creating_staff_with_a_bank_id_past_bigint_is_4xx(client, assoc_admin):
    before = await counts()
    _, response = await client.post(f"{ADMIN}/staff", json=new_staff_body(bank_id=2**63, roles=["bank_admin"]), headers=assoc_admin)
    assert_error(response, 422, "VALIDATION_FAILED")
    assert await counts() == before


@pytest.mark.parametrize(
    "method, path, body, who",
    [
        ("post", LOGIN, {"username": "hz.admin\u0000", "password": "Demo-pass-2026"}, None),
        ("get", f"{ADMIN}/audit?object_id=1%00", None, "admin"),
    ],
)
async def test_nul_characters_are_refused_before_any_query(client, app, demo, method, path, body, who):
    # PostgreSQL refuses NUL in text, so it must never reach a query: a 422 on every backend.
    headers = await headers_for(client, app, who)
    kwargs = {"json": body} if body is not None else {}
    _, response = await getattr(client, method)(path, headers=headers, **kwargs)
    assert_error(response, 422, "VALIDATION_FAILED")
    assert response.json["error"]["details"][0]["problem"] == "nul_character"


# --- request ids ---------------------------------------------------------------------------------


async def test_a_safe_offered_request_id_is_echoed_on_errors(client, demo):
    _, response = await client.get("/api/v1/nope", headers={"X-Request-ID": "req-0123456789"})
    assert_error(response, 404, "ROUTE_NOT_FOUND")
    assert response.headers["x-request-id"] == "req-0123456789"


async def test_an_unsafe_offered_request_id_is_replaced(client, demo):
    offered = f"x{PLANTED_PHONE}<script>"
    _, response = await client.get("/api/v1/nope", headers={"X-Request-ID": offered})
    assert_error(response, 404, "ROUTE_NOT_FOUND")
    assert response.headers["x-request-id"] != offered
    assert re.fullmatch(r"[a-p]{32}", response.headers["x-request-id"])  # minted: no digits to pass for a phone number


@pytest.mark.parametrize("lost", ["connection_does_not_exist", "admin_shutdown", "refused", "pooled_connection_closed"])
async def test_a_database_lost_under_a_request_is_a_retryable_503(client, demo, monkeypatch, lost):
    """A dropped or restarting database is the client's cue to retry (the faults drill drops every
    connection under load), not an internal error."""
    from asyncpg import exceptions as asyncpg_errors

    from api import customer

    raised = {
        "connection_does_not_exist": asyncpg_errors.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        "admin_shutdown": asyncpg_errors.AdminShutdownError("terminating connection due to administrator command"),
        "refused": ConnectionRefusedError(111, "Connect call failed"),
        "pooled_connection_closed": asyncpg_errors.InterfaceError("connection is closed"),
    }[lost]

    async def gone(**_):
        raise raised

    monkeypatch.setattr(customer.org, "bank_choices", gone)
    _, response = await client.get("/api/v1/banks")
    assert assert_error(response, 503, "DATABASE_UNAVAILABLE")["message"] == "the database did not answer; try again shortly"


async def test_misusing_a_database_connection_is_still_our_error(client, demo, monkeypatch):
    """asyncpg's InterfaceError also means a connection used wrongly: a bug to fix, not a retry."""
    from asyncpg import exceptions as asyncpg_errors

    from api import customer

    async def misused(**_):
        raise asyncpg_errors.InterfaceError("cannot perform operation: another operation is in progress")

    monkeypatch.setattr(customer.org, "bank_choices", misused)
    _, response = await client.get("/api/v1/banks")
    assert_error(response, 500, "INTERNAL_ERROR")


def test_a_client_that_hung_up_is_not_logged_as_our_error(caplog):
    """A phone that lost its signal, or a health check that gave up, cancels its request: that is
    no fault of ours, and an ERROR line would page someone for nothing."""
    import logging

    from sanic.exceptions import RequestCancelled

    from api.errors import JsonErrorHandler

    with caplog.at_level(logging.INFO, logger="api.errors"):
        JsonErrorHandler().default(None, RequestCancelled())
        JsonErrorHandler().default(None, RuntimeError("a real bug"))
    levels = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "api.errors"]
    assert levels == [("INFO", "client went away before the answer"), ("ERROR", "unhandled error")]
