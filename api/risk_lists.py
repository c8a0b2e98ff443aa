"""The staff API for black and grey lists (M15): add, list, read, propose a lift, import CSV.

Entries are shown with the masked ID number and phone only; the clear values are never stored.
A lift is a maker-checker change, approved through ``/api/v1/admin/change-requests/{id}/approve``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field
from sanic import Blueprint, Request, response
from sanic_ext.extensions.openapi import openapi

from api import presenters
from api.auth import staff_required
from api.idempotency import idempotent
from api.pagination import PageQuery, page
from api.presenters import ts
from api.validation import Body, ObjectId, json_body, query_params
from infra import clock
from lending_core.risk_lists import service as lists
from lending_core.risk_lists.models import ListEntry

bp = Blueprint("risk_lists", url_prefix="/api/v1/admin/risk-lists")

Level = Literal["blacklist_prohibit", "blacklist_restrict", "greylist"]


class EntryQuery(PageQuery):
    level: Level | None = None
    status: Literal["active", "lifted", "expired"] | None = None


class NewEntryBody(Body):
    """``bank_id`` omitted means the caller's own scope (their bank; all banks for association
    staff); ``null`` asks for an all-bank entry, which only association staff may add."""

    level: Level
    id_number: str | None = Field(None, max_length=32)
    phone: str | None = Field(None, max_length=20)
    unionid: str | None = Field(None, max_length=64)
    reason: str = Field(min_length=1, max_length=lists.MAX_REASON)
    bank_id: ObjectId | None = None
    expires_at: AwareDatetime | None = None


class LiftBody(Body):
    reason: str = Field(min_length=1, max_length=500)


class ImportBody(Body):
    """``bank_id`` as for a new entry."""

    csv: str = Field(min_length=1)
    bank_id: ObjectId | None = None



def render_entry(entry: ListEntry) -> dict:
    return {
        "id": entry.id,
        "bank_id": entry.bank_id,
        "level": entry.level,
        "id_number": entry.id_number_masked,
        "phone": entry.phone_masked,
        "has_unionid": entry.unionid_hash is not None,
        "source": entry.source,
        "reason": entry.reason,
        "status": lists.effective_status(entry, clock.now()),
        "expires_at": ts(entry.expires_at),
        "created_by": entry.created_by,
        "created_at": ts(entry.created_at),
        "lifted_by": entry.lifted_by,
        "lifted_at": ts(entry.lifted_at),
    }


def _bank_id(request: Request, body: NewEntryBody | ImportBody) -> int | None:
    return body.bank_id if "bank_id" in body.model_fields_set else request.ctx.actor.bank_id


@bp.post("")
@openapi.summary("Put a person on a black or grey list")
@staff_required("lists.manage")
@idempotent(required=False)
@json_body(NewEntryBody)
async def add_entry(request: Request, body: NewEntryBody):
    entry = await lists.add(
        request.ctx.actor,
        level=body.level,
        id_number=body.id_number,
        phone=body.phone,
        unionid=body.unionid,
        reason=body.reason,
        bank_id=_bank_id(request, body),
        expires_at=body.expires_at,
    )
    return response.json(render_entry(entry), status=201)


@bp.get("")
@openapi.summary("List entries the caller may see (their bank's and the all-bank ones)")
@staff_required("lists.read")
@query_params(EntryQuery)
async def list_entries(request: Request, query: EntryQuery):
    return response.json(await page(lists.entries(request.ctx.actor, level=query.level, status=query.status), query, render_entry))


@bp.get("/<entry_id:int>")
@staff_required("lists.read")
async def get_entry(request: Request, entry_id: int):
    return response.json(render_entry(await lists.entry(request.ctx.actor, entry_id)))


@bp.post("/<entry_id:int>/lift")
@openapi.summary("Propose lifting an entry (takes effect when a second person approves)")
@staff_required("lists.manage")
@idempotent(required=False)
@json_body(LiftBody)
async def propose_lift(request: Request, entry_id: int, body: LiftBody):
    change = await lists.propose_lift(request.ctx.actor, entry_id, body.reason)
    return response.json(presenters.change_request(change), status=202)


@bp.post("/import")
@openapi.summary("Import entries from CSV: valid rows are added, invalid rows reported by number and code")
@staff_required("lists.manage")
@idempotent(required=False)
@json_body(ImportBody)
async def import_entries(request: Request, body: ImportBody):
    report = await lists.import_csv(request.ctx.actor, body.csv, bank_id=_bank_id(request, body))
    return response.json({"imported": report.imported, "errors": [{"row": row, "code": code} for row, code in report.errors]})
