from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Product(Model):
    """A product, province-wide (``owner_bank`` null) or one bank's own local product."""

    id = fields.BigIntField(primary_key=True)
    code = fields.CharField(max_length=32, unique=True)
    owner_bank = fields.ForeignKeyField("models.Bank", null=True, related_name=None, on_delete=fields.RESTRICT)
    family = fields.CharField(max_length=32)
    published_version = fields.IntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "product"


class ProductVersion(Model):
    """One version of a product's definition. Published versions never change: a change is a new
    version, proposed by one person and published when a second approves."""

    id = fields.BigIntField(primary_key=True)
    product = fields.ForeignKeyField("models.Product", related_name="versions", on_delete=fields.RESTRICT)
    version = fields.IntField()
    definition = fields.JSONField()
    status = fields.CharField(max_length=16, default="proposed")  # proposed | published | retired | rejected
    note = fields.TextField(default="")
    created_by = fields.CharField(max_length=64)
    created_at = fields.DatetimeField(auto_now_add=True)
    published_at = fields.DatetimeField(null=True)

    class Meta:
        table = "product_version"
        unique_together = (("product", "version"),)


class BankProductSetting(Model):
    """A member bank's parameters for a province-wide product, within the bounds the definition
    allows, and whether the bank offers it at all."""

    id = fields.BigIntField(primary_key=True)
    bank = fields.ForeignKeyField("models.Bank", related_name=None, on_delete=fields.RESTRICT)
    product = fields.ForeignKeyField("models.Product", related_name=None, on_delete=fields.RESTRICT)
    offered = fields.BooleanField(default=True)
    params = fields.JSONField(default=dict)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "bank_product_setting"
        unique_together = (("bank", "product"),)


class LprRate(Model):
    """The loan prime rate (LPR) published by the National Interbank Funding Center, by term,
    in basis points, from the date it takes effect."""

    id = fields.BigIntField(primary_key=True)
    term = fields.CharField(max_length=4)  # "1y" | "5y"
    bps = fields.IntField()
    effective_from = fields.DateField()

    class Meta:
        table = "lpr_rate"
        unique_together = (("term", "effective_from"),)
