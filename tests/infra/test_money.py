"""Money as text: integer fen rendered as yuan, never through a float."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from infra.money import FloatMoney, yuan_text


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_integer_fen_read_as_yuan_as_decimal_arithmetic_reads_them(fen):
    assert yuan_text(fen) == f"{Decimal(fen) / 100:.2f}"


def test_examples():
    assert [yuan_text(f) for f in (0, 1, 99, 100, 123456, -1, -250)] == ["0.00", "0.01", "0.99", "1.00", "1234.56", "-0.01", "-2.50"]
    assert yuan_text(Decimal("12.5")) == "0.12"  # a Decimal of fen is rounded as Decimal formats (half to even)
    with pytest.raises(FloatMoney):
        yuan_text(1.5)
