"""The rule condition language: what it means (checked through both evaluators at once) and
what it refuses, with the line and column of the offending construct."""

from __future__ import annotations

import pytest

from lending_core.risk.expression import LIMIT, ExpressionError, parse, parse_condition, shape
from lending_core.risk.schema import snapshot
from tests.risk.evaluate import both

LOAN = snapshot(
    {"repayment": {"days_past_due": 7, "overdue_principal_fen": 300_000}, "outstanding_fen": 1_000_000},
    missing=["bureau.inquiries_1m", "court.dishonest_debtor", "business.tax_grade"],
)
NO_BUSINESS = snapshot({"business": None})


def value(text: str, loan=LOAN):
    closures, polars = both(text, [loan])
    assert closures == polars, f"{text}: closures say {closures}, polars says {polars}"
    return closures[0]


@pytest.mark.parametrize("text, expected", [
    ("repayment.days_past_due + 3", 10),
    ("repayment.days_past_due - 10", -3),
    ("repayment.days_past_due * 3", 21),
    ("-repayment.days_past_due", -7),
    ("repayment.days_past_due // 2", 3),
    ("-repayment.days_past_due // 2", -4),  # floors toward minus infinity, as Python does
    ("repayment.days_past_due // -2", -4),
    ("repayment.days_past_due // 0", None),  # division by zero is null
    ("repayment.days_past_due // repayment.consecutive_missed", None),
    ("abs(0 - repayment.days_past_due)", 7),
    ("min(repayment.days_past_due, 3, 5)", 3),
    ("max(repayment.days_past_due, 3)", 7),
    ("repayment.overdue_principal_fen * 100 > 25 * outstanding_fen", True),  # 30% > 25%
    ("repayment.overdue_principal_fen * 100 > 30 * outstanding_fen", False),
    ("1 <= repayment.days_past_due < 30", True),
    ("1 <= repayment.days_past_due < 7", False),
    ("repayment.days_past_due in (1, 7, 30)", True),
    ("repayment.days_past_due not in (1, 7, 30)", False),
    ("bureau.worst_class_elsewhere == \"normal\"", True),
    ("bureau.worst_class_elsewhere in [\"doubtful\", \"loss\"]", False),
    ("court.criminal_case == False", True),
    ("not court.criminal_case", True),
])
def test_values_on_known_data(text, expected):
    assert value(text) == expected


@pytest.mark.parametrize("text, expected", [
    # null propagates through arithmetic, comparisons, in, not and the functions…
    ("bureau.inquiries_1m + 1", None),
    ("bureau.inquiries_1m > 3", None),
    ("bureau.inquiries_1m <= 3", None),
    ("bureau.inquiries_1m in (1, 2)", None),
    ("bureau.inquiries_1m not in (1, 2)", None),
    ("not court.dishonest_debtor", None),
    ("court.dishonest_debtor == True", None),
    ("abs(bureau.inquiries_1m)", None),
    ("min(bureau.inquiries_1m, 3)", None),
    ("max(3, bureau.inquiries_1m)", None),
    ("business.tax_grade == \"D\"", None),
    # …and/or are three-valued (Kleene)…
    ("court.dishonest_debtor and False", False),
    ("court.dishonest_debtor and True", None),
    ("court.dishonest_debtor or True", True),
    ("court.dishonest_debtor or False", None),
    ("bureau.inquiries_1m > 3 or repayment.days_past_due > 5", True),
    ("bureau.inquiries_1m > 3 and repayment.days_past_due > 5", None),
    ("bureau.inquiries_1m > 3 and repayment.days_past_due > 50", False),
    # …is None never is null, coalesce takes the first value there is.
    ("bureau.inquiries_1m is None", True),
    ("bureau.inquiries_1m is not None", False),
    ("repayment.days_past_due is None", False),
    ("coalesce(bureau.inquiries_1m, 0)", 0),
    ("coalesce(bureau.inquiries_1m, bureau.inquiries_3m, 9)", 1),
    ("coalesce(court.dishonest_debtor, False)", False),
    ("coalesce(bureau.inquiries_1m, 0) > 3", False),
])
def test_null_semantics(text, expected):
    assert value(text) == expected


def test_a_whole_missing_group_is_null_in_both_evaluators():
    assert value("business.unpaid_tax_fen > 0", NO_BUSINESS) is None
    assert value("business.abnormal_operation_listed is None", NO_BUSINESS) is True
    loan = dict(snapshot())
    del loan["business"]  # absent rather than null: the same
    assert value("business.unpaid_tax_fen > 0 or business.tax_grade is None", loan) is True


def test_a_condition_must_be_true_or_false():
    with pytest.raises(ExpressionError, match="must be true or false"):
        parse_condition("repayment.days_past_due + 1")
    assert parse_condition("repayment.days_past_due > 1").fields == {"repayment.days_past_due"}


def test_a_condition_may_span_lines_and_errors_keep_their_position():
    condition = parse_condition("repayment.days_past_due > 1\nand repayment.consecutive_missed >= 2")
    assert condition.groups == {"repayment"}
    with pytest.raises(ExpressionError) as error:
        parse("repayment.days_past_due > 1\n and repayment.nope > 2")
    assert (error.value.line, error.value.column) == (2, 6)
    assert "unknown field repayment.nope" in str(error.value)


@pytest.mark.parametrize("text, message, column", [
    ("repayment.days_past_due.real > 1", "repayment.days_past_due is a field and has no attribute real", 1),
    ("repayment.days_past_due.real.imag > 1", "only a field (name) or a group's field", 1),
    ("repayment.nope > 1", "unknown field repayment.nope", 1),
    ("nope > 1", "unknown field nope", 1),
    ("loans.days_past_due > 1", "unknown group loans", 1),
    ("repayment > 1", "repayment is a group of fields", 1),
    ("repayment.__class__", "names starting with _ are not allowed (__class__)", 1),
    ("__import__('os').system('x')", "call of __import__('os').system is not allowed", 1),
    ("__builtins__", "names starting with _ are not allowed (__builtins__)", 1),
    ("repayment._secret > 1", "names starting with _", 1),
    ("len(\"x\") > 1", "call of len is not allowed (functions: abs, min, max, coalesce)", 1),
    ("repayment.days_past_due.bit_length() > 1", "call of repayment.days_past_due.bit_length is not allowed", 1),
    ("abs(x=repayment.days_past_due) > 1", "abs takes no keyword arguments", 1),
    ("abs(1, 2) > 1", "abs takes 1 argument", 1),
    ("(lambda: True)()", "call of", 1),
    ("1 > 0 and (lambda: True)", "lambda is not allowed", 12),
    ("[x for x in (1, 2)] == 1", "a comprehension is not allowed", 1),
    ("any(x > 1 for x in (1, 2))", "call of any is not allowed", 1),
    ("(1, 2)[0] > 1", "subscripts ([...]) is not allowed", 1),
    ("repayment.days_past_due > 1.5", "floats are not allowed (1.5)", 27),
    ("repayment.days_past_due * 0.3 > 1", "floats are not allowed", 27),
    ("repayment.days_past_due / 2 > 1", "`/` is not allowed", 1),
    ("repayment.days_past_due % 2 == 1", "operator Mod is not allowed", 1),
    ("repayment.days_past_due ** 2 > 1", "operator Pow is not allowed", 1),
    ("repayment.days_past_due if True else 0", "conditional expressions", 1),
    ("f\"{repayment.days_past_due}\" == \"1\"", "f-strings is not allowed", 1),
    ("(x := 1) > 0", "assignment (:=) is not allowed", 2),
    ("repayment.days_past_due in repayment.consecutive_missed", "`in` needs a literal tuple or list", 28),
    ("repayment.days_past_due in (repayment.consecutive_missed,)", "`in` needs constants only", 29),
    ("repayment.days_past_due in ()", "`in` needs at least one value", 28),
    ("repayment.days_past_due in (\"1\",)", "`in` compares a whole number with text", 29),
    ("repayment.days_past_due is 1", "`is` / `is not` may only be used with None", 28),
    ("repayment.days_past_due == None", "None may only be tested with `is None`", 28),
    ("repayment.days_past_due > True", "`>` needs a whole number, got true/false", 27),
    ("bureau.worst_class_elsewhere > \"loss\"", "`>` needs a whole number, got text", 1),
    ("court.criminal_case + 1 > 0", "`+` needs a whole number, got true/false", 1),
    ("repayment.days_past_due and True", "`and` needs true/false, got a whole number", 1),
    ("not repayment.days_past_due", "`not` needs true/false", 5),
    ("bureau.worst_class_elsewhere == 1", "`==` compares text with a whole number", 1),
    ("bureau.worst_class_elsewhere == \"bad\"", "'bad' is not a value of bureau.worst_class_elsewhere", 33),
    ("business.tax_grade in (\"A\", \"Z\")", "'Z' is not a value of business.tax_grade", 29),
    ("coalesce(court.criminal_case, 0)", "coalesce needs arguments of one type", 1),
    ("outstanding_fen * outstanding_fen > 0", "may exceed the 64-bit range", 1),
    ("repayment.days_past_due > 99999999999999999999", "may exceed the 64-bit range", 27),
    ("repayment.days_past_due >", "does not parse", None),
    ("repayment.days_past_due > 1; import os", "does not parse", None),
    ("", "empty expression", None),
])
def test_forbidden_and_malformed_conditions_are_refused_with_their_position(text, message, column):
    with pytest.raises(ExpressionError) as error:
        parse_condition(text)
    assert message in str(error.value)
    if column is not None:
        assert (error.value.line, error.value.column) == (1, column), str(error.value)
    else:
        assert error.value.line is None or error.value.line >= 1


def test_overflow_bound_follows_the_field_ranges():
    # 10^11 fen × 10^7 = 10^18 < 2^62 is fine; one more factor of ten is not.
    parse_condition("outstanding_fen * 10000000 > 0")
    with pytest.raises(ExpressionError, match="64-bit"):
        parse_condition("outstanding_fen * 100000000 > 0")
    assert LIMIT == 2**62


def test_shape_erases_constants_and_direction_but_not_fields_or_structure():
    def s(text):
        return shape(parse(text))

    assert s("repayment.days_past_due > 30") == s("repayment.days_past_due >= 90") == s("5 < repayment.days_past_due")
    assert s("repayment.days_past_due > 1 and repayment.max_dpd_12m < 3") == s("repayment.max_dpd_12m <= 9 and repayment.days_past_due > 4")
    assert s("repayment.days_past_due > 30") != s("repayment.max_dpd_12m > 30")
    assert s("repayment.days_past_due > 30") != s("repayment.days_past_due > 30 or repayment.days_past_due is None")
    assert s("bureau.worst_class_elsewhere in (\"loss\",)") == s("bureau.worst_class_elsewhere in (\"doubtful\", \"loss\")")


def test_oversized_and_deeply_nested_conditions_are_refused():
    with pytest.raises(ExpressionError, match="longer than 2000 characters"):
        parse_condition(" or ".join(["repayment.days_past_due > 1"] * 100))
    with pytest.raises(ExpressionError, match="nested more than 40 deep"):
        parse_condition("not " * 400 + "court.criminal_case")
    assert parse_condition("not not court.criminal_case").fields == {"court.criminal_case"}
