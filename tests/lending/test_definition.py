"""The product definition format refuses a broken definition with pointed messages — which
file, which rule, what is wrong — and reports every problem at once (pure: no database)."""

from __future__ import annotations

import copy
import tomllib

import pytest

from lending_core.products.definition import InvalidDefinition, parse
from lending_core.products.service import CATALOGUE, read_catalogue_file

SOURCE_TEXT = (CATALOGUE / "SHUIQITONG.toml").read_text(encoding="utf-8")
BASE = tomllib.loads(SOURCE_TEXT)


def base() -> dict:
    return copy.deepcopy(BASE)


def refused(raw: dict, source: str = "BROKEN.toml") -> InvalidDefinition:
    with pytest.raises(InvalidDefinition) as raised:
        parse(raw, source=source)
    assert str(raised.value).startswith(f"{source}: ")
    assert raised.value.source == source
    return raised.value


def rule(raw: dict, code: str) -> dict:
    return next(r for r in raw["admission"] if r["code"] == code)


def band(raw: dict, name: str) -> dict:
    return next(b for b in raw["score_bands"] if b["band"] == name)


def test_the_base_definition_is_valid():
    assert parse(base(), source="ok").code == "SHUIQITONG"


def test_a_broken_file_is_named_with_the_rule_that_does_not_parse(tmp_path):
    path = tmp_path / "SHUIQITONG_BROKEN.toml"
    path.write_text(SOURCE_TEXT.replace('rule = "applicant.age >= 18 and applicant.age <= 65"', 'rule = "applicant.age >= and"'), encoding="utf-8")
    with pytest.raises(InvalidDefinition) as raised:
        read_catalogue_file(path)
    message = str(raised.value)
    assert message.startswith("SHUIQITONG_BROKEN.toml: ")
    assert "admission[AGE_18_65].rule: expression 'applicant.age >= and' does not parse" in message


def test_an_unparsable_scorecard_bin_is_pointed_at():
    raw = base()
    raw["scorecard"]["attributes"][0]["bins"][1]["when"] = "value == == 'B'"
    error = refused(raw)
    assert any(p.startswith("scorecard.attributes[tax_grade].bins[2].when: expression") and "does not parse" in p for p in error.problems)


def test_an_expression_reading_a_source_the_product_does_not_list():
    raw = base()
    rule(raw, "REVENUE_500K")["rule"] = "tax.annual_revenue_fen >= 50000000 and property.count >= 1"
    raw["scorecard"]["attributes"][1]["value"] = "bank.deposit_avg_6m_fen"
    error = refused(raw)
    assert "admission[REVENUE_500K].rule: reads property but data_sources does not list it" in error.problems
    assert "scorecard.attributes[annual_revenue].value: reads bank but data_sources does not list it" in error.problems


def test_a_limit_basis_on_an_unlisted_source_or_a_non_money_field():
    raw = base()
    raw["limit"]["bases"] = [
        {"name": "deposits", "field": "bank.deposit_avg_6m_fen", "times": "2"},
        {"name": "months", "field": "tax.months_paid_24m", "times": "1000"},
    ]
    error = refused(raw)
    assert "limit.bases[deposits].field: reads bank but data_sources does not list it" in error.problems
    assert any(p.startswith("limit.bases[months].field: must name a fen field") for p in error.problems)


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_a_rule_without_a_customer_facing_reason(reason):
    raw = base()
    if reason is None:
        del rule(raw, "NO_BAD_DEBT")["reason"]
    else:
        rule(raw, "NO_BAD_DEBT")["reason"] = reason
    assert refused(raw).problems == ["admission[NO_BAD_DEBT].reason: needs a customer-facing reason"]


def test_an_unknown_on_fail_and_a_duplicate_rule_code():
    raw = base()
    rule(raw, "INQUIRIES_3M")["on_fail"] = "warn"
    raw["admission"].append(dict(rule(raw, "NO_BAD_DEBT")))
    error = refused(raw)
    assert "admission[INQUIRIES_3M].on_fail: 'warn' is not one of reject, refer" in error.problems
    assert "admission[NO_BAD_DEBT]: duplicate rule code" in error.problems


def test_an_unknown_channel_and_an_unknown_repayment_method():
    raw = base()
    raw["channels"] = ["wechat_miniprogram", "douyin"]
    raw["repayment_methods"] = ["equal_instalment", "balloon"]
    error = refused(raw)
    assert any(p.startswith("channels: unknown 'douyin'; allowed: wechat_miniprogram") for p in error.problems)
    assert any(p.startswith("repayment_methods: unknown 'balloon'; allowed: equal_instalment") for p in error.problems)


def test_no_channel_at_all():
    raw = base()
    raw["channels"] = []
    assert "channels: must name at least one" in refused(raw).problems


def test_bands_must_descend():
    raw = base()
    band(raw, "B")["min_score"] = 760  # above A's 740
    assert "score_bands[B]: bands must be listed from the highest min_score down" in refused(raw).problems


def test_bands_must_end_at_zero():
    raw = base()
    band(raw, "D")["min_score"] = 300
    assert refused(raw).problems == ["score_bands: the last band must start at min_score 0 so every score has a band"]


def test_a_refusing_band_needs_a_reason():
    raw = base()
    del band(raw, "D")["reason"]
    assert refused(raw).problems == ["score_bands[D].reason: a band that refers or rejects needs a customer-facing reason"]


def test_an_approving_or_referring_band_needs_a_spread_and_a_factor():
    raw = base()
    del raw["pricing"]["spread_bps"]["B"]
    del raw["limit"]["band_factors"]["C"]
    error = refused(raw)
    assert "pricing.spread_bps: no spread for score band B" in error.problems
    assert "limit.band_factors: no factor for score band C" in error.problems


def test_a_spread_for_a_band_that_does_not_exist():
    raw = base()
    raw["pricing"]["spread_bps"]["E"] = 500
    assert refused(raw).problems == ["pricing.spread_bps: E is not a score band"]


def test_bullet_repayment_only_up_to_twelve_months():
    raw = base()
    raw["repayment_methods"].append("bullet")
    assert refused(raw).problems == ["repayment_methods: bullet repayment is allowed only for terms up to 12 months"]
    raw["term_months"]["max"] = 12
    assert parse(raw, source="ok").repayment_methods[-1] == "bullet"


@pytest.mark.parametrize("where", ["basis", "factor"])
def test_a_multiplier_must_be_a_decimal_string_not_a_float(where):
    raw = base()
    if where == "basis":
        raw["limit"]["bases"][1]["times"] = 0.2
        expected = "limit.bases[revenue_share].times: must be a decimal written as a string, e.g. \"0.8\""
    else:
        raw["limit"]["band_factors"]["B"] = 0.8
        expected = "limit.band_factors.B: must be a decimal written as a string, e.g. \"0.8\""
    assert refused(raw).problems == [expected]


def test_a_multiplier_that_is_not_a_number_or_negative():
    raw = base()
    raw["limit"]["bases"][0]["times"] = "ten"
    raw["limit"]["band_factors"]["A"] = "-1"
    error = refused(raw)
    assert "limit.bases[tax_paid_x10].times: 'ten' is not a decimal" in error.problems
    assert "limit.band_factors.A: must not be negative" in error.problems


def test_min_above_max():
    raw = base()
    raw["amount_yuan"] = {"min": 500000, "max": 100000}
    raw["pricing"]["floor_bps"] = 2000
    error = refused(raw)
    assert "amount_yuan: min 500000 is above max 100000" in error.problems
    assert "pricing: floor_bps 2000 is above cap_bps 1000" in error.problems


def test_overridable_names_and_bounds():
    raw = base()
    raw["overridable"]["term_max"] = {"min": 6, "max": 60}
    raw["overridable"]["amount_max"] = {"min": 300000, "max": 100000}
    error = refused(raw)
    assert any(p.startswith("overridable.term_max: not a parameter banks may override") for p in error.problems)
    assert "overridable.amount_max: needs whole-number min ≤ max" in error.problems


def test_restrict_list_cap_within_the_maximum_and_collateral_needs_its_source():
    raw = base()
    raw["policy"]["restrict_list_cap_yuan"] = 2_000_000
    raw["collateral"] = "property_mortgage"
    error = refused(raw)
    assert "policy.restrict_list_cap_yuan: above the product's maximum amount" in error.problems
    assert "data_sources: a property-mortgage product needs the property registry" in error.problems


def test_missing_fields_are_named():
    raw = base()
    del raw["name"]
    del raw["policy"]["cooling_off_days"]
    error = refused(raw)
    assert "name: missing" in error.problems and "policy.cooling_off_days: missing" in error.problems


def test_several_problems_are_reported_together():
    raw = base()
    rule(raw, "AGE_18_65")["rule"] = "applicant.age >="
    del rule(raw, "NO_BAD_DEBT")["reason"]
    raw["channels"].append("fax")
    raw["repayment_methods"].append("bullet")
    raw["limit"]["band_factors"]["A"] = 1.0
    raw["amount_yuan"]["min"] = 2_000_000
    raw["overridable"]["grace_days"] = {"min": 0, "max": 10}
    band(raw, "D")["min_score"] = 100
    error = refused(raw, source="SHUIQITONG.toml")
    expected = [
        "admission[AGE_18_65].rule: expression 'applicant.age >=' does not parse",
        "admission[NO_BAD_DEBT].reason: needs a customer-facing reason",
        "channels: unknown 'fax'",
        "bullet repayment is allowed only for terms up to 12 months",
        "limit.band_factors.A: must be a decimal written as a string",
        "amount_yuan: min 2000000 is above max 1000000",
        "overridable.grace_days: not a parameter banks may override",
        "score_bands: the last band must start at min_score 0",
    ]
    message = str(error)
    for fragment in expected:
        assert fragment in message, fragment
    assert len(error.problems) >= len(expected)
