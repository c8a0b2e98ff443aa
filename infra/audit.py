"""Audit trail: one row per state change, naming who acted, what changed, before and after.

Rows are written in the same transaction as the change they describe, so there is never a change
without its audit row nor an audit row for a change that rolled back. Values under personal-data
keys are masked before they are stored.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from tortoise import fields
from tortoise.models import Model

from infra import pii, sql
from infra.actors import Actor
from infra.logs import request_id_var

# Keys whose values are personal data wherever they appear in an audit snapshot.
PII_KEYS = {
    "name": "name",
    "full_name": "name",
    "id_number": "id_number",
    "phone": "phone",
    "card_number": "card_number",
    "legal_representative": "name",
}


class AuditEntry(Model):
    id = fields.BigIntField(primary_key=True)
    at = fields.DatetimeField(auto_now_add=True)
    actor_kind = fields.CharField(max_length=16)
    actor_id = fields.CharField(max_length=64)
    bank_id = fields.BigIntField(null=True, db_index=True)
    action = fields.CharField(max_length=64, db_index=True)
    object_type = fields.CharField(max_length=48)
    object_id = fields.CharField(max_length=64)
    before = fields.JSONField(null=True)
    after = fields.JSONField(null=True)
    request_id = fields.CharField(max_length=64, null=True)

    class Meta:
        table = "audit_entry"
        indexes = (("object_type", "object_id"),)


def masked(snapshot: Any) -> Any:
    """A copy of ``snapshot`` with personal-data values masked, at any depth: values under
    personal-data keys by their kind's mask, and anything in free text that looks like an ID,
    phone or card number (a reason typed by staff, say) by ``pii.scrub_text``."""
    if isinstance(snapshot, dict):
        return {
            key: pii.mask_value(PII_KEYS[key], str(value))
            if key in PII_KEYS and value is not None and not isinstance(value, (dict, list, tuple))
            else masked(value)
            for key, value in snapshot.items()
        }
    if isinstance(snapshot, (list, tuple)):
        return [masked(item) for item in snapshot]
    if isinstance(snapshot, str):
        return pii.scrub_text(snapshot)
    return snapshot


async def record(
    actor: Actor,
    action: str,
    object_type: str,
    object_id: Any,
    *,
    bank_id: int | None = None,
    before: dict | None = None,
    after: dict | None = None,
) -> int:
    """Write the entry in the current transaction; its id."""
    # Written by hand, not by AuditEntry.create: nearly every command writes one (infra/sql.py).
    return await sql.insert(
        "audit_entry",
        at=datetime.now(timezone.utc),
        actor_kind=actor.kind,
        actor_id=str(actor.id),
        bank_id=bank_id,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        before=sql.json_text(masked(before)),
        after=sql.json_text(masked(after)),
        request_id=request_id_var.get(),
    )
