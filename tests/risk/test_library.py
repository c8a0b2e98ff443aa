"""The shipped rule library: every rule's fixtures through both evaluators, the healthy loan,
coverage of the eight categories, distinct signals, and product applicability."""

from __future__ import annotations

from collections import Counter

import pytest

from lending_core.risk import schema, vectorized
from lending_core.risk.expression import shape
from lending_core.risk.library import SEVERITIES, catalogue_products, load_library

LIBRARY = load_library()
CODES = [rule.code for rule in LIBRARY.rules]
PRODUCTS = set(catalogue_products())


def fires_in_polars(rule, loan) -> bool:
    return vectorized.to_frame([loan]).select(rule.expr).item()


@pytest.mark.parametrize("code", CODES)
def test_rule_fires_on_its_fixture_in_both_evaluators(code):
    rule = LIBRARY[code]
    assert rule.fires(rule.fires_on) is True
    assert fires_in_polars(rule, rule.fires_on) is True


@pytest.mark.parametrize("code", CODES)
def test_rule_stays_quiet_on_its_fixture_in_both_evaluators(code):
    rule = LIBRARY[code]
    assert rule.fires(rule.quiet_on) is False
    assert fires_in_polars(rule, rule.quiet_on) is False


def test_fixtures_are_legal_snapshots_and_the_healthy_loan_fires_nothing():
    assert schema.problems_of(schema.HEALTHY) == []
    for rule in LIBRARY.rules:
        assert schema.problems_of(rule.fires_on) == [], rule.code
        assert schema.problems_of(rule.quiet_on) == [], rule.code
    assert [r.code for r in LIBRARY.rules if r.fires(schema.HEALTHY)] == []
    fired = LIBRARY.evaluate(vectorized.to_frame([{**schema.HEALTHY, "product": p} for p in catalogue_products()]))
    assert not fired.select(vectorized.pl.any_horizontal(vectorized.pl.all())).to_series().any()


def test_at_least_100_rules_over_all_eight_categories():
    per_category = Counter(rule.category for rule in LIBRARY.rules)
    assert len(LIBRARY) >= 100
    assert set(per_category) == set(schema.CATEGORIES) and len(per_category) == 8
    assert min(per_category.values()) >= 8, per_category
    assert len(set(CODES)) == len(CODES)
    assert {rule.severity for rule in LIBRARY.rules} == set(SEVERITIES)


def test_each_rule_reads_its_own_category_and_others_only_where_declared():
    for rule in LIBRARY.rules:
        groups = rule.condition.groups
        assert rule.category in groups, rule.code
        assert groups - {rule.category} == set(rule.also_reads), rule.code


def test_no_two_rules_of_a_category_differ_only_in_constants():
    seen = {}
    for rule in LIBRARY.rules:
        key = (rule.category, shape(rule.condition.tree))
        assert key not in seen, f"{rule.code} repeats {seen[key]} with other thresholds"
        seen[key] = rule.code
    # Stricter still for this library: within a category no two rules read the same fields.
    field_sets = Counter((rule.category, rule.condition.fields) for rule in LIBRARY.rules)
    assert [k for k, n in field_sets.items() if n > 1] == []


def test_each_category_reads_fields_no_other_category_reads_as_its_own():
    own = {c: set() for c in schema.CATEGORIES}
    for rule in LIBRARY.rules:
        own[rule.category] |= {p for p in rule.condition.fields if schema.BY_PATH[p].group == rule.category}
    for category, fields in own.items():
        assert len(fields) >= 8, (category, fields)


def test_rules_are_written_for_people():
    for rule in LIBRARY.rules:
        assert rule.name and rule.name_en and len(rule.disposal) >= 15, rule.code
        assert rule.products is None or set(rule.products) <= PRODUCTS


def test_products_limit_where_a_rule_applies_in_both_evaluators():
    rule = LIBRARY["COL_PLEDGE_FROZEN"]
    assert rule.products == ("CUNKUANEDAI",)
    loans = [{**rule.fires_on, "product": "CUNKUANEDAI"}, {**rule.fires_on, "product": "KUAIEDAI"}, {**rule.fires_on, "product": None}]
    assert [rule in LIBRARY.fired(loan) for loan in loans] == [True, False, False]
    book = LIBRARY.evaluate(vectorized.to_frame(loans), [rule])
    assert book.get_column("COL_PLEDGE_FROZEN").to_list() == [True, False, False]
    everywhere = LIBRARY["EXT_FRAUD_LIST"]
    assert everywhere.products is None
    assert LIBRARY.evaluate(vectorized.to_frame([{**everywhere.fires_on, "product": None}]), [everywhere]).item() is True


def test_library_evaluation_matches_rule_by_rule_evaluation_on_every_fixture():
    loans = [{**loan, "product": product} for rule in LIBRARY.rules for loan in (rule.fires_on, rule.quiet_on)
             for product in ("ZHUFANGDIYA", "YANGGUANGEDAI")]
    book = LIBRARY.evaluate(vectorized.to_frame(loans))
    for i, loan in enumerate(loans):
        expected = {r.code for r in LIBRARY.fired(loan)}
        assert {code for code in CODES if book[code][i]} == expected
