"""Products as configuration (M9–M11): a product is a definition — who may apply through which
channels, the data it needs, admission rules, scorecard, credit-limit and pricing models, bounds,
repayment methods, signatories and collateral — validated on load and versioned in the database.

The shipped catalogue (``catalogue/*.toml``) is loaded as version 1 of each product; from then on
a new version is proposed, validated, simulated, approved by a second person and published, with
no code and no restart. Every decision records the version that made it.
"""
