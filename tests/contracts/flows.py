"""Borrowers, guarantors and co-borrowers driving the contract API, so a test reads as its story.

The product is 阳光E贷 YANGGUANGEDAI: it needs a guarantor and a co-borrower besides the
borrower. Its borrower is a ``clean_salaried`` persona of the data sandbox (a payroll customer of
the bank with long social security: approved). Signing codes are read from the SMS sandbox, as the
person would read them on their phone.
"""

from __future__ import annotations

import re

from lending_core.contracts import service as contracts
from lending_core.contracts.models import Contract, ContractParty, EvidenceRecord
from lending_core.products.service import CATALOGUE, read_catalogue_file
from tests.lending.flows import Customer, applicant, error_code, id_number_of, new_phone
from tests.support import new_key

PRODUCT = "YANGGUANGEDAI"
YANGGUANGEDAI = read_catalogue_file(CATALOGUE / f"{PRODUCT}.toml")
LOAN = {"amount_yuan": 100_000, "term_months": 12, "repayment_method": "equal_instalment"}
CONTRACTS = "/api/v1/contracts"
CODE = re.compile(r"验证码 ([0-9]{6})")

__all__ = ["Customer", "error_code", "new_key", "new_phone"]


def contract_path(contract_id: int, *rest: str) -> str:
    return "/".join([f"{CONTRACTS}/{contract_id}", *rest])


async def approved_borrower(client, n: int = 0, *, name: str = "林志远") -> tuple[Customer, dict]:
    """A borrower with an approved YANGGUANGEDAI application."""
    borrower = await applicant(client, "clean_salaried", n, name=name, consents=YANGGUANGEDAI.consents)
    application = await borrower.applied(PRODUCT, **LOAN)
    assert application["status"] == "approved", application
    return borrower, application


async def verified_customer(client, persona: str, n: int = 0, *, name: str) -> Customer:
    """Someone already known to the platform: logged in and real-name verified (no application)."""
    return await applicant(client, persona, n, name=name, consents=())


def stranger(client, *, name: str, persona: str = "thin_file", n: int = 0) -> Customer:
    """Someone the platform does not know yet: a name, an ID number and a phone, no session."""
    return Customer(client, name=name, id_number=id_number_of(persona, n), phone=new_phone())


def party(role: str, person: Customer) -> dict:
    return {"role": role, "name": person.name, "phone": person.phone}


async def ask_for_contract(borrower: Customer, application_id: int, parties: list[dict], *, key: str | None = "new"):
    return await borrower.post(f"/api/v1/applications/{application_id}/contract", {"parties": parties},
                               key=new_key() if key == "new" else key)


async def contract_made(borrower: Customer, application_id: int, parties: list[dict]) -> dict:
    response = await ask_for_contract(borrower, application_id, parties)
    assert response.status == 201, response.text
    return response.json


async def signing_code(app, person: Customer, contract_id: int) -> str:
    response = await person.post(contract_path(contract_id, "signing-code"), {})
    assert response.status == 202, response.text
    found = CODE.search(app.ctx.providers.sms.last_text(person.phone) or "")
    assert found, "no signing code reached the phone"
    return found.group(1)


async def sign_with_code(person: Customer, contract_id: int, code: str):
    return await person.post(contract_path(contract_id, "sign"), {"method": "sms_code", "code": code})


async def signs(app, person: Customer, contract_id: int) -> dict:
    """The person asks for a code, reads it on their phone and signs with it."""
    response = await sign_with_code(person, contract_id, await signing_code(app, person, contract_id))
    assert response.status == 200, response.text
    return response.json


async def relay_contract_messages(app) -> int:
    """Run the outbox relay once for the contract area's own topics, as wired in server.handlers."""
    from infra.outbox import relay_once
    from server.handlers import outbox_handlers

    handlers = outbox_handlers(app.ctx.settings, app.ctx.providers)
    return await relay_once({topic: handlers[topic] for topic in (contracts.NOTARISE_TOPIC, contracts.INVITE_TOPIC)})


async def state_of(contract_id: int) -> dict:
    """What a refused request must leave untouched."""
    contract = await Contract.get(id=contract_id)
    parties = await ContractParty.filter(contract_id=contract_id).order_by("id")
    return {
        "status": contract.status,
        "effective_at": contract.effective_at,
        "signed": [(p.role, p.signed_at, p.signature_method, p.customer_id) for p in parties],
        "evidence": await EvidenceRecord.filter(contract_id=contract_id).count(),
    }
