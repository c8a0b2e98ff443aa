"""Both evaluators side by side, for tests: the three-valued value of an expression on loans."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from lending_core.risk import realtime, vectorized
from lending_core.risk.expression import Node, parse


def by_closures(tree: Node, loans: Sequence[Mapping[str, Any]]) -> list[Any]:
    evaluate = realtime.compile_node(tree)
    return [evaluate(loan) for loan in loans]


def by_polars(tree: Node, loans: Sequence[Mapping[str, Any]]) -> list[Any]:
    # with_columns broadcasts an expression made of constants only to every row.
    frame = vectorized.to_frame(loans)
    return frame.with_columns(value=vectorized.compile_node(tree)).get_column("value").to_list()


def both(text: str, loans: Sequence[Mapping[str, Any]]) -> tuple[list[Any], list[Any]]:
    tree = parse(text)
    return by_closures(tree, loans), by_polars(tree, loans)
