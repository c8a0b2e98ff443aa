"""The staff API of post-loan warnings (M15, M18): signals, disposal tasks, list proposals, and
the warning batch of the caller's bank. Risk officers see only their own bank's; association
staff see all. Nothing here shows clear personal data: signals carry figures, tasks name the
loan, proposals the customer id.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field
from sanic import Blueprint, Request, response
from sanic_ext.extensions.openapi import openapi

from api.auth import staff_required
from api.idempotency import idempotent
from api.pagination import PageQuery, page
from api.presenters import ts
from api.validation import Body, ObjectId, json_body, query_params
from infra import clock
from lending_core.org.models import Bank
from lending_core.risk import batch, lists, signals, tasks
from lending_core.risk.library import Rule
from lending_core.risk.models import DisposalTask, ListProposal, WarningSignal

bp = Blueprint("risk", url_prefix="/api/v1/admin/risk")

Severity = Literal["info", "watch", "warning", "severe"]


class SignalQuery(PageQuery):
    status: Literal["open", "closed"] | None = None
    severity: Severity | None = None
    category: str | None = Field(None, max_length=16)
    rule_code: str | None = Field(None, max_length=48)
    loan_id: ObjectId | None = None
    source: Literal["batch", "realtime"] | None = None


class TaskQuery(PageQuery):
    status: Literal["open", "in_progress", "resolved", "escalated"] | None = None
    severity: Severity | None = None
    mine: bool = False


class ProposalQuery(PageQuery):
    status: Literal["proposed", "applied", "rejected"] | None = "proposed"


class NoteBody(Body):
    text: str = Field(min_length=1, max_length=tasks.MAX_NOTE)


class OutcomeBody(Body):
    outcome: str = Field(min_length=1, max_length=tasks.MAX_NOTE)


class ReasonBody(Body):
    reason: str = Field(min_length=1, max_length=500)


class BatchBody(Body):
    business_date: date | None = None
    rerun: bool = False



def render_signal(s: WarningSignal) -> dict:
    return {
        "id": s.id, "bank_id": s.bank_id, "loan_id": s.loan_id, "customer_id": s.customer_id, "product_code": s.product_code,
        "rule_code": s.rule_code, "category": s.category, "severity": s.severity, "source": s.source, "status": s.status,
        "first_seen_at": ts(s.first_seen_at), "last_seen_at": ts(s.last_seen_at), "times": s.times, "facts": s.facts,
        "closed_at": ts(s.closed_at), "closed_reason": s.closed_reason,
    }


def render_task(t: DisposalTask) -> dict:
    return {
        "id": t.id, "bank_id": t.bank_id, "signal_id": t.signal_id, "branch_id": t.branch_id, "assigned_to": t.assigned_to_id,
        "status": t.status, "severity": t.severity, "deadline": ts(t.deadline), "notes": t.notes, "outcome": t.outcome,
        "created_at": ts(t.created_at), "closed_at": ts(t.closed_at),
    }


def render_listed_task(t: DisposalTask) -> dict:
    return {**render_task(t), "loan_id": t.signal.loan_id, "customer_id": t.signal.customer_id, "product_code": t.signal.product_code,
            "rule_code": t.signal.rule_code, "category": t.signal.category}


def render_rule(rule: Rule | None) -> dict | None:
    """The rule behind a signal as live for its bank: what it checks and what the officer should do."""
    if rule is None:
        return None
    return {"code": rule.code, "name": rule.name, "category": rule.category, "severity": rule.severity, "disposal": rule.disposal}


def render_proposal(p: ListProposal) -> dict:
    return {
        "id": p.id, "bank_id": p.bank_id, "customer_id": p.customer_id, "signal_id": p.signal_id, "level": p.level,
        "policy": p.policy, "reason": p.reason, "status": p.status, "entry_id": p.entry_id, "decided_by": p.decided_by,
        "decided_at": ts(p.decided_at), "created_at": ts(p.created_at),
    }


@bp.get("/signals")
@openapi.summary("Warning signals of the caller's bank, filtered")
@staff_required("risk.read")
@query_params(SignalQuery)
async def list_signals(request: Request, query: SignalQuery):
    found = signals.listing(request.ctx.actor, status=query.status, severity=query.severity, category=query.category,
                            rule_code=query.rule_code, loan_id=query.loan_id, source=query.source)
    return response.json(await page(found, query, render_signal))


@bp.get("/signals/<signal_id:int>")
@openapi.summary("A warning signal with its rule: name and suggested disposal (null for a real-time signal)")
@staff_required("risk.read")
async def get_signal(request: Request, signal_id: int):
    signal, rule = await signals.detail(request.ctx.actor, signal_id)
    return response.json({**render_signal(signal), "rule": render_rule(rule)})


@bp.get("/tasks")
@openapi.summary("Disposal tasks of the caller's bank (mine=true: assigned to the caller)")
@staff_required("risk.read")
@query_params(TaskQuery)
async def list_tasks(request: Request, query: TaskQuery):
    filters = tasks.TaskFilter(status=query.status, severity=query.severity, assigned_to_me=query.mine)
    # The signal comes in the same query: the list names each task's loan and rule.
    return response.json(await page(tasks.listing(request.ctx.actor, filters).select_related("signal"), query, render_listed_task))


@bp.get("/tasks/<task_id:int>")
@openapi.summary("A disposal task with its signal and the rule's suggested disposal")
@staff_required("risk.read")
async def get_task(request: Request, task_id: int):
    found = await tasks.detail(request.ctx.actor, task_id)
    return response.json({**render_task(found.task), "signal": render_signal(found.signal), "rule": render_rule(found.rule)})


@bp.post("/tasks/<task_id:int>/take")
@openapi.summary("Take a task: it is the caller's from now on (open → in_progress)")
@staff_required("risk.manage")
@idempotent(required=False)
async def take_task(request: Request, task_id: int):
    return response.json(render_task(await tasks.take(request.ctx.actor, task_id)))


@bp.post("/tasks/<task_id:int>/notes")
@staff_required("risk.manage")
@idempotent(required=False)
@json_body(NoteBody)
async def note_task(request: Request, task_id: int, body: NoteBody):
    return response.json(render_task(await tasks.add_note(request.ctx.actor, task_id, body.text)))


@bp.post("/tasks/<task_id:int>/resolve")
@staff_required("risk.manage")
@idempotent(required=False)
@json_body(OutcomeBody)
async def resolve_task(request: Request, task_id: int, body: OutcomeBody):
    return response.json(render_task(await tasks.resolve(request.ctx.actor, task_id, body.outcome)))


@bp.post("/tasks/<task_id:int>/escalate")
@staff_required("risk.manage")
@idempotent(required=False)
@json_body(ReasonBody)
async def escalate_task(request: Request, task_id: int, body: ReasonBody):
    return response.json(render_task(await tasks.escalate(request.ctx.actor, task_id, body.reason)))


@bp.get("/list-proposals")
@openapi.summary("List entries proposed from signals, waiting for a risk officer")
@staff_required("risk.read")
@query_params(ProposalQuery)
async def list_proposals(request: Request, query: ProposalQuery):
    return response.json(await page(lists.listing(request.ctx.actor, status=query.status), query, render_proposal))


@bp.post("/list-proposals/<proposal_id:int>/confirm")
@openapi.summary("Confirm a proposal: the list entry is added")
@staff_required("risk.manage")
@idempotent(required=False)
async def confirm_proposal(request: Request, proposal_id: int):
    return response.json(render_proposal(await lists.confirm(request.ctx.actor, proposal_id)))


@bp.post("/list-proposals/<proposal_id:int>/reject")
@staff_required("risk.manage")
@idempotent(required=False)
@json_body(ReasonBody)
async def reject_proposal(request: Request, proposal_id: int, body: ReasonBody):
    return response.json(render_proposal(await lists.reject(request.ctx.actor, proposal_id, body.reason)))


@bp.post("/batch-runs")
@openapi.summary("Run the warning batch for the caller's bank (bank admin); answers its summary")
@staff_required("risk.run_batch")
@idempotent(required=False)
@json_body(BatchBody)
async def run_batch(request: Request, body: BatchBody):
    actor = request.ctx.actor
    if actor.bank_id is None:
        return response.json({"error": {"code": "BANK_REQUIRED", "message": "the batch runs for one bank: sign in as its staff", "details": None}}, status=422)
    bank = await Bank.get(id=actor.bank_id)
    result = await batch.run_bank(bank, body.business_date or clock.business_date(), worker=f"api:{actor.id}", rerun=body.rerun)
    await lists.apply_automatic(bank.id)
    return response.json(result.as_dict())
