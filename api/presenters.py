"""Models rendered for callers. Personal data leaves only masked: clear values are served by the
audited unmask route alone."""

from __future__ import annotations

from datetime import datetime

from infra import pii
from infra.audit import AuditEntry
from lending_core.approvals.models import ChangeRequest
from lending_core.customers.models import BankRelationship, Consent, Customer
from lending_core.org.models import Bank, Branch, Staff


def _ts(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def bank(b: Bank) -> dict:
    return {"id": b.id, "code": b.code, "name": b.name, "city": b.city, "county": b.county}


def branch(b: Branch) -> dict:
    return {"id": b.id, "bank_id": b.bank_id, "code": b.code, "name": b.name, "city": b.city, "county": b.county}


def staff(s: Staff) -> dict:
    return {
        "id": s.id,
        "bank_id": s.bank_id,
        "branch_id": s.branch_id,
        "username": s.username,
        "name": pii.mask_name(s.name),
        "phone": pii.mask_phone(s.phone) if s.phone else None,
        "roles": s.roles,
        "is_active": s.is_active,
    }


def customer(c: Customer) -> dict:
    return {
        "id": c.id,
        "name": pii.mask_name(c.name) if c.name else None,
        "id_number": pii.mask_id_number(c.id_number) if c.id_number else None,
        "phone": pii.mask_phone(c.phone) if c.phone else None,
        "real_name_verified": c.real_name_verified_at is not None,
        "created_at": _ts(c.created_at),
    }


def relationship(r: BankRelationship) -> dict:
    return {"bank_id": r.bank_id, "is_bank_customer": r.is_bank_customer, "first_channel": r.first_channel, "since": _ts(r.created_at)}


def consent(c: Consent) -> dict:
    return {
        "id": c.id,
        "bank_id": c.bank_id,
        "purpose": c.purpose,
        "text_version": c.text_version,
        "text": c.text,
        "text_sha256": c.text_sha256,
        "channel": c.channel,
        "granted_at": _ts(c.granted_at),
        "revoked_at": _ts(c.revoked_at),
    }


def change_request(c: ChangeRequest) -> dict:
    return {
        "id": c.id,
        "bank_id": c.bank_id,
        "kind": c.kind,
        "target_type": c.target_type,
        "target_id": c.target_id,
        "payload": c.payload,
        "reason": c.reason,
        "status": c.status,
        "proposed_by_id": c.proposed_by_id,
        "decided_by_id": c.decided_by_id,
        "decision_note": c.decision_note,
        "proposed_at": _ts(c.proposed_at),
        "decided_at": _ts(c.decided_at),
    }


def audit_entry(a: AuditEntry) -> dict:
    return {
        "id": a.id,
        "at": _ts(a.at),
        "actor": f"{a.actor_kind}:{a.actor_id}",
        "bank_id": a.bank_id,
        "action": a.action,
        "object": f"{a.object_type}:{a.object_id}",
        "before": a.before,
        "after": a.after,
        "request_id": a.request_id,
    }


def referral(r) -> dict:
    return {
        "id": r.id,
        "external_ref": r.external_ref,
        "bank_id": r.bank_id,
        "product_code": r.product_code,
        "status": r.status,
        "created_at": _ts(r.created_at),
    }


def signed_in(c: Customer, tokens, bank_id: int | None, **extra) -> dict:
    """A customer's new session: the token pair, who they are (masked) and the bank it is for."""
    return {**tokens.as_dict(), "customer": customer(c), "bank_id": bank_id, **extra}
