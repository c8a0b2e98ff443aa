"""Personal data in the contract flow: the names, phones and ID numbers of all three parties are
planted, the whole flow runs (including refusals that carry them), and then the stored document,
every table, every response, every log line and every outbox payload are searched for them."""

from __future__ import annotations

import json
import logging
from datetime import date

import pytest

from infra.identity_numbers import make_test_id_number
from infra.outbox import OutboxMessage
from lending_core.contracts.models import Contract, EvidenceRecord
from tests.api.test_pii_canary import captured_logs, clear_forms, database_dump
from tests.contracts.flows import (
    CONTRACTS,
    YANGGUANGEDAI,
    ask_for_contract,
    contract_path,
    party,
    relay_contract_messages,
    sign_with_code,
    signing_code,
)
from tests.lending.flows import Customer, Staff
from tests.support import new_key

pytestmark = pytest.mark.usefixtures("demo")

# Distinctive values no other test uses (the borrower is a clean_salaried persona, so approved).
BORROWER = ("欧阳澈", make_test_id_number("320102", date(1981, 3, 9), 131), "13722446681")
GUARANTOR = ("司马晴川", make_test_id_number("320102", date(1975, 7, 1), 732), "13722446682")
CO_BORROWER = ("上官若兰", make_test_id_number("320102", date(1983, 11, 23), 242), "13722446683")
PLANTED = {f"{who} {kind}": value for who, values in (("borrower", BORROWER), ("guarantor", GUARANTOR), ("co-borrower", CO_BORROWER))
           for kind, value in zip(("name", "ID number", "phone"), values)}


def leaks(text: str) -> list[str]:
    return [f"{label} as {form!r}" for label, value in PLANTED.items() for form in clear_forms(value) if form in text]


async def test_no_party_s_personal_data_appears_in_clear_anywhere(app, client):
    bodies: dict[str, str] = {}

    def keep(label: str, response) -> None:
        bodies[label] = response.text

    with captured_logs() as log_stream:
        borrower = Customer(client, name=BORROWER[0], id_number=BORROWER[1], phone=BORROWER[2])
        await borrower.log_in("HZRCB")
        await borrower.verify_real_name()
        await borrower.consent(*YANGGUANGEDAI.consents)
        application = await borrower.applied("YANGGUANGEDAI", amount_yuan=100_000, term_months=12, repayment_method="equal_instalment")
        guarantor = Customer(client, name=GUARANTOR[0], id_number=GUARANTOR[1], phone=GUARANTOR[2])
        await guarantor.log_in("HZRCB")
        await guarantor.verify_real_name()
        co_borrower = Customer(client, name=CO_BORROWER[0], id_number=CO_BORROWER[1], phone=CO_BORROWER[2])

        # Refusals that carry the planted values.
        keep("party with an ID number as phone", await ask_for_contract(borrower, application["id"], [
            {"role": "guarantor", "name": GUARANTOR[0], "phone": GUARANTOR[1][:20]}, party("co_borrower", co_borrower)]))
        keep("party named by phone", await ask_for_contract(borrower, application["id"], [
            {"role": "guarantor", "name": GUARANTOR[2], "phone": GUARANTOR[2]}, party("co_borrower", co_borrower)]))
        keep("borrower as guarantor", await ask_for_contract(borrower, application["id"], [
            party("guarantor", borrower), party("co_borrower", co_borrower)]))
        keep("unknown field", await borrower.post(f"/api/v1/applications/{application['id']}/contract",
                                                  {"parties": [], "id_number": BORROWER[1]}, key=new_key()))

        made = await ask_for_contract(borrower, application["id"], [party("guarantor", guarantor), party("co_borrower", co_borrower)])
        assert made.status == 201, made.text
        keep("contract made", made)
        contract_id = made.json["id"]
        await relay_contract_messages(app)
        keep("contract read", await borrower.get(contract_path(contract_id)))
        keep("contract list", await borrower.get(CONTRACTS))
        for person in (borrower, guarantor):
            keep(f"wrong code {person.name}", await sign_with_code(person, contract_id, "000000"))
            keep(f"signed {person.name}", await sign_with_code(person, contract_id, await signing_code(app, person, contract_id)))
        await co_borrower.log_in("HZRCB")
        await co_borrower.post("/api/v1/channels/wechat/phone", {"code": f"{co_borrower.phone}.x"})
        await co_borrower.verify_real_name()
        keep("co-borrower list", await co_borrower.get(CONTRACTS))
        keep("co-borrower signs", await sign_with_code(co_borrower, contract_id, await signing_code(app, co_borrower, contract_id)))
        keep("evidence", await borrower.get(contract_path(contract_id, "evidence")))
        staff = Staff(client)
        keep("staff contract", await staff.get("hz.reviewer", f"/api/v1/admin/contracts/{contract_id}"))
        keep("staff evidence", await staff.get("hz.manager", f"/api/v1/admin/contracts/{contract_id}/evidence"))
        logging.getLogger("tests.canary").warning("a careless line with %s", GUARANTOR[2])

    assert bodies["co-borrower signs"] and json.loads(bodies["co-borrower signs"])["status"] == "effective"
    contract = await Contract.get(id=contract_id)
    assert leaks(contract.document_html) == []
    for record in await EvidenceRecord.filter(contract_id=contract_id):
        assert leaks(json.dumps(record.detail, ensure_ascii=False)) == []
    for message in await OutboxMessage.all():
        assert leaks(json.dumps(message.payload, ensure_ascii=False)) == [], message.topic
    for label, body in bodies.items():
        assert leaks(body) == [], label
    logged = log_stream.getvalue()
    assert "a careless line" in logged  # the capture works
    assert leaks(logged) == []
    dump = await database_dump()
    found = {table: leaks(text) for table, text in dump.items() if leaks(text)}
    assert found == {}
