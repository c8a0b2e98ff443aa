"""Contracts: the borrower asks for the contract of an approved application; every party reads
it, gets a one-time SMS code (or signs by certificate with a liveness check) and signs; parties
and staff of the contract's bank get the evidence report."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from sanic import Blueprint, Request, response
from sanic_ext.extensions.openapi import openapi

from api import presenters
from api.auth import caller_address, customer_required, staff_required
from api.idempotency import idempotent
from api.validation import Body, json_body
from lending_core.contracts import service as contracts

bp = Blueprint("contracts", url_prefix="/api/v1")

SIGNATORY_ROLES = Literal["guarantor", "co_borrower"]


class PartyBody(Body):
    role: SIGNATORY_ROLES
    name: str = Field(min_length=1, max_length=64, description="the party's real name")
    phone: str = Field(min_length=11, max_length=20, description="their mainland mobile; invited by SMS if not yet a customer")


class ContractRequestBody(Body):
    parties: list[PartyBody] = Field(default_factory=list, max_length=4,
                                     description="the guarantor / co-borrower the product requires (see the product's signatories)")


class SignBody(Body):
    method: Literal["sms_code", "ca_certificate"]
    code: str | None = Field(None, pattern=r"^[0-9]{6}$", description="the one-time code (sms_code)")
    signature: str | None = Field(None, min_length=1, max_length=2048,
                                  description="base64 signature over the document's SHA-256 hex (ca_certificate)")
    certificate_chain: list[str] | None = Field(None, min_length=1, max_length=4,
                                                description="PEM certificates, the signer's first (ca_certificate)")
    liveness_token: str | None = Field(None, min_length=1, max_length=512, description="from the liveness check (ca_certificate)")

    @model_validator(mode="after")
    def fits_method(self):
        if self.method == "sms_code":
            if self.code is None or any(v is not None for v in (self.signature, self.certificate_chain, self.liveness_token)):
                raise ValueError("sms_code signing takes the code only")
        elif self.code is not None or not (self.signature and self.certificate_chain and self.liveness_token):
            raise ValueError("ca_certificate signing takes signature, certificate_chain and liveness_token")
        if self.certificate_chain and any(len(pem) > 8192 for pem in self.certificate_chain):
            raise ValueError("a certificate is at most 8192 characters")
        return self


def _context(request: Request) -> contracts.Context:
    actor = request.ctx.actor
    return contracts.Context(
        ip=caller_address(request),
        user_agent=request.headers.get("user-agent", ""),
        channel=actor.channel or ("staff_console" if actor.kind == "staff" else "unknown"),
    )


def _policy(request: Request) -> contracts.SigningPolicy:
    settings = request.app.ctx.settings
    return contracts.SigningPolicy(code_ttl_seconds=settings.sms_code_ttl_seconds, max_attempts=settings.sms_code_max_attempts)


def _providers(request: Request):
    return request.app.ctx.providers


@bp.post("/applications/<application_id:int>/contract")
@openapi.summary("The contract of an approved application: made once, with its parties; asking again returns it")
@openapi.body({"application/json": ContractRequestBody}, required=True)  # outermost: inner wrappers hide it
@customer_required
@idempotent(required=True)
@json_body(ContractRequestBody)
async def make_contract(request: Request, application_id: int, body: ContractRequestBody):
    view, created = await contracts.make_contract(
        request.ctx.actor,
        application_id,
        [contracts.PartyRequest(p.role, p.name, p.phone) for p in body.parties],
        context=_context(request),
        notary=_providers(request).notary,
    )
    return response.json(presenters.contract_view(view, with_document=False), status=201 if created else 200)


@bp.get("/contracts")
@openapi.summary("The customer's contracts in each capacity: borrower, guarantor, co-borrower")
@customer_required
async def my_contracts(request: Request):
    return response.json({"items": [presenters.my_contract(c, p) for c, p in await contracts.contracts_for(request.ctx.actor)]})


@bp.get("/contracts/<contract_id:int>")
@openapi.summary("A contract's terms, parties and document (recorded as viewed in its evidence)")
@customer_required
async def get_contract(request: Request, contract_id: int):
    view = await contracts.view(request.ctx.actor, contract_id, context=_context(request), notary=_providers(request).notary)
    return response.json(presenters.contract_view(view))


@bp.post("/contracts/<contract_id:int>/signing-code")
@openapi.summary("Text a one-time signing code to the caller's phone as a party of the contract")
@customer_required
async def signing_code(request: Request, contract_id: int):
    sent = await contracts.send_code(request.ctx.actor, contract_id, sms=_providers(request).sms, policy=_policy(request))
    return response.json(presenters.signing_code_sent(sent), status=202)


@bp.post("/contracts/<contract_id:int>/sign")
@openapi.summary("Sign as the caller's party: with the SMS code, or by certificate with a liveness check")
@openapi.body({"application/json": SignBody}, required=True)
@customer_required
@json_body(SignBody)
async def sign(request: Request, contract_id: int, body: SignBody):
    providers = _providers(request)
    certificate = None
    if body.method == "ca_certificate":
        certificate = contracts.CertificateSignature(body.signature, tuple(body.certificate_chain), body.liveness_token)
    view = await contracts.sign(
        request.ctx.actor,
        contract_id,
        method=body.method,
        code=body.code,
        certificate=certificate,
        context=_context(request),
        policy=_policy(request),
        notary=providers.notary,
        certificate_authority=providers.certificate_authority,
        liveness=providers.liveness,
    )
    return response.json(presenters.contract_view(view, with_document=False))


@bp.get("/contracts/<contract_id:int>/evidence")
@openapi.summary("The evidence report: document hash, timeline, signatures, the chain checked against the notary")
@customer_required
async def evidence(request: Request, contract_id: int):
    report = await contracts.evidence_report(request.ctx.actor, contract_id, notary=_providers(request).notary)
    return response.json(presenters.evidence_report(report))


@bp.get("/admin/contracts/<contract_id:int>")
@openapi.summary("A contract of the staff member's bank, with its document (audited)")
@staff_required("contracts.read")
async def staff_contract(request: Request, contract_id: int):
    return response.json(presenters.contract_for_staff(await contracts.staff_view(request.ctx.actor, contract_id)))


@bp.get("/admin/contracts/<contract_id:int>/evidence")
@openapi.summary("The evidence report of a contract of the staff member's bank (audited)")
@staff_required("contracts.read")
async def staff_evidence(request: Request, contract_id: int):
    report = await contracts.evidence_report(request.ctx.actor, contract_id, notary=_providers(request).notary)
    return response.json(presenters.evidence_report(report))
