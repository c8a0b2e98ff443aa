from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Application(Model):
    """One application for one product at one bank. Amounts in fen, rates in basis points."""

    # (No semicolons in model docstrings: tortoise copies them into SQL comments, and its SQLite
    # migration runner splits statements at semicolons.)

    id = fields.BigIntField(primary_key=True)
    bank = fields.ForeignKeyField("models.Bank", related_name=None, on_delete=fields.RESTRICT)
    customer = fields.ForeignKeyField("models.Customer", related_name="applications", on_delete=fields.RESTRICT)
    product = fields.ForeignKeyField("models.Product", related_name=None, on_delete=fields.RESTRICT)
    product_version = fields.IntField()
    channel = fields.CharField(max_length=32)
    amount_fen = fields.BigIntField()
    term_months = fields.IntField()
    repayment_method = fields.CharField(max_length=24)
    # Counts against the association's unsecured-credit cap while live.
    unsecured = fields.BooleanField(default=True)
    status = fields.CharField(max_length=16, db_index=True)
    decision = fields.JSONField()
    limit_fen = fields.BigIntField(default=0)
    rate_bps = fields.IntField(default=0)
    customer_reasons = fields.JSONField(default=list)
    # The staff member whose invite brought the customer: they may not review it.
    referred_by_staff_id = fields.BigIntField(null=True)
    reviewed_by_id = fields.BigIntField(null=True)
    review_note = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    decided_at = fields.DatetimeField(null=True)

    class Meta:
        table = "application"
        indexes = (("customer_id", "status"), ("bank_id", "status"))
