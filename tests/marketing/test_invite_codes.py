"""Everyone has one invite code, made on first ask, served with its images: a plain QR (PNG and
SVG), a mini-program code drawn by WeChat once and then kept, and a share poster."""

from __future__ import annotations

import asyncio
import io

from PIL import Image

from infra.audit import AuditEntry
from lending_core.org.models import Bank
from marketing import codes, qr
from marketing.models import InviteCode, WxaCodeImage
from tests.marketing.support import fake_calls, new_customer
from tests.marketing.test_qr import expected_modules, modules_in_png
from tests.support import StaffConsole, bearer, customer_token, openapi_document

CODE = "/api/v1/invite-code"
STAFF_CODE = "/api/v1/admin/invite-code"


async def signed_in_customer(app, bank: str = "HZRCB") -> tuple[int, dict]:
    customer = await new_customer(bank=bank)
    bank_id = (await Bank.get(code=bank)).id
    return customer.id, bearer(await customer_token(app, customer.id, bank_id))


async def test_a_customer_gets_one_code_however_often_they_ask(app, client, demo):
    customer_id, headers = await signed_in_customer(app)

    answers = await asyncio.gather(*(client.get(CODE, headers=headers) for _ in range(5)))

    bodies = [response.json for _, response in answers]
    assert all(response.status == 200 for _, response in answers), [r.text for _, r in answers]
    assert len({body["code"] for body in bodies}) == 1
    assert codes.normalise(bodies[0]["code"]) == bodies[0]["code"]
    assert await InviteCode.filter(customer_id=customer_id).count() == 1
    assert await AuditEntry.filter(action="invite_code.create").count() == 1
    body = bodies[0]
    assert body["owner_kind"] == "customer"
    assert body["bank_id"] == (await Bank.get(code="HZRCB")).id
    assert body["deep_link"] == f"pages/index/index?scene={body['code']}"
    assert body["images"]["poster.png"] == f"{CODE}/poster.png"


async def test_a_staff_member_gets_a_code_of_their_bank(client, demo):
    staff = StaffConsole(client)

    first = await staff.get("ls.manager", STAFF_CODE)
    again = await staff.get("ls.manager", STAFF_CODE)
    other = await staff.get("hz.manager", STAFF_CODE)

    assert first.status == 200, first.text
    assert first.json["code"] == again.json["code"] != other.json["code"]
    assert first.json["owner_kind"] == "staff"
    assert first.json["bank_id"] == (await Bank.get(code="LSRCB")).id
    assert first.json["images"]["wxacode.png"] == f"{STAFF_CODE}/wxacode.png"


async def test_invite_codes_need_a_sign_in(client, demo):
    for path in (CODE, f"{CODE}/qr.png", f"{STAFF_CODE}/poster.png"):
        _, response = await client.get(path)
        assert response.status == 401, path


async def test_a_customer_token_does_not_open_the_staff_routes(app, client, demo):
    _, headers = await signed_in_customer(app)

    _, response = await client.get(STAFF_CODE, headers=headers)

    assert response.status == 401


async def test_the_qr_png_carries_the_deep_link_of_the_callers_code(app, client, demo):
    _, headers = await signed_in_customer(app)
    code = (await client.get(CODE, headers=headers))[1].json["code"]

    _, response = await client.get(f"{CODE}/qr.png", headers=headers)

    assert response.status == 200
    assert response.headers["content-type"] == "image/png"
    assert "max-age" in response.headers["cache-control"]
    assert modules_in_png(response.content) == expected_modules(f"pages/index/index?scene={code}")


async def test_the_qr_svg_is_served_as_svg(app, client, demo):
    _, headers = await signed_in_customer(app)

    _, response = await client.get(f"{CODE}/qr.svg", headers=headers)

    assert response.status == 200
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.content.lstrip().startswith(b"<svg")


async def test_the_mini_program_code_is_drawn_by_wechat_once_then_served_from_our_copy(app, client, demo, fake_wechat):
    _, headers = await signed_in_customer(app)
    code = (await client.get(CODE, headers=headers))[1].json["code"]
    before = await fake_calls(fake_wechat, "getwxacodeunlimit")

    _, first = await client.get(f"{CODE}/wxacode.png", headers=headers)
    after_first = await fake_calls(fake_wechat, "getwxacodeunlimit")
    _, second = await client.get(f"{CODE}/wxacode.png", headers=headers)
    after_second = await fake_calls(fake_wechat, "getwxacodeunlimit")

    assert first.status == second.status == 200, first.text
    assert first.headers["content-type"] == "image/png"
    assert after_first == before + 1, "the first request asks WeChat"
    assert after_second == after_first, "the second is served from our copy"
    assert second.content == first.content
    # The fake draws a QR of "<page>?scene=<code>": WeChat was asked for this code's page.
    assert (await WxaCodeImage.get(invite_code__code=code)).page == "pages/index/index"


async def test_another_width_is_another_drawing_and_odd_widths_are_refused(app, client, demo, fake_wechat):
    _, headers = await signed_in_customer(app)
    before = await fake_calls(fake_wechat, "getwxacodeunlimit")

    _, wide = await client.get(f"{CODE}/wxacode.png?width=860", headers=headers)
    _, odd = await client.get(f"{CODE}/wxacode.png?width=431", headers=headers)

    assert wide.status == 200
    assert odd.status == 422
    assert await fake_calls(fake_wechat, "getwxacodeunlimit") == before + 1


async def test_the_poster_is_a_png_of_the_share_size(app, client, demo):
    _, headers = await signed_in_customer(app)

    _, response = await client.get(f"{CODE}/poster.png?product=SHUIYITONG", headers=headers)

    assert response.status == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).size == qr.POSTER_SIZE


async def test_the_poster_falls_back_to_the_plain_qr_when_wechat_is_busy(app, client, demo, fake_wechat):
    import httpx

    staff = StaffConsole(client)
    async with httpx.AsyncClient(base_url=fake_wechat) as http:
        await http.post("__fake__/faults", json={"endpoint": "getwxacodeunlimit", "errcode": -1, "times": 1})

    response = await staff.get("yx.manager", f"{STAFF_CODE}/poster.png")

    assert response.status == 200, response.text
    assert Image.open(io.BytesIO(response.content)).size == qr.POSTER_SIZE
    assert await WxaCodeImage.all().count() == 0, "nothing was kept from the failed call"


async def test_a_poster_for_an_unknown_product_is_refused(app, client, demo):
    _, headers = await signed_in_customer(app)

    _, response = await client.get(f"{CODE}/poster.png?product=NOSUCH", headers=headers)

    assert response.status == 404
    assert response.json["error"]["code"] == "PRODUCT_NOT_FOUND"


async def test_the_marketing_routes_are_described_in_openapi(settings, redis):
    _, document = await openapi_document(settings, redis)
    paths = document["paths"]
    for path, method in {
        "/api/v1/invite-code": "get",
        "/api/v1/invite-code/qr.png": "get",
        "/api/v1/invite-code/qr.svg": "get",
        "/api/v1/invite-code/wxacode.png": "get",
        "/api/v1/invite-code/poster.png": "get",
        "/api/v1/admin/invite-code": "get",
        "/api/v1/admin/invite-code/poster.png": "get",
        "/api/v1/invite-codes/{code}/scans": "post",
        "/api/v1/referrals": "get",
        "/api/v1/admin/referrals/summary": "get",
    }.items():
        assert method in paths.get(path, {}), path
    assert paths["/api/v1/invite-code/poster.png"]["get"]["responses"]["200"]["content"].keys() == {"image/png"}
