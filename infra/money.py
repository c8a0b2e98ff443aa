"""Money is integer fen (分). Yuan appear only at the edges — parsing input, rendering text —
and never through a float: a float given as money raises."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal


class FloatMoney(TypeError):
    """Money must not be a float: use int fen, a Decimal or a decimal string."""


def to_fen(yuan: int | str | Decimal) -> int:
    """Yuan (int, decimal string or Decimal) to fen, rounding half up to the fen."""
    if isinstance(yuan, float):
        raise FloatMoney()
    return int((Decimal(yuan) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def yuan_text(fen: int) -> str:
    """``123456`` → ``"1234.56"``."""
    if type(fen) is int:  # the usual case, by integer division: a Decimal was 1% of a grab's CPU
        yuan, cents = divmod(abs(fen), 100)
        return f"{'-' if fen < 0 else ''}{yuan}.{cents:02d}"
    if isinstance(fen, float):
        raise FloatMoney()
    return f"{Decimal(fen) / 100:.2f}"
