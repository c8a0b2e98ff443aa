"""Snapshot feeds built on the per-customer data sources of the lending core
(``datasources.ports``): what a source answers at origination, mapped to the warning schema's
fields it can fill. A field those answers cannot tell (inquiries in the last month, a divorce
case…) is ``None``: the rules reading it stay quiet until a real monitoring feed with a bulk
interface (the README says what each needs) replaces the adapter. Each is a feed of batch size
1: ``snapshots.refresh_snapshots`` calls it once per customer and refresh, concurrently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from lending_core.datasources import ports as sources
from lending_core.datasources.gather import DataSources
from lending_core.risk.ports import Person, SnapshotFeed


@dataclass
class _PerCustomer:
    group: str
    ask: Any  # async (person, bank_code) -> mapping of the group's fields
    batch_size: int = 1

    async def fetch(self, people: Sequence[Person], *, bank_code: str) -> Mapping[int, Mapping[str, Any]]:
        return {person.customer_id: await self.ask(person, bank_code) for person in people}


def from_data_sources(data: DataSources) -> list[SnapshotFeed]:
    async def bureau(person: Person, bank_code: str) -> dict:
        r: sources.CreditReport = await data.credit_bureau.report(person.id_number, person.name)
        if not r.has_record:
            return {"report_age_days": 0}
        limit = 0
        return {
            "report_age_days": 0, "inquiries_3m": r.inquiries_3m, "overdue_elsewhere_fen": r.current_overdue_fen,
            "bad_debt_elsewhere": r.bad_debt, "total_debt_fen": r.outstanding_debt_fen, "card_limit_fen": limit or None,
            "worst_class_elsewhere": "loss" if r.bad_debt else ("substandard" if r.max_overdue_months_24m >= 3 and r.current_overdue_fen else "normal"),
        }

    async def court(person: Person, bank_code: str) -> dict:
        r: sources.CourtRecord = await data.court.record(person.id_number, person.name)
        return {"active_enforcements": r.active_enforcements, "dishonest_debtor": r.dishonest_debtor,
                "consumption_restricted": r.dishonest_debtor, "unpaid_judgments_fen": r.enforcement_amount_fen}

    async def business(person: Person, bank_code: str) -> dict:
        r: sources.TaxRecord = await data.tax.record(person.id_number)
        if r.taxpayer_kind not in ("sole_proprietor", "small_firm"):
            return {}
        return {"tax_grade": r.credit_grade or None, "registration_status": "active" if r.registered else "cancelled"}

    async def employment(person: Person, bank_code: str) -> dict:
        ss: sources.SocialSecurityRecord = await data.social_security.record(person.id_number)
        pf: sources.ProvidentFundRecord = await data.provident_fund.record(person.id_number)
        found: dict = {}
        if ss.contribution_months:
            found.update(ss_base_fen=ss.monthly_base_fen, ss_stopped_months=0 if ss.continuous_months else 1)
        if pf.contribution_months:
            found.update(pf_stopped_months=0 if pf.continuous_months else 1)
        return found

    async def collateral(person: Person, bank_code: str) -> dict:
        r: sources.PropertyRecord = await data.property.record(person.id_number)
        return {"current_value_fen": r.total_assessed_value_fen} if r.count else {}

    async def account(person: Person, bank_code: str) -> dict:
        r: sources.BankRelationshipData = await data.bank.record(bank_code, person.id_number)
        if not r.is_customer:
            return {}
        return {"balance_fen": r.deposit_avg_6m_fen, "payroll_missing_months": 0 if r.payroll_months else None}

    return [_PerCustomer("bureau", bureau), _PerCustomer("court", court), _PerCustomer("business", business),
            _PerCustomer("employment", employment), _PerCustomer("collateral", collateral), _PerCustomer("account", account)]
