"""Splitting a red-packet budget into packets (pure: no ORM, no Redis).

Every packet gets the minimum, then the rest of the budget is shared out by random integer
weights with largest remainders (django-hordak's rule: the parts always add up), each packet
capped at the maximum; what the caps cut off is shared again among the packets with room left.
All integer fen, no floats. The split is a pure function of its terms and a seed, so the pool
held in Redis can be drawn again, packet for packet, from the campaign row alone.
"""

from __future__ import annotations

import random

MAX_PACKETS = 5_000_000
# What WeChat Pay pays as one mini-program red packet sent with a scene id: 0.30 to 499 yuan.
# A packet outside it would be refused at payout (MONEY_LIMIT) and only come back to the budget.
PAYABLE_MIN_FEN, PAYABLE_MAX_FEN = 30, 49_900
_WEIGHT_BITS = 20


def split_problems(*, budget_fen: int, count: int, min_fen: int, max_fen: int) -> list[str]:
    """Why this budget cannot be split into ``count`` packets of ``min_fen``..``max_fen`` (empty: it can)."""
    problems = []
    if not 1 <= count <= MAX_PACKETS:
        problems.append(f"packet_count must be 1 to {MAX_PACKETS:,}")
    if min_fen < 1:
        problems.append("packet_min_fen must be at least 1 fen (0.01 yuan)")
    if max_fen < min_fen:
        problems.append("packet_max_fen must not be below packet_min_fen")
    if not problems and not count * min_fen <= budget_fen <= count * max_fen:
        problems.append(
            f"a budget of {budget_fen} fen cannot be split into {count} packets of {min_fen} to {max_fen} fen: "
            f"it must lie between {count * min_fen} and {count * max_fen}"
        )
    return problems


def split(*, budget_fen: int, count: int, min_fen: int, max_fen: int, seed: int) -> list[int]:
    """``count`` amounts in fen, each within [min_fen, max_fen], summing exactly to ``budget_fen``."""
    problems = split_problems(budget_fen=budget_fen, count=count, min_fen=min_fen, max_fen=max_fen)
    if problems:
        raise ValueError("; ".join(problems))
    rng = random.Random(seed)
    amounts = [min_fen] * count
    spare = budget_fen - count * min_fen
    room = max_fen - min_fen
    open_packets = list(range(count)) if room else []
    while spare:
        weights = [rng.getrandbits(_WEIGHT_BITS) + 1 for _ in open_packets]
        total = sum(weights)
        shares = [divmod(spare * weight, total) for weight in weights]
        leftover = spare - sum(whole for whole, _ in shares)
        # Largest remainders get the fen that flooring left over (ties by position: deterministic).
        for position in sorted(range(len(shares)), key=lambda i: -shares[i][1])[:leftover]:
            shares[position] = (shares[position][0] + 1, 0)
        still_open = []
        for packet, (share, _) in zip(open_packets, shares):
            give = min(share, max_fen - amounts[packet])
            amounts[packet] += give
            spare -= give
            if amounts[packet] < max_fen:
                still_open.append(packet)
        open_packets = still_open
    return amounts
