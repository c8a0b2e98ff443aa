"""A member bank tunes a province-wide product within the bounds the association set (M10)."""

from __future__ import annotations

from infra.audit import AuditEntry
from lending_core.products.models import BankProductSetting
from tests.lending.flows import LOAN, applicant
from tests.support import StaffConsole

PARAMS = "/api/v1/admin/products/SHUIYITONG/bank-parameters"


async def put(console: StaffConsole, username: str, body: dict):
    _, response = await console.client.put(PARAMS, json=body, headers=await console.headers(username))
    return response


async def test_a_bank_raises_its_rate_floor_and_its_quotes_follow(client, demo):
    console = StaffConsole(client)
    customer = await applicant(client, "small_firm", bank="HZRCB")
    before = (await customer.quote(**LOAN)).json["annual_rate_bps"]

    response = await put(console, "hz.admin", {"params": {"rate_floor_bps": 600}})

    assert response.status == 200, response.text
    after = (await customer.quote(**LOAN)).json["annual_rate_bps"]
    assert before < 600 <= after
    assert await AuditEntry.filter(action="product.bank_parameters").count() == 1


async def test_a_bank_that_stops_offering_a_product_no_longer_quotes_it(client, demo):
    console = StaffConsole(client)
    customer = await applicant(client, "small_firm", bank="HZRCB")

    assert (await put(console, "hz.admin", {"offered": False})).status == 200

    refused = await customer.quote(**LOAN)
    assert refused.status == 422 and refused.json["error"]["code"] == "PRODUCT_NOT_OFFERED"


async def test_parameters_outside_the_bounds_or_not_overridable_are_refused(client, demo):
    console = StaffConsole(client)
    for params in ({"rate_floor_bps": 200}, {"amount_max": 999_999}, {"cooling_off_days": 0}):
        response = await put(console, "hz.admin", {"params": params})
        assert response.status == 422 and response.json["error"]["code"] == "PARAMETER_OUT_OF_BOUNDS", params
    assert await BankProductSetting.all().count() == 0


async def test_only_the_banks_own_staff_with_the_permission_set_its_parameters(client, demo):
    console = StaffConsole(client)
    assert (await put(console, "hz.marketer", {"params": {}})).status == 403
    association = await put(console, "assoc.product", {"params": {"rate_floor_bps": 400}})
    assert association.status == 422 and association.json["error"]["code"] == "PARAMETER_OUT_OF_BOUNDS"
    assert (await put(console, "ls.admin", {"params": {"rate_floor_bps": 400}})).status == 200
    assert await BankProductSetting.filter(bank__code="LSRCB").count() == 1
    assert await BankProductSetting.filter(bank__code="HZRCB").count() == 0
