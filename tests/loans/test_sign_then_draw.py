"""From signing to money: a sunshine loan's three parties sign through the contract API, and the
effective contract is at once a credit line the borrower draws on and repays — the two halves
(contracts end at `effective`; the loans tests start from effective lines) joined once."""

from __future__ import annotations

import pytest

from lending_core.ledger.models import LedgerLeg
from tests.contracts.flows import approved_borrower, contract_made, contract_path, party, signs, verified_customer
from tests.support import new_key

pytestmark = pytest.mark.usefixtures("demo")


async def test_a_signed_sunshine_contract_is_drawn_on_and_repaid(app, client):
    borrower, application = await approved_borrower(client)
    guarantor = await verified_customer(client, "home_owner", name="周海燕")
    co_borrower = await verified_customer(client, "clean_salaried", 1, name="陈美玲")
    contract = await contract_made(borrower, application["id"], [party("guarantor", guarantor), party("co_borrower", co_borrower)])

    drawn_early = await borrower.post(f"{contract_path(contract['id'], 'drawdowns')}", {"amount_fen": 1_000_000}, key=new_key())
    assert drawn_early.status == 409, "an unsigned contract is not yet a credit line"

    for person in (borrower, guarantor, co_borrower):
        signed = await signs(app, person, contract["id"])
    assert signed["status"] == "effective"

    preview = await borrower.post(contract_path(contract["id"], "drawdowns", "preview"), {"amount_fen": 1_000_000})
    assert preview.status == 200, preview.text
    drawn = await borrower.post(contract_path(contract["id"], "drawdowns"), {"amount_fen": 1_000_000}, key=new_key())
    assert drawn.status == 201, drawn.text
    loan = drawn.json
    previewed = [(i["due_date"], i["principal_fen"], i["interest_fen"]) for i in preview.json["schedule"]]
    assert [(i["due_date"], i["principal_fen"], i["interest_fen"]) for i in loan["schedule"]] == previewed
    assert sum(i["principal_fen"] for i in loan["schedule"]) == 1_000_000

    seen_by_guarantor = await guarantor.get("/api/v1/loans")
    assert [(item["id"], item["capacity"]) for item in seen_by_guarantor.json["items"]] == [(loan["id"], "guarantor")]

    payoff = (await borrower.get(f"/api/v1/loans/{loan['id']}/payoff-quote")).json["total_fen"]
    repaid = await borrower.post(f"/api/v1/loans/{loan['id']}/repayments", {"amount_fen": payoff}, key=new_key())
    assert repaid.status == 201 and repaid.json["closed_loan"], repaid.text
    legs = await LedgerLeg.all().values_list("amount_fen", flat=True)
    assert legs and sum(legs) == 0
