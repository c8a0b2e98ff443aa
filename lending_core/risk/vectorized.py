"""Evaluator 2, book-wide: the same checked condition compiled into one Polars expression and
run over a frame holding the whole book (one row per loan, one column per field path, see
``schema``), all rules in a single ``select`` so Polars evaluates them in parallel in one pass.

Polars already has SQL's null semantics for comparisons, arithmetic, ``is_in`` and Kleene
``&``/``|``, and its integer ``//`` floors and yields null on division by zero, as the language
defines; only ``min``/``max`` (Polars' horizontal min/max skip nulls) need an explicit null test.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import polars as pl

from lending_core.risk import schema
from lending_core.risk.expression import (
    Arith, Call, Compare, Condition, Const, FieldRef, IsNull, Logic, Member, Neg, Node, Not,
)

DTYPES = {"int": pl.Int64, "bool": pl.Boolean, "text": pl.String}


def frame_schema() -> dict[str, pl.DataType]:
    return {"product": pl.String, **{f.path: DTYPES[f.kind] for f in schema.FIELDS}}


def to_frame(loans: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """A book frame from nested snapshots (the ``product`` key, if any, becomes a column)."""
    rows = [{"product": loan.get("product"), **schema.flatten(loan)} for loan in loans]
    return pl.DataFrame(rows, schema=frame_schema(), orient="row") if rows else pl.DataFrame(schema=frame_schema())


def compile_condition(condition: Condition) -> pl.Expr:
    """True where the rule fires; a null condition does not fire."""
    return compile_node(condition.tree).fill_null(False)


MIRRORED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


def compile_node(node: Node) -> pl.Expr:
    if isinstance(node, FieldRef):
        return pl.col(node.path)
    if isinstance(node, Const):
        return pl.lit(node.value, dtype=DTYPES[node.kind])
    if isinstance(node, Logic):
        parts = [compile_node(o) for o in node.operands]
        result = parts[0]
        for part in parts[1:]:
            result = (result & part) if node.op == "and" else (result | part)
        return result
    if isinstance(node, Not):
        return ~compile_node(node.operand)
    if isinstance(node, Compare):
        left, right, op = compile_node(node.left), compile_node(node.right), node.op
        if not left.meta.root_names() and right.meta.root_names():
            # Constant first, column second: Polars (2.1) answers one row instead of one per
            # loan when the column side is, say, abs() of a min() that is null on every row of
            # the frame (found by the agreement property test). The mirrored comparison with
            # the column first is the same condition.
            left, right, op = right, left, MIRRORED[op]
        return {
            "<": left.__lt__, "<=": left.__le__, ">": left.__gt__, ">=": left.__ge__,
            "==": left.__eq__, "!=": left.__ne__,
        }[op](right)
    if isinstance(node, Member):
        found = compile_node(node.operand).is_in(list(node.values))
        return ~found if node.negated else found
    if isinstance(node, IsNull):
        operand = compile_node(node.operand)
        return operand.is_not_null() if node.negated else operand.is_null()
    if isinstance(node, Arith):
        left, right = compile_node(node.left), compile_node(node.right)
        if node.op == "+":
            return left + right
        if node.op == "-":
            return left - right
        if node.op == "*":
            return left * right
        return left // right
    if isinstance(node, Neg):
        return -compile_node(node.operand)
    if isinstance(node, Call):
        args = [compile_node(a) for a in node.args]
        if node.function == "coalesce":
            # Arguments after a constant are never reached, and a leading constant is the
            # answer: Polars folds such a coalesce into a one-row value that does not broadcast
            # over the book (found by the agreement property test).
            reached = []
            for arg, compiled in zip(node.args, args):
                reached.append(compiled)
                if isinstance(arg, Const):
                    break
            return reached[0] if len(reached) == 1 else pl.coalesce(reached)
        if node.function == "abs":
            return args[0].abs()
        known = pl.all_horizontal([a.is_not_null() for a in args])
        picked = pl.min_horizontal(args) if node.function == "min" else pl.max_horizontal(args)
        return pl.when(known).then(picked)
    raise TypeError(f"cannot compile {node!r}")
