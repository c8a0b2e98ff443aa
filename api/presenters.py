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


def _bounds(b) -> dict:
    return {"min": b.min, "max": b.max}


def offer_summary(o) -> dict:
    d = o.definition
    return {
        "code": o.product.code,
        "name": d.name,
        "name_en": d.name_en,
        "family": d.family,
        "own_product_of_bank": o.product.owner_bank_id,
        "amount_yuan": {"min": d.amount_yuan.min, "max": min(d.amount_yuan.max, o.params.amount_max_yuan)},
        "term_months": _bounds(d.term_months),
        "repayment_methods": list(d.repayment_methods),
        "collateral": d.collateral,
        "rate_floor_bps": max(d.pricing.floor_bps, o.params.rate_floor_bps),
    }


def offer_detail(o) -> dict:
    d = o.definition
    return {
        **offer_summary(o),
        "version": o.version,
        "target_customers": list(d.targets),
        "signatories": list(d.signatories),
        "consents_needed": list(d.consents),
        "channels": list(d.channels),
        # What the customer must meet, in the words they are shown (no model internals).
        "requirements": [rule.reason for rule in d.admission if rule.on_fail == "reject"],
    }


def quote(q) -> dict:
    decision = q.decision
    return {
        "product_code": q.offer.product.code,
        "product_version": q.offer.version,
        "indicative": True,
        "outcome": decision.outcome,
        "limit_yuan": decision.limit_fen // 100,
        "annual_rate_bps": decision.rate_bps,
        "apr_bps": decision.apr_bps,
        "reasons": list(decision.customer_reasons),
    }


def application_for_customer(a) -> dict:
    """An application as its customer sees it (``product`` must be loaded)."""
    return {
        "id": a.id,
        "product_code": a.product.code,
        "product_version": a.product_version,
        "bank_id": a.bank_id,
        "channel": a.channel,
        "amount_yuan": a.amount_fen // 100,
        "term_months": a.term_months,
        "repayment_method": a.repayment_method,
        "status": a.status,
        "limit_yuan": a.limit_fen // 100,
        "annual_rate_bps": a.rate_bps if a.status in ("approved", "contracted") else None,
        "apr_bps": a.rate_bps if a.status in ("approved", "contracted") else None,
        "reasons": list(a.customer_reasons),
        "created_at": _ts(a.created_at),
        "decided_at": _ts(a.decided_at),
    }


def application_for_staff(a) -> dict:
    return {
        **application_for_customer(a),
        "customer_id": a.customer_id,
        "decision": a.decision,
        "referred_by_staff_id": a.referred_by_staff_id,
        "reviewed_by_id": a.reviewed_by_id,
        "review_note": a.review_note,
    }


def declined_applicant(a) -> dict:
    return {
        "application_id": a.id,
        "customer": customer(a.customer),
        "product_code": a.product.code,
        "reasons": list(a.customer_reasons),
        "declined_at": _ts(a.decided_at),
        "channel": a.channel,
    }


def product_version(v) -> dict:
    return {
        "id": v.id,
        "version": v.version,
        "status": v.status,
        "note": v.note,
        "created_by": v.created_by,
        "created_at": _ts(v.created_at),
        "published_at": _ts(v.published_at),
    }


def referred_application(a) -> dict:
    """What a partner platform may know of an application it referred: no limits, no reasons."""
    return {"product_code": a.product.code, "status": a.status, "created_at": _ts(a.created_at), "decided_at": _ts(a.decided_at)}
