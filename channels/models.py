from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class AuthSession(Model):
    """A signed-in session: the holder of its refresh token may mint short-lived access tokens.

    Refresh tokens rotate on every use; presenting an already-used one means it was copied, so the
    whole family (every session descended from one sign-in) is revoked.
    """

    id = fields.BigIntField(primary_key=True)
    family = fields.CharField(max_length=32, db_index=True)
    subject_kind = fields.CharField(max_length=16)  # "customer" | "staff"
    subject_id = fields.BigIntField()
    bank_id = fields.BigIntField(null=True)
    channel = fields.CharField(max_length=32)
    refresh_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "auth_session"
        indexes = (("subject_kind", "subject_id"),)
