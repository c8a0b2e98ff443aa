"""What a door sees after the lending core decided: the partner platform follows the applicants
it referred, and the mini-program customer is told the result by a subscribe message."""

from __future__ import annotations

import httpx

from fakes.wechat import openid_for
from infra.outbox import OutboxMessage, relay_once
from lending_core.applications.models import Application
from server.demo_data import DEMO_PARTNER_KEY, DEMO_PARTNER_SECRET
from server.handlers import outbox_handlers
from tests.channels.signed_client import signed_request
from tests.lending.flows import LOAN, applicant

DECIDED = "lending.application_decided"


async def test_a_partner_lists_the_products_a_bank_offers_on_its_channel(client, demo):
    response = await signed_request(client, DEMO_PARTNER_KEY, DEMO_PARTNER_SECRET, "GET", "/api/v1/open/products?bank_code=HZRCB")

    assert response.status == 200, response.text
    codes = {item["code"] for item in response.json["items"]}
    assert "SHUIYITONG" in codes  # offered on gov_platform
    assert "YUNXIEDAI" not in codes  # the county bank's own product


async def test_a_partner_follows_the_application_of_the_applicant_it_referred(client, demo):
    customer = await applicant(client, "small_firm", bank="HZRCB")
    handover = {
        "external_ref": "SME-FOLLOW-1",
        "bank_code": "HZRCB",
        "name": customer.name,
        "id_number": customer.id_number,
        "phone": customer.phone,
        "consents": ["personal_information", "credit_bureau"],
        "product_code": "SHUIYITONG",
    }
    referral = await signed_request(client, DEMO_PARTNER_KEY, DEMO_PARTNER_SECRET, "POST", "/api/v1/open/applicants", handover)
    assert referral.status == 201, referral.text
    application = await customer.applied(**LOAN)

    followed = await signed_request(client, DEMO_PARTNER_KEY, DEMO_PARTNER_SECRET, "GET", f"/api/v1/open/referrals/{referral.json['id']}")

    assert followed.status == 200, followed.text
    assert followed.json["applications"] == [
        {"product_code": "SHUIYITONG", "status": application["status"], "created_at": followed.json["applications"][0]["created_at"], "decided_at": followed.json["applications"][0]["decided_at"]}
    ]
    assert "limit_yuan" not in str(followed.json)  # a partner learns the status, not the terms


async def test_a_mini_program_customer_is_told_the_decision(client, app, demo, fake_wechat):
    customer = await applicant(client, "small_firm", bank="HZRCB")
    application = await customer.applied(**LOAN)
    assert await OutboxMessage.filter(topic=DECIDED).count() == 1

    await relay_once(outbox_handlers(app.ctx.settings, app.ctx.providers))

    assert await OutboxMessage.filter(topic=DECIDED, status="sent").count() == 1
    openid = openid_for(app.ctx.settings.wechat_appid, customer.wechat_user)
    async with httpx.AsyncClient() as http:
        messages = (await http.get(f"{fake_wechat}__fake__/messages")).json()
    mine = [m for m in messages if m["touser"] == openid]
    assert len(mine) == 1
    assert mine[0]["template_id"] == app.ctx.settings.wechat_templates["application_result"]
    assert mine[0]["data"]["character_string3"]["value"] == str(application["id"])
    assert (await Application.get(id=application["id"])).status == application["status"]
