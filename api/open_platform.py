"""The open API for government and partner platforms: signed requests from registered apps,
scopes, per-app rate limits. A platform hands over an applicant with consent and follows the
applicants it referred — and only those."""

from __future__ import annotations

from pydantic import Field
from sanic import Blueprint, Request, response
from sanic_ext.extensions.openapi import openapi

from api import presenters
from api.pagination import PageQuery, page
from api.signed import signed
from api.validation import Body, Query, json_body, query_params
from channels import open_platform

bp = Blueprint("open_platform", url_prefix="/api/v1/open")


class ApplicantBody(Body):
    external_ref: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    bank_code: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=64)
    id_number: str = Field(min_length=15, max_length=18)
    phone: str = Field(min_length=11, max_length=20)
    consents: list[str] = Field(min_length=1, max_length=10)
    product_code: str | None = Field(None, max_length=32)


async def _admit(request: Request, scope: str):
    settings = request.app.ctx.settings
    await open_platform.admit(request.ctx.principal, scope, request.app.ctx.redis, settings.redis_key_prefix)
    return request.ctx.principal


class ProductsQuery(Query):
    bank_code: str = Field(min_length=1, max_length=32)


@bp.get("/products")
@openapi.summary("Products a member bank offers to applicants from partner platforms")
@signed(open_platform.load_partner)
@query_params(ProductsQuery)
async def list_products(request: Request, query: ProductsQuery):
    await _admit(request, "products:read")
    offers = await open_platform.products(query.bank_code)
    return response.json({"items": [presenters.offer_summary(o) for o in offers]})


@bp.post("/applicants")
@openapi.summary("Hand over an applicant with their consent (idempotent on external_ref)")
@signed(open_platform.load_partner)
@json_body(ApplicantBody)
async def hand_over(request: Request, body: ApplicantBody):
    partner = await _admit(request, "applicants:write")
    referral, created = await open_platform.hand_over(partner, **body.model_dump())
    return response.json(presenters.referral(referral), status=201 if created else 200)


@bp.get("/referrals")
@openapi.summary("The applicants this platform referred")
@signed(open_platform.load_partner)
@query_params(PageQuery)
async def list_referrals(request: Request, query: PageQuery):
    partner = await _admit(request, "referrals:read")
    return response.json(await page(open_platform.referrals(partner), query, presenters.referral))


@bp.get("/referrals/<referral_id:int>")
@openapi.summary("One referred applicant's status")
@signed(open_platform.load_partner)
async def get_referral(request: Request, referral_id: int):
    partner = await _admit(request, "referrals:read")
    referral = await open_platform.referral(partner, referral_id)
    applications = await open_platform.progress(referral)
    return response.json({**presenters.referral(referral), "applications": [presenters.referred_application(a) for a in applications]})
