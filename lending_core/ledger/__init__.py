"""The double-entry ledger: every money movement is one transaction whose legs sum to zero.

Signs: a leg's ``amount_fen`` is positive for a debit and negative for a credit, so an asset
(a loan's principal receivable) has a positive balance and a liability or income account (a
customer's deposit mirror, interest income) a negative one; the sum over every account is zero.
Balances are never stored: an account's balance is the sum of its legs.

Three guards keep a transaction balanced: ``service.post`` checks the legs before it stores
them; on PostgreSQL a deferred constraint trigger (migration 0008) re-adds each transaction's
legs at commit, whatever wrote them; and each transaction has a unique key, so a retried
disbursement or repayment finds its transaction already there and moves nothing.
"""
