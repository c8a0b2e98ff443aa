"""The products a declined applicant may be re-invited to (GET …/reinvitation-offers), which the
console's 我的营销 page offers in its re-invitation form: the bank's products but the one declined,
each one a re-invitation the API then accepts; for staff who may follow the applicant up only."""

from __future__ import annotations

import pytest

from lending_core.applications.models import Application
from lending_core.org.models import Bank
from lending_core.products import service as products
from tests.marketing.staff_story import code_of, declined_application, referral, utc
from tests.support import StaffConsole

pytestmark = pytest.mark.usefixtures("demo")

APPLICANTS = "/api/v1/admin/secondary-marketing/applicants"


@pytest.fixture
def console(client) -> StaffConsole:
    return StaffConsole(client)


async def declined_here() -> Application:
    """A person hz.manager's code brought, declined for SHUIYITONG at HZRCB."""
    person = await referral(await code_of("hz.manager"), at=utc(2026, 11, 2))
    return await declined_application(await person.referee)


async def test_the_offers_are_the_banks_products_but_the_one_declined_and_each_can_be_sent(console):
    application = await declined_here()
    bank = await Bank.get(code="HZRCB")
    expected = sorted(o.product.code for o in await products.offers(bank.id, None) if o.product.code != "SHUIYITONG")

    response = await console.get("hz.manager", f"{APPLICANTS}/{application.id}/reinvitation-offers")

    assert response.status == 200, response.text
    codes = [item["code"] for item in response.json["items"]]
    assert sorted(codes) == expected and "SHUIYITONG" not in codes and len(codes) >= 2
    assert all(item["name"] for item in response.json["items"])
    for code in codes[:2]:
        sent = await console.post("hz.manager", f"{APPLICANTS}/{application.id}/reinvitations", {"product_code": code, "channel": "sms"})
        assert sent.status == 201, sent.text


async def test_the_offers_are_refused_to_other_banks_to_readers_and_for_other_applications(console):
    application = await declined_here()
    approved = await declined_here()
    await Application.filter(id=approved.id).update(status="approved", customer_reasons=[])

    other_bank = await console.get("ls.marketer", f"{APPLICANTS}/{application.id}/reinvitation-offers")
    no_follow_up = await console.get("hz.reviewer", f"{APPLICANTS}/{application.id}/reinvitation-offers")
    not_declined = await console.get("hz.manager", f"{APPLICANTS}/{approved.id}/reinvitation-offers")

    assert (other_bank.status, no_follow_up.status, not_declined.status) == (404, 403, 404)
    assert "SHUIYITONG" not in other_bank.text + no_follow_up.text + not_declined.text
