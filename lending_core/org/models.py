from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from infra.pii_fields import EncryptedTextField


class Association(Model):
    """The provincial association (省联社) that runs the platform for its member banks."""

    id = fields.BigIntField(primary_key=True)
    code = fields.CharField(max_length=32, unique=True)
    name = fields.CharField(max_length=128)

    class Meta:
        table = "association"


class Bank(Model):
    """A member bank (法人): the tenant that owns applications, loans, campaigns, staff and tasks."""

    id = fields.BigIntField(primary_key=True)
    association = fields.ForeignKeyField("models.Association", related_name="banks", on_delete=fields.RESTRICT)
    code = fields.CharField(max_length=32, unique=True)
    name = fields.CharField(max_length=128)
    city = fields.CharField(max_length=64)
    county = fields.CharField(max_length=64, null=True)
    is_active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "bank"


class Branch(Model):
    """A branch (网点) of one bank."""

    id = fields.BigIntField(primary_key=True)
    bank = fields.ForeignKeyField("models.Bank", related_name="branches", on_delete=fields.RESTRICT)
    code = fields.CharField(max_length=32)
    name = fields.CharField(max_length=128)
    city = fields.CharField(max_length=64)
    county = fields.CharField(max_length=64, null=True)

    class Meta:
        table = "branch"
        unique_together = (("bank", "code"),)


class Staff(Model):
    """A staff member of one bank, or of the association when ``bank`` is null."""

    id = fields.BigIntField(primary_key=True)
    bank = fields.ForeignKeyField("models.Bank", related_name="staff", null=True, on_delete=fields.RESTRICT)
    branch = fields.ForeignKeyField("models.Branch", related_name="staff", null=True, on_delete=fields.RESTRICT)
    username = fields.CharField(max_length=64, unique=True)
    name = EncryptedTextField()
    phone = EncryptedTextField(null=True)
    roles = fields.JSONField(default=list)
    password_hash = fields.CharField(max_length=255)
    failed_logins = fields.IntField(default=0)
    locked_until = fields.DatetimeField(null=True)
    is_active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "staff"
