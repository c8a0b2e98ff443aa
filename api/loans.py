"""Loans for customers: drawdown on a credit line (preview, then confirm), loans with their
schedules, repayment and the payoff quote; staff read their bank's loans. Money is whole fen.

A customer sees the loans they borrow, co-borrow or guarantee, each with the capacity they hold;
a co-borrower may repay, a guarantor only reads (see ``lending_core.loans.service``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictInt
from sanic import Blueprint, Request, response
from sanic_ext.extensions.openapi import openapi

from api import presenters
from api.auth import customer_required, staff_required
from api.idempotency import HEADER, idempotent
from api.pagination import PageQuery, page
from api.validation import Body, json_body, query_params
from lending_core.loans import service as loans

bp = Blueprint("loans", url_prefix="/api/v1")

# sanic-ext documents the function a route registers: the body and header of the inner
# decorators are repeated on each route so the OpenAPI document has them.

# Any whole number of fen that fits the database: zero, negative or too much is the service's refusal.
Fen = Field(ge=-(2**53), le=2**53, description="whole fen (1 yuan = 100 fen); a decimal number is refused")


class AmountBody(Body):
    amount_fen: StrictInt = Fen


class StaffLoansQuery(PageQuery):
    status: Literal["active", "closed"] | None = None
    classification: Literal["normal", "special_mention", "substandard", "doubtful", "loss"] | None = None


def _providers(request: Request):
    return request.app.ctx.providers


@bp.post("/contracts/<contract_id:int>/drawdowns/preview")
@openapi.body({"application/json": AmountBody}, required=True)
@openapi.summary("The loan receipt (借据) a drawdown would make today: its schedule and APR, before confirming")
@customer_required
@json_body(AmountBody)
async def preview(request: Request, contract_id: int, body: AmountBody):
    result = await loans.preview_drawdown(request.ctx.actor, contract_id, body.amount_fen)
    return response.json(presenters.drawdown_preview(result))


@bp.post("/contracts/<contract_id:int>/drawdowns")
@openapi.body({"application/json": AmountBody}, required=True)
@openapi.parameter(HEADER, str, "header", required=True)
@openapi.summary("Draw on the credit line: one loan receipt, paid into the borrower's account")
@openapi.description("Idempotent: the same Idempotency-Key returns the same loan and pays out once.")
@customer_required
@idempotent(required=True)
@json_body(AmountBody)
async def draw(request: Request, contract_id: int, body: AmountBody):
    providers = _providers(request)
    loan = await loans.draw(
        request.ctx.actor, contract_id, body.amount_fen, request.headers[HEADER],
        core_banking=providers.core_banking, properties=providers.data_sources.property,
    )
    return response.json(presenters.loan_detail(await loans.loan_for_customer(request.ctx.actor, loan.id)), status=201)


@bp.get("/loans")
@openapi.summary("Loans the customer borrows, co-borrows or guarantees, with the capacity they hold")
@customer_required
async def my_loans(request: Request):
    rows = await loans.loans_for_customer(request.ctx.actor)
    return response.json({"items": [presenters.loan_summary(loan, capacity, owed) for loan, capacity, owed in rows]})


@bp.get("/loans/<loan_id:int>")
@openapi.summary("A loan with its schedule and what is owed (from the ledger)")
@customer_required
async def my_loan(request: Request, loan_id: int):
    return response.json(presenters.loan_detail(await loans.loan_for_customer(request.ctx.actor, loan_id)))


@bp.post("/loans/<loan_id:int>/repayments")
@openapi.body({"application/json": AmountBody}, required=True)
@openapi.parameter(HEADER, str, "header", required=True)
@openapi.summary("Repay from your own account: what is due first, then principal early (the payoff amount closes the loan)")
@openapi.description("Idempotent: the same Idempotency-Key returns the same repayment and debits once.")
@customer_required
@idempotent(required=True)
@json_body(AmountBody)
async def repay(request: Request, loan_id: int, body: AmountBody):
    repayment = await loans.repay(
        request.ctx.actor, loan_id, body.amount_fen, request.headers[HEADER], core_banking=_providers(request).core_banking
    )
    return response.json(presenters.repayment(repayment), status=201)


@bp.get("/loans/<loan_id:int>/payoff-quote")
@openapi.summary("What settles the loan today: everything due, the principal not yet due, its accrued interest and the fee")
@customer_required
async def payoff_quote(request: Request, loan_id: int):
    loan, quote = await loans.payoff_quote(request.ctx.actor, loan_id)
    return response.json(presenters.payoff_quote(loan, quote))


@bp.get("/admin/loans")
@openapi.summary("Loans of the caller's bank (association staff: every bank's)")
@staff_required(loans.READ_PERMISSION)
@query_params(StaffLoansQuery)
async def staff_loans(request: Request, query: StaffLoansQuery):
    rows = loans.staff_loans(request.ctx.actor, status=query.status, classification=query.classification)
    listed = await page(rows, query, lambda loan: loan)
    owed = await loans.owed_by_loan([loan.id for loan in listed["items"]])
    listed["items"] = [{**presenters.loan_summary(loan, "staff", owed[loan.id]), "customer_id": loan.customer_id} for loan in listed["items"]]
    return response.json(listed)


@bp.get("/admin/loans/<loan_id:int>")
@openapi.summary("One loan of the caller's bank with its schedule and repayments")
@staff_required(loans.READ_PERMISSION)
async def staff_loan(request: Request, loan_id: int):
    view, repayments = await loans.loan_for_staff(request.ctx.actor, loan_id)
    return response.json(presenters.loan_for_staff(view, repayments))
