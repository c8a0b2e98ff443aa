"""Products, quotes and applications for customers; the review queue, decision explanations,
secondary marketing and product versions for staff."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator
from sanic import Blueprint, Request, response
from sanic_ext.extensions.openapi import openapi

from api import presenters
from api.auth import customer_required, staff_required
from api.idempotency import idempotent, run_prepared, takes_key
from api.pagination import PageQuery, page
from api.validation import Body, ObjectId, json_body, query_params
from lending_core import access
from lending_core.applications import service as applications
from lending_core.applications.models import Application
from lending_core.decisions.engine import LoanRequest
from lending_core.products import service as products
from marketing import service as invites

bp = Blueprint("lending", url_prefix="/api/v1")
staff_bp = Blueprint("lending_staff", url_prefix="/api/v1/admin")

METHODS = Literal["equal_instalment", "equal_principal", "interest_only", "bullet"]


class LoanRequestBody(Body):
    amount_yuan: int = Field(ge=1, le=100_000_000)
    term_months: int = Field(ge=1, le=360)
    repayment_method: METHODS

    def loan_request(self) -> LoanRequest:
        return LoanRequest(self.amount_yuan, self.term_months, self.repayment_method)


class ApplicationBody(LoanRequestBody):
    product_code: str = Field(min_length=1, max_length=32)


class ReviewBody(Body):
    decision: Literal["approve", "reject"]
    limit_yuan: int | None = Field(None, ge=1, le=100_000_000)
    note: str = Field(min_length=2, max_length=500)


class DeclinedQuery(PageQuery):
    branch_id: ObjectId | None = None


class BankParametersBody(Body):
    offered: bool = True
    params: dict[str, int] = Field(default_factory=dict, max_length=8)


class DefinitionBody(Body):
    """A definition as data (``definition``) or in its file format, TOML (``text``)."""

    definition: dict[str, Any] | None = None
    text: str | None = Field(None, min_length=1, max_length=200_000)
    note: str = Field("", max_length=500)

    @model_validator(mode="after")
    def _one_form(self):
        if (self.definition is None) == (self.text is None):
            raise ValueError("send the definition as data or as text, one of the two")
        return self

    def raw(self) -> dict[str, Any]:
        return self.definition if self.definition is not None else products.read_definition_text(self.text)


def _sources(request: Request):
    return request.app.ctx.providers.data_sources


@bp.get("/products")
@openapi.summary("Products the customer's bank offers through this channel")
@customer_required
async def list_products(request: Request):
    actor = request.ctx.actor
    offers = await products.offers(access.customer_bank(actor), actor.channel)
    return response.json({"items": [presenters.offer_summary(o) for o in offers]})


@bp.get("/products/<code:str>")
@customer_required
async def get_product(request: Request, code: str):
    actor = request.ctx.actor
    return response.json(presenters.offer_detail(await products.offer(code, access.customer_bank(actor), actor.channel)))


@bp.post("/products/<code:str>/quote")
@openapi.summary("What you could get: the decision without an application or a credit-bureau inquiry")
@customer_required
@json_body(LoanRequestBody)
async def quote(request: Request, code: str, body: LoanRequestBody):
    result = await applications.quote(request.ctx.actor, _sources(request), code, body.loan_request())
    return response.json(presenters.quote(result))


@bp.post("/applications")
@openapi.summary("Apply: the decision is made at once (approved, rejected or manual review)")
@customer_required
@takes_key(required=True)
@json_body(ApplicationBody)
async def apply(request: Request, body: ApplicationBody):
    actor = request.ctx.actor

    async def decide():
        # The bureau and the other sources are asked here, outside any transaction.
        decided = await applications.decide_submission(actor, _sources(request), body.product_code, body.loan_request())
        return decided, await invites.referring_staff_id(int(actor.id))

    async def record(prepared):
        decided, referrer = prepared
        application = await applications.record_submission(actor, decided, referred_by_staff_id=referrer)
        return response.json(presenters.application_for_customer(application), status=201)

    return await run_prepared(request, decide, record)


@bp.get("/applications")
@customer_required
@query_params(PageQuery)
async def my_applications(request: Request, query: PageQuery):
    rows = access.for_customer(Application, request.ctx.actor).select_related("product")
    return response.json(await page(rows, query, presenters.application_for_customer))


@bp.get("/applications/<application_id:int>")
@customer_required
async def my_application(request: Request, application_id: int):
    application = await applications.mine(request.ctx.actor, application_id)
    await application.fetch_related("product")
    return response.json(presenters.application_for_customer(application))


@staff_bp.get("/review-queue")
@openapi.summary("Manual-review cases of the caller's bank")
@staff_required("applications.review")
@query_params(PageQuery)
async def review_queue(request: Request, query: PageQuery):
    rows = applications.review_queue(request.ctx.actor).select_related("product", "customer")
    return response.json(await page(rows, query, presenters.review_case))


@staff_bp.get("/applications/<application_id:int>")
@openapi.summary("An application with its decision explained: rules, score by attribute, limit and rate derivation")
@staff_required("applications.review")
async def staff_application(request: Request, application_id: int):
    application = await applications.for_staff(request.ctx.actor, application_id)
    await application.fetch_related("product", "customer")
    # The version the case was decided on (never changed once published) gives each rule its words.
    definition = await products.version_definition(application.product_id, application.product_version, code=application.product.code)
    return response.json(presenters.application_explained(application, definition))


@staff_bp.post("/applications/<application_id:int>/review")
@openapi.summary("Approve (with a limit) or reject a manual-review case")
@staff_required("applications.review")
@json_body(ReviewBody)
async def review(request: Request, application_id: int, body: ReviewBody):
    application = await applications.review(
        request.ctx.actor, application_id, approve=body.decision == "approve", limit_yuan=body.limit_yuan, note=body.note
    )
    await application.fetch_related("product")
    return response.json(presenters.application_for_staff(application))


@staff_bp.get("/secondary-marketing")
@openapi.summary("Declined applicants of the bank with the reasons they were given (二次营销)")
@staff_required("secondary_marketing.read")
@query_params(DeclinedQuery)
async def secondary_marketing(request: Request, query: DeclinedQuery):
    rows = applications.declined(request.ctx.actor, branch_id=query.branch_id).select_related("product", "customer")
    return response.json(await page(rows, query, presenters.declined_applicant))


@staff_bp.get("/products/<code:str>/versions")
@staff_required()
async def product_versions(request: Request, code: str):
    product, versions = await products.versions(request.ctx.actor, code)
    return response.json({"code": product.code, "published_version": product.published_version, "versions": [presenters.product_version(v) for v in versions]})


@staff_bp.post("/products/validate")
@openapi.summary("Check a product definition without saving it")
@staff_required("products.manage")
@json_body(DefinitionBody)
async def validate_definition(request: Request, body: DefinitionBody):
    definition = products.validate(body.raw())
    return response.json({"valid": True, "code": definition.code, "consents": list(definition.consents)})


@staff_bp.post("/products/versions")
@openapi.summary("Propose a new product version; a second person publishes it by approving the change request")
@staff_required("products.manage")
@idempotent(required=False)
@json_body(DefinitionBody)
async def propose_version(request: Request, body: DefinitionBody):
    version, change = await products.propose_version(request.ctx.actor, body.raw(), body.note)
    return response.json({"version": presenters.product_version(version), "change_request": presenters.change_request(change)}, status=202)


@staff_bp.put("/products/<code:str>/bank-parameters")
@openapi.summary("The caller's bank's parameters for a province-wide product, within the bounds it allows")
@staff_required("products.manage")
@json_body(BankParametersBody)
async def set_bank_parameters(request: Request, code: str, body: BankParametersBody):
    setting = await products.set_bank_parameters(request.ctx.actor, code, offered=body.offered, params=body.params)
    return response.json({"code": code.upper(), "bank_id": setting.bank_id, "offered": setting.offered, "params": setting.params})
