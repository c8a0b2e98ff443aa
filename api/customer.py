"""The customer's own API (``/api/v1/me``): profile and consents. Customers reach only their own
objects, through ``lending_core.access``."""

from __future__ import annotations

from pydantic import Field
from sanic import Blueprint, Request, response
from sanic_ext.extensions.openapi import openapi

from api import presenters
from api.auth import customer_required
from api.idempotency import idempotent
from api.pagination import PageQuery, page
from api.validation import Body, json_body, query_params
from lending_core import access
from lending_core.customers import service as customers
from lending_core.customers.models import Consent

bp = Blueprint("customer", url_prefix="/api/v1/me")


class ConsentBody(Body):
    purpose: str = Field(min_length=1, max_length=48)


@bp.get("")
@openapi.summary("The signed-in customer (personal data masked)")
@customer_required
async def me(request: Request):
    customer, relationships = await customers.profile(request.ctx.actor)
    return response.json(
        {
            **presenters.customer(customer),
            "bank_id": request.ctx.actor.bank_id,
            "channel": request.ctx.actor.channel,
            "banks": [presenters.relationship(r) for r in relationships],
        }
    )


@bp.post("/consents")
@openapi.summary("Give a consent (the exact text and time are kept)")
@customer_required
@idempotent(required=True)
@json_body(ConsentBody)
async def grant_consent(request: Request, body: ConsentBody):
    consent = await customers.grant_consent(request.ctx.actor, body.purpose)
    return response.json(presenters.consent(consent), status=201)


@bp.get("/consents")
@customer_required
@query_params(PageQuery)
async def list_consents(request: Request, query: PageQuery):
    return response.json(await page(access.for_customer(Consent, request.ctx.actor), query, presenters.consent))


@bp.get("/consents/<consent_id:int>")
@customer_required
async def get_consent(request: Request, consent_id: int):
    return response.json(presenters.consent(await access.get_for_customer(Consent, request.ctx.actor, consent_id)))
