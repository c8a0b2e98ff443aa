"""Marketing for customers and staff: invite codes and their QR images, scans, referrals.

A customer's routes are under ``/api/v1/invite-code`` and ``/api/v1/referrals``, a staff
member's under ``/api/v1/admin/invite-code`` and ``/api/v1/admin/referrals``; recording a scan
needs no sign-in (the person scanning has none yet) and is rate-limited per device and network.
Binding a new customer to their inviter happens at mini-program login, with the ``scene``
(``api.channels``). Images are drawn off the event loop and may be cached by the client for a day:
a code's images never change.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from pydantic import Field, field_validator
from sanic import Blueprint, Request, response
from sanic_ext.extensions.openapi import openapi

from api import presenters
from api.auth import caller_address, customer_required, staff_required
from api.pagination import PageQuery, page
from api.validation import Body, ObjectId, Query, json_body, query_params
from infra.errors import DependencyUnavailable
from marketing import qr, rollups
from marketing import service as invites
from marketing.codes import InviteLinks

bp = Blueprint("marketing", url_prefix="/api/v1")

IMAGE_CACHE = "private, max-age=86400"
WXA_WIDTHS = (280, 430, 860, 1280)
DEVICE_HEADER = "x-device-id"


class ScanBody(Body):
    channel: Literal["wxacode", "qr", "poster", "share_card", "link"] = Field(description="how the code was seen")
    device_id: str | None = Field(None, min_length=8, max_length=128, description="the install id the mini-program keeps in its storage")


class WxaCodeQuery(Query):
    width: int = Field(430, description=f"one of {', '.join(map(str, WXA_WIDTHS))} (each width is one WeChat call, once)")

    @field_validator("width")
    @classmethod
    def known_width(cls, value: int) -> int:
        if value not in WXA_WIDTHS:
            raise ValueError(f"width must be one of {WXA_WIDTHS}")
        return value


class PosterQuery(Query):
    product: str | None = Field(None, min_length=1, max_length=32, description="a product code to name on the poster")
    image: Literal["wxacode", "qr"] = Field("wxacode", description="the mini-program code (falls back to the plain QR if WeChat is unreachable) or the plain QR")


class SummaryQuery(Query):
    staff_id: ObjectId | None = None
    branch_id: ObjectId | None = None
    bank_id: ObjectId | None = Field(None, description="association staff: one bank (default: every bank)")


def _links(request: Request) -> InviteLinks:
    return InviteLinks(url_template=request.app.ctx.settings.extra.get("invite_link_template") or None)


def _png(body: bytes) -> response.HTTPResponse:
    return response.raw(body, content_type="image/png", headers={"Cache-Control": IMAGE_CACHE})


def device_of(request: Request) -> str | None:
    """The caller's device id header, when it looks like one (marketing counts devices, never trusts them)."""
    value = request.headers.get(DEVICE_HEADER, "").strip()
    return value if 8 <= len(value) <= 128 else None


def _own_code_routes(prefix: str, audience: str, auth) -> None:
    """The same five routes for a customer's code and a staff member's."""
    base = f"{prefix}/invite-code"

    @bp.get(base, name=f"{audience}_invite_code")
    @openapi.summary(f"The {audience}'s invite code (made on first ask) and where its images are")
    @auth
    async def invite_code(request: Request):
        invite = await invites.my_code(request.ctx.actor, device_id=device_of(request))
        links = _links(request)
        return response.json(
            presenters.invite_code(
                invite, page_path=links.page_path(invite.code), deep_link=links.deep_link(invite.code), images_base=f"/api/v1{base}"
            )
        )

    @bp.get(f"{base}/qr.png", name=f"{audience}_invite_qr_png")
    @openapi.summary("The invite code as a plain QR (PNG) carrying the deep link")
    @openapi.response("200", {"image/png": bytes})
    @auth
    async def qr_png(request: Request):
        invite = await invites.my_code(request.ctx.actor)
        return _png(await asyncio.to_thread(qr.qr_png, _links(request).deep_link(invite.code)))

    @bp.get(f"{base}/qr.svg", name=f"{audience}_invite_qr_svg")
    @openapi.summary("The invite code as a plain QR (SVG) carrying the deep link")
    @openapi.response("200", {"image/svg+xml": bytes})
    @auth
    async def qr_svg(request: Request):
        invite = await invites.my_code(request.ctx.actor)
        body = await asyncio.to_thread(qr.qr_svg, _links(request).deep_link(invite.code))
        return response.raw(body, content_type="image/svg+xml", headers={"Cache-Control": IMAGE_CACHE})

    @bp.get(f"{base}/wxacode.png", name=f"{audience}_invite_wxacode")
    @openapi.summary("The invite code as a WeChat mini-program code (drawn by WeChat once, then kept)")
    @openapi.parameter("width", int, "query", description=f"one of {WXA_WIDTHS}; default 430")
    @openapi.response("200", {"image/png": bytes})
    @auth
    @query_params(WxaCodeQuery)
    async def wxacode(request: Request, query: WxaCodeQuery):
        invite = await invites.my_code(request.ctx.actor)
        png = await invites.mini_program_code(invite, request.app.ctx.providers.mini_program, page=_links(request).page, width=query.width)
        return _png(png)

    @bp.get(f"{base}/poster.png", name=f"{audience}_invite_poster")
    @openapi.summary("A share poster: the product, the inviter's masked name, the code image and the code")
    @openapi.parameter("product", str, "query", description="a product code to name on the poster")
    @openapi.parameter("image", str, "query", description="wxacode (default) or qr")
    @openapi.response("200", {"image/png": bytes})
    @auth
    @query_params(PosterQuery)
    async def poster(request: Request, query: PosterQuery):
        invite = await invites.my_code(request.ctx.actor)
        links = _links(request)
        image, wechat_code = None, query.image == "wxacode"
        if wechat_code:
            try:
                image = await invites.mini_program_code(invite, request.app.ctx.providers.mini_program, page=links.page, width=430)
            except DependencyUnavailable:
                wechat_code = False  # WeChat busy or away: the plain QR still brings people in
        if image is None:
            image = await asyncio.to_thread(qr.qr_png, links.deep_link(invite.code))
        text = await invites.poster_text(invite, query.product, wechat_code=wechat_code)
        return _png(await asyncio.to_thread(qr.poster_png, text, image))


_own_code_routes("", "customer", customer_required)
_own_code_routes("/admin", "staff", staff_required())


@bp.post("/invite-codes/<code:str>/scans")
@openapi.summary("Record a scan or open of an invite code (no sign-in; limited per device and network)")
@openapi.response("429", description="too many scans from this device or address: see Retry-After")
@json_body(ScanBody)
async def record_scan(request: Request, code: str, body: ScanBody):
    scanned = await invites.record_scan(
        request.app.ctx.redis,
        code,
        channel=body.channel,
        device_id=body.device_id,
        ip=caller_address(request),
        key_prefix=request.app.ctx.settings.redis_key_prefix,
    )
    return response.json(presenters.scan(scanned), status=201)


@bp.get("/referrals")
@openapi.summary("The people the signed-in customer invited, masked, with how far each got")
@openapi.parameter("limit", int, "query")
@openapi.parameter("after", int, "query")
@customer_required
@query_params(PageQuery)
async def my_referrals(request: Request, query: PageQuery):
    return response.json(await page(invites.my_referees(request.ctx.actor), query, presenters.referee))


@bp.get("/admin/referrals/summary")
@openapi.summary("Referrals per stage for a staff member, a branch or the bank (the caller's bank only)")
@openapi.parameter("staff_id", int, "query")
@openapi.parameter("branch_id", int, "query")
@openapi.parameter("bank_id", int, "query", description="association staff: one bank")
@staff_required()
@query_params(SummaryQuery)
async def referral_summary(request: Request, query: SummaryQuery):
    summary = await rollups.summary(request.ctx.actor, staff_id=query.staff_id, branch_id=query.branch_id, bank_id=query.bank_id)
    return response.json(presenters.referral_summary(summary))
