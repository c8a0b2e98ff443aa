"""The decision engine. Pure: it imports no ORM, web, Redis or HTTP client (STYLE rule 1).

Outcomes: ``approved``, ``rejected`` or ``manual_review``. A rule or attribute that needs a data
source the engine does not have is "not evaluated": on a quote (indicative, no credit-bureau
pull) that is expected; on an application it sends the case to a person, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any, Mapping

from infra.money import yuan_text
from lending_core.products.definition import ProductDefinition

APPROVED, REJECTED, MANUAL_REVIEW = "approved", "rejected", "manual_review"
PROHIBIT, RESTRICT, GREYLIST = "blacklist_prohibit", "blacklist_restrict", "greylist"
# What a customer is told when a list or a cross-bank rule refuses them: nothing about why.
GENERIC_REFUSAL = "暂不符合本产品的申请条件"
UNSECURED_CAP_REASON = "您在本省农商银行体系内的信用贷款额度已达上限"


@dataclass(frozen=True)
class Params:
    """The product's parameters at one bank (the definition's, with the bank's overrides)."""

    amount_max_yuan: int
    rate_floor_bps: int
    spread_adjust_bps: int
    restrict_list_cap_yuan: int


@dataclass(frozen=True)
class LoanRequest:
    amount_yuan: int
    term_months: int
    repayment_method: str


@dataclass(frozen=True)
class Evidence:
    applicant: Mapping[str, Any]  # age, gender, is_bank_customer, target…
    sources: Mapping[str, Mapping[str, Any]]  # data source name → its record as a dict
    unavailable: tuple[str, ...] = ()  # sources asked for that did not answer
    list_level: str | None = None  # the strongest black/grey list match
    unsecured_headroom_fen: int | None = None  # association cap minus existing unsecured credit


@dataclass(frozen=True)
class RuleResult:
    code: str
    passed: bool | None  # None: not evaluated (its data is missing)
    on_fail: str
    reason: str


@dataclass(frozen=True)
class ScorePart:
    attribute: str
    value: Any
    points: int
    evaluated: bool


@dataclass(frozen=True)
class Decision:
    outcome: str
    indicative: bool
    rules: tuple[RuleResult, ...]
    score: int
    band: str
    score_parts: tuple[ScorePart, ...]
    limit_fen: int
    limit_steps: tuple[str, ...]
    rate_bps: int
    rate_steps: tuple[str, ...]
    customer_reasons: tuple[str, ...]
    review_reasons: tuple[str, ...]
    flags: tuple[str, ...] = field(default=())

    @property
    def apr_bps(self) -> int:
        # No fees are charged, so the annualised rate (APR) equals the contract rate.
        return self.rate_bps

    def explain(self) -> dict:
        return {
            "outcome": self.outcome,
            "indicative": self.indicative,
            "rules": [{"code": r.code, "passed": r.passed, "on_fail": r.on_fail} for r in self.rules],
            "score": self.score,
            "band": self.band,
            "score_parts": [
                {"attribute": p.attribute, "value": _plain(p.value), "points": p.points, "evaluated": p.evaluated} for p in self.score_parts
            ],
            "limit_fen": self.limit_fen,
            "limit_steps": list(self.limit_steps),
            "rate_bps": self.rate_bps,
            "apr_bps": self.apr_bps,
            "rate_steps": list(self.rate_steps),
            "customer_reasons": list(self.customer_reasons),
            "review_reasons": list(self.review_reasons),
            "flags": list(self.flags),
        }


def _plain(value: Any) -> Any:
    return value if isinstance(value, (str, int, bool)) or value is None else str(value)


def decide(
    product: ProductDefinition,
    params: Params,
    request: LoanRequest,
    evidence: Evidence,
    *,
    lpr_bps: int,
    indicative: bool = False,
) -> Decision:
    derived = _derived(evidence.sources)
    # Figures derived from income exist only when some income source answered.
    have = set(evidence.sources) | ({"derived"} if derived["monthly_income_fen"] > 0 else set())
    context = {
        "applicant": dict(evidence.applicant),
        "request": {"amount_yuan": request.amount_yuan, "term_months": request.term_months, "repayment_method": request.repayment_method},
        "derived": derived,
        **{name: dict(record) for name, record in evidence.sources.items()},
    }
    customer_reasons: list[str] = []
    review_reasons = [f"data source {source} did not answer" for source in evidence.unavailable]
    flags: list[str] = []

    rules = []
    rejected = referred = False
    for rule in product.admission:
        if not set(rule.needs) <= have:
            rules.append(RuleResult(rule.code, None, rule.on_fail, rule.reason))
            if not indicative:
                referred = True
                review_reasons.append(f"rule {rule.code} not evaluated: missing {', '.join(sorted(set(rule.needs) - have))}")
            continue
        passed = bool(rule.rule(context))
        rules.append(RuleResult(rule.code, passed, rule.on_fail, rule.reason))
        if not passed:
            if rule.on_fail == "reject":
                rejected = True
                customer_reasons.append(rule.reason)
            else:
                referred = True
                review_reasons.append(f"rule {rule.code} refers to a person")

    if evidence.list_level == PROHIBIT:
        rejected = True
        customer_reasons.append(GENERIC_REFUSAL)
        review_reasons.append("on the blacklist (prohibit)")
    elif evidence.list_level == RESTRICT:
        referred = True
        review_reasons.append("on the blacklist (restrict): no automatic approval")
    elif evidence.list_level == GREYLIST:
        flags.append("greylist")

    score, parts = _score(product, context, have)
    band = next(b for b in product.score_bands if score >= b.min_score)
    complete = all(part.evaluated for part in parts)
    if band.outcome == "reject" and not complete:
        # A score missing some of its data cannot decline anyone: a person looks at it.
        referred = True
        review_reasons.append(f"score band {band.band} on incomplete data")
    elif band.outcome == "reject":
        rejected = True
        customer_reasons.append(band.reason or GENERIC_REFUSAL)
    elif band.outcome == "refer":
        referred = True
        review_reasons.append(f"score band {band.band} refers to a person")

    limit_fen, limit_steps = _limit(product, params, band.band, evidence)
    if evidence.list_level == RESTRICT and limit_fen > params.restrict_list_cap_yuan * 100:
        limit_fen = params.restrict_list_cap_yuan * 100
        limit_steps.append(f"capped for the restrict list at {params.restrict_list_cap_yuan} yuan")
    if not rejected and complete and limit_fen < product.amount_yuan.min * 100:
        rejected = True
        if evidence.unsecured_headroom_fen is not None and evidence.unsecured_headroom_fen < product.amount_yuan.min * 100:
            customer_reasons.append(UNSECURED_CAP_REASON)
        else:
            customer_reasons.append("根据您的资信情况，暂无法核定满足本产品最低金额的额度")
    rate_bps, rate_steps = _rate(product, params, band.band, lpr_bps)

    if rejected:
        outcome = REJECTED
    elif referred or evidence.unavailable:
        outcome = MANUAL_REVIEW
    else:
        outcome = APPROVED
    return Decision(
        outcome=outcome,
        indicative=indicative,
        rules=tuple(rules),
        score=score,
        band=band.band,
        score_parts=tuple(parts),
        limit_fen=0 if outcome == REJECTED else limit_fen,
        limit_steps=tuple(limit_steps),
        rate_bps=0 if outcome == REJECTED else rate_bps,
        rate_steps=tuple(rate_steps),
        customer_reasons=tuple(dict.fromkeys(customer_reasons)),
        review_reasons=tuple(review_reasons),
        flags=tuple(flags),
    )


def _derived(sources: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """Figures several products use, computed once (integers: fen and percent)."""
    incomes = [
        sources.get("bank", {}).get("payroll_monthly_fen", 0),
        sources.get("social_security", {}).get("monthly_base_fen", 0),
        sources.get("provident_fund", {}).get("monthly_contribution_fen", 0) * 100 // 24,  # ≈12% each side
        sources.get("tax", {}).get("annual_revenue_fen", 0) // 12 // 10,  # a tenth of revenue as income
    ]
    income = max(incomes)
    debt = sources.get("credit_bureau", {}).get("monthly_debt_payment_fen", 0)
    return {"monthly_income_fen": income, "debt_to_income_pct": (debt * 100 // income) if income else (100 if debt else 0)}


def _score(product: ProductDefinition, context: dict, have: set[str]) -> tuple[int, list[ScorePart]]:
    score, parts = product.score_base, []
    for attribute in product.attributes:
        if not set(attribute.needs) <= have:
            parts.append(ScorePart(attribute.name, None, 0, False))
            continue
        value = attribute.value(context)
        local = {**context, "value": value}
        points = next(b.points for b in attribute.bins if b.when(local))
        score += points
        parts.append(ScorePart(attribute.name, value, points, True))
    return score, parts


def _limit(product: ProductDefinition, params: Params, band: str, evidence: Evidence) -> tuple[int, list[str]]:
    steps, candidates = [], []
    for basis in product.limit.bases:
        root, name = basis.source_field.split(".", 1)
        record = evidence.sources.get(root)
        if record is None or name not in record:
            steps.append(f"{basis.name}: no {basis.source_field}")
            continue
        amount = int((Decimal(int(record[name])) * basis.times).to_integral_value(ROUND_DOWN))
        candidates.append(amount)
        steps.append(f"{basis.name}: {basis.source_field} {yuan_text(int(record[name]))} × {basis.times} = {yuan_text(amount)} yuan")
    limit = min(candidates) if candidates else 0
    factor = product.limit.band_factors.get(band, Decimal(0))
    limit = int((Decimal(limit) * factor).to_integral_value(ROUND_DOWN))
    steps.append(f"smallest basis × band {band} factor {factor} = {yuan_text(limit)} yuan")
    ceiling = min(product.amount_yuan.max, params.amount_max_yuan) * 100
    if limit > ceiling:
        limit = ceiling
        steps.append(f"capped at the product maximum {ceiling // 100} yuan")
    if evidence.unsecured_headroom_fen is not None and product.unsecured and limit > evidence.unsecured_headroom_fen:
        limit = max(evidence.unsecured_headroom_fen, 0)
        steps.append(f"capped by the association's unsecured-credit limit: {yuan_text(limit)} yuan left")
    step = product.limit.round_down_to_yuan * 100
    limit = limit // step * step
    steps.append(f"rounded down to {product.limit.round_down_to_yuan} yuan: {limit // 100} yuan")
    return limit, steps


def _rate(product: ProductDefinition, params: Params, band: str, lpr_bps: int) -> tuple[int, list[str]]:
    spread = product.pricing.spread_bps.get(band, max(product.pricing.spread_bps.values(), default=0))
    rate = lpr_bps + spread + params.spread_adjust_bps
    steps = [f"LPR {product.pricing.lpr_term} {lpr_bps} bps + band {band} spread {spread} bps"]
    if params.spread_adjust_bps:
        steps.append(f"bank adjustment {params.spread_adjust_bps:+d} bps")
    floor = max(product.pricing.floor_bps, params.rate_floor_bps)
    if rate < floor:
        rate = floor
        steps.append(f"raised to the floor {floor} bps")
    if rate > product.pricing.cap_bps:
        rate = product.pricing.cap_bps
        steps.append(f"lowered to the cap {product.pricing.cap_bps} bps")
    steps.append(f"= {rate} bps a year ({Decimal(rate) / 100:.2f}%)")
    return rate, steps
