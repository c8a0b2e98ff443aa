"""One definition, two evaluators: on random loans (nulls, zeros, negatives, whole groups
missing, values at every threshold of the library) the closures and the Polars expressions give
the same three-valued answer — for every rule of the library and for random conditions."""

from __future__ import annotations

from typing import Mapping

from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from lending_core.risk import realtime, schema, vectorized
from lending_core.risk.expression import Const, ExpressionError, parse, parse_condition
from lending_core.risk.library import load_library
from tests.risk.evaluate import by_closures, by_polars

LIBRARY = load_library()


def bounded(examples: int):
    """Few enough examples to keep the whole risk suite well under a minute."""
    return settings(max_examples=examples, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _library_constants() -> set[int]:
    found = set()

    def walk(node):
        if isinstance(node, Const) and node.kind == "int":
            found.add(node.value)
        for name in ("operand", "left", "right"):
            if getattr(node, name, None) is not None:
                walk(getattr(node, name))
        for child in (*getattr(node, "operands", ()), *getattr(node, "args", ())):
            walk(child)

    for rule in LIBRARY.rules:
        walk(rule.condition.tree)
    return found


CONSTANTS = _library_constants()


def field_values(f: schema.Field):
    options = [st.none()] if f.nullable else []
    if f.kind == "bool":
        options.append(st.booleans())
    elif f.kind == "text":
        options.append(st.sampled_from(f.values))
    else:
        special = {f.low, f.high, 0, 1, -1, f.healthy, *(c + d for c in CONSTANTS for d in (-1, 0, 1))}
        options += [
            st.sampled_from(sorted(v for v in special if v is not None and f.low <= v <= f.high)),
            st.integers(max(f.low, -1000), min(f.high, 10_000_000)),
            st.integers(f.low, f.high),
        ]
    return st.one_of(options)


VALUES = {f.path: field_values(f) for f in schema.FIELDS}
PATHS = sorted(VALUES)
# Fixtures sit next to the thresholds: mutating them explores both sides of every rule.
# A loan with every nullable field null, mutated, gives loans that are mostly nulls.
SPARSE = schema.snapshot(missing=[f.path for f in schema.FIELDS if f.nullable])
BASES = [dict(schema.HEALTHY)] + [SPARSE] * 40 + [loan for rule in LIBRARY.rules for loan in (rule.fires_on, rule.quiet_on)]


def _set(loan, path, value):
    group, _, name = path.rpartition(".")
    if group:
        loan[group] = dict(loan.get(group) or {})
        loan[group][name] = value
    else:
        loan[name] = value


@st.composite
def mutated_loan(draw):
    loan = {k: dict(v) if isinstance(v, Mapping) else v for k, v in draw(st.sampled_from(BASES)).items()}
    for path in draw(st.lists(st.sampled_from(PATHS), max_size=12, unique=True)):
        _set(loan, path, draw(VALUES[path]))
    for group in draw(st.lists(st.sampled_from(schema.GROUPS), max_size=2, unique=True)):
        if group == "repayment":
            continue  # the bank's own repayment records are never missing
        if draw(st.booleans()):
            loan[group] = None
        else:
            del loan[group]
    return loan


@st.composite
def random_loan(draw):
    loan = {}
    for path in PATHS:
        _set(loan, path, draw(VALUES[path]))
    return loan


LOANS = st.lists(st.one_of(mutated_loan(), mutated_loan(), mutated_loan(), mutated_loan(), random_loan()), min_size=1, max_size=8)

RAW = [(rule, realtime.compile_node(rule.condition.tree), vectorized.compile_node(rule.condition.tree).alias(rule.code)) for rule in LIBRARY.rules]


@bounded(120)
@given(loans=LOANS)
def test_both_evaluators_agree_on_every_rule_of_the_library(loans):
    frame = vectorized.to_frame(loans)
    raw = frame.select([expr for _, _, expr in RAW])
    fires = frame.select([rule.expr.alias(rule.code) for rule in LIBRARY.rules])
    for i, loan in enumerate(loans):
        for rule, closure, _ in RAW:
            assert closure(loan) == raw[rule.code][i], (rule.code, rule.condition.text, schema.flatten(loan))
            assert rule.fires(loan) == fires[rule.code][i], rule.code


# Random conditions over the whole schema.
INT_FIELDS = [f.path for f in schema.FIELDS if f.kind == "int"]
BOOL_FIELDS = [f.path for f in schema.FIELDS if f.kind == "bool"]
TEXT_FIELDS = [f for f in schema.FIELDS if f.kind == "text"]


def int_expr(depth: int):
    leaves = st.one_of(
        st.sampled_from(INT_FIELDS),
        st.integers(-1000, 1000).map(str),
        st.sampled_from(["0", "1", "-1", "7", "100000000"]),
    )
    if depth == 0:
        return leaves
    sub = int_expr(depth - 1)
    return st.one_of(
        leaves,
        st.tuples(sub, st.sampled_from(["+", "-", "//"]), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(sub, st.integers(-1000, 1000)).map(lambda t: f"({t[0]} * {t[1]})"),
        sub.map(lambda s: f"-({s})"),
        sub.map(lambda s: f"abs({s})"),
        st.tuples(st.sampled_from(["min", "max", "coalesce"]), st.lists(sub, min_size=2, max_size=3)).map(lambda t: f"{t[0]}({', '.join(t[1])})"),
    )


CMP = st.sampled_from(["<", "<=", ">", ">=", "==", "!="])


def text_comparison():
    def build(f, data):
        value, values, op = data
        if op == "in":
            return f"{f.path} in ({', '.join(repr(v) for v in values)},)"
        if op == "not in":
            return f"{f.path} not in [{', '.join(repr(v) for v in values)}]"
        return f"{f.path} {op} {value!r}"

    return st.sampled_from(TEXT_FIELDS).flatmap(lambda f: st.tuples(
        st.sampled_from(f.values), st.lists(st.sampled_from(f.values), min_size=1, max_size=3), st.sampled_from(["==", "!=", "in", "not in"]),
    ).map(lambda data: build(f, data)))


def bool_expr(depth: int):
    ints = int_expr(2)
    leaves = st.one_of(
        st.sampled_from(BOOL_FIELDS),
        st.sampled_from(["True", "False"]),
        st.tuples(ints, CMP, ints).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
        st.tuples(ints, CMP, ints, CMP, ints).map(lambda t: " ".join(t)),
        st.tuples(ints, st.lists(st.integers(-5, 40), min_size=1, max_size=4), st.booleans()).map(
            lambda t: f"{t[0]} {'not in' if t[2] else 'in'} ({', '.join(map(str, t[1]))},)"),
        text_comparison(),
        st.tuples(st.sampled_from(PATHS), st.booleans()).map(lambda t: f"{t[0]} is {'not ' if t[1] else ''}None"),
        st.tuples(st.sampled_from(BOOL_FIELDS), st.sampled_from(["True", "False"])).map(lambda t: f"coalesce({t[0]}, {t[1]})"),
        st.tuples(st.sampled_from(BOOL_FIELDS), st.sampled_from(["==", "!="]), st.sampled_from(BOOL_FIELDS)).map(lambda t: " ".join(t)),
    )
    if depth == 0:
        return leaves
    sub = bool_expr(depth - 1)
    return st.one_of(
        leaves,
        st.tuples(st.sampled_from(["and", "or"]), st.lists(sub, min_size=2, max_size=3)).map(lambda t: "(" + f" {t[0]} ".join(t[1]) + ")"),
        sub.map(lambda s: f"not ({s})"),
    )


def _checked(text: str, *, condition: bool):
    try:
        return parse_condition(text).tree if condition else parse(text)
    except ExpressionError as error:
        # The generator stays inside the language; only a possible overflow may be refused.
        assert "64-bit" in str(error), f"{text}: {error}"
        reject()


@bounded(200)
@given(text=bool_expr(2), loans=LOANS)
def test_both_evaluators_agree_on_random_conditions(text, loans):
    tree = _checked(text, condition=True)
    assert by_closures(tree, loans) == by_polars(tree, loans), text


@bounded(120)
@given(text=int_expr(3), loans=LOANS)
def test_both_evaluators_agree_on_random_arithmetic(text, loans):
    tree = _checked(text, condition=False)
    assert by_closures(tree, loans) == by_polars(tree, loans), text


def test_a_coalesce_led_by_a_constant_agrees_over_a_whole_book():
    # The property test's find: Polars folded `coalesce(0, principal_fen)` to a one-row value
    # that did not broadcast over a book of two loans.
    loans = [schema.HEALTHY, schema.HEALTHY]
    for text in ("not (0 < 0 < -(coalesce(0, principal_fen)))", "coalesce(0, principal_fen) == 0", "coalesce(principal_fen, 0) > 0"):
        tree = parse(text)
        assert by_closures(tree, loans) == by_polars(tree, loans), text


def test_a_constant_compared_with_a_value_null_on_every_loan_agrees_over_a_whole_book():
    # The property test's find: `0 >= abs(min(...))` with the min null on every loan of the frame
    # (no account snapshot) was answered by Polars as one row, not one per loan.
    loans = [{**schema.HEALTHY, "account": None}, {**schema.HEALTHY, "principal_fen": None}]
    for text in ("0 >= abs(min(principal_fen, account.balance_fen))", "0 >= min(principal_fen, account.balance_fen)",
                 "0 < -(min(principal_fen, account.balance_fen))", "abs(min(principal_fen, account.balance_fen)) <= 0"):
        tree = parse(text)
        assert by_closures(tree, loans) == by_polars(tree, loans) == [None, None], text
