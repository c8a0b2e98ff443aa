"""The condition language of warning rules: a small, safe subset of Python expression syntax,
parsed with ``ast`` (``mode="eval"``, never ``eval``) and checked against the snapshot schema
into a typed tree that both evaluators compile.

Grammar (anything else is refused, with its line and column)::

    condition  := expr of type bool
    expr       := expr "and" expr | expr "or" expr | "not" expr
                | expr cmp expr [cmp expr …]          chained as in Python: a < b < c ≡ a < b and b < c
                | expr ["not"] "in" "(" const, … ")"   a literal tuple or list of constants, same type
                | expr "is" ["not"] "None"
                | expr ("+" | "-" | "*" | "//") expr | "-" expr
                | abs(x) | min(x, y, …) | max(x, y, …) | coalesce(x, y, …)
                | field | int | "text" | True | False | "(" expr ")"
    cmp        := "<" | "<=" | ">" | ">=" | "==" | "!="
    field      := name | group "." name                 declared in ``schema`` only

Types: whole numbers (money in fen, counts, days; shares as permille or basis points written by
cross-multiplying, e.g. ``overdue_fen * 100 > 30 * principal_fen``), true/false and text (a
field's declared values only). No floats at all, and ``/`` is refused: ``//`` is floor division
on whole numbers, rounding toward minus infinity as Python does (``-7 // 2 == -4``). Ordering
comparisons take numbers; ``==``/``!=``/``in`` take any two of the same type.

Null (a field the source has no value for) follows SQL: every operator and function yields null
when an operand is null — arithmetic, comparisons, ``in``, ``not``, ``abs``, ``min``, ``max`` —
except ``and``/``or``, which are three-valued (false and null = false; true or null = true),
``x is None`` / ``x is not None``, which are never null, and ``coalesce``, which takes its first
non-null argument. Division by zero yields null too. A rule whose condition ends up null does
not fire. Both evaluators implement exactly these rules; a property test holds them to it.

Integers are unbounded in Python but 64-bit in Polars, so each whole-number sub-expression is
given a range from the schema's field ranges, and a condition that could leave ±2**62 is
refused: the two evaluators can then never disagree through overflow.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from lending_core.risk import schema

LIMIT = 2**62
MAX_LENGTH = 2000
MAX_DEPTH = 40
FUNCTIONS = {"abs": (1, 1), "min": (2, 8), "max": (2, 8), "coalesce": (2, 8)}
ORDERING = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
EQUALITY = {ast.Eq: "==", ast.NotEq: "!="}
ARITHMETIC = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.FloorDiv: "//"}
KIND_WORDS = {"int": "a whole number", "bool": "true/false", "text": "text"}
FORBIDDEN_WORDS = {
    ast.Lambda: "lambda", ast.ListComp: "a comprehension", ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension", ast.GeneratorExp: "a generator expression",
    ast.Subscript: "subscripts ([...])", ast.IfExp: "conditional expressions (x if c else y)",
    ast.Dict: "a dict", ast.JoinedStr: "f-strings", ast.NamedExpr: "assignment (:=)",
    ast.Await: "await", ast.Starred: "unpacking (*)", ast.Yield: "yield", ast.YieldFrom: "yield",
    ast.Slice: "slices",
}


class ExpressionError(ValueError):
    """A condition is not in the rule language: bad syntax, a forbidden construct, an unknown
    field, a type error or possible overflow. ``line`` and ``column`` are 1-based."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        self.message, self.line, self.column = message, line, column
        where = f" (line {line}, column {column})" if line is not None else ""
        super().__init__(message + where)


# The checked tree. Every node knows its type; whole-number nodes their possible range.
@dataclass(frozen=True)
class Node:
    kind: str
    low: int = 0
    high: int = 0


@dataclass(frozen=True)
class FieldRef(Node):
    path: str = ""
    group: str = ""
    name: str = ""


@dataclass(frozen=True)
class Const(Node):
    value: Any = None


@dataclass(frozen=True)
class Not(Node):
    operand: Node | None = None


@dataclass(frozen=True)
class Logic(Node):
    op: str = ""  # "and" | "or"
    operands: tuple[Node, ...] = ()


@dataclass(frozen=True)
class Compare(Node):
    op: str = ""  # < <= > >= == !=
    left: Node | None = None
    right: Node | None = None


@dataclass(frozen=True)
class Member(Node):
    operand: Node | None = None
    values: tuple = ()
    negated: bool = False


@dataclass(frozen=True)
class IsNull(Node):
    operand: Node | None = None
    negated: bool = False


@dataclass(frozen=True)
class Arith(Node):
    op: str = ""  # + - * //
    left: Node | None = None
    right: Node | None = None


@dataclass(frozen=True)
class Neg(Node):
    operand: Node | None = None


@dataclass(frozen=True)
class Call(Node):
    function: str = ""
    args: tuple[Node, ...] = ()


@dataclass(frozen=True)
class Condition:
    """A checked condition: its text, its typed tree and the fields it reads."""

    text: str
    tree: Node
    fields: frozenset[str]

    @property
    def groups(self) -> frozenset[str]:
        return frozenset(schema.BY_PATH[p].group for p in self.fields if schema.BY_PATH[p].group)


def parse_condition(text: str) -> Condition:
    """Parse and check a rule condition (must be true/false); raise ``ExpressionError``."""
    tree = parse(text)
    if tree.kind != "bool":
        raise ExpressionError(f"a condition must be true or false, this is {KIND_WORDS[tree.kind]}", 1, 1)
    return Condition(text, tree, frozenset(fields_of(tree)))


def parse(text: str) -> Node:
    """Parse and check any expression of the language."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("empty expression")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"longer than {MAX_LENGTH} characters: split the signal into rules")
    # Parenthesised on lines of their own so a condition may span lines and keep its columns.
    try:
        body = ast.parse(f"(\n{text}\n)", mode="eval").body
    except SyntaxError as error:
        lines = text.split("\n")
        line, column = max((error.lineno or 2) - 1, 1), error.offset or 1
        if line > len(lines):  # the text ended too soon: point just past its end
            line, column = len(lines), len(lines[-1]) + 1
        raise ExpressionError(f"does not parse: {error.msg}", line, column) from None
    return _Checker().check(body)


def fields_of(node: Node) -> list[str]:
    found = []

    def walk(n):
        if isinstance(n, FieldRef):
            found.append(n.path)
        for child in children(n):
            walk(child)

    walk(node)
    return found


def children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, (Not, Member, IsNull, Neg)):
        return (node.operand,)
    if isinstance(node, Logic):
        return node.operands
    if isinstance(node, (Compare, Arith)):
        return (node.left, node.right)
    if isinstance(node, Call):
        return node.args
    return ()


def shape(node: Node) -> str:
    """The condition's structure with every constant and comparison direction erased, and the
    operands of and/or sorted: two conditions with the same shape differ only in thresholds."""
    if isinstance(node, FieldRef):
        return node.path
    if isinstance(node, Const):
        return "K"
    if isinstance(node, Compare):
        sides = sorted((shape(node.left), shape(node.right)))
        return f"cmp({sides[0]},{sides[1]})"
    if isinstance(node, Member):
        return f"in({shape(node.operand)})"
    if isinstance(node, IsNull):
        return f"null({shape(node.operand)})"
    if isinstance(node, Not):
        return f"not({shape(node.operand)})"
    if isinstance(node, Logic):
        return f"{node.op}(" + ",".join(sorted(shape(o) for o in node.operands)) + ")"
    if isinstance(node, Arith):
        parts = [shape(node.left), shape(node.right)]
        if node.op in ("+", "*"):
            parts.sort()
        return f"{node.op}(" + ",".join(parts) + ")"
    if isinstance(node, Neg):
        return f"neg({shape(node.operand)})"
    if isinstance(node, Call):
        return f"{node.function}(" + ",".join(shape(a) for a in node.args) + ")"
    raise TypeError(node)


class _Checker:
    def fail(self, node: ast.AST, message: str):
        # Line 1 of the wrapper is the opening parenthesis; columns are 0-based in ast.
        raise ExpressionError(message, max(getattr(node, "lineno", 2) - 1, 1), getattr(node, "col_offset", 0) + 1)

    depth = 0

    def check(self, node: ast.AST) -> Node:
        method = getattr(self, f"on_{type(node).__name__}", None)
        if method is None:
            what = FORBIDDEN_WORDS.get(type(node), type(node).__name__)
            self.fail(node, f"{what} is not allowed in a rule condition")
        if self.depth >= MAX_DEPTH:
            self.fail(node, f"nested more than {MAX_DEPTH} deep")
        self.depth += 1
        try:
            result = method(node)
        finally:
            self.depth -= 1
        if result.kind == "int" and (result.low < -LIMIT or result.high > LIMIT):
            self.fail(node, f"this arithmetic may exceed the 64-bit range (up to {max(-result.low, result.high)}): use smaller constants")
        return result

    def expect(self, ast_node: ast.AST, node: Node, kind: str, what: str) -> Node:
        if node.kind != kind:
            self.fail(ast_node, f"{what} needs {KIND_WORDS[kind]}, got {KIND_WORDS[node.kind]}")
        return node

    # --- leaves
    def on_Constant(self, node: ast.Constant) -> Node:
        value = node.value
        if isinstance(value, bool):
            return Const("bool", value=value)
        if isinstance(value, int):
            return Const("int", value, value, value=value)
        if isinstance(value, str):
            return Const("text", value=value)
        if isinstance(value, float):
            self.fail(node, f"floats are not allowed ({value!r}): money is whole fen, shares are permille or basis points compared by cross-multiplying")
        if value is None:
            self.fail(node, "None may only be tested with `is None` / `is not None`")
        self.fail(node, f"constant {value!r} is not allowed")

    def field(self, node: ast.AST, path: str) -> Node:
        f = schema.BY_PATH.get(path)
        if f is None:
            self.fail(node, f"unknown field {path}")
        if f.kind == "int":
            return FieldRef("int", f.low, f.high, path=path, group=f.group, name=f.name)
        return FieldRef(f.kind, path=path, group=f.group, name=f.name)

    def on_Name(self, node: ast.Name) -> Node:
        if node.id.startswith("_"):
            self.fail(node, f"names starting with _ are not allowed ({node.id})")
        if node.id in schema.CATEGORIES:
            self.fail(node, f"{node.id} is a group of fields: name one, e.g. {node.id}.{next(f.name for f in schema.FIELDS if f.group == node.id)}")
        if node.id in FUNCTIONS:
            self.fail(node, f"{node.id} is a function: call it")
        return self.field(node, node.id)

    def on_Attribute(self, node: ast.Attribute) -> Node:
        if node.attr.startswith("_"):
            self.fail(node, f"names starting with _ are not allowed ({node.attr})")
        if not isinstance(node.value, ast.Name):
            inner = node.value
            if isinstance(inner, ast.Attribute) and isinstance(inner.value, ast.Name) and f"{inner.value.id}.{inner.attr}" in schema.BY_PATH:
                self.fail(node, f"{inner.value.id}.{inner.attr} is a field and has no attribute {node.attr}")
            self.fail(node, "only a field (name) or a group's field (group.name) may be referred to")
        if node.value.id.startswith("_"):
            self.fail(node.value, f"names starting with _ are not allowed ({node.value.id})")
        if node.value.id not in schema.CATEGORIES:
            if node.value.id in schema.BY_PATH:
                self.fail(node, f"{node.value.id} is a field and has no attribute {node.attr}")
            self.fail(node.value, f"unknown group {node.value.id} (groups: {', '.join(schema.GROUPS)})")
        return self.field(node, f"{node.value.id}.{node.attr}")

    # --- logic
    def on_BoolOp(self, node: ast.BoolOp) -> Node:
        op = "and" if isinstance(node.op, ast.And) else "or"
        operands = tuple(self.expect(v, self.check(v), "bool", f"`{op}`") for v in node.values)
        return Logic("bool", op=op, operands=operands)

    def on_UnaryOp(self, node: ast.UnaryOp) -> Node:
        operand = self.check(node.operand)
        if isinstance(node.op, ast.Not):
            return Not("bool", operand=self.expect(node.operand, operand, "bool", "`not`"))
        if isinstance(node.op, ast.USub):
            self.expect(node.operand, operand, "int", "`-`")
            if isinstance(operand, Const):
                return Const("int", -operand.value, -operand.value, value=-operand.value)
            return Neg("int", -operand.high, -operand.low, operand=operand)
        self.fail(node, f"unary {type(node.op).__name__} is not allowed")

    def on_Compare(self, node: ast.Compare) -> Node:
        parts = []
        left_ast, left = node.left, self.check(node.left)
        for index, (op, right_ast) in enumerate(zip(node.ops, node.comparators)):
            if isinstance(op, (ast.In, ast.NotIn)):
                parts.append(self.member(node, left, right_ast, isinstance(op, ast.NotIn)))
                right = None
            elif isinstance(op, (ast.Is, ast.IsNot)):
                if not (isinstance(right_ast, ast.Constant) and right_ast.value is None):
                    self.fail(right_ast, "`is` / `is not` may only be used with None")
                parts.append(IsNull("bool", operand=left, negated=isinstance(op, ast.IsNot)))
                right = None
            else:
                right = self.check(right_ast)
                if type(op) in ORDERING:
                    self.expect(left_ast, left, "int", f"`{ORDERING[type(op)]}`")
                    self.expect(right_ast, right, "int", f"`{ORDERING[type(op)]}`")
                    symbol = ORDERING[type(op)]
                elif type(op) in EQUALITY:
                    symbol = EQUALITY[type(op)]
                    if left.kind != right.kind:
                        self.fail(node, f"`{symbol}` compares {KIND_WORDS[left.kind]} with {KIND_WORDS[right.kind]}")
                    self.check_text_value(right_ast, left, right)
                    self.check_text_value(left_ast, right, left)
                else:
                    self.fail(node, f"comparison {type(op).__name__} is not allowed")
                parts.append(Compare("bool", op=symbol, left=left, right=right))
            if right is None and index < len(node.ops) - 1:
                self.fail(node, "`in` and `is` may not be chained")
            left_ast, left = right_ast, right
        return parts[0] if len(parts) == 1 else Logic("bool", op="and", operands=tuple(parts))

    def check_text_value(self, at: ast.AST, field: Node, const: Node) -> None:
        if isinstance(field, FieldRef) and field.kind == "text" and isinstance(const, Const):
            allowed = schema.BY_PATH[field.path].values
            if const.value not in allowed:
                self.fail(at, f"{const.value!r} is not a value of {field.path} ({', '.join(allowed)})")

    def member(self, node: ast.AST, left: Node, right: ast.AST, negated: bool) -> Node:
        if not isinstance(right, (ast.Tuple, ast.List)):
            self.fail(right, "`in` needs a literal tuple or list of constants, e.g. x in (\"C\", \"D\")")
        if not right.elts:
            self.fail(right, "`in` needs at least one value")
        values = []
        for element in right.elts:
            const = self.check(element)
            if not isinstance(const, Const):
                self.fail(element, "`in` needs constants only")
            if const.kind != left.kind:
                self.fail(element, f"`in` compares {KIND_WORDS[left.kind]} with {KIND_WORDS[const.kind]}")
            self.check_text_value(element, left, const)
            values.append(const.value)
        return Member("bool", operand=left, values=tuple(values), negated=negated)

    # --- arithmetic
    def on_BinOp(self, node: ast.BinOp) -> Node:
        if isinstance(node.op, ast.Div):
            self.fail(node, "`/` is not allowed (it makes fractions): use `//` for whole-number division, or compare cross-multiplied integers")
        symbol = ARITHMETIC.get(type(node.op))
        if symbol is None:
            self.fail(node, f"operator {type(node.op).__name__} is not allowed (only + - * //)")
        left = self.expect(node.left, self.check(node.left), "int", f"`{symbol}`")
        right = self.expect(node.right, self.check(node.right), "int", f"`{symbol}`")
        if symbol == "+":
            low, high = left.low + right.low, left.high + right.high
        elif symbol == "-":
            low, high = left.low - right.high, left.high - right.low
        elif symbol == "*":
            corners = [a * b for a in (left.low, left.high) for b in (right.low, right.high)]
            low, high = min(corners), max(corners)
        else:
            # |a // b| ≤ |a| for |b| ≥ 1, plus one for flooring a negative quotient; b = 0 is null.
            size = max(abs(left.low), abs(left.high)) + 1
            low, high = -size, size
        return Arith("int", low, high, op=symbol, left=left, right=right)

    def on_Call(self, node: ast.Call) -> Node:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            self.fail(node, f"call of {name} is not allowed (functions: {', '.join(FUNCTIONS)})")
        name = node.func.id
        if node.keywords:
            self.fail(node, f"{name} takes no keyword arguments")
        least, most = FUNCTIONS[name]
        if not least <= len(node.args) <= most:
            self.fail(node, f"{name} takes {least} argument" if least == most else f"{name} takes {least} to {most} arguments")
        args = tuple(self.check(a) for a in node.args)
        if name == "coalesce":
            kinds = {a.kind for a in args}
            if len(kinds) > 1:
                self.fail(node, "coalesce needs arguments of one type")
            kind = args[0].kind
            if kind == "int":
                return Call("int", min(a.low for a in args), max(a.high for a in args), function=name, args=args)
            return Call(kind, function=name, args=args)
        for a, ast_arg in zip(args, node.args):
            self.expect(ast_arg, a, "int", name)
        if name == "abs":
            (a,) = args
            low = 0 if a.low <= 0 <= a.high else min(abs(a.low), abs(a.high))
            return Call("int", low, max(abs(a.low), abs(a.high)), function=name, args=args)
        pick = min if name == "min" else max
        return Call("int", pick(a.low for a in args), pick(a.high for a in args), function=name, args=args)
