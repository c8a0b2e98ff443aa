"""The association, its member banks (tenants), their branches and staff, and staff roles.

Every bank-owned row carries ``bank_id``; ``lending_core.access`` is the one way to query them.
"""
