"""The warning rule library: rule files (``catalogue/*.toml``, one per category) parsed into
frozen rules, each compiled for both evaluators, and validated with precise errors — which file,
which rule, what is wrong. Every problem of a file is collected before refusing it, and a
library with any problem never loads.

A rule file::

    category = "repayment"          # one of schema.CATEGORIES

    [[rules]]
    code = "REP_OVERDUE_30"         # upper-case, unique across the library
    name = "逾期超过30天"
    name_en = "More than 30 days past due"
    severity = "warning"            # info | watch | warning | severe
    condition = "repayment.days_past_due > 30"
    disposal = "…"                  # suggested disposal, for the risk officer (Chinese)
    products = "all"                # or a list of product codes of the product catalogue
    also_reads = []                 # other categories the condition may read (declared, used)
    fires = { repayment = { days_past_due = 31 } }   # a loan it fires on…
    quiet = { repayment = { days_past_due = 30 } }   # …and one it does not

A fixture is the few fields that differ from ``schema.HEALTHY``; its optional ``missing`` list
names fields that are null in it. A condition reads fields of its own category (at least one),
the loan's own facts, and the categories in ``also_reads`` only. No rule may fire on the healthy
loan, and no two rules of a category may differ only in their constants (``expression.shape``).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import polars as pl

from lending_core.risk import realtime, schema, vectorized
from lending_core.risk.expression import Condition, ExpressionError, parse_condition, shape

CATALOGUE = Path(__file__).parent / "catalogue"
PRODUCT_CATALOGUE = Path(__file__).parent.parent / "products" / "catalogue"
SEVERITIES = ("info", "watch", "warning", "severe")
RULE_KEYS = ("code", "name", "name_en", "severity", "condition", "disposal", "products", "also_reads", "fires", "quiet")
OPTIONAL_KEYS = ("also_reads",)
CODE = re.compile(r"^[A-Z][A-Z0-9_]{2,47}$")


class InvalidRuleFile(ValueError):
    """A rule file (or the library as a whole) breaks a rule of the format; ``problems`` says
    where and what."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    name_en: str
    category: str
    severity: str
    condition: Condition
    disposal: str
    products: tuple[str, ...] | None  # None: every product
    also_reads: tuple[str, ...]
    fires_on: Mapping[str, Any] = field(repr=False)  # the fixtures, as full snapshots
    quiet_on: Mapping[str, Any] = field(repr=False)
    source: str  # the file it came from
    fires: Callable[[Mapping[str, Any]], bool] = field(compare=False, repr=False)  # real time, one loan
    expr: pl.Expr = field(compare=False, repr=False)  # book-wide: true where it fires (no product filter)

    def applies_to(self, product: str | None) -> bool:
        return self.products is None or product in self.products


@dataclass(frozen=True)
class Library:
    rules: tuple[Rule, ...]

    def __post_init__(self):
        object.__setattr__(self, "_by_code", {r.code: r for r in self.rules})

    def __len__(self) -> int:
        return len(self.rules)

    def __getitem__(self, code: str) -> Rule:
        return self._by_code[code]

    def by_category(self) -> dict[str, list[Rule]]:
        found: dict[str, list[Rule]] = {c: [] for c in schema.CATEGORIES}
        for rule in self.rules:
            found[rule.category].append(rule)
        return found

    def fired(self, loan: Mapping[str, Any]) -> list[Rule]:
        """Real time: the rules that fire on one loan (of the product in its ``product`` key)."""
        product = loan.get("product")
        return [r for r in self.rules if r.applies_to(product) and r.fires(loan)]

    def evaluate(self, book: pl.DataFrame, rules: Iterable[Rule] | None = None) -> pl.DataFrame:
        """Book-wide: one boolean column per rule (named by code), true where it fires on a loan
        of a product it applies to."""
        chosen = self.rules if rules is None else tuple(rules)
        # Which loans a product list covers is computed once per distinct list, not per rule:
        # matching the product text rule by rule was most of the book-wide cost.
        covers = {products: f"__covered_by_{i}" for i, products in enumerate(dict.fromkeys(r.products for r in chosen if r.products is not None))}
        columns = [(rule.expr & pl.col(covers[rule.products]) if rule.products is not None else rule.expr).alias(rule.code) for rule in chosen]
        plan = book.lazy().with_columns([pl.col("product").is_in(list(products)).fill_null(False).alias(name) for products, name in covers.items()])
        return plan.select(columns).collect()


def load_library(directory: Path = CATALOGUE, *, product_codes: Iterable[str] | None = None) -> Library:
    """Every ``*.toml`` of ``directory``; raise ``InvalidRuleFile`` naming each problem."""
    products = tuple(product_codes) if product_codes is not None else catalogue_products()
    rules: list[Rule] = []
    problems: list[str] = []
    paths = sorted(directory.glob("*.toml"))
    if not paths:
        raise InvalidRuleFile(str(directory), ["no rule files (*.toml)"])
    for path in paths:
        try:
            rules.extend(read_rule_file(path, product_codes=products))
        except InvalidRuleFile as error:
            problems.extend(f"{error.source}: {p}" for p in error.problems)
    problems.extend(library_problems(rules))
    if problems:
        raise InvalidRuleFile(str(directory), problems)
    return Library(tuple(rules))


def read_rule_file(path: Path, *, product_codes: Iterable[str] | None = None) -> list[Rule]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise InvalidRuleFile(path.name, [f"not valid TOML: {error}"]) from None
    return parse_rule_file(raw, source=path.name, product_codes=product_codes)


def parse_rule_file(raw: Mapping[str, Any], *, source: str, product_codes: Iterable[str] | None = None) -> list[Rule]:
    products = tuple(product_codes) if product_codes is not None else catalogue_products()
    problems: list[str] = []
    category = raw.get("category")
    if category not in schema.CATEGORIES:
        problems.append(f"category: {category!r} is not one of {', '.join(schema.CATEGORIES)}")
    unknown = sorted(set(raw) - {"category", "rules"})
    if unknown:
        problems.append(f"unknown key {', '.join(unknown)} (a file has category and [[rules]])")
    entries = raw.get("rules")
    if not isinstance(entries, list) or not entries:
        problems.append("rules: needs at least one [[rules]] table")
        entries = []
    rules = []
    if category in schema.CATEGORIES:
        for index, entry in enumerate(entries):
            rule = parse_rule(entry, category=category, index=index, product_codes=products, problems=problems, source=source)
            if rule is not None:
                rules.append(rule)
    problems.extend(library_problems(rules))
    if problems:
        raise InvalidRuleFile(source, problems)
    return rules


def parse_rule(entry: Any, *, category: str, index: int, product_codes: tuple[str, ...], problems: list[str], source: str = "") -> Rule | None:
    """One rule of ``category``; its problems are appended to ``problems`` (None if any)."""
    if not isinstance(entry, Mapping):
        problems.append(f"rules[{index + 1}]: must be a table")
        return None
    code = entry.get("code")
    where = f"rule {code}" if isinstance(code, str) and code else f"rules[{index + 1}]"
    before = len(problems)

    def fail(what: str) -> None:
        problems.append(f"{where}: {what}")

    for key in sorted(set(entry) - set(RULE_KEYS)):
        fail(f"unknown key {key!r} (keys: {', '.join(RULE_KEYS)})")
    for key in RULE_KEYS:
        if key not in entry and key not in OPTIONAL_KEYS:
            fail(f"{key}: missing")
    if "code" in entry and not (isinstance(code, str) and CODE.match(code)):
        fail(f"code: {code!r} must be upper-case letters, digits and _ (3 to 48)")
    for key in ("name", "name_en", "disposal"):
        if key in entry and not (isinstance(entry[key], str) and entry[key].strip()):
            fail(f"{key}: must be non-empty text")
    if "name" in entry and isinstance(entry["name"], str) and not re.search(r"[\u4e00-\u9fff]", entry["name"]):
        fail("name: must be the Chinese name (name_en holds the English one)")
    severity = entry.get("severity")
    if "severity" in entry and severity not in SEVERITIES:
        fail(f"severity: {severity!r} is not one of {', '.join(SEVERITIES)}")

    products = _products(entry.get("products"), product_codes, fail) if "products" in entry else None
    also_reads = _also_reads(entry.get("also_reads", []), category, fail)

    condition = None
    text = entry.get("condition")
    if "condition" in entry:
        if not isinstance(text, str):
            fail("condition: must be text")
        else:
            try:
                condition = parse_condition(text)
            except ExpressionError as error:
                fail(f"condition: {error}")
    if condition is not None:
        _check_reads(condition, category, also_reads, fail)

    fixtures = {}
    for key in ("fires", "quiet"):
        if key in entry:
            fixtures[key] = _fixture(entry[key], key, fail)

    if len(problems) > before:
        return None
    rule = Rule(
        code=code, name=entry["name"], name_en=entry["name_en"], category=category, severity=severity,
        condition=condition, disposal=entry["disposal"], products=products, also_reads=also_reads,
        fires_on=fixtures["fires"], quiet_on=fixtures["quiet"], source=source,
        fires=realtime.compile_condition(condition), expr=vectorized.compile_condition(condition),
    )
    if not rule.fires(rule.fires_on):
        fail("the `fires` fixture does not fire the rule")
    if rule.fires(rule.quiet_on):
        fail("the `quiet` fixture fires the rule")
    if rule.fires(schema.HEALTHY):
        fail("fires on the healthy loan (schema.HEALTHY)")
    return None if len(problems) > before else rule


def library_problems(rules: list[Rule]) -> list[str]:
    """Problems between rules: duplicate codes; two rules of a category that differ only in
    their constants (the same fields in the same shape)."""
    problems = []
    codes: dict[str, Rule] = {}
    shapes: dict[tuple[str, str], Rule] = {}
    for rule in rules:
        if rule.code in codes:
            other = codes[rule.code]
            problems.append(f"rule {rule.code}: duplicate code (also in {other.source or 'this file'})")
            continue
        codes[rule.code] = rule
        key = (rule.category, shape(rule.condition.tree))
        if key in shapes:
            problems.append(f"rule {rule.code}: repeats rule {shapes[key].code} with only different constants ({rule.condition.text!r} vs {shapes[key].condition.text!r}): one signal, one rule")
        else:
            shapes[key] = rule
    return problems


def catalogue_products() -> tuple[str, ...]:
    """The product codes of the shipped product catalogue (read from its files, so this pure
    module needs nothing of the products package's ORM side)."""
    codes = []
    for path in sorted(PRODUCT_CATALOGUE.glob("*.toml")):
        with path.open("rb") as f:
            code = tomllib.load(f).get("code")
        if isinstance(code, str):
            codes.append(code)
    return tuple(codes)


def _products(value: Any, product_codes: tuple[str, ...], fail) -> tuple[str, ...] | None:
    if value == "all":
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        fail('products: must be "all" or a non-empty list of product codes')
        return None
    unknown = [v for v in value if v not in product_codes]
    if unknown:
        fail(f"products: unknown product {', '.join(map(repr, unknown))} (catalogue: {', '.join(product_codes)})")
    if len(set(value)) != len(value):
        fail("products: lists a product twice")
    return tuple(value)


def _also_reads(value: Any, category: str, fail) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        fail("also_reads: must be a list of categories")
        return ()
    for v in value:
        if v not in schema.CATEGORIES:
            fail(f"also_reads: {v!r} is not a category ({', '.join(schema.CATEGORIES)})")
        elif v == category:
            fail(f"also_reads: {v!r} is the rule's own category")
    return tuple(v for v in value if v in schema.CATEGORIES and v != category)


def _check_reads(condition: Condition, category: str, also_reads: tuple[str, ...], fail) -> None:
    groups = condition.groups
    if category not in groups:
        fail(f"condition: reads no field of its own category {category} (a {category} rule is a {category} signal)")
    for path in sorted(condition.fields):
        group = schema.BY_PATH[path].group
        if group and group != category and group not in also_reads:
            fail(f"condition: reads {path} of category {group}; declare it in also_reads if the signal needs it")
    for other in also_reads:
        if other not in groups:
            fail(f"also_reads: declares {other} but the condition reads none of its fields")


def _fixture(value: Any, key: str, fail) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        fail(f"{key}: must be a table of fields that differ from the healthy loan")
        return {}
    changes = {k: v for k, v in value.items() if k != "missing"}
    missing = value.get("missing", [])
    if not isinstance(missing, list) or not all(isinstance(m, str) for m in missing):
        fail(f"{key}.missing: must be a list of field paths")
        missing = []
    bad = [f"{k}.{name}" for k, inner in changes.items() if k in schema.CATEGORIES and isinstance(inner, Mapping)
           for name in inner if f"{k}.{name}" not in schema.BY_PATH]
    bad += [k for k in changes if k not in schema.CATEGORIES and k not in schema.LOAN_FACTS]
    bad += [m for m in missing if m not in schema.BY_PATH]
    if bad:
        fail(f"{key}: unknown field {', '.join(bad)}")
        return {}
    for k, inner in changes.items():
        if k in schema.CATEGORIES and not isinstance(inner, Mapping):
            fail(f"{key}.{k}: must be a table of {k} fields")
            return {}
    loan = schema.snapshot(changes, missing=missing)
    for problem in schema.problems_of(loan):
        fail(f"{key}: {problem}")
    return schema.freeze(loan)
