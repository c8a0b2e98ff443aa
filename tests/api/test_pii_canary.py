"""PII canary: plant a distinctive ID number, phone and name, drive the platform through its usual
paths and some failures, then search every table, every captured log line and every response for
the clear values. Only the one audited unmask response may carry a clear value."""

from __future__ import annotations

import io
import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date

from tortoise import Tortoise, connections

from infra import pii
from infra.actors import system
from infra.identity_numbers import make_test_id_number
from infra.logs import JsonFormatter
from lending_core.customers import service as customers
from lending_core.org.models import Bank
from tests.support import bearer, customer_token, new_key, staff_token

# A birth date no demo or fixture uses (29 February 1904), with a check character of X.
PLANTED_ID = make_test_id_number("130124", date(1904, 2, 29), 57)
PLANTED_PHONE = "19923456781"
PLANTED_NAME = "慕容雪霁"
PLANTED_STAFF_PHONE = "17765432109"
PLANTED_STAFF_NAME = "诸葛晴岚"

LOGGERS = ("", "sanic.root", "sanic.error", "sanic.access", "sanic.server", "sanic.websockets", "server", "api.errors")


def clear_forms(value: str) -> set[str]:
    """The spellings a clear value could be stored or logged in."""
    forms = {value, value.lower(), value.upper()}
    if value.isdigit() and len(value) == 11:  # a phone, maybe grouped
        forms |= {f"{value[:3]} {value[3:7]} {value[7:]}", f"{value[:3]}-{value[3:7]}-{value[7:]}"}
    # JSON written with ensure_ascii escapes Chinese characters: "\\u6155\\u5bb9...".
    forms |= {json.dumps(form)[1:-1] for form in set(forms)}
    return forms


PLANTED = {
    "customer ID number": PLANTED_ID,
    "customer phone": PLANTED_PHONE,
    "customer name": PLANTED_NAME,
    "staff phone": PLANTED_STAFF_PHONE,
    "staff name": PLANTED_STAFF_NAME,
}


def leaks(text: str) -> list[str]:
    return [f"{label} as {form!r}" for label, value in PLANTED.items() for form in clear_forms(value) if form in text]


def contains_either_spelling(text: str, value: str) -> bool:
    return value in text or json.dumps(value)[1:-1] in text


def model_tables() -> list[str]:
    return [model._meta.db_table for app in Tortoise.apps.values() for model in app.values()]


async def database_dump() -> dict[str, str]:
    """Every table of the database (from the catalogue, checked against the model registry), as text."""
    connection = connections.get("default")
    if connection.capabilities.dialect == "sqlite":
        catalogue = "SELECT name AS table_name FROM sqlite_master WHERE type = 'table'"
    else:
        catalogue = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
    tables = sorted(row["table_name"] for row in await connection.execute_query_dict(catalogue))
    missing = set(model_tables()) - set(tables)
    assert not missing, f"the catalogue query missed {missing}"
    dump = {}
    for table in tables:
        rows = await connection.execute_query_dict(f'SELECT * FROM "{table}"')
        dump[table] = "\n".join(" | ".join(_as_text(value) for value in row.values()) for row in rows)
    return dump


def _as_text(value) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


@contextmanager
def captured_logs():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.DEBUG)
    loggers = [logging.getLogger(name) for name in LOGGERS]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield stream
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


@dataclass
class Responses:
    bodies: dict[str, str] = field(default_factory=dict)

    def keep(self, label: str, response, status: int):
        assert response.status == status, f"{label}: {response.status} {response.text}"
        self.bodies[label] = response.text
        return response


async def drive_the_platform(app, responses: Responses) -> dict:
    """Register, sign in, create staff, consent, list, unmask, and fail in several ways."""
    client = app.asgi_client
    bank = await Bank.get(code="HZRCB")
    customer = await customers.register(
        system("canary"), name=PLANTED_NAME, id_number=PLANTED_ID, phone=PLANTED_PHONE, bank_id=bank.id, channel="branch"
    )

    admin = bearer(await staff_token(client, "hz.admin"))
    _, created = await client.post(
        "/api/v1/admin/staff",
        headers={**admin, "Idempotency-Key": new_key()},
        json={
            "username": "hz.canary",
            "name": PLANTED_STAFF_NAME,
            "phone": PLANTED_STAFF_PHONE,
            "roles": ["account_manager"],
            "password": "Canary-pass-2026!",
        },
    )
    responses.keep("create staff", created, 201)

    me = bearer(await customer_token(app, customer.id, bank.id))
    _, consent = await client.post("/api/v1/me/consents", headers={**me, "Idempotency-Key": new_key()}, json={"purpose": "credit_bureau"})
    responses.keep("give consent", consent, 201)
    _, profile = await client.get("/api/v1/me", headers=me)
    responses.keep("customer profile", profile, 200)

    manager = bearer(await staff_token(client, "hz.manager"))
    _, listed = await client.get("/api/v1/admin/customers", headers=manager)
    responses.keep("list customers", listed, 200)
    _, staff_list = await client.get("/api/v1/admin/staff", headers=admin)
    responses.keep("list staff", staff_list, 200)
    _, trail = await client.get("/api/v1/admin/audit", headers=admin)
    responses.keep("audit trail", trail, 200)

    senior = bearer(await staff_token(client, "hz.senior"))
    _, unmasked = await client.post(
        f"/api/v1/admin/customers/{customer.id}/unmask",
        headers=senior,
        json={"field": "id_number", "reason": "客户来电核实身份"},
    )
    assert unmasked.status == 200, unmasked.text
    unmask_body = unmasked.text

    # Failures carrying the planted values in their bodies, paths and credentials.
    failures = [
        ("staff with an ID number as phone", "post", "/api/v1/admin/staff", admin,
         {"username": "hz.canary2", "name": PLANTED_NAME, "phone": PLANTED_ID, "roles": ["account_manager"], "password": "Canary-pass-2026!"}, 422),
        ("staff with a name as username", "post", "/api/v1/admin/staff", admin,
         {"username": PLANTED_NAME, "name": PLANTED_NAME, "phone": PLANTED_PHONE, "roles": ["account_manager"], "password": PLANTED_ID}, 422),
        ("staff with unknown field", "post", "/api/v1/admin/staff", admin,
         {"username": "hz.canary3", "name": PLANTED_STAFF_NAME, "id_number": PLANTED_ID, "roles": ["account_manager"], "password": "x"}, 422),
        ("login with a phone as username", "post", "/api/v1/staff/login", {},
         {"username": PLANTED_PHONE, "password": PLANTED_ID}, 401),
        ("login to the planted staff with a wrong password", "post", "/api/v1/staff/login", {},
         {"username": "hz.canary", "password": f"{PLANTED_STAFF_NAME}{PLANTED_STAFF_PHONE}"}, 401),
        ("consent with a name as purpose", "post", "/api/v1/me/consents", {**me, "Idempotency-Key": new_key()},
         {"purpose": PLANTED_NAME}, None),
        ("unmask an unknown field", "post", f"/api/v1/admin/customers/{customer.id}/unmask", senior,
         {"field": PLANTED_ID, "reason": PLANTED_NAME + PLANTED_PHONE}, 422),
        ("unmask refused to a manager", "post", f"/api/v1/admin/customers/{customer.id}/unmask", manager,
         {"field": "phone", "reason": "想看看" + PLANTED_NAME}, 403),
        ("customer looked up by ID number in the path", "get", f"/api/v1/admin/customers/{PLANTED_ID}", manager, None, 404),
    ]
    for label, method, path, headers, body, status in failures:
        send = getattr(client, method)
        _, response = await (send(path, headers=headers, json=body) if body is not None else send(path, headers=headers))
        assert response.status >= 400, f"{label}: expected a refusal, got {response.status} {response.text}"
        if status is not None:
            assert response.status == status, f"{label}: {response.status} {response.text}"
        responses.bodies[label] = response.text
    _, malformed = await client.post(
        "/api/v1/admin/staff", headers={**admin, "Content-Type": "application/json"},
        data=f'{{"name": "{PLANTED_NAME}", "phone": "{PLANTED_PHONE}", "id": "{PLANTED_ID}"',
    )
    responses.keep("malformed JSON", malformed, 400)

    return {"customer": customer, "unmask_body": unmask_body}


async def test_planted_personal_data_appears_nowhere_in_clear(app, demo):
    responses = Responses()
    with captured_logs() as log_stream:
        result = await drive_the_platform(app, responses)
        logging.getLogger("tests.canary").warning(
            "a careless line about customer %s, phone %s", PLANTED_ID, PLANTED_PHONE
        )
    logs = log_stream.getvalue()
    dump = await database_dump()

    # The one place a clear value may appear: the audited unmask response.
    assert json.loads(result["unmask_body"]) == {"field": "id_number", "value": PLANTED_ID}

    # We looked in the right places: the masked forms are there.
    assert pii.mask_phone(PLANTED_PHONE) in responses.bodies["list customers"]
    assert pii.mask_name(PLANTED_NAME) in responses.bodies["list customers"]
    assert pii.mask_id_number(PLANTED_ID) in responses.bodies["list customers"]
    assert pii.mask_phone(PLANTED_STAFF_PHONE) in responses.bodies["create staff"]
    assert pii.mask_name(PLANTED_STAFF_NAME) in responses.bodies["list staff"]
    assert pii.mask_id_number(PLANTED_ID) in logs and pii.mask_phone(PLANTED_PHONE) in logs  # the careless line
    assert '"path":"/api/v1/admin/customers/' in logs  # the request log lines were captured
    assert "api.errors" in logs  # and so were the refusals
    audit_rows = dump["audit_entry"]
    assert contains_either_spelling(audit_rows, pii.mask_id_number(PLANTED_ID))  # customer.register
    assert contains_either_spelling(audit_rows, pii.mask_name(PLANTED_STAFF_NAME))  # staff.create
    assert "pii.unmask" in audit_rows
    assert pii.is_ciphertext(next(line for line in dump["customer"].split(" | ") if line.startswith("v1.")))
    assert dump["idempotency_record"]  # the stored responses were searched too

    # And nowhere in clear.
    problems = [f"table {table}: {leak}" for table, text in dump.items() for leak in leaks(text)]
    problems += [f"logs: {leak}" for leak in leaks(logs)]
    problems += [f"response to {label!r}: {leak}" for label, body in responses.bodies.items() for leak in leaks(body)]
    assert problems == []


def test_the_planted_values_are_what_the_canary_claims():
    assert PLANTED_ID.endswith("X")  # so the lower-case variant is a real variant
    assert PLANTED_ID.lower() in clear_forms(PLANTED_ID)
    assert "\\u6155\\u5bb9\\u96ea\\u9701" in clear_forms(PLANTED_NAME)
    assert leaks(f"xx{PLANTED_ID.lower()}xx") and leaks("199-2345-6781") and not leaks(pii.mask_id_number(PLANTED_ID))


async def test_an_id_or_phone_typed_into_a_reason_is_not_stored_in_clear(app, demo):
    client = app.asgi_client
    bank = await Bank.get(code="HZRCB")
    customer = await customers.register(
        system("canary"), name=PLANTED_NAME, id_number=PLANTED_ID, phone=PLANTED_PHONE, bank_id=bank.id, channel="branch"
    )
    senior = bearer(await staff_token(client, "hz.senior"))

    _, response = await client.post(
        f"/api/v1/admin/customers/{customer.id}/unmask",
        headers=senior,
        json={"field": "phone", "reason": f"客户来电，自报身份证 {PLANTED_ID}，手机 {PLANTED_PHONE}"},
    )
    assert response.status == 200, response.text

    audit_rows = (await database_dump())["audit_entry"]
    assert "pii.unmask" in audit_rows
    assert contains_either_spelling(audit_rows, "客户来电")  # the reason itself is kept
    assert PLANTED_ID not in audit_rows
    assert PLANTED_PHONE not in audit_rows
