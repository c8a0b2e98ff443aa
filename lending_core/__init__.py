"""The bank's brain: who the banks, staff and customers are, and (in later areas) products,
decisions, applications, contracts, loans, the ledger and risk.

It knows nothing of the web, Redis or HTTP clients: it takes plain values, owns its
transactions, writes audit rows and outbox messages, and raises domain errors with reasons.
Outside parties it needs are Protocols defined here and implemented in ``integrations``.
"""
