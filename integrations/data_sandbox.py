"""Sandboxes of the outside data sources (M12): one class per Protocol in
``lending_core.datasources.ports``, all deterministic, so a demo or a test can pick an outcome.

Rules
- The persona is chosen by the 3-digit sequence number of the 18-character ID number (its
  digits 15-17, ``id_number[14:17]``); ``PERSONAS`` is the table, ``persona_of`` the lookup and
  any sequence not in the table is an average person. ``describe_personas()`` prints the table.
- Within a persona every figure is drawn from a SHA-256 hash of the ID number, so the same ID
  always gets the same answer and two IDs of one persona differ in their amounts.
- Every source agrees with the others about one person: a salaried worker's social security
  base, provident fund contribution, payroll, income tax and debt ratio are computed from one
  drawn salary. Money is int fen; salaries are those of a Chinese province (yuan 4,000-25,000).
- Figures do not depend on today's date, and the name argument is not checked (the real-name
  check is the identity verifier's job). The bank's own data (``SandboxBankData``,
  ``SandboxLocalData``) is the same whichever member bank asks.
- Sequences 990-994: every source raises ``SourceUnavailable`` (with ``.source`` set);
  995-999: every source sleeps 30 s first, so the caller's timeout is what ends the call.
- Each sandbox counts its calls in ``calls`` (e.g. to prove a quote made no credit-bureau pull).

What a real integration needs (none of these parties has a public protocol)
- Credit bureau: the PBoC Credit Reference Center's interface, reached through the member
  bank's own front-end processor (前置机) on the PBoC network, with the bank's institution code,
  the operator's certificate, a signed request per inquiry, the customer's written or
  electronic authorisation kept for audit, the inquiry reason code, and the bank's daily quota.
  Every report pulled is an inquiry other lenders see.
- Tax: the provincial tax bureau's bank-tax interaction platform (银税互动), queried with the
  taxpayer's online authorisation through the tax app; a signed, IP-whitelisted request per
  query under the cooperation agreement between the association and the bureau.
- Courts: the Supreme People's Court enforcement information disclosure (被执行人 and
  失信被执行人 lists) through its API for financial institutions, per the court's agreement.
- Social security and housing provident fund: the provincial social security centre and the
  municipal provident fund centres, each with its own data-sharing agreement, signed requests
  and the customer's consent record; often through the provincial big-data (information) centre.
- Property: the real-estate registration centre of each city, queried with consent.
- Bank and local data: the member bank's core banking system and, for county banks, the
  county's land-contract and agricultural-subsidy registers.
Each needs credentials, signed requests, a consent record per query, quotas and answer codes
mapped to the dataclasses in ``ports``; a refusal or time-out is ``SourceUnavailable``.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from functools import lru_cache

from infra.identity_numbers import make_test_id_number, validate_id_number
from lending_core.datasources.ports import (
    BankRelationshipData,
    CourtRecord,
    CreditReport,
    LocalRecord,
    PropertyRecord,
    ProvidentFundRecord,
    SocialSecurityRecord,
    SourceUnavailable,
    TaxRecord,
)

__all__ = [
    "DEMO_PERSONAS",
    "PERSONAS",
    "Persona",
    "SandboxBankData",
    "SandboxCourts",
    "SandboxCreditBureau",
    "SandboxLocalData",
    "SandboxPropertyRegistry",
    "SandboxProvidentFund",
    "SandboxSocialSecurity",
    "SandboxTaxBureau",
    "describe_personas",
    "persona_of",
]

SLOW_SECONDS = 30


def _fen(yuan: int) -> int:
    return yuan * 100


class _Draw:
    """Deterministic figures for one ID number: each ``salt`` names an independent draw."""

    def __init__(self, id_number: str):
        self.id_number = id_number

    def between(self, salt: str, low: int, high: int) -> int:
        digest = hashlib.sha256(f"{self.id_number}:{salt}".encode()).digest()
        return low + int.from_bytes(digest[:8], "big") % (high - low + 1)

    def yuan(self, salt: str, low: int, high: int, step: int = 100) -> int:
        """An amount in fen, a multiple of ``step`` yuan between ``low`` and ``high`` yuan."""
        return _fen(self.between(salt, low // step, high // step) * step)

    def chance(self, salt: str, percent: int) -> bool:
        return self.between(salt, 0, 99) < percent

    def choice(self, salt: str, options: Sequence[str]) -> str:
        return options[self.between(salt, 0, len(options) - 1)]


@dataclass(frozen=True)
class _Answers:
    credit: CreditReport
    tax: TaxRecord
    court: CourtRecord
    social_security: SocialSecurityRecord
    provident_fund: ProvidentFundRecord
    property: PropertyRecord
    bank: BankRelationshipData
    local: LocalRecord


_NO_TAX = TaxRecord(False, "none", "", 0, 0, 0, 0, None, False)
_CLEAN_COURT = CourtRecord(0, 0, False, 0)
_NO_SOCIAL_SECURITY = SocialSecurityRecord(0, 0, 0, "none")
_NO_FUND = ProvidentFundRecord(0, 0, 0, 0, "none")
_NO_PROPERTY = PropertyRecord(0, 0, 0, None)
_NOT_A_CUSTOMER = BankRelationshipData(False, 0, 0, 0, 0, False, 0)
_NOT_A_FARMER = LocalRecord(False, 0, 0, "")
_NO_CREDIT_RECORD = CreditReport(False, 0, 0, 0, 0, 0, 0, 0, 0, 0, False)

# Annual individual income tax on comprehensive income (2019 law): (upper bound, rate %, quick deduction).
_IIT_BRACKETS_YUAN = ((36_000, 3, 0), (144_000, 10, 2_520), (300_000, 20, 16_920), (420_000, 25, 31_920),
                      (660_000, 30, 52_920), (960_000, 35, 85_920), (None, 45, 181_920))
_STANDARD_DEDUCTION_FEN = _fen(60_000)
_PERSONAL_INSURANCE_PER_MILLE = 105  # pension 8% + medical 2% + unemployment 0.5%


def _annual_income_tax(taxable_fen: int) -> int:
    if taxable_fen <= 0:
        return 0
    for upper, rate, deduction in _IIT_BRACKETS_YUAN:
        if upper is None or taxable_fen <= _fen(upper):
            return taxable_fen * rate // 100 - _fen(deduction)
    raise AssertionError("the last bracket is open")


@dataclass(frozen=True)
class _Job:
    """One drawn salary and what every source then says about it."""

    social_security: SocialSecurityRecord
    provident_fund: ProvidentFundRecord
    net_monthly_fen: int  # what reaches the payroll account
    annual_tax_fen: int


def _job(d: _Draw, employer_kind: str, months: tuple[int, int], base_yuan: tuple[int, int],
         *, fund: bool, fund_months: tuple[int, int] = (12, 180), steady: bool = True) -> _Job:
    total = d.between("contribution_months", *months)
    continuous = total if steady else d.between("continuous_months", min(total, 6), total)
    base = d.yuan("monthly_base", *base_yuan)
    fund_pct = d.between("fund_pct", 5, 12) if fund else 0  # each side pays 5-12% of the base
    fund_monthly = base * fund_pct * 2 // 100
    personal = base * _PERSONAL_INSURANCE_PER_MILLE // 1000 + fund_monthly // 2
    annual_tax = _annual_income_tax((base - personal) * 12 - _STANDARD_DEDUCTION_FEN)
    fund_record = _NO_FUND
    if fund:
        paid = min(total, d.between("fund_months", *fund_months))
        saved = min(paid, d.between("fund_saved_months", 10, 48))  # the rest was withdrawn (rent, home purchase)
        fund_record = ProvidentFundRecord(paid, min(continuous, paid), fund_monthly, fund_monthly * saved, employer_kind)
    return _Job(SocialSecurityRecord(total, continuous, base, employer_kind), fund_record,
                base - personal - annual_tax // 12, annual_tax)


def _income_tax(job: _Job) -> TaxRecord:
    """A salaried person's income tax, withheld by the employer: no business revenue, no grade."""
    months = min(job.social_security.continuous_months, 24)
    return TaxRecord(True, "individual", "", months, job.annual_tax_fen, 0,
                     job.social_security.contribution_months, None, False)


def _credit(d: _Draw, *, overdue_months: tuple[int, int] = (0, 0), longest_run: tuple[int, int] = (0, 0),
            current_overdue_yuan: tuple[int, int] = (0, 0), inquiries_3m: tuple[int, int] = (0, 2),
            debt_yuan: tuple[int, int] = (0, 50_000), payment_pct: tuple[int, int] = (3, 6),
            card_lines_yuan: tuple[int, int] = (20_000, 100_000), utilisation: tuple[int, int] = (5, 30),
            bad_debt: bool = False) -> CreditReport:
    overdue = d.between("overdue_months", *overdue_months)
    debt = d.yuan("debt", *debt_yuan)
    inquiries = d.between("inquiries_3m", *inquiries_3m)
    return CreditReport(
        has_record=True,
        overdue_count_24m=overdue,
        max_overdue_months_24m=min(overdue, d.between("longest_run", *longest_run)),
        current_overdue_fen=d.yuan("current_overdue", *current_overdue_yuan),
        inquiries_3m=inquiries,
        inquiries_6m=inquiries + d.between("inquiries_earlier", 0, max(1, inquiries)),
        outstanding_debt_fen=debt,
        monthly_debt_payment_fen=debt * d.between("payment_pct", *payment_pct) // 100,
        unsecured_consumer_credit_fen=d.yuan("card_lines", *card_lines_yuan, step=1000),
        credit_card_utilisation_pct=d.between("utilisation", *utilisation),
        bad_debt=bad_debt,
    )


def _payroll_customer(d: _Draw, job: _Job, deposits_yuan: tuple[int, int], *, time_deposit_yuan: tuple[int, int] = (0, 0),
                      mortgage: bool = False, loans_yuan: tuple[int, int] = (0, 0)) -> BankRelationshipData:
    time_deposit = d.yuan("time_deposit", *time_deposit_yuan, step=10_000)
    return BankRelationshipData(
        is_customer=True,
        deposit_avg_6m_fen=time_deposit + d.yuan("demand_deposit_avg", *deposits_yuan),
        time_deposit_fen=time_deposit,
        payroll_monthly_fen=job.net_monthly_fen,
        payroll_months=min(job.social_security.continuous_months, d.between("payroll_months", 12, 120)),
        mortgage_in_good_standing=mortgage,
        existing_loans_fen=d.yuan("existing_loans", *loans_yuan, step=1000),
    )


_USCC_CHARACTERS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def _unified_social_credit_code(d: _Draw, entity_type: str) -> str:
    """A well-formed code (GB 32100-2015): authority 9 (market regulation), ``entity_type``
    (1 enterprise, 2 individual business), the ID's region, a GB 11714 organisation code, check."""
    body = "".join(str(d.between(f"org_code_{i}", 0, 9)) for i in range(8))
    org_check = 11 - sum(int(c) * w for c, w in zip(body, _ORG_CODE_WEIGHTS)) % 11
    first_17 = f"9{entity_type}{d.id_number[:6]}{body}" + {10: "X", 11: "0"}.get(org_check, str(org_check))
    total = sum(_USCC_CHARACTERS.index(c) * w for c, w in zip(first_17, _USCC_WEIGHTS))
    return first_17 + _USCC_CHARACTERS[(31 - total % 31) % 31]


def _business_tax(d: _Draw, kind: str, grades: str, revenue_yuan: tuple[int, int],
                  tax_per_mille: tuple[int, int], registered_months: tuple[int, int], *,
                  high_tech: bool = False) -> TaxRecord:
    revenue = d.yuan("revenue", *revenue_yuan, step=10_000)
    return TaxRecord(True, kind, d.choice("tax_grade", grades), 24,
                     revenue * d.between("tax_per_mille", *tax_per_mille) // 1000, revenue,
                     d.between("registered_months", *registered_months),
                     _unified_social_credit_code(d, "2" if kind == "sole_proprietor" else "1"), high_tech)


def _homes(d: _Draw, count: int, value_yuan: tuple[int, int], mortgaged: int) -> PropertyRecord:
    if count == 0:
        return _NO_PROPERTY
    year, number = d.between("certificate_year", 2015, 2024), d.between("certificate_number", 1, 9_999_999)
    return PropertyRecord(count, d.yuan("assessed_value", *value_yuan, step=10_000), mortgaged,
                          f"({year})不动产权第{number:07d}号")


def _answers(d: _Draw, *, credit: CreditReport, job: _Job | None = None, tax: TaxRecord | None = None,
             court: CourtRecord = _CLEAN_COURT, property: PropertyRecord = _NO_PROPERTY,
             bank: BankRelationshipData = _NOT_A_CUSTOMER, local: LocalRecord = _NOT_A_FARMER) -> _Answers:
    return _Answers(credit, tax or (_income_tax(job) if job else _NO_TAX), court,
                    job.social_security if job else _NO_SOCIAL_SECURITY,
                    job.provident_fund if job else _NO_FUND, property, bank, local)


def _clean_salaried(d: _Draw) -> _Answers:
    job = _job(d, d.choice("employer", ("public_sector", "soe")), (60, 240), (8_000, 20_000), fund=True, fund_months=(60, 240))
    return _answers(d, job=job, credit=_credit(d, inquiries_3m=(1, 2)), bank=_payroll_customer(d, job, (20_000, 150_000)))


def _thin_file(d: _Draw) -> _Answers:
    job = _job(d, "private", (2, 11), (4_000, 7_000), fund=False)
    bank = BankRelationshipData(True, d.yuan("deposit_avg", 2_000, 15_000), 0, 0, 0, False, 0)
    return _answers(d, job=job, credit=_NO_CREDIT_RECORD, bank=bank if d.chance("customer", 50) else _NOT_A_CUSTOMER)


def _sole_proprietor(d: _Draw) -> _Answers:
    job = _job(d, "self_employed", (24, 120), (4_000, 5_000), fund=False)
    return _answers(
        d, job=job,
        tax=_business_tax(d, "sole_proprietor", "AB", (1_500_000, 6_000_000), (15, 30), (36, 150)),
        credit=_credit(d, overdue_months=(0, 1), longest_run=(1, 1), inquiries_3m=(1, 3), debt_yuan=(100_000, 500_000)),
        property=_homes(d, d.between("homes", 0, 1), (800_000, 2_000_000), 0),
        bank=BankRelationshipData(True, d.yuan("deposit_avg", 80_000, 600_000), 0, 0, 0, False,
                                  d.yuan("existing_loans", 0, 300_000, step=1000)),
    )


def _court(d: _Draw, *, dishonest: bool) -> _Answers:
    job = _job(d, "private", (12, 120), (4_000, 9_000), fund=False, steady=False)
    active = d.between("enforcements", 1, 4 if dishonest else 3)
    court = CourtRecord(active, d.yuan("enforcement_amount", 30_000, 400_000), dishonest,
                        active + d.between("other_suits", 0, 2))
    credit = _credit(d, overdue_months=(4, 12) if dishonest else (2, 6), longest_run=(2, 6) if dishonest else (2, 4),
                     current_overdue_yuan=(5_000, 50_000), inquiries_3m=(1, 5), debt_yuan=(50_000, 300_000),
                     utilisation=(70, 110))
    return _answers(d, job=job, credit=credit, court=court)


def _recent_overdues(d: _Draw) -> _Answers:
    job = _job(d, "private", (24, 120), (5_000, 10_000), fund=False)
    credit = _credit(d, overdue_months=(3, 8), longest_run=(1, 3), current_overdue_yuan=(2_000, 30_000),
                     inquiries_3m=(4, 9), debt_yuan=(80_000, 300_000), card_lines_yuan=(60_000, 200_000),
                     utilisation=(80, 110))
    return _answers(d, job=job, credit=credit)


def _deposit_holder(d: _Draw) -> _Answers:
    job = _job(d, d.choice("employer", ("private", "self_employed")), (36, 240), (4_000, 6_000), fund=False)
    return _answers(d, job=job, credit=_credit(d, debt_yuan=(0, 20_000)),
                    bank=_payroll_customer(d, job, (20_000, 200_000), time_deposit_yuan=(500_000, 3_000_000)))


def _home_owner(d: _Draw) -> _Answers:
    job = _job(d, d.choice("employer", ("soe", "private")), (60, 200), (8_000, 18_000), fund=True)
    mortgage = d.yuan("mortgage", 400_000, 1_500_000, step=1000)
    credit = _credit(d, debt_yuan=(0, 30_000))
    credit = replace(credit, outstanding_debt_fen=credit.outstanding_debt_fen + mortgage,
                     monthly_debt_payment_fen=credit.monthly_debt_payment_fen + mortgage * 6 // 1000)
    bank = _payroll_customer(d, job, (30_000, 200_000), mortgage=True)
    return _answers(d, job=job, credit=credit, property=_homes(d, d.between("homes", 1, 2), (1_200_000, 4_000_000), 1),
                    bank=replace(bank, existing_loans_fen=mortgage))


def _firm_owner(d: _Draw, revenue_yuan: tuple[int, int], tax_per_mille: tuple[int, int], registered_months: tuple[int, int],
                base_yuan: tuple[int, int], deposits_yuan: tuple[int, int], *, high_tech: bool = False) -> _Answers:
    job = _job(d, "private", (48, 180), base_yuan, fund=True)
    return _answers(
        d, job=job, tax=_business_tax(d, "small_firm", "A", revenue_yuan, tax_per_mille, registered_months, high_tech=high_tech),
        credit=_credit(d, inquiries_3m=(1, 3), debt_yuan=(0, 200_000)),
        property=_homes(d, d.between("homes", 1, 2), (1_500_000, 5_000_000), 0),
        bank=_payroll_customer(d, job, deposits_yuan, loans_yuan=(0, 1_000_000)),
    )


def _small_firm(d: _Draw) -> _Answers:
    return _firm_owner(d, (5_000_000, 30_000_000), (20, 40), (48, 180), (8_000, 15_000), (300_000, 2_000_000))


def _high_tech_firm(d: _Draw) -> _Answers:
    # Certified high-tech enterprise: the tax bureau knows it from the 15% enterprise income tax rate.
    return _firm_owner(d, (10_000_000, 50_000_000), (15, 30), (36, 180), (12_000, 25_000), (500_000, 5_000_000),
                       high_tech=True)


def _farmer(d: _Draw) -> _Answers:
    has_borrowed = d.chance("borrowed", 70)  # a past agricultural loan from the rural credit cooperative
    credit = _credit(d, inquiries_3m=(0, 1), debt_yuan=(0, 50_000), card_lines_yuan=(0, 20_000), utilisation=(0, 20))
    local = LocalRecord(True, d.between("land_mu", 5, 60), d.between("subsidy_years", 3, 10),
                        d.choice("village_rating", ("AAA", "AA", "AA", "A")))
    time_deposit = d.yuan("time_deposit", 0, 50_000, step=10_000)
    bank = BankRelationshipData(True, time_deposit + d.yuan("demand_deposit_avg", 10_000, 80_000), time_deposit, 0, 0, False,
                                d.yuan("existing_loans", 0, 50_000, step=1000) if has_borrowed else 0)
    return _answers(d, credit=credit if has_borrowed else _NO_CREDIT_RECORD, bank=bank, local=local)


def _over_indebted(d: _Draw) -> _Answers:
    job = _job(d, "private", (36, 120), (6_000, 10_000), fund=False)
    credit = _credit(d, inquiries_3m=(2, 5), debt_yuan=(300_000, 800_000), card_lines_yuan=(200_000, 500_000),
                     utilisation=(90, 120))
    payment = job.net_monthly_fen * d.between("debt_to_income_pct", 70, 95) // 100
    return _answers(d, job=job, credit=replace(credit, monthly_debt_payment_fen=payment))


def _bad_debt(d: _Draw) -> _Answers:
    job = _job(d, "private", (12, 96), (4_000, 8_000), fund=False, steady=False)
    credit = _credit(d, overdue_months=(6, 12), longest_run=(6, 6), current_overdue_yuan=(20_000, 100_000),
                     inquiries_3m=(0, 3), debt_yuan=(50_000, 200_000), card_lines_yuan=(10_000, 50_000),
                     utilisation=(100, 130), bad_debt=True)
    return _answers(d, job=job, credit=credit, court=CourtRecord(0, 0, False, d.between("suits", 1, 2)))


def _average(d: _Draw) -> _Answers:
    job = _job(d, "private", (24, 120), (5_000, 10_000), fund=d.chance("fund", 50), steady=d.chance("steady", 80))
    credit = _credit(d, overdue_months=(0, 1), longest_run=(1, 1), inquiries_3m=(0, 3), debt_yuan=(0, 100_000),
                     utilisation=(10, 60))
    bank = _payroll_customer(d, job, (5_000, 60_000)) if d.chance("payroll_here", 40) else _NOT_A_CUSTOMER
    return _answers(d, job=job, credit=credit, bank=bank)


@dataclass(frozen=True)
class Persona:
    label: str
    first: int  # sequence numbers first..last inclusive
    last: int
    sources: str  # what the sources say
    shows: str  # the outcome it is meant to show
    answers: Callable[[_Draw], _Answers] | None  # None: the sources do not answer


PERSONAS: tuple[Persona, ...] = (
    Persona("clean_salaried", 101, 199, "public-sector/SOE employer; 60+ months social security and provident fund; "
            "payroll ¥6-16k net through the bank; clean credit, 1-2 inquiries in 3 months",
            "approval at a good limit (金易通, 社保贷, 快E贷)", _clean_salaried),
    Persona("thin_file", 201, 299, "no credit record; 2-11 months social security at a private firm; no fund",
            "decline or small limit for lack of history", _thin_file),
    Persona("sole_proprietor", 301, 399, "sole proprietorship (USCC code), tax grade A/B, 24/24 months paid, revenue "
            "¥1.5-6m; self-employed social security", "tax-data loan approval (税易通)", _sole_proprietor),
    Persona("court_enforcement", 401, 449, "1-3 active enforcements (¥30-400k); 2-6 overdue months, current overdue",
            "decline: court enforcement", lambda d: _court(d, dishonest=False)),
    Persona("dishonest_debtor", 450, 499, "on the dishonest-debtor list; 1-4 enforcements; 4-12 overdue months",
            "decline, blacklist-prohibit (M15)", lambda d: _court(d, dishonest=True)),
    Persona("recent_overdues", 501, 599, "3-8 overdue months in 24, current overdue ¥2-30k, 4-9 inquiries in 3 months",
            "decline or manual review: overdues and inquiries", _recent_overdues),
    Persona("deposit_holder", 601, 699, "time deposits ¥0.5-3m at the bank; modest income (base ¥4-6k)",
            "deposit-pledge loan (存款E贷)", _deposit_holder),
    Persona("home_owner", 701, 799, "1-2 homes (¥1.2-4m), one mortgage ¥0.4-1.5m in good standing at the bank; fund",
            "property-mortgage loan (住房抵押贷款)", _home_owner),
    Persona("small_firm", 801, 849, "small firm (USCC code), tax grade A, revenue ¥5-30m, registered 4-15 years",
            "business loan approval (税企通)", _small_firm),
    Persona("farmer", 851, 899, "registered farmer, 5-60 mu contracted land, 3-10 subsidy years, village rating "
            "AAA/AA/A; no employee social security", "county bank's local product (京银E贷)", _farmer),
    Persona("high_tech_firm", 900, 949, "certified high-tech small firm (15% tax rate), grade A, revenue ¥10-50m, "
            "registered ≥ 36 months",
            "subsidised high-tech loan (高新技术贴息贷款)", _high_tech_firm),
    Persona("over_indebted", 950, 969, "no overdues but debt ¥300-800k, repayments 70-95% of net pay, cards 90-120% used",
            "decline: debt-to-income too high", _over_indebted),
    Persona("bad_debt", 970, 989, "a written-off debt (bad_debt), 6-12 overdue months, current overdue ¥20-100k",
            "decline: bad debt, blacklist candidate", _bad_debt),
    Persona("unavailable", 990, 994, "every source raises SourceUnavailable", "manual review, never a 500", None),
    Persona("slow", 995, 999, f"every source sleeps {SLOW_SECONDS} s", "the caller's timeout, then manual review", None),
)
AVERAGE = Persona("average", 0, 999, "private employer, base ¥5-10k, 0-1 overdue months, 0-3 inquiries; fund and "
                  "payroll at the bank for some", "an ordinary decision", _average)


def persona_of(id_number: str) -> Persona:
    sequence = int(id_number[14:17])
    return next((p for p in PERSONAS if p.first <= sequence <= p.last), AVERAGE)


def _demo(label: str, sequence: int, birth: date, name: str, phone: str) -> tuple[str, str, str, str]:
    return label, make_test_id_number("320102", birth, sequence), name, phone


# One applicant per persona (an odd sequence is a man). Phones avoid the identity sandbox's
# special endings 0000 and 9999.
DEMO_PERSONAS: list[tuple[str, str, str, str]] = [
    _demo("clean_salaried", 123, date(1984, 3, 12), "王建国", "13912345671"),
    _demo("thin_file", 218, date(2003, 5, 20), "李晓雨", "15851234562"),
    _demo("sole_proprietor", 305, date(1981, 8, 9), "张志强", "13851234563"),
    _demo("court_enforcement", 411, date(1976, 11, 2), "刘德明", "13770234564"),
    _demo("dishonest_debtor", 467, date(1979, 2, 14), "孙卫东", "18951234565"),
    _demo("recent_overdues", 522, date(1992, 7, 30), "胡静", "17751234566"),
    _demo("deposit_holder", 606, date(1972, 4, 18), "赵秀英", "13605234567"),
    _demo("home_owner", 733, date(1987, 10, 25), "黄海涛", "15251234568"),
    _demo("small_firm", 815, date(1978, 6, 6), "吴振华", "18651234569"),
    _demo("farmer", 861, date(1974, 3, 28), "周春生", "13951234570"),
    _demo("high_tech_firm", 909, date(1983, 12, 1), "徐明远", "18705234571"),
    _demo("over_indebted", 954, date(1990, 9, 9), "杨丽娟", "19951234572"),
    _demo("bad_debt", 975, date(1985, 1, 17), "马超", "13151234573"),
    _demo("unavailable", 991, date(1995, 2, 11), "郭强", "15905234574"),
    _demo("slow", 996, date(1997, 8, 8), "朱婷", "18205234575"),
    _demo("average", 58, date(1989, 5, 5), "陈晓梅", "13305234576"),
]


def describe_personas() -> str:
    """The persona table as Markdown, for the README."""
    rows = ["| persona | sequence (ID digits 15-17) | what the sources say | meant to show |", "| --- | --- | --- | --- |"]
    rows += [f"| {p.label} | {p.first:03d}-{p.last:03d} | {p.sources} | {p.shows} |" for p in PERSONAS]
    rows.append(f"| {AVERAGE.label} | any other | {AVERAGE.sources} | {AVERAGE.shows} |")
    return "\n".join(rows)


class _SandboxSource:
    source: str  # the key in ports.SOURCES

    def __init__(self) -> None:
        self.calls = 0

    async def _answers(self, id_number: str) -> _Answers:
        self.calls += 1
        id_number = validate_id_number(id_number)
        persona = persona_of(id_number)
        if persona.label == "slow":
            await asyncio.sleep(SLOW_SECONDS)
        if persona.answers is None:
            raise SourceUnavailable(self.source)
        return _answers_of(id_number)


@lru_cache(maxsize=4096)
def _answers_of(id_number: str) -> _Answers:
    # Every source of one person is drawn from the same answers: an application asks several
    # sources at once, so drawing them once is what keeps the sandbox from being the cost.
    return persona_of(id_number).answers(_Draw(id_number))


class SandboxCreditBureau(_SandboxSource):
    source = "credit_bureau"

    async def report(self, id_number: str, name: str) -> CreditReport:
        return (await self._answers(id_number)).credit


class SandboxTaxBureau(_SandboxSource):
    source = "tax"

    async def record(self, id_number: str) -> TaxRecord:
        return (await self._answers(id_number)).tax


class SandboxCourts(_SandboxSource):
    source = "court"

    async def record(self, id_number: str, name: str) -> CourtRecord:
        return (await self._answers(id_number)).court


class SandboxSocialSecurity(_SandboxSource):
    source = "social_security"

    async def record(self, id_number: str) -> SocialSecurityRecord:
        return (await self._answers(id_number)).social_security


class SandboxProvidentFund(_SandboxSource):
    source = "provident_fund"

    async def record(self, id_number: str) -> ProvidentFundRecord:
        return (await self._answers(id_number)).provident_fund


class SandboxPropertyRegistry(_SandboxSource):
    source = "property"

    async def record(self, id_number: str) -> PropertyRecord:
        return (await self._answers(id_number)).property


class SandboxBankData(_SandboxSource):
    source = "bank"

    async def record(self, bank_code: str, id_number: str) -> BankRelationshipData:
        return (await self._answers(id_number)).bank


class SandboxLocalData(_SandboxSource):
    source = "local"

    async def record(self, bank_code: str, id_number: str) -> LocalRecord:
        return (await self._answers(id_number)).local
