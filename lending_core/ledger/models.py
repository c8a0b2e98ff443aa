from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

# (No semicolons in model docstrings: tortoise copies them into SQL comments, and its SQLite
# migration runner splits statements at semicolons.)


class LedgerAccount(Model):
    """An account of the ledger, found by its code (e.g. loan:17:principal, bank:2:interest_income,
    customer:9:settlement:SBXHZRCBS000000000009). Its balance is the sum of its legs."""

    id = fields.BigIntField(primary_key=True)
    bank = fields.ForeignKeyField("models.Bank", related_name=None, on_delete=fields.RESTRICT)
    code = fields.CharField(max_length=96, unique=True)
    kind = fields.CharField(max_length=32)
    loan_id = fields.BigIntField(null=True)
    customer_id = fields.BigIntField(null=True)
    # The core-banking account a customer account mirrors (what we moved in it, not its balance).
    external_account = fields.CharField(max_length=40, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "ledger_account"
        # external_account: real-time monitoring finds the customer a bank's transaction event
        # names by the account number it mirrors.
        indexes = (("loan_id",), ("customer_id",), ("external_account",))


class LedgerTransaction(Model):
    """One money movement. ``key`` makes it idempotent: a retry with the same key finds it and
    moves nothing. ``correlation_id`` ties the transactions of one command together."""

    id = fields.BigIntField(primary_key=True)
    # No database foreign key: every transaction of a bank would take a share lock on the one
    # bank row, and workers running the daily job side by side then pile up multixacts on it
    # (measured: the database's CPU more than doubled with two workers).
    bank = fields.ForeignKeyField("models.Bank", related_name=None, on_delete=fields.RESTRICT, db_constraint=False)
    kind = fields.CharField(max_length=32)
    key = fields.CharField(max_length=160, unique=True)
    correlation_id = fields.CharField(max_length=96, db_index=True)
    business_date = fields.DateField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "ledger_transaction"
        indexes = (("bank_id", "business_date"),)


class LedgerLeg(Model):
    """One side of a transaction, in fen: positive debits, negative credits. The legs of a
    transaction sum to zero."""

    # No foreign-key constraints in the database here: on the daily job's hundreds of thousands
    # of legs their per-row checks cost more than the inserts themselves. Legs are written only
    # by ledger.service.post_many, in the statement after their transaction's row and for
    # accounts it has just opened, and the balance trigger still checks every leg at commit (a
    # leg of a transaction that does not exist sums to itself, not to zero, and is refused).
    id = fields.BigIntField(primary_key=True)
    transaction = fields.ForeignKeyField("models.LedgerTransaction", related_name="legs", on_delete=fields.RESTRICT, db_constraint=False)
    account = fields.ForeignKeyField("models.LedgerAccount", related_name=None, on_delete=fields.RESTRICT, db_constraint=False)
    amount_fen = fields.BigIntField()

    class Meta:
        table = "ledger_leg"
        indexes = (("transaction_id",), ("account_id",))
