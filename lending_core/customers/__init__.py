"""Customers: one record per person for the whole association.

A person has many identities (WeChat openid/unionid, bank customer numbers, phone, ID number —
each stored as a keyed hash) and a relationship with each member bank they deal with. Personal
data is encrypted at rest; lookups go through the hashes.
"""
