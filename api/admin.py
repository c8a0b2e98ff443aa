"""The staff API: organisation, staff, maker-checker changes, customers and the audit trail.

Every route is scoped by ``lending_core.access``: a staff member sees their own bank's objects,
association staff see all, and anything else is a 404.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import AwareDatetime, Field
from sanic import Blueprint, Request, response
from sanic_ext.extensions.openapi import openapi

from api import presenters
from api.auth import staff_required
from api.idempotency import idempotent
from api.pagination import PageQuery, page
from api.validation import Body, ObjectId, Query, json_body, query_params
from channels import stats
from infra import clock
from lending_core.approvals import service as approvals
from lending_core.customers import service as customers
from lending_core.org import service as org

bp = Blueprint("admin", url_prefix="/api/v1/admin")



class BranchQuery(PageQuery):
    bank_id: ObjectId | None = None


class StaffQuery(PageQuery):
    branch_id: ObjectId | None = None


class ChangeQuery(PageQuery):
    status: Literal["pending", "applied", "rejected", "withdrawn"] | None = None


class AuditQuery(PageQuery):
    object_type: str | None = Field(None, max_length=48)
    object_id: str | None = Field(None, max_length=64)


class PeriodQuery(Query):
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None


class NewStaffBody(Body):
    bank_id: ObjectId | None = None
    branch_id: ObjectId | None = None
    username: str = Field(min_length=3, max_length=64, pattern=r"^[a-z0-9_.-]+$")
    name: str = Field(min_length=1, max_length=64)
    phone: str | None = Field(None, max_length=20)
    roles: list[str] = Field(min_length=1, max_length=8)
    password: str = Field(min_length=1, max_length=256)


class RolesBody(Body):
    roles: list[str] = Field(min_length=1, max_length=8)
    reason: str = Field(min_length=1, max_length=500)


class DecisionBody(Body):
    note: str | None = Field(None, max_length=500)


class UnmaskBody(Body):
    field: Literal["name", "id_number", "phone"]
    reason: str = Field(min_length=5, max_length=500)


@bp.get("/banks")
@openapi.summary("Member banks the caller may see")
@staff_required()
@query_params(PageQuery)
async def list_banks(request: Request, query: PageQuery):
    return response.json(await page(org.banks(request.ctx.actor), query, presenters.bank))


@bp.get("/banks/<bank_id:int>")
@staff_required()
async def get_bank(request: Request, bank_id: int):
    return response.json(presenters.bank(await org.bank_for(request.ctx.actor, bank_id)))


@bp.get("/branches")
@staff_required()
@query_params(BranchQuery)
async def list_branches(request: Request, query: BranchQuery):
    return response.json(await page(org.branches(request.ctx.actor, bank_id=query.bank_id), query, presenters.branch))


@bp.get("/branches/<branch_id:int>")
@staff_required()
async def get_branch(request: Request, branch_id: int):
    return response.json(presenters.branch(await org.branch_for(request.ctx.actor, branch_id)))


@bp.get("/staff")
@staff_required()
@query_params(StaffQuery)
async def list_staff(request: Request, query: StaffQuery):
    return response.json(await page(org.staff_members(request.ctx.actor, branch_id=query.branch_id), query, presenters.staff))


@bp.get("/staff/<staff_id:int>")
@staff_required()
async def get_staff(request: Request, staff_id: int):
    return response.json(presenters.staff(await org.staff_member(request.ctx.actor, staff_id)))


@bp.post("/staff")
@openapi.summary("Create a staff member of the caller's bank")
@staff_required("staff.manage")
@idempotent(required=False)
@json_body(NewStaffBody)
async def create_staff(request: Request, body: NewStaffBody):
    staff = await org.create_staff(
        request.ctx.actor,
        bank_id=body.bank_id,
        branch_id=body.branch_id,
        username=body.username,
        name=body.name,
        phone=body.phone,
        staff_roles=body.roles,
        password=body.password,
    )
    return response.json(presenters.staff(staff), status=201)


@bp.post("/staff/<staff_id:int>/roles")
@openapi.summary("Propose new roles for a staff member (takes effect when a second person approves)")
@staff_required("staff.manage")
@idempotent(required=False)
@json_body(RolesBody)
async def propose_roles(request: Request, staff_id: int, body: RolesBody):
    change = await org.propose_roles(request.ctx.actor, staff_id, body.roles, body.reason)
    return response.json(presenters.change_request(change), status=202)


@bp.get("/change-requests")
@staff_required()
@query_params(ChangeQuery)
async def list_changes(request: Request, query: ChangeQuery):
    return response.json(await page(approvals.changes(request.ctx.actor, status=query.status), query, presenters.change_request))


@bp.get("/change-requests/<change_id:int>")
@staff_required()
async def get_change(request: Request, change_id: int):
    return response.json(presenters.change_request(await approvals.change(request.ctx.actor, change_id)))


@bp.post("/change-requests/<change_id:int>/approve")
@openapi.summary("Approve and apply a proposed change (not your own)")
@staff_required()
@json_body(DecisionBody)
async def approve_change(request: Request, change_id: int, body: DecisionBody):
    return response.json(presenters.change_request(await approvals.approve(request.ctx.actor, change_id, body.note)))


@bp.post("/change-requests/<change_id:int>/reject")
@staff_required()
@json_body(DecisionBody)
async def reject_change(request: Request, change_id: int, body: DecisionBody):
    return response.json(presenters.change_request(await approvals.reject(request.ctx.actor, change_id, body.note)))


@bp.post("/change-requests/<change_id:int>/withdraw")
@staff_required()
async def withdraw_change(request: Request, change_id: int):
    return response.json(presenters.change_request(await approvals.withdraw(request.ctx.actor, change_id)))


@bp.get("/customers")
@openapi.summary("Customers who deal with the caller's bank (masked)")
@staff_required("customers.read")
@query_params(PageQuery)
async def list_customers(request: Request, query: PageQuery):
    return response.json(await page(customers.staff_customers(request.ctx.actor), query, presenters.customer))


@bp.get("/customers/<customer_id:int>")
@staff_required("customers.read")
async def get_customer(request: Request, customer_id: int):
    return response.json(presenters.customer(await customers.staff_customer(request.ctx.actor, customer_id)))


@bp.post("/customers/<customer_id:int>/unmask")
@openapi.summary("See one personal-data field in clear (permission pii.unmask; audited)")
@staff_required("pii.unmask")
@json_body(UnmaskBody)
async def unmask_customer(request: Request, customer_id: int, body: UnmaskBody):
    value = await customers.unmask(request.ctx.actor, customer_id, body.field, body.reason)
    return response.json({"field": body.field, "value": value}, headers={"Cache-Control": "no-store"})


@bp.get("/channel-stats")
@openapi.summary("Sign-ins and new customers per channel, for the caller's bank")
@staff_required("customers.read")
@query_params(PeriodQuery)
async def channel_stats(request: Request, query: PeriodQuery):
    until = query.until or clock.now()
    since = query.since or until - timedelta(days=30)
    figures = await stats.channel_counts(request.ctx.actor, since=since, until=until)
    return response.json({"since": since.isoformat(), "until": until.isoformat(), "channels": figures})


@bp.get("/audit")
@openapi.summary("The audit trail of the caller's bank")
@staff_required("audit.read")
@query_params(AuditQuery)
async def list_audit(request: Request, query: AuditQuery):
    rows = org.audit_trail(request.ctx.actor, object_type=query.object_type, object_id=query.object_id)
    return response.json(await page(rows, query, presenters.audit_entry))
