"""Campaigns: marketers' CRUD and lifecycle, customers' list, the red-packet grab, my rewards.

Staff routes are under ``/api/v1/admin/campaigns`` (``campaigns.manage``); a budget above the
bank's threshold is approved through ``/api/v1/admin/change-requests/{id}/approve``
(``campaigns.approve``). Money is integer fen in and out (with a yuan text beside it on the way out).

The grab is the hot route: a customer's token is checked without a database read, the campaign's
terms come from the worker's one-second copy, and the request waits for one shared script call and
one shared commit (``marketing.red_packets.GrabDesk``). It takes no Idempotency-Key: a grab is
bounded by the per-person limit, and a customer whose answer was lost finds the reward in
``GET /api/v1/me/rewards`` (a repeat is refused with ALREADY_GRABBED, never paid twice).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, Field
from redis.exceptions import RedisError
from sanic import Blueprint, Request, response
from sanic_ext.extensions.openapi import openapi

from api.auth import caller_address, customer_required, staff_required
from api.idempotency import idempotent
from api.marketing import device_of
from api.pagination import PageQuery, page
from api.presenters import ts
from api.validation import Body, Query, json_body, query_params
from infra import clock
from infra.money import yuan_text
from infra.rate_limit import Limit
from marketing import analytics, campaigns, red_packets
from marketing.errors import CampaignsUnavailable
from marketing.models import Campaign, Reward

bp = Blueprint("campaigns", url_prefix="/api/v1")

Kind = Literal["qr_share", "referral_reward", "phone_credit", "red_packet"]
Milestone = Literal["registered", "applied", "approved", "disbursed"]
Audience = Literal["all", "public_sector", "quality_business", "new_customers", "farmers"]
Status = Literal["draft", "pending_approval", "scheduled", "live", "paused", "ended"]
MONEY = Field(ge=1, le=10**13)
HOLD = "minutes a won or granted reward waits before it is paid, so the payout's abuse checks see what happened since"


class CampaignBody(Body):
    kind: Kind
    name: str = Field(min_length=1, max_length=campaigns.MAX_NAME)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    budget_fen: int = MONEY
    audience: Audience = "all"
    channels: list[str] = Field(default_factory=list, max_length=10, description="channels it runs on; empty: every channel")
    per_person_limit: int = Field(1, ge=1, le=10**6)
    per_day_limit: int = Field(1, ge=1, le=10**6)
    milestone: Milestone | None = Field(None, description="what earns a referral or phone-credit reward")
    reward_fen: int | None = Field(None, ge=1, le=10**13, description="the fixed reward of a referral or phone-credit campaign")
    packet_count: int | None = Field(None, ge=1, le=5_000_000)
    packet_min_fen: int | None = Field(None, ge=1, le=10**13)
    packet_max_fen: int | None = Field(None, ge=1, le=10**13)
    payout_hold_minutes: int = Field(0, ge=0, le=campaigns.MAX_PAYOUT_HOLD_MINUTES, description=HOLD)


class CampaignPatch(Body):
    # A term left out keeps its value. Those every campaign has are not nullable (null is refused,
    # 422); null clears only the milestone, reward and packet terms (and empties the channels).
    name: str = Field(None, min_length=1, max_length=campaigns.MAX_NAME)
    starts_at: AwareDatetime = None
    ends_at: AwareDatetime = None
    budget_fen: int = Field(None, ge=1, le=10**13)
    audience: Audience = None
    channels: list[str] | None = Field(None, max_length=10)
    per_person_limit: int = Field(None, ge=1, le=10**6)
    per_day_limit: int = Field(None, ge=1, le=10**6)
    milestone: Milestone | None = None
    reward_fen: int | None = Field(None, ge=1, le=10**13)
    packet_count: int | None = Field(None, ge=1, le=5_000_000)
    packet_min_fen: int | None = Field(None, ge=1, le=10**13)
    packet_max_fen: int | None = Field(None, ge=1, le=10**13)
    payout_hold_minutes: int = Field(None, ge=0, le=campaigns.MAX_PAYOUT_HOLD_MINUTES, description=HOLD)


class SubmitBody(Body):
    reason: str | None = Field(None, max_length=500, description="why, for the approver (when the budget needs one)")


class CampaignQuery(PageQuery):
    status: Status | None = None
    kind: Kind | None = None



def render_campaign(c: Campaign, *, at: datetime | None = None) -> dict:
    return {
        "id": c.id,
        "bank_id": c.bank_id,
        "kind": c.kind,
        "name": c.name,
        "status": campaigns.effective_status(c, at or clock.now()),
        "starts_at": ts(c.starts_at),
        "ends_at": ts(c.ends_at),
        "budget_fen": c.budget_fen,
        "budget_yuan": yuan_text(c.budget_fen),
        "committed_fen": c.committed_fen,
        "audience": c.audience,
        "channels": c.channels,
        "per_person_limit": c.per_person_limit,
        "per_day_limit": c.per_day_limit,
        "milestone": c.milestone,
        "reward_fen": c.reward_fen,
        "packet_count": c.packet_count,
        "packet_min_fen": c.packet_min_fen,
        "packet_max_fen": c.packet_max_fen,
        "payout_hold_minutes": c.payout_hold_minutes,
        "change_request_id": c.change_request_id,
        "created_by": c.created_by_id,
        "approved_by": c.approved_by_id,
        "created_at": ts(c.created_at),
        "updated_at": ts(c.updated_at),
    }


def render_for_customer(c: Campaign, packets_left: int | None) -> dict:
    shown = {k: v for k, v in render_campaign(c).items() if k not in ("committed_fen", "created_by", "approved_by", "change_request_id", "created_at", "updated_at", "budget_fen", "budget_yuan")}
    return {**shown, "packets_left": packets_left}


def render_reward(r: Reward) -> dict:
    return {
        "id": r.id,
        "campaign_id": r.campaign_id,
        "kind": r.kind,
        "amount_fen": r.amount_fen,
        "amount_yuan": yuan_text(r.amount_fen),
        "status": r.status,
        "created_at": ts(r.created_at),
        "paid_at": ts(r.paid_at),
        "failure_code": r.failure_code,
    }


def _thresholds(request: Request) -> campaigns.ApprovalThresholds:
    settings = request.app.ctx.settings
    return campaigns.ApprovalThresholds(settings.campaign_approval_threshold_fen, dict(settings.campaign_approval_thresholds))


def desk(app) -> red_packets.GrabDesk:
    """The worker's one grab desk (made with the first grab, closed with the server)."""
    found = getattr(app.ctx, "grab_desk", None)
    if found is None:
        settings = app.ctx.settings
        found = red_packets.GrabDesk(
            app.ctx.redis,
            settings.redis_key_prefix,
            red_packets.GrabLimits(
                per_device=Limit(settings.grab_limit_device_per_minute, 60),
                per_address=Limit(settings.grab_limit_address_per_minute, 60),
                per_customer=Limit(settings.grab_limit_customer_per_minute, 60),
            ),
        )
        app.ctx.grab_desk = found
    return found


@bp.after_server_stop
async def close_desk(app) -> None:
    found = getattr(app.ctx, "grab_desk", None)
    if found is not None:
        await found.close()


# ---- staff ---------------------------------------------------------------------------------------


@bp.post("/admin/campaigns")
@openapi.summary("Create a campaign (a draft) of the caller's bank, or an association-wide one")
@openapi.response("422", description="CAMPAIGN_INVALID: every problem named (period, budget, limits, milestone, packet split)")
@staff_required(campaigns.MANAGE)
@idempotent(required=False)
@json_body(CampaignBody)
async def create_campaign(request: Request, body: CampaignBody):
    terms = campaigns.Terms(**{**body.model_dump(), "channels": tuple(body.channels)})
    return response.json(render_campaign(await campaigns.create(request.ctx.actor, terms)), status=201)


@bp.get("/admin/campaigns")
@openapi.summary("Campaigns the caller may manage (their bank's; association staff: all)")
@staff_required(campaigns.MANAGE)
@query_params(CampaignQuery)
async def list_campaigns(request: Request, query: CampaignQuery):
    await campaigns.advance_due()
    return response.json(await page(campaigns.campaigns(request.ctx.actor, status=query.status, kind=query.kind), query, render_campaign))


@bp.get("/admin/campaigns/<campaign_id:int>")
@openapi.summary("One campaign")
@staff_required(campaigns.MANAGE)
async def get_campaign(request: Request, campaign_id: int):
    await campaigns.advance_due()
    return response.json(render_campaign(await campaigns.campaign(request.ctx.actor, campaign_id)))


@bp.patch("/admin/campaigns/<campaign_id:int>")
@openapi.summary("Change a draft campaign's terms (checked again as a whole)")
@staff_required(campaigns.MANAGE)
@json_body(CampaignPatch)
async def update_campaign(request: Request, campaign_id: int, body: CampaignPatch):
    changes = body.model_dump(exclude_unset=True)
    if "channels" in changes:
        changes["channels"] = tuple(changes["channels"] or ())
    return response.json(render_campaign(await campaigns.update(request.ctx.actor, campaign_id, changes)))


@bp.post("/admin/campaigns/<campaign_id:int>/submit")
@openapi.summary("Schedule a draft; above the bank's budget threshold it waits for a second person's approval")
@openapi.response("200", description="scheduled, or pending_approval with its change_request_id")
@staff_required(campaigns.MANAGE)
@idempotent(required=False)
@json_body(SubmitBody)
async def submit_campaign(request: Request, campaign_id: int, body: SubmitBody):
    found = await campaigns.submit(request.ctx.actor, campaign_id, thresholds=_thresholds(request), reason=body.reason)
    return response.json(render_campaign(found))


def _lifecycle_route(event: str, summary: str) -> None:
    @bp.post(f"/admin/campaigns/<campaign_id:int>/{event}", name=f"campaign_{event}")
    @openapi.summary(summary)
    @staff_required(campaigns.MANAGE)
    @idempotent(required=False)
    async def move(request: Request, campaign_id: int):
        found = await campaigns.transition(request.ctx.actor, campaign_id, event)
        desk(request.app).forget(found.id)
        return response.json(render_campaign(found))


_lifecycle_route("pause", "Pause a live campaign (grabs are refused until it resumes)")
_lifecycle_route("resume", "Resume a paused campaign")
_lifecycle_route("end", "End a campaign now")
_lifecycle_route("withdraw", "Take a scheduled or pending campaign back to draft")


@bp.get("/admin/campaigns/<campaign_id:int>/pool")
@openapi.summary("A red-packet campaign's pool as Redis holds it: packets left, and who took how many")
@staff_required(campaigns.MANAGE)
async def get_pool(request: Request, campaign_id: int):
    found = await campaigns.campaign(request.ctx.actor, campaign_id)
    state = await _redis_call(red_packets.pool_state(request.app.ctx.redis, found.id, key_prefix=request.app.ctx.settings.redis_key_prefix))
    return response.json({"campaign_id": found.id, "loaded": state["loaded"], "packets_left": state["packets_left"], "people": len(state["taken"])})


@bp.post("/admin/campaigns/<campaign_id:int>/pool/rebuild")
@openapi.summary("Rebuild a red-packet pool in Redis from the database (after Redis lost it)")
@staff_required(campaigns.MANAGE)
async def rebuild_pool(request: Request, campaign_id: int):
    found = await campaigns.campaign(request.ctx.actor, campaign_id)
    state = await _redis_call(red_packets.rebuild_pool(request.app.ctx.redis, found.id, key_prefix=request.app.ctx.settings.redis_key_prefix))
    return response.json({"campaign_id": found.id, "packets_left": state.packets_left, "packets_taken": state.packets_taken, "people": state.people})



class CampaignAnalyticsQuery(Query):
    by: Literal["branch", "staff"] = Field("staff", description="rank branches or staff members")


@bp.get("/admin/campaigns/<campaign_id:int>/analytics")
@openapi.summary("One campaign's funnel (total) and leaderboard (rows per branch or staff member): scans, registrations, applications, approvals, disbursed, cost")
@openapi.description(
    "A referral counts towards the campaign it names, or, naming none, towards every campaign running for its bank when it "
    "was bound; its stages count whenever reached. Scans: the bank's codes while the campaign ran."
)
@openapi.parameter("by", str, "query", description="branch or staff (default staff)")
@staff_required(analytics.PERMISSION)
@query_params(CampaignAnalyticsQuery)
async def campaign_analytics(request: Request, campaign_id: int, query: CampaignAnalyticsQuery):
    result = await analytics.campaign_analytics(request.ctx.actor, campaign_id, by=query.by)
    return response.json(
        {"by": result.by, "scope": result.scope, "since": ts(result.since), "until": ts(result.until), "total": analytics.totals(result.rows), "rows": result.rows}
    )


@bp.get("/admin/campaigns/<campaign_id:int>/analytics.csv")
@openapi.summary("The same campaign report as a CSV download (UTF-8 with BOM, formula-safe cells)")
@openapi.parameter("by", str, "query", description="branch or staff (default staff)")
@openapi.response("200", {"text/csv": str})
@staff_required(analytics.PERMISSION)
@query_params(CampaignAnalyticsQuery)
async def campaign_analytics_csv(request: Request, campaign_id: int, query: CampaignAnalyticsQuery):
    result = await analytics.campaign_analytics(request.ctx.actor, campaign_id, by=query.by)
    filename = f"campaign-{result.scope['campaign_id']}-{result.by}.csv"
    return response.text(analytics.to_csv(result), content_type="text/csv; charset=utf-8", headers={"Content-Disposition": f'attachment; filename="{filename}"'})


async def _redis_call(awaitable):
    try:
        return await awaitable
    except (RedisError, OSError):
        raise CampaignsUnavailable() from None


# ---- customers -----------------------------------------------------------------------------------


@bp.get("/campaigns")
@openapi.summary("Live campaigns for the customer's bank and channel (red packets with how many are left)")
@openapi.response("503", description="CAMPAIGNS_UNAVAILABLE: campaign stock cannot be read just now; see Retry-After")
@customer_required
async def customer_campaigns(request: Request):
    found = await campaigns.customer_campaigns(request.ctx.actor)
    redis, prefix = request.app.ctx.redis, request.app.ctx.settings.redis_key_prefix
    items = []
    for c in found:
        left = None
        if c.kind == "red_packet":
            state = await _redis_call(red_packets.pool_state(redis, c.id, key_prefix=prefix))
            left = state["packets_left"] if state["loaded"] else c.packet_count
        items.append(render_for_customer(c, left))
    return response.json({"items": items})


@bp.post("/campaigns/<campaign_id:int>/red-packets/grab")
@openapi.summary("Grab a red packet: answered only once the win is committed, with its payout queued")
@openapi.description(
    "201: the reward (status due). 409: CAMPAIGN_NOT_LIVE, ALREADY_GRABBED, GRAB_LIMIT_REACHED, "
    "DAILY_GRAB_LIMIT_REACHED, RED_PACKETS_GONE. 403: CUSTOMER_BLACKLISTED, CHANNEL_NOT_IN_CAMPAIGN. "
    "429: RATE_LIMITED (per device, network address and customer). 503: CAMPAIGNS_UNAVAILABLE with Retry-After."
)
@openapi.parameter("X-Device-Id", str, "header", description="the install id the mini-program keeps in its storage")
@customer_required
async def grab(request: Request, campaign_id: int):
    actor = request.ctx.actor
    grabber = red_packets.Grabber(
        customer_id=actor.id, bank_id=actor.bank_id, channel=actor.channel, device_id=device_of(request), ip=caller_address(request)
    )
    won = await desk(request.app).grab(campaign_id, grabber)
    return response.json(
        {
            "reward_id": won.reward_id,
            "campaign_id": won.campaign_id,
            "amount_fen": won.amount_fen,
            "amount_yuan": yuan_text(won.amount_fen),
            "seq": won.seq,
            "status": won.status,
        },
        status=201,
    )


@bp.get("/me/rewards")
@openapi.summary("The customer's rewards and where each payout is (held, due, paying, paid, failed, returned)")
@customer_required
@query_params(PageQuery)
async def my_rewards(request: Request, query: PageQuery):
    return response.json(await page(red_packets.my_rewards(int(request.ctx.actor.id)), query, render_reward))

