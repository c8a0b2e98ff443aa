from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class ListEntry(Model):
    """One person on a black or grey list. ``bank`` is null for an entry that applies to every
    member bank. The person is kept only as keyed hashes, plus masked forms for display."""

    id = fields.BigIntField(primary_key=True)
    bank = fields.ForeignKeyField("models.Bank", null=True, related_name=None, on_delete=fields.RESTRICT)
    level = fields.CharField(max_length=24)
    id_number_hash = fields.CharField(max_length=64, null=True, db_index=True)
    phone_hash = fields.CharField(max_length=64, null=True, db_index=True)
    unionid_hash = fields.CharField(max_length=64, null=True, db_index=True)
    id_number_masked = fields.CharField(max_length=18, null=True)
    phone_masked = fields.CharField(max_length=11, null=True)
    source = fields.CharField(max_length=8)  # "system" | "staff"
    reason = fields.TextField()
    # Stays "active" until lifted or until the expiry job marks it; screening also checks the time.
    status = fields.CharField(max_length=8, default="active", db_index=True)
    expires_at = fields.DatetimeField(null=True)
    created_by = fields.CharField(max_length=80)
    lifted_by = fields.CharField(max_length=80, null=True)
    lifted_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "risk_list_entry"
