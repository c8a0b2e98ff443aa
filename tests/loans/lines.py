"""Borrowers with effective credit lines, made directly in the database: signing is the contracts
area's story (tests/contracts); here a line is simply effective, as signing leaves it.

Each borrower is a real-name customer of a bank (a fresh ID number each time, in the data
sandbox persona asked for); each line is an approved application's contract, status effective.
Dates are explicit business dates: the tests move through time by passing ``on``.
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta

from infra import clock
from infra.actors import Actor, system
from infra.identity_numbers import make_test_id_number
from integrations.core_banking_sandbox import SandboxAccount, SandboxCoreBanking
from integrations.data_sandbox import PERSONAS
from lending_core.applications.models import Application
from lending_core.contracts.models import Contract, ContractParty
from lending_core.customers import service as customers
from lending_core.customers.models import Customer
from lending_core.ledger import service as ledger
from lending_core.loans import schedule
from lending_core.loans.models import Instalment, LoanReceipt, Repayment
from lending_core.org.models import Bank
from lending_core.products.models import Product
from tests.lending.flows import new_phone

START = date(2025, 1, 15)
SERVICING = {
    "penalty_uplift_bps": 5000,
    "allocation": ["penalty", "interest", "principal"],
    "early_repayment_fee_bps": 0,
    "day_basis": 360,
    "credit_line_months": 12,
    "signing_days": 7,
}
PRODUCT_OF = {"none": "SHUIYITONG", "deposit_pledge": "CUNKUANEDAI", "property_mortgage": "ZHUFANGDIYA"}

_serial = itertools.count(1)
_SEQUENCE = {p.label: p.first for p in PERSONAS}


def as_customer(customer: Customer, bank_id: int | None = None) -> Actor:
    return Actor(kind="customer", id=customer.id, bank_id=bank_id, channel="wechat_miniprogram")


async def person(persona: str = "average", *, bank: str = "HZRCB", name: str = "林志远") -> Customer:
    """A new real-name customer of ``bank`` (each call a different ID number)."""
    serial = next(_serial)
    sequence = _SEQUENCE.get(persona, 50)
    id_number = make_test_id_number("320102", date(1975, 1, 1) + timedelta(days=serial), sequence)
    bank_id = (await Bank.get(code=bank)).id
    return await customers.register(system("tests"), name=name, id_number=id_number, phone=new_phone(), bank_id=bank_id, channel="branch")


async def credit_line(
    borrower: Customer,
    *,
    bank: str = "HZRCB",
    limit_fen: int = 10_000_000,
    rate_bps: int = 720,
    term_months: int = 12,
    method: str = "equal_instalment",
    collateral: str = "none",
    servicing: dict | None = None,
    effective_on: date = START,
    line_expires_on: date | None = None,
    status: str = "effective",
    parties: tuple[tuple[str, Customer], ...] = (),
) -> Contract:
    """An effective credit contract of ``borrower`` (and its approved application)."""
    terms = {**SERVICING, **(servicing or {})}
    bank_row = await Bank.get(code=bank)
    product = await Product.get(code=PRODUCT_OF[collateral])
    application = await Application.create(
        bank_id=bank_row.id, customer_id=borrower.id, product_id=product.id, product_version=product.published_version or 1,
        channel="wechat_miniprogram", amount_fen=limit_fen, term_months=term_months, repayment_method=method,
        unsecured=collateral == "none", status="contracted", decision={}, limit_fen=limit_fen, rate_bps=rate_bps,
    )
    contract = await Contract.create(
        bank_id=bank_row.id, application_id=application.id, customer_id=borrower.id, product_id=product.id,
        product_version=application.product_version, template="loan_contract", limit_fen=limit_fen, rate_bps=rate_bps,
        penalty_rate_bps=schedule.penalty_rate_bps(rate_bps, terms["penalty_uplift_bps"]), term_months=term_months,
        repayment_method=method, collateral=collateral, servicing=terms, document_html="<p>test</p>",
        document_sha256="0" * 64, status=status, sign_by=clock.now(), effective_at=clock.now() if status == "effective" else None,
        line_expires_on=line_expires_on or schedule.due_date(effective_on, terms["credit_line_months"]),
    )
    await ContractParty.create(contract=contract, role="borrower", customer_id=borrower.id, name=borrower.name, phone=borrower.phone,
                               phone_hash=borrower.phone_hash, signed_at=clock.now())
    for role, other in parties:
        await ContractParty.create(contract=contract, role=role, customer_id=other.id, name=other.name, phone=other.phone,
                                   phone_hash=other.phone_hash, signed_at=clock.now())
    return contract


async def bank_code_of(customer_bank_id: int) -> str:
    return (await Bank.get(id=customer_bank_id)).code


async def deposit(core: SandboxCoreBanking, bank: str, customer_id: int, amount_fen: int, key: str, *, kind: str = "settlement") -> str:
    """Money arriving from outside the platform (salary, a counter deposit). Returns the account."""
    account = await core.account_of(bank, customer_id, kind)
    await core.credit(account, amount_fen, key)
    return account


async def sandbox_balance(account: str) -> tuple[int, int]:
    row = await SandboxAccount.get(account_no=account)
    return row.balance_fen, row.frozen_fen


async def owed(loan_id: int) -> dict[str, int]:
    return (await ledger.loan_balances([loan_id]))[loan_id]


async def rows(loan_id: int) -> list[Instalment]:
    return await Instalment.filter(loan_id=loan_id).order_by("number")


async def reload(loan_id: int) -> LoanReceipt:
    return await LoanReceipt.get(id=loan_id)


async def repayments(loan_id: int) -> list[Repayment]:
    return await Repayment.filter(loan_id=loan_id).order_by("id")


async def movement_counts() -> tuple[int, int, int]:
    """Ledger transactions, legs and core-banking journal entries: what a refused or retried
    command must leave unchanged."""
    from integrations.core_banking_sandbox import SandboxEntry
    from lending_core.ledger.models import LedgerLeg, LedgerTransaction

    return await LedgerTransaction.all().count(), await LedgerLeg.all().count(), await SandboxEntry.filter(amount_fen__gt=0).count()
