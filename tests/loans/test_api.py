"""The loan routes over HTTP: preview and confirm a drawdown, list and read loans in each
capacity, repay, quote the payoff; staff read their own bank's loans; refusals are 4xx with
stable codes and move nothing; everything is in the OpenAPI document."""

from __future__ import annotations


import pytest

from infra import clock
from lending_core.loans import schedule
from lending_core.loans.models import LoanReceipt
from lending_core.org.models import Bank
from tests.lending.flows import error_code
from tests.loans.lines import credit_line, movement_counts, person, sandbox_balance
from tests.support import StaffConsole, bearer, customer_token, new_key, openapi_document


async def signed_in(app, client, customer):
    """A customer's session: ``call(method, path, body, key=)`` makes their requests."""
    token = await customer_token(app, customer.id, (await Bank.get(code="HZRCB")).id)

    async def call(method: str, path: str, body: dict | None = None, *, key: str | None = None):
        headers = bearer(token, **({"Idempotency-Key": key} if key else {}))
        _, response = await client.request(method, path, headers=headers, **({"json": body} if body is not None else {}))
        return response

    return call


def today():
    return clock.business_date()


async def test_preview_then_draw_then_read_the_loan(demo, app, client):
    borrower = await person()
    line = await credit_line(borrower, effective_on=today(), limit_fen=2_000_000, method="equal_principal", term_months=6)
    me = await signed_in(app, client, borrower)
    preview = await me("POST", f"/api/v1/contracts/{line.id}/drawdowns/preview", {"amount_fen": 600_000})
    assert preview.status == 200, preview.text
    plan = schedule.build_schedule("equal_principal", 600_000, 720, 6, today())
    assert [(r["due_date"], r["principal_fen"], r["interest_fen"]) for r in preview.json["schedule"]] == [
        (i.due_date.isoformat(), i.principal_fen, i.interest_fen) for i in plan.instalments
    ]
    assert preview.json["apr_bps"] == 720 and preview.json["available_after_fen"] == 1_400_000
    assert await movement_counts() == (0, 0, 0)  # a preview moves nothing

    key = new_key()
    drawn = await me("POST", f"/api/v1/contracts/{line.id}/drawdowns", {"amount_fen": 600_000}, key=key)
    assert drawn.status == 201, drawn.text
    replay = await me("POST", f"/api/v1/contracts/{line.id}/drawdowns", {"amount_fen": 600_000}, key=key)
    assert replay.status == 201 and replay.headers.get("Idempotent-Replayed") == "true" and replay.json == drawn.json
    assert await LoanReceipt.all().count() == 1
    loan = drawn.json
    assert (loan["capacity"], loan["status"], loan["owed"], loan["classification"], loan["overdue_bucket"]) == (
        "borrower", "active", {"principal_fen": 600_000, "interest_fen": 0, "penalty_fen": 0}, "normal", "current")
    assert [r["principal_fen"] for r in loan["schedule"]] == [i.principal_fen for i in plan.instalments]

    listed = await me("GET", "/api/v1/loans")
    assert [(l["id"], l["capacity"]) for l in listed.json["items"]] == [(loan["id"], "borrower")]
    detail = await me("GET", f"/api/v1/loans/{loan['id']}")
    assert detail.status == 200 and detail.json == loan


async def test_repay_and_quote_the_payoff(demo, app, client):
    borrower = await person()
    line = await credit_line(borrower, effective_on=today())
    me = await signed_in(app, client, borrower)
    loan = (await me("POST", f"/api/v1/contracts/{line.id}/drawdowns", {"amount_fen": 300_000}, key=new_key())).json
    quote = await me("GET", f"/api/v1/loans/{loan['id']}/payoff-quote")
    assert quote.status == 200 and quote.json["total_fen"] == 300_000 and quote.json["early"]["principal_fen"] == 300_000

    key = new_key()
    paid = await me("POST", f"/api/v1/loans/{loan['id']}/repayments", {"amount_fen": 100_000}, key=key)
    assert paid.status == 201, paid.text
    assert (paid.json["principal_fen"], paid.json["prepaid_principal_fen"], paid.json["closed_loan"]) == (100_000, 100_000, False)
    counts = await movement_counts()
    again = await me("POST", f"/api/v1/loans/{loan['id']}/repayments", {"amount_fen": 100_000}, key=key)
    assert again.status == 201 and again.json == paid.json and await movement_counts() == counts

    rest = (await me("GET", f"/api/v1/loans/{loan['id']}/payoff-quote")).json["total_fen"]
    closed = await me("POST", f"/api/v1/loans/{loan['id']}/repayments", {"amount_fen": rest}, key=new_key())
    assert closed.status == 201 and closed.json["closed_loan"]
    after = await me("POST", f"/api/v1/loans/{loan['id']}/repayments", {"amount_fen": 100}, key=new_key())
    assert (after.status, error_code(after)) == (409, "LOAN_CLOSED")
    assert (await sandbox_balance(closed_account := (await LoanReceipt.get(id=loan["id"])).settlement_account)) == (0, 0), closed_account


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"amount_fen": -100}, 422, "INVALID_AMOUNT"),
        ({"amount_fen": 0}, 422, "INVALID_AMOUNT"),
        ({"amount_fen": 10_000_000_000}, 422, "REPAYMENT_EXCEEDS_PAYOFF"),
        ({"amount_fen": 100.5}, 422, "VALIDATION_FAILED"),
        ({"amount_fen": "100"}, 422, "VALIDATION_FAILED"),
        ({"amount_fen": 100, "waive_interest": True}, 422, "FIELD_NOT_ALLOWED"),
    ],
)
async def test_bad_repayments_are_refused_with_stable_codes_and_move_nothing(demo, app, client, body, status, code):
    borrower = await person()
    line = await credit_line(borrower, effective_on=today())
    me = await signed_in(app, client, borrower)
    loan = (await me("POST", f"/api/v1/contracts/{line.id}/drawdowns", {"amount_fen": 300_000}, key=new_key())).json
    counts = await movement_counts()
    refused = await me("POST", f"/api/v1/loans/{loan['id']}/repayments", body, key=new_key())
    assert (refused.status, error_code(refused)) == (status, code), refused.text
    assert await movement_counts() == counts


async def test_bad_drawdowns_are_refused_with_stable_codes(demo, app, client):
    borrower = await person()
    line = await credit_line(borrower, effective_on=today(), limit_fen=500_000)
    expired = await credit_line(borrower, effective_on=today(), line_expires_on=today())
    me = await signed_in(app, client, borrower)
    cases = [
        (f"/api/v1/contracts/{line.id}/drawdowns", {"amount_fen": 500_001}, 422, "CREDIT_LIMIT_EXCEEDED"),
        (f"/api/v1/contracts/{line.id}/drawdowns/preview", {"amount_fen": 500_001}, 422, "CREDIT_LIMIT_EXCEEDED"),
        (f"/api/v1/contracts/{expired.id}/drawdowns", {"amount_fen": 1_000}, 409, "CREDIT_LINE_EXPIRED"),
        (f"/api/v1/contracts/{line.id}/drawdowns", {"amount_fen": -1}, 422, "INVALID_AMOUNT"),
        (f"/api/v1/contracts/{line.id}/drawdowns", {"amount_fen": 8}, 422, "SCHEDULE_REFUSED"),
        (f"/api/v1/contracts/{line.id}/drawdowns", {"amount_fen": 1.5}, 422, "VALIDATION_FAILED"),
        ("/api/v1/contracts/999999/drawdowns", {"amount_fen": 1_000}, 404, "NOT_FOUND"),
    ]
    for path, body, status, code in cases:
        refused = await me("POST", path, body, key=new_key())
        assert (refused.status, error_code(refused)) == (status, code), (path, body, refused.text)
    no_key = await me("POST", f"/api/v1/contracts/{line.id}/drawdowns", {"amount_fen": 1_000})
    assert (no_key.status, error_code(no_key)) == (400, "IDEMPOTENCY_KEY_REQUIRED")
    assert await movement_counts() == (0, 0, 0)


async def test_capacities_and_object_checks(demo, app, client):
    borrower, guarantor, co_borrower, stranger = await person(), await person(), await person(), await person()
    line = await credit_line(borrower, effective_on=today(), parties=(("guarantor", guarantor), ("co_borrower", co_borrower)))
    me = await signed_in(app, client, borrower)
    loan = (await me("POST", f"/api/v1/contracts/{line.id}/drawdowns", {"amount_fen": 300_000}, key=new_key())).json
    for who, capacity in ((guarantor, "guarantor"), (co_borrower, "co_borrower")):
        them = await signed_in(app, client, who)
        assert [(l["id"], l["capacity"]) for l in (await them("GET", "/api/v1/loans")).json["items"]] == [(loan["id"], capacity)]
        assert (await them("GET", f"/api/v1/loans/{loan['id']}")).json["capacity"] == capacity
    g = await signed_in(app, client, guarantor)
    refused = await g("POST", f"/api/v1/loans/{loan['id']}/repayments", {"amount_fen": 100}, key=new_key())
    assert (refused.status, error_code(refused)) == (403, "GUARANTOR_CANNOT_REPAY")
    drawing = await g("POST", f"/api/v1/contracts/{line.id}/drawdowns", {"amount_fen": 100_000}, key=new_key())
    assert (drawing.status, error_code(drawing)) == (403, "NOT_THE_BORROWER")
    s = await signed_in(app, client, stranger)
    assert (await s("GET", "/api/v1/loans")).json["items"] == []
    for method, path, body in (("GET", f"/api/v1/loans/{loan['id']}", None), ("GET", f"/api/v1/loans/{loan['id']}/payoff-quote", None),
                               ("POST", f"/api/v1/loans/{loan['id']}/repayments", {"amount_fen": 100}),
                               ("POST", f"/api/v1/contracts/{line.id}/drawdowns/preview", {"amount_fen": 100_000})):
        response = await s(method, path, body, key=new_key() if method == "POST" else None)
        assert (response.status, error_code(response)) == (404, "NOT_FOUND"), path


async def test_staff_read_their_own_banks_loans(demo, app, client):
    borrower = await person()
    line = await credit_line(borrower, effective_on=today())
    me = await signed_in(app, client, borrower)
    loan = (await me("POST", f"/api/v1/contracts/{line.id}/drawdowns", {"amount_fen": 300_000}, key=new_key())).json
    staff = StaffConsole(client)
    listed = await staff.get("hz.manager", "/api/v1/admin/loans?status=active")
    assert listed.status == 200 and [(l["id"], l["customer_id"]) for l in listed.json["items"]] == [(loan["id"], borrower.id)]
    detail = await staff.get("hz.risk", f"/api/v1/admin/loans/{loan['id']}")
    assert detail.status == 200 and detail.json["settlement_account"] and detail.json["repayments"] == []
    assert (await staff.get("assoc.admin", f"/api/v1/admin/loans/{loan['id']}")).status == 200
    other = await staff.get("ls.manager", f"/api/v1/admin/loans/{loan['id']}")
    assert (other.status, error_code(other)) == (404, "NOT_FOUND")
    assert (await staff.get("ls.manager", "/api/v1/admin/loans")).json["items"] == []
    assert (await staff.get("hz.marketer", "/api/v1/admin/loans")).status == 403


async def test_core_banking_down_is_a_503_and_nothing_is_recorded(demo, app, client):
    borrower = await person()
    line = await credit_line(borrower, effective_on=today())
    me = await signed_in(app, client, borrower)
    app.ctx.providers.core_banking.unavailable = True
    try:
        response = await me("POST", f"/api/v1/contracts/{line.id}/drawdowns", {"amount_fen": 300_000}, key=new_key())
    finally:
        app.ctx.providers.core_banking.unavailable = False
    assert (response.status, error_code(response)) == (503, "CORE_BANKING_UNAVAILABLE") and response.headers.get("Retry-After")
    assert await LoanReceipt.all().count() == 0 and await movement_counts() == (0, 0, 0)


async def test_the_loan_routes_are_in_the_openapi_document(settings, redis):
    _, document = await openapi_document(settings, redis)
    paths = document["paths"]
    for path, method in (
        ("/api/v1/contracts/{contract_id}/drawdowns/preview", "post"), ("/api/v1/contracts/{contract_id}/drawdowns", "post"),
        ("/api/v1/loans", "get"), ("/api/v1/loans/{loan_id}", "get"), ("/api/v1/loans/{loan_id}/repayments", "post"),
        ("/api/v1/loans/{loan_id}/payoff-quote", "get"), ("/api/v1/admin/loans", "get"), ("/api/v1/admin/loans/{loan_id}", "get"),
    ):
        assert method in paths.get(path, {}), path
    repay = paths["/api/v1/loans/{loan_id}/repayments"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in repay.get("parameters", [])) and repay.get("requestBody")
