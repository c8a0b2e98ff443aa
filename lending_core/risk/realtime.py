"""Evaluator 1, per event: a checked condition compiled once into nested closures over one
loan's snapshot (a nested mapping, see ``schema``). Nothing is parsed or walked per call, and
nothing is ``eval``-ed. Null is ``None``; the semantics are those stated in ``expression``.
"""

from __future__ import annotations

import operator
from typing import Any, Callable, Mapping

from lending_core.risk.expression import (
    Arith, Call, Compare, Condition, Const, FieldRef, IsNull, Logic, Member, Neg, Node, Not,
)

Evaluate = Callable[[Mapping[str, Any]], Any]

COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne}


def compile_condition(condition: Condition) -> Callable[[Mapping[str, Any]], bool]:
    """Whether the rule fires on a loan: its condition is true (null does not fire)."""
    evaluate = compile_node(condition.tree)
    return lambda loan: evaluate(loan) is True


def compile_node(node: Node) -> Evaluate:
    """The three-valued value of any expression: True/False/int/str, or None for null."""
    if isinstance(node, FieldRef):
        return _field(node.group, node.name)
    if isinstance(node, Const):
        value = node.value
        return lambda loan: value
    if isinstance(node, Logic):
        return _logic(node.op, [compile_node(o) for o in node.operands])
    if isinstance(node, Not):
        operand = compile_node(node.operand)

        def negate(loan):
            value = operand(loan)
            return None if value is None else not value
        return negate
    if isinstance(node, Compare):
        return _compare(COMPARE[node.op], node.left, node.right)
    if isinstance(node, Member):
        operand, values, negated = compile_node(node.operand), frozenset(node.values), node.negated

        def member(loan):
            value = operand(loan)
            return None if value is None else (value in values) != negated
        return member
    if isinstance(node, IsNull):
        operand, negated = compile_node(node.operand), node.negated
        return lambda loan: (operand(loan) is None) != negated
    if isinstance(node, Arith):
        return _arith(node.op, compile_node(node.left), compile_node(node.right))
    if isinstance(node, Neg):
        operand = compile_node(node.operand)

        def neg(loan):
            value = operand(loan)
            return None if value is None else -value
        return neg
    if isinstance(node, Call):
        return _call(node.function, [compile_node(a) for a in node.args])
    raise TypeError(f"cannot compile {node!r}")


def _field(group: str, name: str) -> Evaluate:
    if not group:
        return lambda loan: loan.get(name)

    def get(loan):
        values = loan.get(group)
        return None if values is None else values.get(name)
    return get


def _logic(op: str, operands: list[Evaluate]) -> Evaluate:
    # Kleene logic: a decisive operand (false for and, true for or) wins over null.
    decisive = op == "or"

    def combine(loan):
        unknown = False
        for operand in operands:
            value = operand(loan)
            if value is None:
                unknown = True
            elif value == decisive:
                return decisive
        return None if unknown else not decisive
    return combine


def _compare(op: Callable[[Any, Any], bool], left: Node, right: Node) -> Evaluate:
    # Most conditions compare a field with a constant: that case gets its own closure.
    if isinstance(right, Const):
        get, constant = compile_node(left), right.value

        def with_constant(loan):
            value = get(loan)
            return None if value is None else op(value, constant)
        return with_constant
    first, second = compile_node(left), compile_node(right)

    def compare(loan):
        a = first(loan)
        if a is None:
            return None
        b = second(loan)
        return None if b is None else op(a, b)
    return compare


def _arith(symbol: str, first: Evaluate, second: Evaluate) -> Evaluate:
    if symbol == "//":
        def divide(loan):
            a, b = first(loan), second(loan)
            return None if a is None or b is None or b == 0 else a // b
        return divide
    op = {"+": operator.add, "-": operator.sub, "*": operator.mul}[symbol]

    def arith(loan):
        a = first(loan)
        if a is None:
            return None
        b = second(loan)
        return None if b is None else op(a, b)
    return arith


def _call(function: str, args: list[Evaluate]) -> Evaluate:
    if function == "coalesce":
        def coalesce(loan):
            for arg in args:
                value = arg(loan)
                if value is not None:
                    return value
            return None
        return coalesce
    if function == "abs":
        (arg,) = args

        def absolute(loan):
            value = arg(loan)
            return None if value is None else abs(value)
        return absolute
    pick = min if function == "min" else max

    def extreme(loan):
        values = [arg(loan) for arg in args]
        return None if None in values else pick(values)
    return extreme
