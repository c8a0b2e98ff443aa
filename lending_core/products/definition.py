"""A product definition: parsed from a mapping (a TOML file, or JSON from the database) into
frozen dataclasses, and validated with precise errors — which file, which rule, what is wrong.

Conditions and scorecard bins are expressions in GoRules' zen expression language (compiled by
zen-engine, never ``eval``): they see the applicant's data as ``applicant``, ``bureau``, ``tax``,
``court``, ``social_security``, ``provident_fund``, ``property``, ``bank``, ``local``,
``request`` and ``derived``. Money never passes through an expression's arithmetic: limits are
computed from named fen fields times Decimal multipliers, rates in basis points.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping

import zen

from lending_core.channel_names import CUSTOMER_CHANNELS
from lending_core.datasources.ports import SOURCES
from lending_core.products import regulation

REPAYMENT_METHODS = ("equal_instalment", "equal_principal", "interest_only", "bullet")
TARGETS = ("individual", "sole_proprietor", "small_firm")
COLLATERAL = ("none", "deposit_pledge", "property_mortgage")
SIGNATORIES = ("guarantor", "co_borrower")
ON_FAIL = ("reject", "refer")
OUTCOMES = ("approve", "refer", "reject")
LPR_TERMS = ("1y", "5y")
# Names an expression may start with: the data the engine hands it.
CONTEXT_ROOTS = ("applicant", "request", "derived", "value", *SOURCES)
# Fields a member bank may override, within the bounds the association sets in the definition.
OVERRIDABLE = ("amount_max", "rate_floor_bps", "spread_adjust_bps", "restrict_list_cap")


class InvalidDefinition(ValueError):
    """A product definition breaks a rule of the format; ``problems`` says where and what."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


@dataclass(frozen=True)
class Expression:
    text: str
    compiled: Any = field(compare=False, repr=False)
    # The context roots the text names: only those are handed to the engine, because converting
    # the whole context (every source record) for each of a product's dozens of expressions
    # was most of the decision's cost.
    roots: tuple[str, ...] = field(default=CONTEXT_ROOTS, compare=False, repr=False)

    @classmethod
    def compile(cls, text: str) -> Expression:
        return cls(text, zen.compile_expression(text), tuple(root for root in CONTEXT_ROOTS if re.search(rf"\b{root}\b", text)))

    def __call__(self, context: Mapping[str, Any]) -> Any:
        return self.compiled.evaluate({root: context[root] for root in self.roots if root in context})


@dataclass(frozen=True)
class AdmissionRule:
    code: str
    rule: Expression
    reason: str  # shown to the customer: plain words, no model internals
    on_fail: str  # "reject" | "refer"
    needs: tuple[str, ...]  # the data sources the rule reads


@dataclass(frozen=True)
class Bin:
    when: Expression
    points: int


@dataclass(frozen=True)
class Attribute:
    name: str
    value: Expression
    bins: tuple[Bin, ...]
    needs: tuple[str, ...]


@dataclass(frozen=True)
class ScoreBand:
    band: str
    min_score: int
    outcome: str  # "approve" | "refer" | "reject"
    reason: str | None


@dataclass(frozen=True)
class LimitBasis:
    name: str
    source_field: str  # e.g. "tax.annual_tax_paid_fen"
    times: Decimal
    needs: tuple[str, ...]


@dataclass(frozen=True)
class LimitModel:
    bases: tuple[LimitBasis, ...]  # the limit is the smallest basis that has data…
    band_factors: Mapping[str, Decimal]  # …times the score band's factor…
    round_down_to_yuan: int  # …rounded down, within the product's amount bounds


@dataclass(frozen=True)
class Pricing:
    lpr_term: str
    spread_bps: Mapping[str, int]  # by score band
    floor_bps: int
    cap_bps: int


@dataclass(frozen=True)
class Servicing:
    """How a loan of the product is serviced: frozen into each contract when it is made."""

    penalty_uplift_bps: int  # penalty rate = contract rate × (1 + uplift); 5000 = +50%
    allocation: tuple[str, ...]  # the order a repayment pays what is due
    early_repayment_fee_bps: int  # of the principal repaid early
    day_basis: int  # days a year, for accruals by the day
    credit_line_months: int  # how long the granted limit can be drawn on
    signing_days: int  # how long the contract waits for every signature
    # Whether the guarantee contract lets the bank take what is overdue from money arriving in
    # the guarantor's own account (约定扣划), as real-time monitoring sees it arrive.
    guarantor_set_off: bool = False


DEFAULT_SERVICING = {
    "penalty_uplift_bps": 5000,
    "allocation": ["penalty", "interest", "principal"],
    "early_repayment_fee_bps": 0,
    "day_basis": 360,
    "credit_line_months": 12,
    "signing_days": 7,
    "guarantor_set_off": False,
}
ALLOCATION_PARTS = ("penalty", "interest", "principal")
DAY_BASES = (360, 365)


@dataclass(frozen=True)
class Bounds:
    min: int
    max: int


@dataclass(frozen=True)
class ProductDefinition:
    code: str
    name: str
    name_en: str
    family: str
    owner: str  # "association" or a member bank's code
    channels: tuple[str, ...]
    targets: tuple[str, ...]
    data_sources: tuple[str, ...]
    collateral: str
    signatories: tuple[str, ...]
    repayment_methods: tuple[str, ...]
    contract_template: str
    amount_yuan: Bounds
    term_months: Bounds
    cooling_off_days: int
    max_live_applications: int
    restrict_list_cap_yuan: int
    unsecured: bool
    admission: tuple[AdmissionRule, ...]
    score_base: int
    attributes: tuple[Attribute, ...]
    score_bands: tuple[ScoreBand, ...]
    limit: LimitModel
    pricing: Pricing
    overridable: Mapping[str, Bounds]
    servicing: Servicing
    raw: Mapping[str, Any] = field(compare=False, repr=False)

    @property
    def consents(self) -> tuple[str, ...]:
        """Consent purposes an application must carry: one per data source, plus personal data."""
        return tuple(sorted({"personal_information", *(SOURCES[s] for s in self.data_sources)}))


def parse(raw: Mapping[str, Any], *, source: str) -> ProductDefinition:
    """Build a definition, collecting every problem before refusing (a product team fixes them
    all at once, not one per try)."""
    problems: list[str] = []
    reader = _Reader(raw, problems)
    code = reader.text("code", pattern_upper=True)
    definition = None
    try:
        data_sources = reader.choices("data_sources", tuple(SOURCES))
        definition = ProductDefinition(
            code=code,
            name=reader.text("name"),
            name_en=reader.text("name_en"),
            family=reader.text("family"),
            owner=reader.text("owner"),
            channels=reader.choices("channels", CUSTOMER_CHANNELS, non_empty=True),
            targets=reader.choices("target_customers", TARGETS, non_empty=True),
            data_sources=data_sources,
            collateral=reader.choice("collateral", COLLATERAL),
            signatories=reader.choices("signatories", SIGNATORIES),
            repayment_methods=reader.choices("repayment_methods", REPAYMENT_METHODS, non_empty=True),
            contract_template=reader.text("contract_template"),
            amount_yuan=reader.bounds("amount_yuan"),
            term_months=reader.bounds("term_months"),
            cooling_off_days=reader.whole("policy.cooling_off_days"),
            max_live_applications=reader.whole("policy.max_live_applications", minimum=1),
            restrict_list_cap_yuan=reader.whole("policy.restrict_list_cap_yuan"),
            unsecured=reader.flag("policy.unsecured"),
            admission=tuple(reader.admission(data_sources)),
            score_base=reader.whole("scorecard.base"),
            attributes=tuple(reader.attributes(data_sources)),
            score_bands=tuple(reader.bands()),
            limit=reader.limit(data_sources),
            pricing=reader.pricing(),
            overridable=reader.overridable(),
            servicing=reader.servicing(),
            raw=dict(raw),
        )
    except _Stop:
        pass
    if definition is not None:
        _check_consistency(definition, problems)
    if problems or definition is None:
        raise InvalidDefinition(source, problems or ["the definition is incomplete"])
    return definition


class _Stop(Exception):
    pass


class _Reader:
    def __init__(self, raw: Mapping[str, Any], problems: list[str]):
        self.raw = raw
        self.problems = problems

    def fail(self, where: str, what: str) -> None:
        self.problems.append(f"{where}: {what}")

    def get(self, path: str, default: Any = ...) -> Any:
        node: Any = self.raw
        for part in path.split("."):
            if not isinstance(node, Mapping) or part not in node:
                if default is ...:
                    self.fail(path, "missing")
                    return None
                return default
            node = node[part]
        return node

    def text(self, path: str, *, pattern_upper: bool = False) -> str:
        value = self.get(path)
        if not isinstance(value, str) or not value.strip():
            if value is not None:
                self.fail(path, "must be non-empty text")
            return ""
        if pattern_upper and not (value.replace("_", "").isalnum() and value.isupper() and len(value) <= 32):
            self.fail(path, "must be upper-case letters, digits and _ (at most 32)")
        return value

    def whole(self, path: str, *, minimum: int = 0) -> int:
        value = self.get(path)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            if value is not None:
                self.fail(path, f"must be a whole number ≥ {minimum}")
            return minimum
        return value

    def flag(self, path: str) -> bool:
        value = self.get(path)
        if not isinstance(value, bool):
            if value is not None:
                self.fail(path, "must be true or false")
            return True
        return value

    def choice(self, path: str, allowed: tuple[str, ...]) -> str:
        value = self.get(path)
        if value not in allowed:
            if value is not None:
                self.fail(path, f"{value!r} is not one of {', '.join(allowed)}")
            return allowed[0]
        return value

    def choices(self, path: str, allowed: tuple[str, ...], *, non_empty: bool = False) -> tuple[str, ...]:
        value = self.get(path, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(path, "must be a list of names")
            return ()
        unknown = [v for v in value if v not in allowed]
        if unknown:
            self.fail(path, f"unknown {', '.join(map(repr, unknown))}; allowed: {', '.join(allowed)}")
        if non_empty and not value:
            self.fail(path, "must name at least one")
        return tuple(v for v in value if v in allowed)

    def bounds(self, path: str) -> Bounds:
        low, high = self.whole(f"{path}.min", minimum=1), self.whole(f"{path}.max", minimum=1)
        if low > high:
            self.fail(path, f"min {low} is above max {high}")
        return Bounds(low, high)

    def expression(self, where: str, text: Any, data_sources: tuple[str, ...]) -> tuple[Expression, tuple[str, ...]]:
        if not isinstance(text, str) or not text.strip():
            self.fail(where, "needs an expression")
            return Expression.compile("false"), ()
        error = zen.validate_expression(text)
        if error:
            self.fail(where, f"expression {text!r} does not parse: {error.get('source', error)}")
            return Expression.compile("false"), ()
        needs = tuple(sorted({root for root in (*SOURCES, "derived") if f"{root}." in text}))
        missing = [n for n in needs if n != "derived" and n not in data_sources]
        if missing:
            self.fail(where, f"reads {', '.join(missing)} but data_sources does not list it")
        return Expression.compile(text), needs

    def admission(self, data_sources: tuple[str, ...]):
        rules = self.get("admission", [])
        seen = set()
        for i, rule in enumerate(rules if isinstance(rules, list) else []):
            code = rule.get("code", f"#{i + 1}") if isinstance(rule, Mapping) else f"#{i + 1}"
            where = f"admission[{code}]"
            if not isinstance(rule, Mapping):
                self.fail(where, "must be a table")
                continue
            if code in seen:
                self.fail(where, "duplicate rule code")
            seen.add(code)
            expression, needs = self.expression(f"{where}.rule", rule.get("rule"), data_sources)
            reason = rule.get("reason")
            if not isinstance(reason, str) or not reason.strip():
                self.fail(f"{where}.reason", "needs a customer-facing reason")
            on_fail = rule.get("on_fail", "reject")
            if on_fail not in ON_FAIL:
                self.fail(f"{where}.on_fail", f"{on_fail!r} is not one of {', '.join(ON_FAIL)}")
            yield AdmissionRule(str(code), expression, str(reason or ""), on_fail, needs)

    def attributes(self, data_sources: tuple[str, ...]):
        attributes = self.get("scorecard.attributes", [])
        for i, attribute in enumerate(attributes if isinstance(attributes, list) else []):
            name = attribute.get("name", f"#{i + 1}") if isinstance(attribute, Mapping) else f"#{i + 1}"
            where = f"scorecard.attributes[{name}]"
            value, needs = self.expression(f"{where}.value", attribute.get("value"), data_sources)
            bins = []
            for j, b in enumerate(attribute.get("bins", [])):
                when, _ = self.expression(f"{where}.bins[{j + 1}].when", b.get("when"), data_sources)
                points = b.get("points")
                if isinstance(points, bool) or not isinstance(points, int):
                    self.fail(f"{where}.bins[{j + 1}].points", "must be a whole number")
                    points = 0
                bins.append(Bin(when, points))
            if not bins:
                self.fail(where, "needs at least one bin")
            elif bins[-1].when.text.strip() != "true":
                self.fail(where, "the last bin must be the catch-all `when = \"true\"`")
            yield Attribute(str(name), value, tuple(bins), needs)

    def bands(self):
        bands = self.get("score_bands", [])
        previous = None
        for i, band in enumerate(bands if isinstance(bands, list) else []):
            where = f"score_bands[{band.get('band', i + 1)}]"
            minimum = band.get("min_score")
            if isinstance(minimum, bool) or not isinstance(minimum, int):
                self.fail(f"{where}.min_score", "must be a whole number")
                minimum = 0
            if previous is not None and minimum >= previous:
                self.fail(where, "bands must be listed from the highest min_score down")
            previous = minimum
            outcome = band.get("outcome", "approve")
            if outcome not in OUTCOMES:
                self.fail(f"{where}.outcome", f"{outcome!r} is not one of {', '.join(OUTCOMES)}")
            if outcome != "approve" and not band.get("reason"):
                self.fail(f"{where}.reason", "a band that refers or rejects needs a customer-facing reason")
            yield ScoreBand(str(band.get("band", "")), minimum, outcome, band.get("reason"))
        if previous is not None and previous != 0:
            self.fail("score_bands", "the last band must start at min_score 0 so every score has a band")

    def limit(self, data_sources: tuple[str, ...]) -> LimitModel:
        bases = []
        for i, basis in enumerate(self.get("limit.bases", [])):
            name = basis.get("name", f"#{i + 1}")
            where = f"limit.bases[{name}]"
            source_field = basis.get("field", "")
            root = source_field.split(".")[0]
            if root not in SOURCES or "." not in source_field or not source_field.endswith("_fen"):
                self.fail(f"{where}.field", "must name a fen field of a data source, e.g. tax.annual_tax_paid_fen")
            elif root not in data_sources:
                self.fail(f"{where}.field", f"reads {root} but data_sources does not list it")
            bases.append(LimitBasis(name, source_field, self.decimal(f"{where}.times", basis.get("times")), (root,)))
        if not bases:
            self.fail("limit.bases", "needs at least one basis")
        factors = {band: self.decimal(f"limit.band_factors.{band}", factor) for band, factor in self.get("limit.band_factors", {}).items()}
        return LimitModel(tuple(bases), factors, self.whole("limit.round_down_to_yuan", minimum=1))

    def decimal(self, where: str, value: Any) -> Decimal:
        # Multipliers are written as strings ("0.8") so no float ever stands in for them.
        if not isinstance(value, str):
            self.fail(where, "must be a decimal written as a string, e.g. \"0.8\"")
            return Decimal(0)
        try:
            number = Decimal(value)
        except InvalidOperation:
            self.fail(where, f"{value!r} is not a decimal")
            return Decimal(0)
        if number < 0:
            self.fail(where, "must not be negative")
        return number

    def pricing(self) -> Pricing:
        spreads = self.get("pricing.spread_bps", {})
        if not isinstance(spreads, Mapping) or not all(isinstance(v, int) and not isinstance(v, bool) for v in spreads.values()):
            self.fail("pricing.spread_bps", "must map score bands to whole basis points")
            spreads = {}
        floor, cap = self.whole("pricing.floor_bps"), self.whole("pricing.cap_bps")
        if floor > cap:
            self.fail("pricing", f"floor_bps {floor} is above cap_bps {cap}")
        return Pricing(self.choice("pricing.lpr_term", LPR_TERMS), dict(spreads), floor, cap)

    def servicing(self) -> Servicing:
        """The optional ``[servicing]`` table; what it leaves out takes DEFAULT_SERVICING."""
        given = self.get("servicing", {})
        unknown = sorted(set(given) - set(DEFAULT_SERVICING)) if isinstance(given, Mapping) else []
        for name in unknown:
            self.fail(f"servicing.{name}", f"unknown; known: {', '.join(DEFAULT_SERVICING)}")
        value = {**DEFAULT_SERVICING, **(given if isinstance(given, Mapping) else {})}
        whole = {}
        for name in ("penalty_uplift_bps", "early_repayment_fee_bps", "credit_line_months", "signing_days", "day_basis"):
            number = value[name]
            if isinstance(number, bool) or not isinstance(number, int) or number < 0:
                self.fail(f"servicing.{name}", "must be a whole number ≥ 0")
                number = DEFAULT_SERVICING[name]
            whole[name] = number
        if whole["penalty_uplift_bps"] > regulation.PENALTY_UPLIFT_MAX_BPS:
            self.fail("servicing.penalty_uplift_bps", f"penalty interest may be at most {regulation.PENALTY_UPLIFT_MAX_BPS} bps above the contract rate's own (+50%)")
        if whole["day_basis"] not in DAY_BASES:
            self.fail("servicing.day_basis", f"must be one of {', '.join(map(str, DAY_BASES))}")
        for name in ("credit_line_months", "signing_days"):
            if whole[name] < 1:
                self.fail(f"servicing.{name}", "must be at least 1")
        allocation = value["allocation"]
        if not isinstance(allocation, list) or sorted(allocation) != sorted(ALLOCATION_PARTS):
            self.fail("servicing.allocation", f"must order each of {', '.join(ALLOCATION_PARTS)} once")
            allocation = DEFAULT_SERVICING["allocation"]
        set_off = value["guarantor_set_off"]
        if not isinstance(set_off, bool):
            self.fail("servicing.guarantor_set_off", "must be true or false")
            set_off = False
        elif set_off and "guarantor" not in (self.get("signatories", []) or []):
            self.fail("servicing.guarantor_set_off", "only a product signed by a guarantor can grant set-off from the guarantor's account")
        return Servicing(allocation=tuple(allocation), guarantor_set_off=set_off, **whole)

    def overridable(self) -> Mapping[str, Bounds]:
        found = {}
        for name, bounds in self.get("overridable", {}).items():
            if name not in OVERRIDABLE:
                self.fail(f"overridable.{name}", f"not a parameter banks may override ({', '.join(OVERRIDABLE)})")
                continue
            low, high = bounds.get("min"), bounds.get("max")
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)) or low > high:
                self.fail(f"overridable.{name}", "needs whole-number min ≤ max")
                continue
            found[name] = Bounds(low, high)
        return found


def _check_consistency(d: ProductDefinition, problems: list[str]) -> None:
    bands = {b.band for b in d.score_bands}
    approving = {b.band for b in d.score_bands if b.outcome != "reject"}
    for band in approving:
        if band not in d.pricing.spread_bps:
            problems.append(f"pricing.spread_bps: no spread for score band {band}")
        if band not in d.limit.band_factors:
            problems.append(f"limit.band_factors: no factor for score band {band}")
    for band in set(d.pricing.spread_bps) - bands:
        problems.append(f"pricing.spread_bps: {band} is not a score band")
    if "bullet" in d.repayment_methods and d.term_months.max > 12:
        # Association rule: principal and interest at maturity only up to one year.
        problems.append("repayment_methods: bullet repayment is allowed only for terms up to 12 months")
    if d.collateral == "deposit_pledge" and "bank" not in d.data_sources:
        problems.append("data_sources: a deposit-pledge product needs the bank's own data")
    if d.collateral == "property_mortgage" and "property" not in d.data_sources:
        problems.append("data_sources: a property-mortgage product needs the property registry")
    if d.restrict_list_cap_yuan > d.amount_yuan.max:
        problems.append("policy.restrict_list_cap_yuan: above the product's maximum amount")
    if d.unsecured == (d.collateral != "none"):
        problems.append("policy.unsecured: must be true exactly when collateral is none")
    bounds = d.overridable
    if "amount_max" in bounds and not (d.amount_yuan.min <= bounds["amount_max"].min and bounds["amount_max"].max <= d.amount_yuan.max):
        problems.append("overridable.amount_max: must lie within amount_yuan")
    if "rate_floor_bps" in bounds and not (d.pricing.floor_bps <= bounds["rate_floor_bps"].min and bounds["rate_floor_bps"].max <= d.pricing.cap_bps):
        problems.append("overridable.rate_floor_bps: must lie between pricing.floor_bps and cap_bps")
