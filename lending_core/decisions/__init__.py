"""Credit decisions: admission rules → scorecard → score band → credit limit → price, explained.

``engine.decide`` is pure — plain values in, a ``Decision`` out, no ORM, no I/O — so the same
code serves quotes, applications, manual-review explanations and champion/challenger simulation.
"""
