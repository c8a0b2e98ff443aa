"""What each outside data source answers, as plain frozen dataclasses of the figures rules use.

Money is integer fen (分). Counts and months are ints. Every source is asked by ID number (the
customer's real-name identity) and, where the bank's own data is concerned, by bank code.
A source that cannot answer raises ``SourceUnavailable``; "no record" is a normal answer
(e.g. ``PropertyRecord(count=0, …)``), never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from infra.errors import DependencyUnavailable


class SourceUnavailable(DependencyUnavailable):
    """A data source did not answer (down, slow or refusing); the decision goes to a person."""

    def __init__(self, source: str, message: str | None = None):
        super().__init__(message or f"the {source} source did not answer")
        self.source = source


@dataclass(frozen=True)
class CreditReport:
    """征信: the People's Bank of China credit reference centre's report (a pull is an inquiry)."""

    has_record: bool  # False for a thin file: never borrowed
    overdue_count_24m: int  # months with any overdue in the last 24
    max_overdue_months_24m: int  # worst overdue status in 24 months: M1=1 … M6+=6 (0: never overdue)
    current_overdue_fen: int
    inquiries_3m: int  # loan/credit-card approval inquiries by lenders
    inquiries_6m: int
    outstanding_debt_fen: int
    monthly_debt_payment_fen: int
    unsecured_consumer_credit_fen: int  # credit lines of this kind across all lenders
    credit_card_utilisation_pct: int  # 0-100+
    bad_debt: bool  # written off, guarantor compensation, asset disposal


@dataclass(frozen=True)
class TaxRecord:
    """Tax bureau: the taxpayer's (or their sole proprietorship's / small firm's) record. For a
    salaried individual: tax paid is income tax withheld, revenue 0, no grade, no credit code."""

    registered: bool
    taxpayer_kind: str  # "none" | "individual" | "sole_proprietor" | "small_firm"
    credit_grade: str  # "A" | "B" | "M" | "C" | "D" | "" (tax credit rating)
    months_paid_24m: int
    annual_tax_paid_fen: int
    annual_revenue_fen: int
    registered_months: int
    unified_social_credit_code: str | None
    high_tech_enterprise: bool  # taxed at the 15% rate of a certified high-tech enterprise


@dataclass(frozen=True)
class CourtRecord:
    """Court enforcement (被执行人) and the list of dishonest judgement debtors (失信被执行人)."""

    active_enforcements: int
    enforcement_amount_fen: int
    dishonest_debtor: bool
    litigation_as_defendant_24m: int


@dataclass(frozen=True)
class SocialSecurityRecord:
    contribution_months: int  # total
    continuous_months: int  # up to now
    monthly_base_fen: int  # contribution base ≈ declared salary
    employer_kind: str  # "public_sector" | "soe" | "private" | "self_employed" | "none"


@dataclass(frozen=True)
class ProvidentFundRecord:
    contribution_months: int
    continuous_months: int
    monthly_contribution_fen: int  # employee + employer
    balance_fen: int
    employer_kind: str


@dataclass(frozen=True)
class PropertyRecord:
    """Property registry: homes registered to the person."""

    count: int
    total_assessed_value_fen: int
    mortgaged_count: int
    largest_property_id: str | None  # registry certificate number of the most valuable one


@dataclass(frozen=True)
class BankRelationshipData:
    """The member bank's own data on the person (deposits, payroll, mortgage)."""

    is_customer: bool
    deposit_avg_6m_fen: int
    time_deposit_fen: int  # pledgeable fixed deposits
    payroll_monthly_fen: int  # average payroll credited, last 6 months
    payroll_months: int  # consecutive months of payroll through this bank
    mortgage_in_good_standing: bool
    existing_loans_fen: int


@dataclass(frozen=True)
class LocalRecord:
    """A county bank's local data source (e.g. the county's agricultural subsidy and land
    contract register behind a product like 京银E贷)."""

    registered_farmer: bool
    contracted_land_mu: int
    subsidy_years: int
    village_credit_rating: str  # "AAA" | "AA" | "A" | "" (village credit-household rating)


class CreditBureau(Protocol):
    async def report(self, id_number: str, name: str) -> CreditReport: ...


class TaxBureau(Protocol):
    async def record(self, id_number: str) -> TaxRecord: ...


class Courts(Protocol):
    async def record(self, id_number: str, name: str) -> CourtRecord: ...


class SocialSecurity(Protocol):
    async def record(self, id_number: str) -> SocialSecurityRecord: ...


class ProvidentFund(Protocol):
    async def record(self, id_number: str) -> ProvidentFundRecord: ...


class PropertyRegistry(Protocol):
    async def record(self, id_number: str) -> PropertyRecord: ...


class BankData(Protocol):
    async def record(self, bank_code: str, id_number: str) -> BankRelationshipData: ...


class LocalData(Protocol):
    async def record(self, bank_code: str, id_number: str) -> LocalRecord: ...


# The names products use in `data_sources`, and what each needs consent for.
SOURCES = {
    "credit_bureau": "credit_bureau",
    "tax": "tax",
    "court": "court_records",
    "social_security": "social_security",
    "provident_fund": "provident_fund",
    "property": "property_registry",
    "bank": "personal_information",
    "local": "personal_information",
}
