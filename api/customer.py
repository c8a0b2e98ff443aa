"""The customer's own API (``/api/v1/me``): profile and consents. Customers reach only their own
objects, through ``lending_core.access``."""

from __future__ import annotations

from pydantic import Field
from sanic import Blueprint, Request, response
from sanic_ext.extensions.openapi import openapi

from api import presenters
from api.auth import customer_required, token_policy
from api.idempotency import idempotent
from api.pagination import PageQuery, page
from api.validation import Body, ObjectId, Query, json_body, query_params
from channels import customer_sessions
from lending_core import access
from lending_core.customers import service as customers
from lending_core.customers.models import Consent
from lending_core.org import service as org

bp = Blueprint("customer", url_prefix="/api/v1/me")


class ConsentBody(Body):
    purpose: str = Field(min_length=1, max_length=48)


class RealNameBody(Body):
    name: str = Field(min_length=1, max_length=64)
    id_number: str = Field(min_length=15, max_length=18)
    phone: str = Field(min_length=11, max_length=20)


class BankChoiceBody(Body):
    bank_id: ObjectId


class BankChoiceQuery(Query):
    city: str | None = Field(None, max_length=64)
    county: str | None = Field(None, max_length=64)


banks_bp = Blueprint("banks", url_prefix="/api/v1/banks")


@banks_bp.get("")
@openapi.summary("Member banks to choose from, by city or county (no sign-in needed)")
@query_params(BankChoiceQuery)
async def bank_choices(request: Request, query: BankChoiceQuery):
    banks = await org.bank_choices(city=query.city, county=query.county)
    return response.json({"items": [presenters.bank(b) for b in banks]})


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


@bp.post("/real-name")
@openapi.summary("Real-name verification (name + ID number + phone); answers with a fresh session")
@customer_required
@json_body(RealNameBody)
async def real_name(request: Request, body: RealNameBody):
    actor = request.ctx.actor
    customer = await customers.verify_real_name(
        actor, request.app.ctx.providers.identity_verifier, name=body.name, id_number=body.id_number, phone=body.phone
    )
    # The verified person may already have been known through another door: the session now
    # belongs to that one record.
    tokens = await customer_sessions.sign_in(customer, bank_id=actor.bank_id, channel=actor.channel, policy=token_policy(request))
    return response.json(presenters.signed_in(customer, tokens, actor.bank_id))


@bp.post("/bank")
@openapi.summary("Choose the member bank to deal with (remembered); answers with a session for it")
@customer_required
@json_body(BankChoiceBody)
async def choose_bank(request: Request, body: BankChoiceBody):
    actor = request.ctx.actor
    bank = await customers.choose_bank(actor, body.bank_id)
    customer = await customers.current(actor)
    tokens = await customer_sessions.sign_in(customer, bank_id=bank.id, channel=actor.channel, policy=token_policy(request))
    return response.json(presenters.signed_in(customer, tokens, bank.id))


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
