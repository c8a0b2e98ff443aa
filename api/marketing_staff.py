"""Staff-wide and secondary marketing for staff: quotas, the leaderboard, incentives under a
campaign's rule, declined applicants with follow-ups and re-invitations, the suspicious-cluster
report and marketing analytics (JSON and CSV).

Everything is under ``/api/v1/admin``. A bank's staff see their own bank only, association staff
every bank (or one, with ``bank_id``); an account manager sees their own branch's declined
applicants. Money is integer fen; attainment and rates in basis points.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import AwareDatetime, Field
from sanic import Blueprint, Request, response
from sanic_ext.extensions.openapi import openapi

from api import presenters
from api.auth import staff_required
from api.idempotency import idempotent
from api.pagination import PageQuery, page
from api.presenters import ts
from api.validation import Body, ObjectId, Query, json_body, query_params
from infra import pii
from marketing import abuse, analytics, incentives, quotas, secondary
from marketing.models import FOLLOW_UP_OUTCOMES, REINVITE_CHANNELS, FollowUp, Quota, Reinvitation

bp = Blueprint("marketing_staff", url_prefix="/api/v1/admin")



def _period_field():
    return Field(min_length=4, max_length=7, description='a month "2026-11" or a quarter "2026-Q4" (Asia/Shanghai calendar)')


def _count_target():
    return Field(0, ge=0, le=quotas.MAX_COUNT_TARGET)



def _documented_query(model: type[Query]):
    """The query's fields as OpenAPI parameters (declared outside the auth wrapper, where the
    documentation generator sees them)."""

    def decorate(handler):
        for name, field in model.model_fields.items():
            handler = openapi.parameter(name, field.annotation if field.annotation in (int, str, bool) else str, "query", description=field.description)(handler)
        return handler

    return decorate


def _documented_body(model: type[Body]):
    return openapi.body({"application/json": model}, required=True)


# ---- quotas --------------------------------------------------------------------------------------


class QuotaBody(Body):
    """One of ``staff_id`` and ``branch_id``; at least one positive target."""

    staff_id: ObjectId | None = None
    branch_id: ObjectId | None = None
    period: str = _period_field()
    referrals_target: int = _count_target()
    applications_target: int = _count_target()
    approvals_target: int = _count_target()
    disbursed_target_fen: int = Field(0, ge=0, le=quotas.MAX_AMOUNT_TARGET_FEN, description="integer fen")


class QuotaChangeBody(Body):
    referrals_target: int | None = Field(None, ge=0, le=quotas.MAX_COUNT_TARGET)
    applications_target: int | None = Field(None, ge=0, le=quotas.MAX_COUNT_TARGET)
    approvals_target: int | None = Field(None, ge=0, le=quotas.MAX_COUNT_TARGET)
    disbursed_target_fen: int | None = Field(None, ge=0, le=quotas.MAX_AMOUNT_TARGET_FEN)


class QuotaQuery(PageQuery):
    period: str | None = Field(None, min_length=4, max_length=7)
    staff_id: ObjectId | None = None
    branch_id: ObjectId | None = None


def render_quota(q: Quota) -> dict:
    return {
        "id": q.id,
        "bank_id": q.bank_id,
        "staff_id": q.staff_id,
        "branch_id": q.branch_id,
        "period": q.period,
        **{name: getattr(q, name) for name in quotas.TARGETS},
        "set_by": q.set_by_id,
        "updated_at": ts(q.updated_at),
    }


@bp.post("/quotas")
@openapi.summary("Set a quota for a staff member or a branch of your bank for a month or quarter")
@openapi.response("201", description="the quota")
@openapi.response("409", description="QUOTA_EXISTS: that owner has a quota for the period (change it with PATCH)")
@_documented_body(QuotaBody)
@staff_required(quotas.MANAGE)
@idempotent(required=False)
@json_body(QuotaBody)
async def create_quota(request: Request, body: QuotaBody):
    targets = body.model_dump(include=set(quotas.TARGETS))
    quota = await quotas.create(request.ctx.actor, staff_id=body.staff_id, branch_id=body.branch_id, period=body.period, targets=targets)
    return response.json(render_quota(quota), status=201)


@bp.get("/quotas")
@openapi.summary("Quotas of your bank (filter by period, staff member, branch)")
@_documented_query(QuotaQuery)
@staff_required(quotas.READ)
@query_params(QuotaQuery)
async def list_quotas(request: Request, query: QuotaQuery):
    rows = quotas.visible(request.ctx.actor, period=query.period, staff_id=query.staff_id, branch_id=query.branch_id)
    return response.json(await page(rows, query, render_quota))


@bp.get("/quotas/<quota_id:int>")
@openapi.summary("One quota")
@staff_required(quotas.READ)
async def get_quota(request: Request, quota_id: int):
    return response.json(render_quota(await quotas.get(request.ctx.actor, quota_id)))


@bp.patch("/quotas/<quota_id:int>")
@openapi.summary("Change a quota's targets")
@_documented_body(QuotaChangeBody)
@staff_required(quotas.MANAGE)
@json_body(QuotaChangeBody)
async def change_quota(request: Request, quota_id: int, body: QuotaChangeBody):
    quota = await quotas.update(request.ctx.actor, quota_id, body.model_dump(exclude_none=True))
    return response.json(render_quota(quota))


@bp.delete("/quotas/<quota_id:int>")
@openapi.summary("Remove a quota")
@openapi.response("204", description="removed")
@staff_required(quotas.MANAGE)
async def delete_quota(request: Request, quota_id: int):
    await quotas.delete(request.ctx.actor, quota_id)
    return response.empty()


# ---- leaderboard ---------------------------------------------------------------------------------


class LeaderboardQuery(Query):
    period: str = _period_field()
    level: Literal["staff", "branch", "bank"] = Field("staff", description="rank staff members, branches or banks")
    branch_id: ObjectId | None = Field(None, description="one branch's staff")
    bank_id: ObjectId | None = Field(None, description="association staff: one bank (default every bank)")
    rank_by: Literal["disbursed_fen", "approvals", "applications", "referrals", "attainment_bps"] = "disbursed_fen"


@bp.get("/leaderboard")
@openapi.summary("Leaderboard for a period: referrals, applications, approvals, disbursed amount, quota attainment (bps) and rank")
@openapi.description(
    "A stage counts in the period it was reached. Staff are credited with people their code brought and people their "
    "customers invited (referrals_via_customers). Attainment is floor(actual × 10000 / target) per target; overall is "
    "their mean over the targets set. Ties share a rank."
)
@_documented_query(LeaderboardQuery)
@staff_required(quotas.READ)
@query_params(LeaderboardQuery)
async def leaderboard(request: Request, query: LeaderboardQuery):
    board = await quotas.leaderboard(
        request.ctx.actor, period=query.period, level=query.level, branch_id=query.branch_id, bank_id=query.bank_id, rank_by=query.rank_by
    )
    return response.json(
        {
            "period": board.period.label,
            "from": board.period.starts_at.isoformat(),
            "until": board.period.ends_at.isoformat(),
            "level": board.level,
            "scope": board.scope,
            "rank_by": board.rank_by,
            "rows": board.rows,
        }
    )


# ---- incentives ----------------------------------------------------------------------------------


class IncentiveRuleBody(Body):
    per_disbursed_loan_fen: int = Field(0, ge=0, le=incentives.MAX_PER_LOAN_FEN, description="fen per disbursed loan")
    disbursed_bps: int = Field(0, ge=0, le=10000, description="basis points of the amount disbursed")
    indirect_share_bps: int = Field(10000, ge=0, le=10000, description="share paid for loans to people the staff member's customers invited")
    cap_fen: int | None = Field(None, ge=1, le=incentives.MAX_CAP_FEN, description="most one staff member earns over the campaign (null: no cap)")


def render_rule(rule) -> dict:
    return {
        "campaign_id": rule.campaign_id,
        "per_disbursed_loan_fen": rule.per_disbursed_loan_fen,
        "disbursed_bps": rule.disbursed_bps,
        "indirect_share_bps": rule.indirect_share_bps,
        "cap_fen": rule.cap_fen,
        "set_by": rule.set_by_id,
        "updated_at": ts(rule.updated_at),
    }


@bp.put("/campaigns/<campaign_id:int>/incentive-rule")
@openapi.summary("Set the campaign's incentive rule for staff (fen per disbursed loan + bps of the amount, capped)")
@_documented_body(IncentiveRuleBody)
@staff_required(incentives.MANAGE)
@json_body(IncentiveRuleBody)
async def set_incentive_rule(request: Request, campaign_id: int, body: IncentiveRuleBody):
    rule = await incentives.set_rule(request.ctx.actor, campaign_id, **body.model_dump())
    return response.json(render_rule(rule))


@bp.get("/campaigns/<campaign_id:int>/incentive-rule")
@openapi.summary("The campaign's incentive rule for staff")
@staff_required(incentives.READ)
async def get_incentive_rule(request: Request, campaign_id: int):
    _, rule = await incentives.rule_of(request.ctx.actor, campaign_id)
    return response.json(render_rule(rule))


@bp.get("/campaigns/<campaign_id:int>/incentives")
@openapi.summary("Each staff member's incentive under the campaign's rule (integer fen)")
@openapi.description(
    "Loans whose referral is credited to the staff member and reached disbursed within the campaign's window (up to now). "
    "amount = per_disbursed_loan_fen × loans + disbursed_bps/10000 × amount, indirect loans at indirect_share_bps; "
    "computed exactly, rounded once half up to the fen, then capped at cap_fen."
)
@staff_required(incentives.READ)
async def staff_incentives(request: Request, campaign_id: int):
    result = await incentives.incentives(request.ctx.actor, campaign_id)
    return response.json(
        {
            "campaign_id": result.campaign.id,
            "campaign_name": result.campaign.name,
            "from": result.window[0].isoformat(),
            "until": result.window[1].isoformat(),
            "rule": render_rule(result.rule),
            "rounding": "exact, then half up to the fen once per staff member, then capped",
            "total_fen": result.total_fen,
            "rows": [
                {
                    "staff_id": row.staff_id,
                    "username": row.username,
                    "name": row.name,
                    "branch_id": row.branch_id,
                    "bank_id": row.bank_id,
                    "direct_loans": row.direct_loans,
                    "direct_fen": row.direct_fen,
                    "indirect_loans": row.indirect_loans,
                    "indirect_fen": row.indirect_fen,
                    "uncapped_fen": row.incentive.uncapped_fen,
                    "amount_fen": row.incentive.amount_fen,
                    "capped": row.incentive.capped,
                }
                for row in result.rows
            ],
        }
    )


# ---- secondary marketing -------------------------------------------------------------------------


class DeclinedQuery(PageQuery):
    branch_id: ObjectId | None = Field(None, description="marketers and bank admins: one branch (account managers always see their own)")


class FollowUpBody(Body):
    note: str = Field(min_length=1, max_length=secondary.MAX_NOTE, description="no ID numbers, phones or card numbers: shown scrubbed")
    outcome: Literal[FOLLOW_UP_OUTCOMES]  # type: ignore[valid-type]
    next_contact_on: date | None = None


class ReinviteBody(Body):
    product_code: str = Field(min_length=1, max_length=32)
    channel: Literal[REINVITE_CHANNELS]  # type: ignore[valid-type]


def render_follow_up(f: FollowUp) -> dict:
    return {
        "id": f.id,
        "application_id": f.application_id,
        "staff_id": f.staff_id,
        "note": pii.scrub_text(f.note),
        "outcome": f.outcome,
        "next_contact_on": ts(f.next_contact_on),
        "created_at": ts(f.created_at),
    }


def render_reinvitation(r: Reinvitation) -> dict:
    return {
        "id": r.id,
        "application_id": r.application_id,
        "product_code": r.product.code,
        "channel": r.channel,
        "staff_id": r.staff_id,
        "created_at": ts(r.created_at),
        "delivery": "queued for the SMS/WeChat sender (outbox topic marketing.reinvite)",
    }


@bp.get("/secondary-marketing/applicants")
@openapi.summary("Declined applicants to follow up, with the reasons they were given and the latest follow-up (二次营销)")
@_documented_query(DeclinedQuery)
@staff_required(secondary.READ)
@query_params(DeclinedQuery)
async def declined_applicants(request: Request, query: DeclinedQuery):
    rows = (await secondary.declined(request.ctx.actor, branch_id=query.branch_id)).select_related("product", "customer")
    body = await page(rows, query, presenters.declined_applicant)
    summary = await secondary.follow_up_summary([item["application_id"] for item in body["items"]])
    for item in body["items"]:
        latest = summary.get(item["application_id"], {"count": 0})
        item["follow_ups"] = {**latest, "next_contact_on": ts(latest.get("next_contact_on")), "last_at": ts(latest.get("last_at"))}
    return response.json(body)


@bp.get("/secondary-marketing/applicants/<application_id:int>/follow-ups")
@openapi.summary("The follow-ups of one declined applicant")
@_documented_query(PageQuery)
@staff_required(secondary.READ)
@query_params(PageQuery)
async def list_follow_ups(request: Request, application_id: int, query: PageQuery):
    application = await secondary.declined_application(request.ctx.actor, application_id)
    return response.json(await page(secondary.follow_ups(application), query, render_follow_up))


@bp.post("/secondary-marketing/applicants/<application_id:int>/follow-ups")
@openapi.summary("Record a follow-up (note, outcome, next contact date); audited")
@openapi.response("201", description="the follow-up, its note scrubbed")
@_documented_body(FollowUpBody)
@staff_required(secondary.FOLLOW_UP)
@idempotent(required=False)
@json_body(FollowUpBody)
async def record_follow_up(request: Request, application_id: int, body: FollowUpBody):
    follow_up = await secondary.record_follow_up(
        request.ctx.actor, application_id, note=body.note, outcome=body.outcome, next_contact_on=body.next_contact_on
    )
    return response.json(render_follow_up(follow_up), status=201)


@bp.get("/secondary-marketing/applicants/<application_id:int>/reinvitation-offers")
@openapi.summary("The bank's products a declined applicant may be re-invited to (every one but the product declined)")
@staff_required(secondary.FOLLOW_UP)
async def reinvitation_offers(request: Request, application_id: int):
    offers = await secondary.reinvitation_offers(request.ctx.actor, application_id)
    return response.json({"items": [presenters.offer_summary(offer) for offer in offers]})


@bp.get("/secondary-marketing/applicants/<application_id:int>/reinvitations")
@openapi.summary("Re-invitations sent to one declined applicant")
@staff_required(secondary.READ)
async def list_reinvitations(request: Request, application_id: int):
    application = await secondary.declined_application(request.ctx.actor, application_id)
    return response.json({"items": [render_reinvitation(r) for r in await secondary.reinvitations(application).order_by("id")]})


@bp.post("/secondary-marketing/applicants/<application_id:int>/reinvitations")
@openapi.summary("Re-invite a declined applicant to another product (queues an SMS/WeChat message; decides no credit)")
@openapi.response("201", description="the re-invitation")
@openapi.response("409", description="SAME_PRODUCT, ALREADY_REINVITED or DO_NOT_CONTACT")
@_documented_body(ReinviteBody)
@staff_required(secondary.FOLLOW_UP)
@idempotent(required=False)
@json_body(ReinviteBody)
async def reinvite(request: Request, application_id: int, body: ReinviteBody):
    invitation = await secondary.reinvite(request.ctx.actor, application_id, product_code=body.product_code, channel=body.channel)
    return response.json(render_reinvitation(invitation), status=201)


# ---- abuse report --------------------------------------------------------------------------------


class AbuseQuery(Query):
    since: AwareDatetime | None = Field(None, description="default: 30 days before until")
    until: AwareDatetime | None = Field(None, description="default: now")
    bank_id: ObjectId | None = Field(None, description="association staff: one bank")
    per_device: int = Field(abuse.Thresholds.per_device, ge=2, le=1000)
    per_network: int = Field(abuse.Thresholds.per_network, ge=2, le=100000)
    burst_count: int = Field(abuse.Thresholds.burst_count, ge=2, le=100000)
    burst_seconds: int = Field(abuse.Thresholds.burst_seconds, ge=10, le=86400)


@bp.get("/marketing/abuse-report")
@openapi.summary("Suspicious referral clusters: many referees on one device or network, referral rings, bursts")
@_documented_query(AbuseQuery)
@staff_required(abuse.PERMISSION)
@query_params(AbuseQuery)
async def abuse_report(request: Request, query: AbuseQuery):
    thresholds = abuse.Thresholds(per_device=query.per_device, per_network=query.per_network, burst_count=query.burst_count, burst_seconds=query.burst_seconds)
    found = await abuse.report(request.ctx.actor, since=query.since, until=query.until, bank_id=query.bank_id, thresholds=thresholds)

    def times(item: dict) -> dict:
        return {key: ts(value) if isinstance(value, datetime) else value for key, value in item.items()}

    return response.json(
        {
            "scope": found.scope,
            "since": ts(found.since),
            "until": ts(found.until),
            "thresholds": {"per_device": thresholds.per_device, "per_network": thresholds.per_network, "burst_count": thresholds.burst_count, "burst_seconds": thresholds.burst_seconds},
            "devices": [times(item) for item in found.devices],
            "networks": [times(item) for item in found.networks],
            "rings": found.rings,
            "bursts": [times(item) for item in found.bursts],
        }
    )


# ---- analytics -----------------------------------------------------------------------------------


class AnalyticsQuery(Query):
    by: Literal["campaign", "channel", "branch", "staff"]
    since: AwareDatetime | None = Field(None, description="default: 30 days before until")
    until: AwareDatetime | None = Field(None, description="default: now; at most 366 days after since")
    bank_id: ObjectId | None = Field(None, description="association staff: one bank")


async def _analytics(request: Request, query: AnalyticsQuery) -> analytics.Analytics:
    return await analytics.analytics(request.ctx.actor, by=query.by, since=query.since, until=query.until, bank_id=query.bank_id)


@bp.get("/marketing/analytics")
@openapi.summary("Scans, registrations, applications, approvals, disbursed amount, cost so far and cost per loan, per campaign/channel/branch/staff")
@_documented_query(AnalyticsQuery)
@staff_required(analytics.PERMISSION)
@query_params(AnalyticsQuery)
async def marketing_analytics(request: Request, query: AnalyticsQuery):
    result = await _analytics(request, query)
    return response.json({"by": result.by, "scope": result.scope, "since": ts(result.since), "until": ts(result.until), "rows": result.rows})


@bp.get("/marketing/analytics.csv")
@openapi.summary("The same analytics as a CSV download (UTF-8 with BOM, formula-safe cells)")
@openapi.response("200", {"text/csv": str})
@_documented_query(AnalyticsQuery)
@staff_required(analytics.PERMISSION)
@query_params(AnalyticsQuery)
async def marketing_analytics_csv(request: Request, query: AnalyticsQuery):
    result = await _analytics(request, query)
    filename = f"marketing-{result.by}-{result.since.date().isoformat()}-{result.until.date().isoformat()}.csv"
    return response.text(
        analytics.to_csv(result), content_type="text/csv; charset=utf-8", headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )
