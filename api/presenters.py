"""Models rendered for callers. Personal data leaves only masked: clear values are served by the
audited unmask route alone."""

from __future__ import annotations

from datetime import date, datetime

from infra import pii
from infra.money import yuan_text
from infra.audit import AuditEntry
from lending_core.approvals.models import ChangeRequest
from lending_core.customers.models import BankRelationship, Consent, Customer
from lending_core.org.models import Bank, Branch, Staff


def ts(value: date | datetime | None) -> str | None:
    """A moment or a day as ISO 8601, for every rendered model (None stays None)."""
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
        "created_at": ts(c.created_at),
    }


def relationship(r: BankRelationship) -> dict:
    return {"bank_id": r.bank_id, "is_bank_customer": r.is_bank_customer, "first_channel": r.first_channel, "since": ts(r.created_at)}


def consent(c: Consent) -> dict:
    return {
        "id": c.id,
        "bank_id": c.bank_id,
        "purpose": c.purpose,
        "text_version": c.text_version,
        "text": c.text,
        "text_sha256": c.text_sha256,
        "channel": c.channel,
        "granted_at": ts(c.granted_at),
        "revoked_at": ts(c.revoked_at),
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
        "proposed_at": ts(c.proposed_at),
        "decided_at": ts(c.decided_at),
    }


def audit_entry(a: AuditEntry) -> dict:
    return {
        "id": a.id,
        "at": ts(a.at),
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
        "created_at": ts(r.created_at),
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
        "created_at": ts(a.created_at),
        "decided_at": ts(a.decided_at),
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


def review_case(a) -> dict:
    """A manual-review case (``product`` and ``customer`` loaded): the applicant's name masked."""
    return {**application_for_staff(a), "applicant_name": pii.mask_name(a.customer.name) if a.customer.name else None}


def application_explained(a, definition) -> dict:
    """A case with its decision explained against the product version it was decided on: each
    admission rule's condition and words beside its result, the scorecard's base and bands, and
    the product's bounds the reviewer's limit and the rate were held to."""
    by_code = {rule.code: rule for rule in definition.admission}
    rules = [
        {**r, "condition": by_code[r["code"]].rule.text, "reason": by_code[r["code"]].reason} if r["code"] in by_code else r
        for r in a.decision.get("rules", [])
    ]
    return {
        **review_case(a),
        "product_name": definition.name,
        "decision": {**a.decision, "rules": rules},
        "product_terms": {
            "amount_yuan": _bounds(definition.amount_yuan),
            "score_base": definition.score_base,
            "score_bands": [{"band": b.band, "min_score": b.min_score, "outcome": b.outcome} for b in definition.score_bands],
            "lpr_term": definition.pricing.lpr_term,
            "rate_floor_bps": definition.pricing.floor_bps,
            "rate_cap_bps": definition.pricing.cap_bps,
        },
    }


def declined_applicant(a) -> dict:
    return {
        "application_id": a.id,
        "customer": customer(a.customer),
        "product_code": a.product.code,
        "reasons": list(a.customer_reasons),
        "declined_at": ts(a.decided_at),
        "channel": a.channel,
    }


def product_version(v) -> dict:
    return {
        "id": v.id,
        "version": v.version,
        "status": v.status,
        "note": v.note,
        "created_by": v.created_by,
        "created_at": ts(v.created_at),
        "published_at": ts(v.published_at),
    }


def referred_application(a) -> dict:
    """What a partner platform may know of an application it referred: no limits, no reasons."""
    return {"product_code": a.product.code, "status": a.status, "created_at": ts(a.created_at), "decided_at": ts(a.decided_at)}


# ---- contracts ---------------------------------------------------------------------------------


def contract_party(p, *, me: bool = False) -> dict:
    """A party of a contract: masked, with where their signature stands."""
    return {
        "id": p.id,
        "role": p.role,
        "name": pii.mask_name(p.name),
        "phone": pii.mask_phone(p.phone),
        "is_customer": p.customer_id is not None,
        "invited_at": ts(p.invited_at),
        "signed_at": ts(p.signed_at),
        "signature_method": p.signature_method,
        **({"is_me": True} if me else {}),
    }


def contract_summary(c, product_code: str | None = None) -> dict:
    """A contract's terms (``product`` loaded, or its code given)."""
    return {
        "id": c.id,
        "bank_id": c.bank_id,
        "application_id": c.application_id,
        "product_code": product_code or c.product.code,
        "product_version": c.product_version,
        "template": c.template,
        "status": c.status,
        "limit_fen": c.limit_fen,
        "limit_yuan": yuan_text(c.limit_fen),
        "annual_rate_bps": c.rate_bps,
        "penalty_rate_bps": c.penalty_rate_bps,
        "term_months": c.term_months,
        "repayment_method": c.repayment_method,
        "collateral": c.collateral,
        "servicing": c.servicing,
        "document_sha256": c.document_sha256,
        "sign_by": ts(c.sign_by),
        "effective_at": ts(c.effective_at),
        "line_expires_on": ts(c.line_expires_on),
        "created_at": ts(c.created_at),
    }


def contract_view(v, *, with_document: bool = True) -> dict:
    """A contract as a party (``v.me``) or staff see it: terms, parties, and the document."""
    body = {
        **contract_summary(v.contract, v.product_code),
        "parties": [contract_party(p, me=v.me is not None and p.id == v.me.id) for p in v.parties],
    }
    if v.me is not None:
        body["my_role"] = v.me.role
        body["my_signature"] = {"signed_at": ts(v.me.signed_at), "method": v.me.signature_method}
    if with_document:
        body["document_html"] = v.contract.document_html
    return body


def contract_for_staff(v) -> dict:
    return {**contract_view(v), "customer_id": v.contract.customer_id}


def my_contract(contract, party) -> dict:
    """One line of a customer's contract list: the contract and the capacity they hold in it."""
    return {
        **contract_summary(contract),
        "my_role": party.role,
        "my_signature": {"signed_at": ts(party.signed_at), "method": party.signature_method},
    }


def signing_code_sent(sent) -> dict:
    return {"sent_to": pii.mask_phone(sent.party.phone), "expires_at": ts(sent.expires_at),
            "resend_after_seconds": sent.resend_after_seconds}


def evidence_report(r) -> dict:
    return {
        "contract_id": r.contract_id,
        "contract_number": r.contract_number,
        "status": r.status,
        "ok": r.ok,
        "first_failure": r.first_failure,
        "first_failed_sequence": r.first_failed_sequence,
        "document": {
            "sha256": r.document_sha256,
            "recomputed_sha256": r.recomputed_document_sha256,
            "ok": r.document_ok,
        },
        "signatures": [
            {
                "party_id": s.party_id,
                "role": s.role,
                "name": s.name,
                "signed_at": ts(s.signed_at),
                "method": s.method,
                "ip": s.ip,
                "channel": s.channel,
                "evidence_sequence": s.sequence,
            }
            for s in r.signatures
        ],
        "timeline": [
            {
                "sequence": e.sequence,
                "kind": e.kind,
                "occurred_at": ts(e.occurred_at),
                "detail": e.detail,
                "document_sha256": e.document_sha256,
                "previous_hash": e.previous_hash,
                "entry_hash": e.stored_hash,
                "recomputed_hash": e.recomputed_hash,
                "receipt": e.receipt,
                "link_ok": e.link_ok,
                "receipt_ok": e.receipt_ok,
                "problems": list(e.problems),
            }
            for e in r.timeline
        ],
        "problems": list(r.problems),
    }


# ---- loans ---------------------------------------------------------------------------------------


def schedule_row(i) -> dict:
    """A schedule period, as planned (``schedule.Instalment``) or as serviced (``Instalment``)."""
    row = {
        "number": i.number,
        "due_date": ts(i.due_date),
        "principal_fen": i.principal_fen,
        "interest_fen": i.interest_fen,
        "total_fen": i.principal_fen + i.interest_fen,
    }
    if hasattr(i, "status"):
        row.update(
            status=i.status,
            principal_paid_fen=i.principal_paid_fen,
            interest_paid_fen=i.interest_paid_fen,
            penalty_fen=i.penalty_fen,
            penalty_paid_fen=i.penalty_paid_fen,
            paid_on=ts(i.paid_on),
        )
    else:
        row["opening_principal_fen"] = i.opening_principal_fen
    return row


def drawdown_preview(p) -> dict:
    c = p.contract
    return {
        "contract_id": c.id,
        "drawn_on": ts(p.on),
        "principal_fen": p.schedule.principal_fen,
        "annual_rate_bps": p.schedule.annual_rate_bps,
        "apr_bps": p.apr_bps,
        "term_months": p.schedule.term_months,
        "repayment_method": p.schedule.method,
        "penalty_rate_bps": c.penalty_rate_bps,
        "collateral": c.collateral,
        "total_interest_fen": p.schedule.total_interest_fen,
        "total_fen": p.schedule.total_fen,
        "limit_fen": c.limit_fen,
        "outstanding_before_fen": p.outstanding_fen,
        "available_after_fen": p.available_fen - p.schedule.principal_fen,
        "line_expires_on": ts(c.line_expires_on),
        "schedule": [schedule_row(i) for i in p.schedule.instalments],
    }


def loan_summary(loan, capacity: str, owed: dict) -> dict:
    from lending_core.loans.servicing import bucket

    return {
        "id": loan.id,
        "contract_id": loan.contract_id,
        "bank_id": loan.bank_id,
        "capacity": capacity,
        "status": loan.status,
        "principal_fen": loan.principal_fen,
        "annual_rate_bps": loan.rate_bps,
        "apr_bps": loan.apr_bps,
        "penalty_rate_bps": loan.penalty_rate_bps,
        "term_months": loan.term_months,
        "repayment_method": loan.repayment_method,
        "collateral": loan.collateral,
        "drawn_on": ts(loan.drawn_on),
        "maturity_date": ts(loan.maturity_date),
        "closed_on": ts(loan.closed_on),
        "days_past_due": loan.dpd,
        "overdue_bucket": bucket(loan.dpd),
        "classification": loan.classification,
        "owed": {f"{part}_fen": amount for part, amount in owed.items()},
    }


def loan_detail(view) -> dict:
    return {
        **loan_summary(view.loan, view.capacity, view.owed),
        "pledged_fen": view.loan.pledged_fen,
        "schedule": [schedule_row(i) for i in view.instalments],
    }


def loan_for_staff(view, repayments) -> dict:
    return {
        **loan_detail(view),
        "customer_id": view.loan.customer_id,
        "settlement_account": view.loan.settlement_account,
        "pledge_account": view.loan.pledge_account,
        "property_certificate": view.loan.property_certificate,
        "serviced_through": ts(view.loan.serviced_through),
        "repayments": [repayment(r) for r in repayments],
    }


def repayment(r) -> dict:
    return {
        "id": r.id,
        "loan_id": r.loan_id,
        "source": r.source,
        "business_date": ts(r.business_date),
        "amount_fen": r.amount_fen,
        "principal_fen": r.principal_fen,
        "prepaid_principal_fen": r.prepaid_principal_fen,
        "interest_fen": r.interest_fen,
        "accrued_interest_fen": r.accrued_interest_fen,
        "penalty_fen": r.penalty_fen,
        "fee_fen": r.fee_fen,
        "closed_loan": r.closed_loan,
        "created_at": ts(r.created_at),
    }


def payoff_quote(loan, q) -> dict:
    return {
        "loan_id": loan.id,
        "on": ts(q.on),
        "due": {"principal_fen": q.due_principal_fen, "interest_fen": q.due_interest_fen, "penalty_fen": q.due_penalty_fen, "total_fen": q.due_fen},
        "early": {"principal_fen": q.later_principal_fen, "accrued_interest_fen": q.accrued_interest_fen, "fee_fen": q.fee_fen, "total_fen": q.early_fen},
        "total_fen": q.total_fen,
    }


# ---- marketing: invite codes and referrals ------------------------------------------------------


def invite_code(c, *, page_path: str, deep_link: str, images_base: str) -> dict:
    """One's own invite code, where it leads and where its images are."""
    return {
        "code": c.code,
        "owner_kind": c.owner_kind,
        "bank_id": c.bank_id,
        "page_path": page_path,
        "deep_link": deep_link,
        "images": {name: f"{images_base}/{name}" for name in ("qr.png", "qr.svg", "wxacode.png", "poster.png")},
        "created_at": ts(c.created_at),
    }


def scan(s) -> dict:
    """What an anonymous scanner learns: the code is real and which bank it leads to, not who owns it."""
    return {"code": s.invite.code, "owner_kind": s.invite.owner_kind, "bank": {"id": s.bank.id, "name": s.bank.name} if s.bank else None}


def arrival(a) -> dict:
    if a.referral is None:
        return {"bound": False, "refused": a.refused}
    return {"bound": True, "referral_id": a.referral.id, "stage": a.referral.stage}


def referee(r) -> dict:
    """A person the caller invited, as the inviter may see them: masked, with their progress."""
    return {
        "id": r.id,
        "name": pii.mask_name(r.referee.name) if r.referee.name else None,
        "stage": r.stage,
        "bound_at": ts(r.bound_at),
        "applied_at": ts(r.applied_at),
        "approved_at": ts(r.approved_at),
        "disbursed_at": ts(r.disbursed_at),
    }


def _stage_counts(c) -> dict:
    return {
        "registered": c.registered,
        "applied": c.applied,
        "approved": c.approved,
        "disbursed": c.disbursed,
        "disbursed_principal_fen": c.disbursed_principal_fen,
        "voided": c.voided,
    }


def referral_summary(s) -> dict:
    body = {"scope": s.scope, "totals": _stage_counts(s.totals)}
    if s.breakdown_by:
        body["by"] = s.breakdown_by
        body["breakdown"] = [{s.breakdown_by: key, **_stage_counts(counts)} for key, counts in sorted(s.breakdown.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))]
    if s.by_credit:
        body["by_credit"] = {credit: _stage_counts(counts) for credit, counts in sorted(s.by_credit.items())}
    return body


def product_listing(listing) -> dict:
    """A product in the product staff's catalogue (``owner_bank`` loaded): the published version
    and the proposal waiting for a second person, if any."""
    p, shown = listing.product, listing.shown.definition
    return {
        "code": p.code,
        "name": shown.get("name"),
        "family": p.family,
        "owner": p.owner_bank.code if p.owner_bank_id else "association",
        "owner_name": p.owner_bank.name if p.owner_bank_id else None,
        "published_version": p.published_version,
        "channels": list(shown.get("channels", [])),
        "pending": {
            "version": listing.proposed.version,
            "change_request_id": listing.change_request.id,
            "proposed_by_id": listing.change_request.proposed_by_id,
            "note": listing.proposed.note,
        }
        if listing.proposed
        else None,
    }


def product_version_detail(v, text: str) -> dict:
    """One version with its definition, as a mapping and in its file format (``text``)."""
    return {**product_version(v), "definition": v.definition, "text": text}


def _simulated(d) -> dict:
    return {
        "outcome": d.outcome,
        "band": d.band,
        "score": d.score,
        "limit_fen": d.limit_fen,
        "rate_bps": d.rate_bps,
        "failed_rules": [r.code for r in d.rules if r.passed is False],
        "reasons": list(d.customer_reasons),
    }


def _side(summary, name: str, version: int | None) -> dict:
    return {
        "side": name,
        "version": version,
        "applicants": summary.count,
        "approved": summary.approved,
        "manual_review": summary.manual_review,
        "rejected": summary.rejected,
        "approval_rate": round(summary.approved / summary.count, 4) if summary.count else None,
        "limit_quartiles_fen": list(summary.limit_quartiles_fen),
        "rate_quartiles_bps": list(summary.rate_quartiles_bps),
    }


def simulation(s, *, show: int = 500) -> dict:
    """A champion/challenger run: each side's figures and the applicants whose outcome, limit or
    rate changed (the first ``show``; ID numbers masked)."""
    sides = [_side(s.summaries[0], "champion", s.champion_version)]
    if len(s.summaries) > 1:
        sides.append({**_side(s.summaries[1], "challenger", s.challenger_version), "posted_definition": s.challenger_posted})
    return {
        "product_code": s.product.code,
        "data_of_bank": s.bank.code,
        "applicants": s.applicants,
        "sides": sides,
        "changes_total": len(s.changes),
        "changes": [
            {"label": c.label, "id_number": pii.mask_id_number(c.id_number), "champion": _simulated(c.champion), "challenger": _simulated(c.challenger)}
            for c in s.changes[:show]
        ],
    }
