"""Risk: post-loan warning rules, signals, real-time monitoring, disposal and product monitoring.

The warning rule library (M16) is data: ``catalogue/*.toml``, one file per category, each rule a
condition in a small safe expression language (``expression``) over a declared loan snapshot
(``schema``). One definition, two evaluators: ``realtime`` compiles a condition into closures for
one loan at a time (an event), ``vectorized`` compiles the same checked tree into a Polars
expression over the whole book. ``library`` loads and validates the files; a library with any
problem never loads. These modules are pure: no ORM, no web, no Redis.
"""
