"""Customers and staff driving the lending API, so a test reads as the story it tells.

A customer comes in as a persona of the data sandbox (its ID number's sequence picks what the
credit bureau, tax bureau and courts say): they log in through the mini-program, verify their
real name, give the product's consents and then quote or apply. Staff sign in once each.

Only SHUIYITONG is used: other catalogue products may change while these tests are written.
"""

from __future__ import annotations

import tomllib
import uuid
from datetime import date

from infra.identity_numbers import make_test_id_number
from integrations.data_sandbox import DEMO_PERSONAS, PERSONAS
from lending_core.applications.models import Application
from lending_core.org.models import Bank
from lending_core.products.service import CATALOGUE, read_catalogue_file
from tests.support import StaffConsole, bearer, new_key

PRODUCT = "SHUIYITONG"
PRODUCT_FILE = CATALOGUE / f"{PRODUCT}.toml"
SHUIYITONG = read_catalogue_file(PRODUCT_FILE)
# A loan SHUIYITONG allows: within its amount and term bounds, a method it offers.
LOAN = {"amount_yuan": 50_000, "term_months": 12, "repayment_method": "equal_instalment"}

LOGIN = "/api/v1/channels/wechat/login"
APPLICATIONS = "/api/v1/applications"
ADMIN = "/api/v1/admin"

_PERSONAS = {p.label: p for p in PERSONAS}


def shuiyitong_raw() -> dict:
    """The shipped definition as a plain mapping, to propose changed versions of."""
    with PRODUCT_FILE.open("rb") as handle:
        return tomllib.load(handle)


def id_number_of(persona: str, n: int = 0) -> str:
    """The ``n``-th applicant of a sandbox persona (born 1982: inside every age rule)."""
    found = _PERSONAS[persona]
    assert found.first + n <= found.last, f"{persona} has only {found.last - found.first + 1} sequence numbers"
    return make_test_id_number("320102", date(1982, 4, 10), found.first + n)


def demo_id_number(persona: str) -> str:
    """The sandbox's own demo applicant of a persona (DEMO_PERSONAS)."""
    return next(id_number for label, id_number, _, _ in DEMO_PERSONAS if label == persona)


def new_phone() -> str:
    # 139 + 8 digits ending in 1-8: the identity sandbox treats …0000 and …9999 specially.
    return f"139{uuid.uuid4().int % 10**7:07d}{uuid.uuid4().int % 8 + 1}"


async def bank_id(code: str) -> int:
    return (await Bank.get(code=code)).id


async def application_count() -> int:
    return await Application.all().count()


def error_code(response) -> str | None:
    return ((response.json or {}).get("error") or {}).get("code")


class Customer:
    """One person using the mini-program: their session follows them (real name, bank choice)."""

    def __init__(self, client, *, name: str, id_number: str, phone: str):
        self.client = client
        self.name, self.id_number, self.phone = name, id_number, phone
        self.token: str | None = None
        self.customer_id: int | None = None
        self.bank_id: int | None = None

    def headers(self, **extra: str) -> dict:
        return bearer(self.token, **extra)

    def _signed_in(self, body: dict) -> None:
        self.token = body["access_token"]
        self.customer_id = body["customer"]["id"]
        self.bank_id = body["bank_id"]

    async def get(self, path: str):
        _, response = await self.client.get(path, headers=self.headers())
        return response

    async def post(self, path: str, body: dict, *, key: str | None = None):
        headers = self.headers(**({"Idempotency-Key": key} if key else {}))
        _, response = await self.client.post(path, json=body, headers=headers)
        return response

    async def log_in(self, bank: str) -> None:
        user = self.wechat_user = f"lend{uuid.uuid4().hex[:12]}"
        _, response = await self.client.post(LOGIN, json={"code": f"{user}.1", "bank_id": await bank_id(bank)})
        assert response.status == 200, response.text
        self._signed_in(response.json)

    async def verify_real_name(self) -> None:
        response = await self.post("/api/v1/me/real-name", {"name": self.name, "id_number": self.id_number, "phone": self.phone})
        assert response.status == 200, response.text
        self._signed_in(response.json)  # the session now belongs to the verified person

    async def consent(self, *purposes: str) -> None:
        for purpose in purposes:
            response = await self.post("/api/v1/me/consents", {"purpose": purpose}, key=new_key())
            assert response.status == 201, response.text

    async def choose_bank(self, code: str) -> None:
        response = await self.post("/api/v1/me/bank", {"bank_id": await bank_id(code)})
        assert response.status == 200, response.text
        self._signed_in(response.json)

    async def quote(self, product: str = PRODUCT, **loan):
        return await self.post(f"/api/v1/products/{product}/quote", {**LOAN, **loan})

    async def apply(self, product: str = PRODUCT, *, key: str | None = "new", **loan):
        """POST /applications: a fresh Idempotency-Key unless one is given (None: no header)."""
        return await self.post(APPLICATIONS, {"product_code": product, **LOAN, **loan}, key=new_key() if key == "new" else key)

    async def applied(self, product: str = PRODUCT, **loan) -> dict:
        """Apply and expect the application to be taken (whatever the decision)."""
        response = await self.apply(product, **loan)
        assert response.status == 201, response.text
        return response.json

    async def application(self, application_id: int) -> dict:
        response = await self.get(f"{APPLICATIONS}/{application_id}")
        assert response.status == 200, response.text
        return response.json


async def applicant(
    client,
    persona: str,
    n: int = 0,
    *,
    bank: str = "HZRCB",
    name: str = "林志远",
    verified: bool = True,
    consents: tuple[str, ...] | None = SHUIYITONG.consents,
    id_number: str | None = None,
) -> Customer:
    """A persona logged in at ``bank``, real-name verified and consenting to what SHUIYITONG
    needs (each step can be left out to test its absence)."""
    customer = Customer(client, name=name, id_number=id_number or id_number_of(persona, n), phone=new_phone())
    await customer.log_in(bank)
    if verified:
        await customer.verify_real_name()
        if consents:
            await customer.consent(*consents)
    return customer


class Staff(StaffConsole):
    """The staff console: signs each member in once and makes their requests."""

    async def get(self, username: str, path: str):
        _, response = await self.client.get(path, headers=await self.headers(username))
        return response

    async def post(self, username: str, path: str, body: dict | None = None):
        _, response = await self.client.post(path, json=body or {}, headers=await self.headers(username))
        return response

    async def application(self, username: str, application_id: int) -> dict:
        response = await self.get(username, f"{ADMIN}/applications/{application_id}")
        assert response.status == 200, response.text
        return response.json

    async def review(self, username: str, application_id: int, decision: str, *, note: str = "资料已核实", limit_yuan: int | None = None):
        body = {"decision": decision, "note": note, **({"limit_yuan": limit_yuan} if limit_yuan is not None else {})}
        return await self.post(username, f"{ADMIN}/applications/{application_id}/review", body)

    async def list_person(self, username: str, level: str, id_number: str):
        response = await self.post(username, f"{ADMIN}/risk-lists", {"level": level, "id_number": id_number, "reason": "涉诉风险信息"})
        assert response.status == 201, response.text
        return response.json
