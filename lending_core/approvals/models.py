from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class ChangeRequest(Model):
    """A proposed change waiting for a second person. ``bank_id`` is null for association-wide changes."""

    id = fields.BigIntField(primary_key=True)
    bank_id = fields.BigIntField(null=True, db_index=True)
    kind = fields.CharField(max_length=64)
    target_type = fields.CharField(max_length=48)
    target_id = fields.CharField(max_length=64)
    payload = fields.JSONField()
    reason = fields.TextField()
    status = fields.CharField(max_length=16, default="pending", db_index=True)
    proposed_by_id = fields.BigIntField()
    decided_by_id = fields.BigIntField(null=True)
    decision_note = fields.TextField(null=True)
    proposed_at = fields.DatetimeField(auto_now_add=True)
    decided_at = fields.DatetimeField(null=True)

    class Meta:
        table = "change_request"
