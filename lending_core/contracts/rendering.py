"""The contract document: terms in, one HTML document out, as pure functions.

Templates are files in ``templates/``: ``contract.html`` is the layout every contract shares
(parties, credit terms, drawdown and repayment, the example schedule, signatures);
``<template name>.html`` holds the clauses of one kind of contract (sunshine credit, a deposit
pledge, a property mortgage…); ``role_<role>.html`` the clauses a guarantor or a co-borrower
signs up to, included when the contract has such a party. They are ``string.Template`` texts: every value
is HTML-escaped before it is put in, and the only HTML that is not a template's own is rows built
here from escaped values. Personal data goes in masked only: names and ID numbers are masked here,
whatever the caller hands in, so no clear value can reach the stored document.

The same terms always render to the same bytes; ``document_sha256`` is the hash of those bytes,
which every party signs and the evidence log carries.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from string import Template

from infra.money import yuan_text
from infra.pii import mask_id_number, mask_name
from lending_core.loans.schedule import Schedule, build_schedule, irr_apr_bps

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"

# Template name → the contract's title (Chinese, English).
TEMPLATES: dict[str, tuple[str, str]] = {
    "sunshine_credit_loan": ("个人授信及借款合同（含保证、共同借款条款）",
                             "Credit and loan contract with guarantee and co-borrower clauses"),
    "personal_credit_loan": ("个人信用授信及借款合同", "Personal credit and loan contract"),
    "business_credit_loan": ("经营性信用授信及借款合同", "Business credit and loan contract"),
    "farmer_credit_loan": ("农户信用授信及借款合同", "Farmer credit and loan contract"),
    "deposit_pledge_loan": ("存单质押授信及借款合同", "Deposit-pledge credit and loan contract"),
    "property_mortgage_loan": ("房产抵押授信及借款合同", "Property-mortgage credit and loan contract"),
}

ROLES: dict[str, tuple[str, str]] = {
    "borrower": ("借款人", "Borrower"),
    "co_borrower": ("共同借款人", "Co-borrower"),
    "guarantor": ("保证人", "Guarantor"),
}

METHODS: dict[str, tuple[str, str, str]] = {
    # method → (Chinese, English, how one drawdown is repaid)
    "equal_instalment": (
        "等额本息", "Equal instalments",
        "每期偿还相同金额的本息；每期利息=剩余本金×月利率，月利率=年利率÷12；最后一期结清剩余本金。"
        " / The same payment each month; each month's interest is the outstanding principal × the monthly rate "
        "(annual rate ÷ 12); the last instalment repays all remaining principal.",
    ),
    "equal_principal": (
        "等额本金", "Equal principal",
        "每期偿还相同的本金（最后一期另含除不尽的余数）及剩余本金当期利息，月供逐月递减。"
        " / The same principal each month (the last also takes the remainder) plus the month's interest on the "
        "outstanding principal; payments fall month by month.",
    ),
    "interest_only": (
        "按月付息、到期还本（先息后本）", "Monthly interest, principal at maturity",
        "每月支付当月利息，到期日一次偿还全部本金。"
        " / Interest is paid every month and the whole principal on the last due date.",
    ),
    "bullet": (
        "到期一次还本付息", "Principal and interest at maturity",
        "到期日一次偿还全部本金及利息，利息=本金×年利率×月数÷12，期限不超过一年。"
        " / Principal and interest are paid once at maturity; interest = principal × annual rate × months ÷ 12; "
        "at most one year.",
    ),
}

ALLOCATION_WORDS = {"penalty": ("罚息", "penalty interest"), "interest": ("利息", "interest"), "principal": ("本金", "principal")}

COLLATERAL_WORDS = {
    "none": ("无（信用）", "none (unsecured)"),
    "deposit_pledge": ("存单质押", "deposit pledge"),
    "property_mortgage": ("房产抵押", "property mortgage"),
}


class UnknownContractTemplate(ValueError):
    """The product names a contract template that has no file in ``contracts/templates``."""


@dataclass(frozen=True)
class PartyLine:
    """A party as the document names them. Clear values are given; only their masks are shown."""

    role: str
    name: str
    id_number: str | None  # None: not known yet, checked when they sign


@dataclass(frozen=True)
class ContractTerms:
    contract_number: str
    template: str
    bank_name: str
    product_name: str
    product_name_en: str
    limit_fen: int
    rate_bps: int
    penalty_rate_bps: int
    term_months: int
    repayment_method: str
    collateral: str
    servicing: Mapping  # penalty_uplift_bps, allocation, early_repayment_fee_bps, day_basis, credit_line_months
    generated_on: date  # the business date; also the example schedule's drawdown date
    sign_by: date
    parties: tuple[PartyLine, ...]


def percent_text(bps: int) -> str:
    """``435`` → ``"4.35%"`` (basis points, no float on the way)."""
    if isinstance(bps, bool) or not isinstance(bps, int):
        raise TypeError("a rate is whole basis points")
    sign = "-" if bps < 0 else ""
    return f"{sign}{abs(bps) // 100}.{abs(bps) % 100:02d}%"


def example_schedule(terms: ContractTerms) -> Schedule:
    """The schedule if the whole limit were drawn on the day the contract is made."""
    return build_schedule(terms.repayment_method, terms.limit_fen, terms.rate_bps, terms.term_months, terms.generated_on)


def render(terms: ContractTerms) -> str:
    if terms.template not in TEMPLATES:
        raise UnknownContractTemplate(f"no contract template named {terms.template!r}")
    schedule = example_schedule(terms)
    apr_bps = irr_apr_bps(terms.limit_fen, schedule)
    title_cn, title_en = TEMPLATES[terms.template]
    method_cn, method_en, method_how = METHODS[terms.repayment_method]
    collateral_cn, collateral_en = COLLATERAL_WORDS.get(terms.collateral, (terms.collateral, terms.collateral))
    servicing = terms.servicing
    allocation = list(servicing["allocation"])
    fee_bps = int(servicing["early_repayment_fee_bps"])
    values = {
        "title_cn": title_cn,
        "title_en": title_en,
        "contract_number": terms.contract_number,
        "bank_name": terms.bank_name,
        "product_name": terms.product_name,
        "product_name_en": terms.product_name_en,
        "limit_yuan": yuan_text(terms.limit_fen),
        "rate": percent_text(terms.rate_bps),
        "apr": percent_text(apr_bps),
        "apr_note": (
            "本合同不收取任何费用，年化利率（APR）与名义年利率一致。 / No fees are charged: the APR equals the nominal annual rate."
            if apr_bps == terms.rate_bps else
            f"年化利率（APR）按内部收益率法计算为 {percent_text(apr_bps)}。 / The APR, by the internal rate of return, is {percent_text(apr_bps)}."
        ),
        "penalty_rate": percent_text(terms.penalty_rate_bps),
        "penalty_uplift": percent_text(int(servicing["penalty_uplift_bps"])),
        "term_months": str(terms.term_months),
        "method_cn": method_cn,
        "method_en": method_en,
        "method_how": method_how,
        "allocation_cn": " → ".join(ALLOCATION_WORDS[part][0] for part in allocation),
        "allocation_en": " → ".join(ALLOCATION_WORDS[part][1] for part in allocation),
        "early_repayment_cn": "不收取提前还款违约金。" if fee_bps == 0 else f"按提前归还本金的 {percent_text(fee_bps)} 收取违约金。",
        "early_repayment_en": "No fee is charged." if fee_bps == 0 else f"A fee of {percent_text(fee_bps)} of the principal repaid early is charged.",
        "day_basis": str(int(servicing["day_basis"])),
        "credit_line_months": str(int(servicing["credit_line_months"])),
        "collateral_cn": collateral_cn,
        "collateral_en": collateral_en,
        "generated_on": terms.generated_on.isoformat(),
        "sign_by": terms.sign_by.isoformat(),
        "example_total_interest": yuan_text(schedule.total_interest_fen),
        "example_total": yuan_text(schedule.total_fen),
    }
    escaped = {name: html.escape(value, quote=True) for name, value in values.items()}
    roles = [role for role in ("guarantor", "co_borrower") if any(p.role == role for p in terms.parties)]
    clauses = "\n".join([_template(terms.template).substitute(escaped),
                          *(_template(f"role_{role}").substitute(escaped) for role in roles)])
    rows = {
        "party_rows": "\n".join(_party_row(party) for party in terms.parties),
        "schedule_rows": "\n".join(_schedule_row(i) for i in schedule.instalments),
        "signature_rows": "\n".join(_signature_row(party) for party in terms.parties),
        "clauses": clauses,
    }
    return _template("contract").substitute({**escaped, **rows})


def document_sha256(document_html: str) -> str:
    """The SHA-256 of the document exactly as stored (UTF-8)."""
    return hashlib.sha256(document_html.encode("utf-8")).hexdigest()


@lru_cache(maxsize=16)
def _template(name: str) -> Template:
    return Template((TEMPLATE_DIR / f"{name}.html").read_text(encoding="utf-8"))


def _cells(*values: str) -> str:
    return "".join(f"<td>{html.escape(value, quote=True)}</td>" for value in values)


def _role_text(role: str) -> str:
    cn, en = ROLES.get(role, (role, role))
    return f"{cn} / {en}"


def _party_row(party: PartyLine) -> str:
    id_text = mask_id_number(party.id_number) if party.id_number else "签署时核验 / verified at signing"
    return f"<tr>{_cells(_role_text(party.role), mask_name(party.name), id_text)}</tr>"


def _signature_row(party: PartyLine) -> str:
    return f"<tr>{_cells(_role_text(party.role), mask_name(party.name), '电子签名 / electronic signature')}</tr>"


def _schedule_row(instalment) -> str:
    return "<tr>" + _cells(
        str(instalment.number),
        instalment.due_date.isoformat(),
        yuan_text(instalment.principal_fen),
        yuan_text(instalment.interest_fen),
        yuan_text(instalment.total_fen),
        yuan_text(instalment.closing_principal_fen),
    ) + "</tr>"
