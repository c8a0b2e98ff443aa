"""The loan snapshot the warning rules read: every field declared once, with its type, unit,
range and source, as a frozen table.

A snapshot is a nested mapping: the loan's own facts at the top level (``outstanding_fen``) and
one sub-mapping per source (``repayment``, ``account``, ``bureau``, ``court``, ``business``,
``employment``, ``parties``, ``collateral``), which are also the eight rule categories. A rule
writes ``outstanding_fen`` or ``bureau.inquiries_1m``. In a Polars frame of the whole book the
same field is the column named by its path (``"bureau.inquiries_1m"``).

Types are ``int``, ``bool`` and ``text`` (a closed set of values). Money is integer fen; shares are
never stored, they are computed in rules by cross-multiplying integers. Every int has a declared
range, which lets the expression checker prove that a rule's arithmetic fits in 64 bits (so the
Python and the Polars evaluators cannot disagree through overflow). A nullable field is ``None``
(or absent) when the source has nothing: no bureau report, not a business, no guarantor, no
collateral. The loan's facts and the bank's own repayment records are never null.

``HEALTHY`` is the documented default snapshot: a performing loan with full data on every
source; rule fixtures are written as the few fields that differ from it, and no rule may fire
on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Iterable, Mapping

FEN_MAX = 100_000_000_000  # 10 亿元: above any loan, balance or collateral value we hold
COUNT_MAX = 10_000
DAYS_MAX = 36_500

KINDS = ("int", "bool", "text")
CLASSIFICATION = ("normal", "special_mention", "substandard", "doubtful", "loss")


@dataclass(frozen=True)
class Category:
    code: str
    name: str
    name_en: str
    meaning: str


CATEGORIES: Mapping[str, Category] = MappingProxyType({c.code: c for c in (
    Category("repayment", "还款行为", "Repayment behaviour", "the bank's own repayment records of this loan"),
    Category("account", "账户与资金流向", "Account and fund flows", "the borrower's deposit accounts at the bank: balances, flows, counterparties, use of the loan's funds"),
    Category("bureau", "征信变化", "Credit-bureau changes", "the PBOC credit report refreshed after the loan: inquiries, debts and delinquency at other lenders"),
    Category("court", "涉诉与执行", "Court and enforcement", "court records: cases as defendant, enforcement, dishonest-debtor list, restrictions"),
    Category("business", "经营与纳税", "Business and tax", "the tax bureau's and the market regulator's records of the borrower's business"),
    Category("employment", "就业、社保与公积金", "Employment, social security and provident fund", "social-security and housing-provident-fund records: contributions, employer, benefits"),
    Category("parties", "担保人与共同借款人", "Guarantors and co-borrowers", "what the other sources say about the loan's guarantor and co-borrower"),
    Category("collateral", "抵质押物与外部名单", "Collateral and external lists", "the property registry and pledged deposits; blacklists kept outside the bank"),
)})


@dataclass(frozen=True)
class Field:
    group: str  # a category code, or "" for the loan's own facts (readable by every rule)
    name: str
    kind: str  # "int" | "bool" | "text"
    unit: str  # "fen", "days", "months", "count", "flag", "value", "people", "years"
    meaning: str
    healthy: Any
    nullable: bool = True
    low: int | None = None
    high: int | None = None
    values: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        return f"{self.group}.{self.name}" if self.group else self.name

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` is a legal value of this field (``None`` only if nullable)."""
        if value is None:
            return self.nullable
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "text":
            return isinstance(value, str) and value in self.values
        return isinstance(value, int) and not isinstance(value, bool) and self.low <= value <= self.high


def _fen(group, name, meaning, healthy, *, nullable=True, low=0):
    return Field(group, name, "int", "fen", meaning, healthy, nullable, low, FEN_MAX)


def _count(group, name, meaning, healthy=0, *, nullable=True, high=COUNT_MAX, unit="count"):
    return Field(group, name, "int", unit, meaning, healthy, nullable, 0, high)


def _days(group, name, meaning, healthy=0, *, nullable=True, low=0):
    return Field(group, name, "int", "days", meaning, healthy, nullable, low, DAYS_MAX)


def _flag(group, name, meaning, healthy=False):
    return Field(group, name, "bool", "flag", meaning, healthy, True)


def _text(group, name, meaning, values, healthy):
    return Field(group, name, "text", "value", meaning, healthy, True, values=tuple(values))


FIELDS: tuple[Field, ...] = (
    # The loan's own facts, from the loan book: every rule may read them.
    _fen("", "principal_fen", "amount drawn down (借据金额)", 10_000_000, nullable=False),
    _fen("", "outstanding_fen", "principal not yet repaid", 6_000_000, nullable=False),
    _fen("", "instalment_fen", "amount due at the next instalment", 900_000, nullable=False),
    Field("", "months_on_book", "int", "months", "whole months since disbursement", 8, False, 0, 600),
    Field("", "term_months", "int", "months", "contractual term", 24, False, 1, 600),
    _days("", "days_to_maturity", "days until the final due date; negative once it has passed", 480, nullable=False, low=-DAYS_MAX),

    # 还款行为: this loan's repayment records (ours, never null).
    _days("repayment", "days_past_due", "days the oldest unpaid amount is overdue (0: current)", nullable=False),
    _fen("repayment", "overdue_principal_fen", "principal due and unpaid", 0, nullable=False),
    _fen("repayment", "overdue_interest_fen", "interest due and unpaid", 0, nullable=False),
    _fen("repayment", "penalty_interest_fen", "penalty interest accrued and unpaid (罚息)", 0, nullable=False),
    _days("repayment", "max_dpd_12m", "worst days past due in the last 12 months", nullable=False),
    _count("repayment", "late_instalments_12m", "instalments paid after their due date in the last 12 months", nullable=False, high=366),
    _count("repayment", "consecutive_missed", "instalments missed in a row up to today", nullable=False, high=600),
    _count("repayment", "partial_payments_3m", "instalments of the last 3 months paid only in part", nullable=False, high=100),
    _flag("repayment", "first_instalment_missed", "the first instalment was not paid on time (首期违约)"),
    _count("repayment", "early_repayment_requests_3m", "requests to repay early in the last 3 months", nullable=False),
    _days("repayment", "days_since_last_payment", "days since the last repayment received; null if none ever was", 20),
    _count("repayment", "third_party_repayments_3m", "repayments paid from accounts not the borrower's (他人代还), last 3 months", nullable=False),
    _count("repayment", "autodebit_failures_3m", "failed automatic debits for lack of funds, last 3 months", nullable=False),
    _count("repayment", "broken_promises_3m", "promises to pay made to collection and not kept, last 3 months", nullable=False),
    _days("repayment", "unreachable_days", "days the borrower has not answered on any registered phone", nullable=False),
    _count("repayment", "rollovers_12m", "times this debt was renewed or repaid with a new loan (借新还旧), last 12 months", nullable=False),
    _count("repayment", "extension_requests_12m", "requests to extend or restructure the loan (展期/延期), last 12 months", nullable=False),

    # 账户与资金流向: the borrower's accounts at the bank (null if they hold none).
    _fen("account", "balance_fen", "balance of all the borrower's demand accounts now", 1_500_000),
    _fen("account", "balance_30d_ago_fen", "the same balance 30 days ago", 1_400_000),
    _fen("account", "inflow_30d_fen", "credits in the last 30 days", 900_000),
    _fen("account", "inflow_monthly_avg_6m_fen", "average monthly credits over the 6 months before that", 850_000),
    _fen("account", "outflow_30d_fen", "debits in the last 30 days", 800_000),
    _fen("account", "largest_outflow_30d_fen", "largest single debit in the last 30 days", 200_000),
    _count("account", "shared_counterparty_transfers_30d", "transfers to counterparties that also transact with overdue borrowers, last 30 days"),
    _fen("account", "loan_funds_to_restricted_fen", "loan proceeds traced to securities, property, wealth products or other lenders", 0),
    _fen("account", "loan_funds_returned_fen", "loan proceeds flowing back to the borrower or related accounts after disbursement (回流)", 0),
    _count("account", "gambling_tx_30d", "transactions with merchants or accounts flagged as gambling, last 30 days"),
    _count("account", "pass_through_days_30d", "days on which 90%+ of the day's credits left the same day (快进快出), last 30 days", high=31),
    _count("account", "payroll_missing_months", "months in a row without the usual payroll credit (代发工资); null if never paid through the bank", high=600, unit="months"),
    _days("account", "days_since_customer_tx", "days since the borrower last made a transaction themselves", 3),
    _count("account", "other_lender_inflows_30d", "credits from consumer-finance companies and online lenders, last 30 days"),
    _fen("account", "cash_withdrawal_30d_fen", "cash withdrawn at counters and ATMs in the last 30 days", 50_000),
    _count("account", "accounts_closed_30d", "accounts the borrower closed at the bank in the last 30 days"),

    # 征信变化: the credit report refreshed after disbursement (null: no report could be had).
    _days("bureau", "report_age_days", "age of the latest credit report we hold", 30),
    _count("bureau", "inquiries_1m", "loan and card approval inquiries by other lenders, last month"),
    _count("bureau", "inquiries_3m", "the same, last 3 months", 1),
    _count("bureau", "new_loans_3m", "loans opened at other lenders in the last 3 months"),
    _fen("bureau", "new_loan_amount_3m_fen", "their total amount", 0),
    _fen("bureau", "overdue_elsewhere_fen", "amount overdue at other lenders now", 0),
    _flag("bureau", "bad_debt_elsewhere", "a debt written off, compensated by a guarantor or settled with assets (呆账/代偿/以资抵债)"),
    _fen("bureau", "card_limit_fen", "total credit-card limits", 5_000_000),
    _fen("bureau", "card_used_fen", "total credit-card balances used", 1_000_000),
    _fen("bureau", "total_debt_fen", "outstanding debt at all lenders, ours included", 8_000_000),
    _fen("bureau", "total_debt_6m_ago_fen", "the same six months ago", 8_500_000),
    _count("bureau", "online_microloans_open", "open loans from online micro-lenders and consumer-finance companies"),
    _text("bureau", "worst_class_elsewhere", "worst five-tier classification of the borrower's loans at other lenders", CLASSIFICATION, "normal"),
    _fen("bureau", "guarantees_given_fen", "amount the borrower guarantees for others", 0),
    _flag("bureau", "restructured_elsewhere", "a loan at another lender was extended or restructured"),
    _flag("bureau", "fraud_alert", "the report carries an identity-theft or fraud alert statement"),
    _count("bureau", "lenders_with_balance", "lenders the borrower owes money to now", 2),
    _fen("bureau", "card_cash_advance_3m_fen", "cash advances on credit cards, last 3 months", 0),

    # 涉诉与执行: court records (null: the court source has no answer for this person).
    _count("court", "new_cases_3m", "new civil cases naming the borrower as defendant, last 3 months"),
    _count("court", "loan_dispute_cases_12m", "financial-loan contract disputes as defendant (金融借款合同纠纷), last 12 months"),
    _count("court", "private_lending_cases_12m", "private-lending disputes as defendant (民间借贷纠纷), last 12 months"),
    _count("court", "active_enforcements", "enforcement cases open against the borrower (被执行)"),
    _flag("court", "dishonest_debtor", "on the list of dishonest judgement debtors (失信被执行人)"),
    _flag("court", "consumption_restricted", "under an order restricting high consumption (限制高消费)"),
    _flag("court", "assets_frozen", "deposits or property frozen or seized by a court (查封/冻结)"),
    _flag("court", "criminal_case", "named in a criminal case"),
    _flag("court", "divorce_case_3m", "a divorce case filed in the last 3 months"),
    _fen("court", "unpaid_judgments_fen", "amounts the borrower was ordered to pay and has not", 0),
    _flag("court", "summons_by_publication", "a court could not find the borrower and served by public notice (公告送达)"),
    _flag("court", "bankruptcy_case", "the borrower's business is in bankruptcy or reorganisation"),

    # 经营与纳税: tax bureau and market regulator (null: the borrower runs no business).
    _text("business", "tax_grade", "tax credit grade now", ("A", "B", "M", "C", "D"), "B"),
    _text("business", "tax_grade_prev", "tax credit grade of the year before", ("A", "B", "M", "C", "D"), "B"),
    _count("business", "revenue_decline_months", "months in a row declared revenue was below the same month a year before", high=600, unit="months"),
    _count("business", "zero_declaration_months", "months in a row declared with zero revenue (零申报)", high=600, unit="months"),
    _fen("business", "unpaid_tax_fen", "tax owed past its due date (欠税)", 0),
    _text("business", "registration_status", "business registration status", ("active", "suspended", "revoked", "cancelled"), "active"),
    _flag("business", "abnormal_operation_listed", "on the market regulator's list of abnormal operations (经营异常名录)"),
    _count("business", "filing_missed_months", "tax returns not filed on time, last 12 months", high=12, unit="months"),
    _flag("business", "legal_rep_changed_6m", "the legal representative changed in the last 6 months"),
    _flag("business", "major_tax_violation", "on the list of major tax-law violators (重大税收违法失信)"),
    _count("business", "administrative_penalties_12m", "administrative penalties in the last 12 months"),
    _flag("business", "equity_pledged_or_frozen", "the business's equity was pledged or frozen"),
    _fen("business", "invoice_amount_3m_fen", "VAT invoices issued in the last 3 months", 30_000_000),
    _fen("business", "invoice_amount_prev_3m_fen", "VAT invoices issued in the same 3 months a year before", 28_000_000),
    _fen("business", "profit_12m_fen", "profit declared for the last 12 months (negative: a loss)", 5_000_000, low=-FEN_MAX),
    _fen("business", "profit_prev_12m_fen", "profit declared for the 12 months before", 4_500_000, low=-FEN_MAX),
    _count("business", "related_firms_abnormal", "firms sharing its legal representative or shareholders that are abnormal, revoked or in enforcement"),

    # 就业、社保与公积金 (null: no social-security or provident-fund record).
    _count("employment", "ss_stopped_months", "months in a row without a social-security contribution", high=600, unit="months"),
    _fen("employment", "ss_base_fen", "monthly social-security contribution base now (≈ declared pay)", 600_000),
    _fen("employment", "ss_base_12m_ago_fen", "the same base twelve months ago", 580_000),
    _flag("employment", "employer_changed_6m", "the contributing employer changed in the last 6 months"),
    _count("employment", "pf_stopped_months", "months in a row without a housing provident fund deposit", high=600, unit="months"),
    _flag("employment", "pf_account_closed", "the provident-fund account was closed and paid out (销户提取)"),
    _flag("employment", "unemployment_benefit", "receiving unemployment insurance benefit"),
    _flag("employment", "employer_in_arrears", "the employer is behind with its social-security contributions"),
    _flag("employment", "switched_to_flexible_6m", "moved from employer contributions to self-paid flexible employment"),
    _count("employment", "employer_headcount", "people the employer insures now", 120, high=10_000_000, unit="people"),
    _count("employment", "employer_headcount_6m_ago", "people it insured six months ago", 118, high=10_000_000, unit="people"),
    _fen("employment", "medical_expense_12m_fen", "medical expenses claimed in the last 12 months", 200_000),
    _flag("employment", "insured_outside_province", "the insurance record moved out of the province"),
    Field("employment", "months_to_retirement", "int", "months", "months until statutory retirement age (negative: retired)", 240, True, -600, 600),
    _flag("employment", "work_injury_12m", "an occupational injury recognised in the last 12 months"),

    # 担保人与共同借款人 (null: the loan has no guarantor / co-borrower, or no data on them).
    _fen("parties", "guarantor_overdue_fen", "amount the guarantor has overdue at any lender", 0),
    _count("parties", "guarantor_new_cases_3m", "new court cases against the guarantor, last 3 months"),
    _flag("parties", "guarantor_dishonest", "the guarantor is a listed dishonest judgement debtor"),
    _flag("parties", "guarantor_deceased", "the guarantor died or lost legal capacity"),
    _count("parties", "guarantor_guaranteed_loans_overdue", "other loans the guarantor guarantees that are overdue (担保链)"),
    _count("parties", "guarantor_guarantees_count", "loans the guarantor guarantees in all", 1),
    _flag("parties", "guarantor_withdrawal_requested", "the guarantor asked to be released from the guarantee"),
    _flag("parties", "guarantor_assets_frozen", "the guarantor's deposits or property were frozen by a court"),
    Field("parties", "guarantor_age", "int", "years", "the guarantor's age", 45, True, 0, 130),
    _days("parties", "guarantor_unreachable_days", "days the guarantor has not answered on any registered phone"),
    _days("parties", "guarantee_period_days_left", "days left of the guarantee period (保证期间); negative once expired", 900, low=-DAYS_MAX),
    _fen("parties", "co_borrower_income_fen", "the co-borrower's monthly income now", 500_000),
    _fen("parties", "co_borrower_income_12m_ago_fen", "the same twelve months ago", 480_000),
    _flag("parties", "co_borrower_divorce_filed", "the co-borrower (usually the spouse) and the borrower have filed for divorce"),

    # 抵质押物与外部名单 (collateral fields null for an unsecured loan; list flags null if unchecked).
    _fen("collateral", "value_at_grant_fen", "collateral value when the loan was granted", 20_000_000),
    _fen("collateral", "current_value_fen", "collateral value at the latest revaluation", 20_500_000),
    _flag("collateral", "pledge_frozen", "the pledged deposit was frozen or stopped by a court or authority"),
    _flag("collateral", "property_seized", "the mortgaged property was seized by a court"),
    _flag("collateral", "later_mortgage_registered", "a further mortgage was registered on the property after ours"),
    _flag("collateral", "transfer_applied", "a transfer of the mortgaged property was applied for at the registry"),
    _flag("collateral", "pledge_withdrawal_requested", "the borrower asked to withdraw the pledged deposit early"),
    _flag("collateral", "insurance_lapsed", "the collateral's insurance lapsed"),
    _days("collateral", "valuation_age_days", "age of the latest valuation", 120),
    _flag("collateral", "expropriation_notice", "the property lies in an announced expropriation or demolition area"),
    _flag("collateral", "external_blacklist", "on an industry blacklist kept outside the bank"),
    _flag("collateral", "fraud_list", "on the public-security list of accounts linked to telecom fraud (涉诈名单)"),
    _flag("collateral", "aml_watchlist", "on an anti-money-laundering or sanctions watch list"),
)

BY_PATH: Mapping[str, Field] = MappingProxyType({f.path: f for f in FIELDS})
GROUPS: tuple[str, ...] = tuple(CATEGORIES)
LOAN_FACTS: tuple[str, ...] = tuple(f.name for f in FIELDS if not f.group)


def _healthy() -> dict[str, Any]:
    snapshot: dict[str, Any] = {f.name: f.healthy for f in FIELDS if not f.group}
    for group in GROUPS:
        snapshot[group] = {f.name: f.healthy for f in FIELDS if f.group == group}
    return snapshot


def freeze(snapshot: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only copy of a snapshot, for the shared defaults and the rules' fixtures."""
    return MappingProxyType({k: MappingProxyType(dict(v)) if isinstance(v, Mapping) else v for k, v in snapshot.items()})


HEALTHY: Mapping[str, Any] = freeze(_healthy())


def snapshot(changes: Mapping[str, Any] | None = None, *, missing: Iterable[str] = ()) -> dict[str, Any]:
    """A loan snapshot: ``HEALTHY`` with ``changes`` merged over it (a group's mapping is merged
    field by field) and the ``missing`` paths set to null. Unknown names raise ``KeyError``."""
    result = {k: dict(v) if isinstance(v, Mapping) else v for k, v in HEALTHY.items()}
    for key, value in (changes or {}).items():
        if key in CATEGORIES:
            if value is None:
                result[key] = None
                continue
            for name, inner in value.items():
                if f"{key}.{name}" not in BY_PATH:
                    raise KeyError(f"{key}.{name}")
                result[key][name] = inner
        elif key in LOAN_FACTS:
            result[key] = value
        else:
            raise KeyError(key)
    for path in missing:
        if path not in BY_PATH:
            raise KeyError(path)
        group, _, name = path.rpartition(".")
        if group:
            if result[group] is not None:
                result[group][name] = None
        else:
            result[name] = None
    return result


def value_at(loan: Mapping[str, Any], path: str) -> Any:
    """A field's value in a nested snapshot; ``None`` when it (or its whole group) is absent."""
    group, _, name = path.rpartition(".")
    if not group:
        return loan.get(name)
    inner = loan.get(group)
    return None if inner is None else inner.get(name)


def problems_of(loan: Mapping[str, Any]) -> list[str]:
    """What makes a snapshot illegal: unknown keys, values of the wrong type or out of range,
    null in a field that may not be null. Empty for a legal snapshot."""
    found = []
    for key, value in loan.items():
        if key in CATEGORIES:
            if value is not None and not isinstance(value, Mapping):
                found.append(f"{key}: must be a table of fields")
            elif value is not None:
                found.extend(f"{key}.{name}: unknown field" for name in value if f"{key}.{name}" not in BY_PATH)
        elif key not in LOAN_FACTS and key != "product":
            found.append(f"{key}: unknown field")
    for f in FIELDS:
        value = value_at(loan, f.path)
        if not f.accepts(value):
            if value is None:
                found.append(f"{f.path}: may not be null")
            elif f.kind == "int":
                found.append(f"{f.path}: {value!r} is not a whole number in {f.low}…{f.high}")
            elif f.kind == "text":
                found.append(f"{f.path}: {value!r} is not one of {', '.join(f.values)}")
            else:
                found.append(f"{f.path}: {value!r} is not true or false")
    return found


def flatten(loan: Mapping[str, Any]) -> dict[str, Any]:
    """One row of the book frame: field path → value (null where absent)."""
    return {f.path: value_at(loan, f.path) for f in FIELDS}
