"""The loader refuses a bad rule file with a pointed message — which file, which rule, what is
wrong — and a library with any bad file never loads."""

from __future__ import annotations

import shutil
import textwrap

import pytest

from lending_core.risk.library import CATALOGUE, InvalidRuleFile, load_library, read_rule_file

PRODUCTS = ("KUAIEDAI", "ZHUFANGDIYA")

GOOD = """
    [[rules]]
    code = "REP_TEST_OVERDUE"
    name = "测试逾期"
    name_en = "Test overdue"
    severity = "warning"
    condition = "repayment.days_past_due > 30"
    disposal = "上门催收并了解逾期原因。"
    products = "all"
    fires = { repayment = { days_past_due = 31 } }
    quiet = { repayment = { days_past_due = 30 } }
"""


def rule_file(tmp_path, body: str = GOOD, *, category: str = "repayment", filename: str = "repayment.toml", **changes):
    text = textwrap.dedent(body)
    for key, value in changes.items():
        lines = [line for line in text.splitlines() if not line.startswith(f"{key} =")]
        if value is not None:
            lines.insert(lines.index("[[rules]]") + 1, f"{key} = {value}")
        text = "\n".join(lines) + "\n"
    path = tmp_path / filename
    path.write_text(f'category = "{category}"\n{text}', encoding="utf-8")
    return path


def problems(tmp_path, **changes) -> str:
    with pytest.raises(InvalidRuleFile) as error:
        read_rule_file(rule_file(tmp_path, **changes), product_codes=PRODUCTS)
    assert error.value.source == "repayment.toml"
    return str(error.value)


def test_a_good_file_loads(tmp_path):
    (rule,) = read_rule_file(rule_file(tmp_path), product_codes=PRODUCTS)
    assert (rule.code, rule.category, rule.severity, rule.products) == ("REP_TEST_OVERDUE", "repayment", "warning", None)


@pytest.mark.parametrize("changes, message", [
    ({"condition": '"repayment.days_overdue > 30"'}, "rule REP_TEST_OVERDUE: condition: unknown field repayment.days_overdue (line 1, column 1)"),
    ({"condition": '"repayment.days_past_due > 30 and bureau.inquiries_1m > 3"'}, "rule REP_TEST_OVERDUE: condition: reads bureau.inquiries_1m of category bureau; declare it in also_reads"),
    ({"condition": '"outstanding_fen > 30"'}, "rule REP_TEST_OVERDUE: condition: reads no field of its own category repayment"),
    ({"also_reads": '["bureau"]'}, "rule REP_TEST_OVERDUE: also_reads: declares bureau but the condition reads none of its fields"),
    ({"also_reads": '["loans"]'}, "rule REP_TEST_OVERDUE: also_reads: 'loans' is not a category"),
    ({"also_reads": '["repayment"]'}, "also_reads: 'repayment' is the rule's own category"),
    ({"severity": '"high"'}, "rule REP_TEST_OVERDUE: severity: 'high' is not one of info, watch, warning, severe"),
    ({"products": '["KUAIEDAI", "NOSUCHLOAN"]'}, "rule REP_TEST_OVERDUE: products: unknown product 'NOSUCHLOAN'"),
    ({"products": '[]'}, 'products: must be "all" or a non-empty list of product codes'),
    ({"products": '["KUAIEDAI", "KUAIEDAI"]'}, "products: lists a product twice"),
    ({"code": '"rep-lower"'}, "rule rep-lower: code: 'rep-lower' must be upper-case letters"),
    ({"name": '"Test overdue"'}, "name: must be the Chinese name"),
    ({"disposal": '""'}, "rule REP_TEST_OVERDUE: disposal: must be non-empty text"),
    ({"disposal": None}, "rule REP_TEST_OVERDUE: disposal: missing"),
    ({"severty": '"watch"'}, "rule REP_TEST_OVERDUE: unknown key 'severty'"),
    ({"condition": '"repayment.days_past_due >"'}, "rule REP_TEST_OVERDUE: condition: does not parse: invalid syntax (line 1, column 26)"),
    ({"condition": '"repayment.days_past_due > 30 and __import__(\'os\')"'}, "condition: call of __import__ is not allowed (functions: abs, min, max, coalesce) (line 1, column 34)"),
    ({"condition": '"repayment.days_past_due > 0.5"'}, "condition: floats are not allowed (0.5): money is whole fen, shares are permille or basis points compared by cross-multiplying (line 1, column 27)"),
    ({"condition": '"repayment.days_past_due.__class__ == 1"'}, "condition: names starting with _ are not allowed (__class__) (line 1, column 1)"),
    ({"condition": '"[d for d in (1,)] == (1,)"'}, "condition: a comprehension is not allowed in a rule condition (line 1, column 1)"),
    ({"condition": '"repayment.days_past_due"'}, "condition: a condition must be true or false, this is a whole number"),
    ({"condition": "30"}, "condition: must be text"),
    ({"fires": "{ repayment = { days_past_due = 30 } }"}, "rule REP_TEST_OVERDUE: the `fires` fixture does not fire the rule"),
    ({"quiet": "{ repayment = { days_past_due = 31 } }"}, "rule REP_TEST_OVERDUE: the `quiet` fixture fires the rule"),
    ({"condition": '"repayment.days_past_due >= 0"', "fires": "{}", "quiet": "{ missing = [] }"}, "the `quiet` fixture fires the rule; rule REP_TEST_OVERDUE: fires on the healthy loan (schema.HEALTHY)"),
    ({"fires": "{ repayment = { days_late = 31 } }"}, "rule REP_TEST_OVERDUE: fires: unknown field repayment.days_late"),
    ({"fires": "{ repayment = { days_past_due = \"31\" } }"}, "rule REP_TEST_OVERDUE: fires: repayment.days_past_due: '31' is not a whole number in 0…36500"),
    ({"fires": "{ repayment = { days_past_due = -1 } }"}, "fires: repayment.days_past_due: -1 is not a whole number in 0…36500"),
    ({"fires": "{ missing = [\"repayment.days_past_due\"] }"}, "fires: repayment.days_past_due: may not be null"),
    ({"quiet": "{ missing = [\"bureau.nope\"] }"}, "quiet: unknown field bureau.nope"),
    ({"quiet": "3"}, "quiet: must be a table of fields that differ from the healthy loan"),
])
def test_refusals_are_pointed(tmp_path, changes, message):
    assert message in problems(tmp_path, **changes)


def test_cross_category_reads_load_when_declared(tmp_path):
    path = rule_file(tmp_path, condition='"repayment.days_past_due > 30 and bureau.inquiries_1m > 3"', also_reads='["bureau"]',
                     fires="{ repayment = { days_past_due = 31 }, bureau = { inquiries_1m = 4 } }")
    (rule,) = read_rule_file(path, product_codes=PRODUCTS)
    assert rule.also_reads == ("bureau",) and rule.condition.groups == {"repayment", "bureau"}


def test_every_problem_of_a_file_is_reported_at_once(tmp_path):
    message = problems(tmp_path, severity='"high"', products='["NOSUCHLOAN"]', condition='"repayment.nope > 1"')
    assert message.count("rule REP_TEST_OVERDUE:") == 3


def test_file_level_problems(tmp_path):
    with pytest.raises(InvalidRuleFile, match="category: 'loans' is not one of repayment, account"):
        read_rule_file(rule_file(tmp_path, category="loans"), product_codes=PRODUCTS)
    (tmp_path / "empty.toml").write_text('category = "court"\n', encoding="utf-8")
    with pytest.raises(InvalidRuleFile, match=r"empty.toml: rules: needs at least one \[\[rules\]\] table"):
        read_rule_file(tmp_path / "empty.toml", product_codes=PRODUCTS)
    (tmp_path / "broken.toml").write_text('category = "court"\n[[rules]\n', encoding="utf-8")
    with pytest.raises(InvalidRuleFile, match="broken.toml: not valid TOML"):
        read_rule_file(tmp_path / "broken.toml", product_codes=PRODUCTS)


def test_duplicate_codes_are_refused_within_a_file_and_across_files(tmp_path):
    twice = GOOD + GOOD.replace("> 30", "> 60").replace("= 31", "= 61").replace("= 30", "= 60")
    with pytest.raises(InvalidRuleFile) as error:
        read_rule_file(rule_file(tmp_path, twice), product_codes=PRODUCTS)
    assert "rule REP_TEST_OVERDUE: duplicate code" in str(error.value)

    other = tmp_path / "more"
    other.mkdir()
    rule_file(other)
    rule_file(other, GOOD.replace("days_past_due", "consecutive_missed").replace("> 30", "> 3").replace("= 31", "= 4").replace("= 30", "= 3"), filename="again.toml")
    with pytest.raises(InvalidRuleFile, match="rule REP_TEST_OVERDUE: duplicate code \\(also in"):
        load_library(other, product_codes=PRODUCTS)


def test_a_threshold_variant_of_another_rule_is_refused(tmp_path):
    variant = GOOD.replace("REP_TEST_OVERDUE", "REP_TEST_OVERDUE_90").replace("> 30", ">= 90").replace("= 31", "= 95").replace("= 30", "= 89")
    with pytest.raises(InvalidRuleFile) as error:
        read_rule_file(rule_file(tmp_path, GOOD + variant), product_codes=PRODUCTS)
    assert "rule REP_TEST_OVERDUE_90: repeats rule REP_TEST_OVERDUE with only different constants" in str(error.value)


def test_an_invalid_library_never_loads(tmp_path):
    library = tmp_path / "catalogue"
    shutil.copytree(CATALOGUE, library)
    assert len(load_library(library)) >= 100
    broken = (library / "court.toml").read_text(encoding="utf-8").replace('severity = "severe"', 'severity = "grave"', 1)
    (library / "court.toml").write_text(broken, encoding="utf-8")
    with pytest.raises(InvalidRuleFile) as error:
        load_library(library)
    assert "court.toml: rule CRT_UNDER_ENFORCEMENT: severity: 'grave' is not one of" in str(error.value)
    assert len(error.value.problems) == 1
    with pytest.raises(InvalidRuleFile, match="no rule files"):
        load_library(tmp_path / "nowhere")
