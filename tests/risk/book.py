"""Real loans made to look like a rule's fixture: the loan book row, its facts and the
snapshots of its borrower, guarantor and co-borrower are set so that the batch reads exactly the
fixture's snapshot (``schema.snapshot``) for that loan."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Mapping

from infra import clock
from integrations.core_banking_sandbox import SandboxCoreBanking
from integrations.data_sandbox import SandboxPropertyRegistry
from lending_core.contracts.models import Contract
from lending_core.loans import service
from lending_core.loans.models import LoanReceipt
from lending_core.products.models import Product
from lending_core.risk import schema
from lending_core.risk.models import LOAN_FACT_FIELDS, PARTY_FIELDS, SNAPSHOT_MODELS, LoanFacts
from tests.loans.lines import START, as_customer, credit_line, person

ON = date(2025, 9, 15)


async def real_loan(*, bank: str = "HZRCB", persona: str = "average", name: str = "林志远"):
    """A drawn loan of a new borrower (with a guarantor and a co-borrower on the contract)."""
    borrower = await person(persona, bank=bank, name=name)
    guarantor = await person(bank=bank, name="郑保人")
    co_borrower = await person(bank=bank, name="何共借")
    line = await credit_line(borrower, bank=bank, parties=(("guarantor", guarantor), ("co_borrower", co_borrower)))
    loan = await service.draw(as_customer(borrower), line.id, 600_000, "d", core_banking=SandboxCoreBanking(),
                              properties=SandboxPropertyRegistry(), on=START)
    return loan, borrower, guarantor, co_borrower


def _months_before(day: date, months: int) -> date:
    year, month0 = divmod(day.month - 1 - months, 12)
    return date(day.year + year, month0 + 1, min(day.day, 28))


async def shape_loan(loan: LoanReceipt, snapshot: Mapping[str, Any], *, guarantor_id: int, co_borrower_id: int,
                     product: str | None = None, on: date = ON) -> None:
    """Make the batch read ``snapshot`` (a full nested snapshot) for ``loan`` on ``on``."""
    await LoanReceipt.filter(id=loan.id).update(
        principal_fen=snapshot["principal_fen"], term_months=snapshot["term_months"], dpd=snapshot["repayment"]["days_past_due"],
        drawn_on=_months_before(on, snapshot["months_on_book"]), maturity_date=on + timedelta(days=snapshot["days_to_maturity"]))
    if product:
        contract = await Contract.get(id=loan.contract_id)
        await Contract.filter(id=contract.id).update(product_id=(await Product.get(code=product)).id)
    facts = {f.name: schema.value_at(snapshot, f.path) for f in LOAN_FACT_FIELDS}
    facts.update(outstanding_fen=snapshot["outstanding_fen"], instalment_fen=snapshot["instalment_fen"])
    await LoanFacts.filter(loan_id=loan.id).delete()
    await LoanFacts.create(loan_id=loan.id, bank_id=loan.bank_id, guarantor_customer_id=guarantor_id,
                           co_borrower_customer_id=co_borrower_id, refreshed_at=clock.now(), **facts)
    for group, model in SNAPSHOT_MODELS.items():
        values = snapshot[group] or {}
        keys = {"bank_id": loan.bank_id} if group == "account" else {}
        await model.filter(customer_id=loan.customer_id, **keys).delete()
        await model.create(customer_id=loan.customer_id, fetched_at=clock.now(), **keys, **values)
    party_values: dict[tuple[str, str], dict] = {}
    for name, (party, source, field) in PARTY_FIELDS.items():
        party_values.setdefault((party, source), {})[field] = (snapshot["parties"] or {}).get(name)
    for (party, source), values in party_values.items():
        customer = guarantor_id if party == "guarantor" else co_borrower_id
        model = SNAPSHOT_MODELS[source]
        existing = await model.filter(customer_id=customer).first()
        if existing is None:
            await model.create(customer_id=customer, fetched_at=clock.now(), **values)
        else:
            await model.filter(customer_id=customer).update(**values)


def product_for(rule) -> str | None:
    return rule.products[0] if rule.products else None
