"""The staff API for warning rule books (M16): what is live, versions, a version's rules, the
difference between two versions, validating and proposing a new version, and approving it.

``bank_id`` (query or body) names a member bank's own book; without it the association's book
is meant. A proposal is a maker-checker change: a second person approves it here or through
``/api/v1/admin/change-requests/{id}/approve``, and only then is it published.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from sanic import Blueprint, Request, response
from sanic_ext.extensions.openapi import openapi

from api import presenters
from api.auth import staff_required
from api.idempotency import idempotent
from api.validation import Body, ObjectId, Query, VersionNumber, json_body, query_params
from lending_core.risk import rulebook, schema
from lending_core.risk.rulebook_models import RuleBookVersion

bp = Blueprint("risk_rules", url_prefix="/api/v1/admin/risk-rules")


class BookQuery(Query):
    bank_id: ObjectId | None = None


class RulesQuery(BookQuery):
    category: str | None = Field(None, max_length=16)


class DiffQuery(BookQuery):
    from_version: VersionNumber = Field(alias="from")
    to_version: VersionNumber = Field(alias="to")


class BookBody(Body):
    """Exactly one of ``book`` (category → list of rule tables), ``book_toml`` (the whole book as
    TOML, one ``[[category]]`` array per category) or ``changes`` (single-rule changes to the
    live version: ``put``, ``update``, ``remove``)."""

    bank_id: ObjectId | None = None
    book: dict[str, list[dict[str, Any]]] | None = None
    book_toml: str | None = Field(None, min_length=1, max_length=1_000_000)
    changes: list[dict[str, Any]] | None = Field(None, min_length=1, max_length=rulebook.MAX_CHANGES)


class ProposeBody(BookBody):
    note: str = Field(min_length=1, max_length=500)


class DecisionBody(Body):
    note: str | None = Field(None, max_length=500)


def render_version(v: RuleBookVersion) -> dict:
    return {
        "id": v.id,
        "version": v.version,
        "status": v.status,
        "rule_count": v.rule_count,
        "digest": v.digest,
        "based_on": v.based_on,
        "note": v.note,
        "created_by": v.created_by,
        "created_at": presenters.ts(v.created_at),
        "published_at": presenters.ts(v.published_at),
    }


def render_rules(v: RuleBookVersion, category: str | None) -> list[dict]:
    return [{"category": c, **rule} for c, rules in rulebook.canonical(v.rules).items() if category in (None, c) for rule in rules]


@bp.get("")
@openapi.summary("The rule book live for a bank (the caller's unless named: its own book, else the association's)")
@staff_required("risk_rules.read")
@query_params(BookQuery)
async def live_book(request: Request, query: BookQuery):
    scope, row = await rulebook.live(request.ctx.actor, query.bank_id)
    counts = {category: len(row.rules.get(category, [])) for category in schema.CATEGORIES}
    return response.json({"scope": scope, "version": render_version(row), "rules_by_category": counts})


@bp.get("/versions")
@openapi.summary("Versions of a rule book")
@staff_required("risk_rules.read")
@query_params(BookQuery)
async def list_versions(request: Request, query: BookQuery):
    book, versions = await rulebook.versions(request.ctx.actor, query.bank_id)
    return response.json({
        "scope": book.scope if book else None,
        "published_version": book.published_version if book else None,
        "versions": [render_version(v) for v in versions],
    })


@bp.get("/versions/<number:int>")
@openapi.summary("One version of a rule book and its rules")
@staff_required("risk_rules.read")
@query_params(RulesQuery)
async def get_version(request: Request, number: int, query: RulesQuery):
    row = await rulebook.version(request.ctx.actor, query.bank_id, number)
    return response.json({**render_version(row), "rules": render_rules(row, query.category)})


@bp.get("/diff")
@openapi.summary("Rules added, removed and changed between two versions of a rule book")
@staff_required("risk_rules.read")
@query_params(DiffQuery)
async def diff_versions(request: Request, query: DiffQuery):
    return response.json(await rulebook.diff(request.ctx.actor, query.bank_id, query.from_version, query.to_version))


@bp.post("/validate")
@openapi.summary("Check a proposed rule book without saving it (422 RULE_BOOK_REFUSED names every problem)")
@staff_required("risk_rules.manage")
@json_body(BookBody)
async def validate_book(request: Request, body: BookBody):
    book, library = await rulebook.check_proposal(request.ctx.actor, bank_id=body.bank_id, book=body.book, book_toml=body.book_toml, changes=body.changes)
    return response.json({"valid": True, "rules": len(library), "rules_by_category": {c: len(book.get(c, [])) for c in schema.CATEGORIES}})


@bp.post("/versions")
@openapi.summary("Propose a new rule book version; a second person publishes it by approving the change request")
@staff_required("risk_rules.manage")
@idempotent(required=False)
@json_body(ProposeBody)
async def propose_version(request: Request, body: ProposeBody):
    row, change = await rulebook.propose(
        request.ctx.actor, bank_id=body.bank_id, note=body.note, book=body.book, book_toml=body.book_toml, changes=body.changes
    )
    return response.json({"version": render_version(row), "change_request": presenters.change_request(change)}, status=202)


@bp.post("/changes/<change_id:int>/approve")
@openapi.summary("Approve a proposed rule book version (not your own): it is published")
@staff_required("risk_rules.manage")
@json_body(DecisionBody)
async def approve_version(request: Request, change_id: int, body: DecisionBody):
    return response.json(presenters.change_request(await rulebook.approve(request.ctx.actor, change_id, body.note)))
