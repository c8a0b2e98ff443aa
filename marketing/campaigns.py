"""Campaigns: their terms, their status and their budget.

A bank's marketers run that bank's campaigns; association staff run association-wide ones
(``bank`` null) and, as everywhere, see every bank's. Every change is audited.

Status is a transition table (``STATUS``). Submitting a draft schedules it, or — when its budget is
above the bank's approval threshold — sends it to a second person first (a maker-checker
``campaign.budget`` change through ``lending_core.approvals``). Starting and ending are driven by
the clock, and the clock is read rather than waited for: ``effective_status`` says what a stored
status means *now* (a scheduled campaign past ``starts_at`` is live, anything past ``ends_at`` has
ended). Every reader uses it — the customer's list, the staff console, the grab's own commit, which
checks the same bounds in SQL — so no timer has to fire on time for a campaign to start or stop
exactly when it says. ``advance_due`` writes the clock's transitions down (with an audit row by
the system) whenever staff read campaigns, so the stored status catches up without a scheduler.

Budget: ``committed_fen`` moves only through one conditional UPDATE (``reserve_budget``), so the
sum granted can never pass the budget, whatever runs concurrently.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Mapping

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from infra import audit, clock, sql
from infra.actors import Actor, system
from infra.transitions import TransitionTable
from lending_core import access
from lending_core.approvals import service as approvals
from lending_core.approvals.models import ChangeRequest
from lending_core.org.models import Bank
from marketing import packets
from marketing.errors import CampaignInvalid, CampaignNotEditable, CampaignNotFound
from marketing.models import CAMPAIGN_KINDS, MILESTONES, PHONE_CREDIT, RED_PACKET, REFERRAL_REWARD, Campaign

MANAGE, APPROVE = "campaigns.manage", "campaigns.approve"
BUDGET_CHANGE = "campaign.budget"
DRAFT, PENDING_APPROVAL, SCHEDULED, LIVE, PAUSED, ENDED = "draft", "pending_approval", "scheduled", "live", "paused", "ended"

STATUS = TransitionTable(
    "campaign",
    {
        ("schedule", DRAFT): SCHEDULED,
        ("submit_for_approval", DRAFT): PENDING_APPROVAL,
        ("approve", PENDING_APPROVAL): SCHEDULED,
        ("withdraw", PENDING_APPROVAL): DRAFT,
        ("withdraw", SCHEDULED): DRAFT,
        ("start", SCHEDULED): LIVE,
        ("pause", LIVE): PAUSED,
        ("resume", PAUSED): LIVE,
        ("end", SCHEDULED): ENDED,
        ("end", LIVE): ENDED,
        ("end", PAUSED): ENDED,
    },
)

AUDIENCES = ("all", "public_sector", "quality_business", "new_customers", "farmers")
# A fixed reward (referral cash, phone credit) has no packets; a red packet has no fixed reward.
FIXED_REWARD_KINDS = (REFERRAL_REWARD, PHONE_CREDIT)
MAX_NAME = 64
MAX_PAYOUT_HOLD_MINUTES = 7 * 24 * 60  # a customer waits a week at most for a reward they earned


@dataclass(frozen=True)
class Terms:
    """What a marketer sets. Money in integer fen."""

    kind: str
    name: str
    starts_at: datetime
    ends_at: datetime
    budget_fen: int
    audience: str = "all"
    channels: tuple[str, ...] = ()
    per_person_limit: int = 1
    per_day_limit: int = 1
    milestone: str | None = None
    reward_fen: int | None = None
    packet_count: int | None = None
    packet_min_fen: int | None = None
    packet_max_fen: int | None = None
    payout_hold_minutes: int = 0


EDITABLE = tuple(Terms.__dataclass_fields__)


@dataclass(frozen=True)
class ApprovalThresholds:
    """Budgets above these need a second person: the association's default, and a bank's own
    (by bank code) where it set one."""

    default_fen: int
    per_bank_fen: Mapping[str, int] = field(default_factory=dict)

    async def for_bank(self, bank_id: int | None) -> int:
        if bank_id is None or not self.per_bank_fen:
            return self.default_fen
        code = await Bank.filter(id=bank_id).values_list("code", flat=True)
        return self.per_bank_fen.get(code[0] if code else "", self.default_fen)


# ---- validation (pure) ---------------------------------------------------------------------------


def problems(terms: Terms, *, now: datetime | None = None) -> list[dict]:
    """Every way the terms fail to hold together, as {field, problem} (empty: they hold). With
    ``now``, a campaign that would already be over is refused too."""
    found: list[dict] = []

    def bad(name: str, problem: str) -> None:
        found.append({"field": name, "problem": problem})

    if terms.kind not in CAMPAIGN_KINDS:
        bad("kind", f"kind must be one of {', '.join(CAMPAIGN_KINDS)}")
    if not terms.name or len(terms.name) > MAX_NAME:
        bad("name", f"a name is 1 to {MAX_NAME} characters")
    if terms.starts_at.tzinfo is None or terms.ends_at.tzinfo is None:
        bad("starts_at", "times need a time zone")
    elif terms.ends_at <= terms.starts_at:
        bad("ends_at", "the campaign must end after it starts")
    elif now is not None and terms.ends_at <= now:
        bad("ends_at", "the campaign would be over before it begins: ends_at is in the past")
    if terms.budget_fen < 1:
        bad("budget_fen", "the budget must be at least 1 fen")
    if terms.audience not in AUDIENCES:
        bad("audience", f"audience must be one of {', '.join(AUDIENCES)}")
    if terms.per_person_limit < 1:
        bad("per_person_limit", "at least 1")
    if terms.per_day_limit < 1:
        bad("per_day_limit", "at least 1")
    elif terms.per_day_limit > terms.per_person_limit:
        bad("per_day_limit", "a person cannot earn more in a day than in the whole campaign")
    if not 0 <= terms.payout_hold_minutes <= MAX_PAYOUT_HOLD_MINUTES:
        bad("payout_hold_minutes", f"0 to {MAX_PAYOUT_HOLD_MINUTES} minutes (a week)")
    elif terms.payout_hold_minutes and terms.kind not in (RED_PACKET, *FIXED_REWARD_KINDS):
        bad("payout_hold_minutes", f"a {terms.kind} campaign pays nothing to hold")
    if terms.kind == RED_PACKET:
        _red_packet_problems(terms, bad)
    elif terms.kind in FIXED_REWARD_KINDS:
        _fixed_reward_problems(terms, bad)
    else:  # a QR-share campaign counts scans and referrals and pays nothing by itself
        for name in ("reward_fen", "packet_count", "packet_min_fen", "packet_max_fen"):
            if getattr(terms, name) is not None:
                bad(name, f"a {terms.kind} campaign has no {name}")
        if terms.milestone is not None and terms.milestone not in MILESTONES:
            bad("milestone", f"milestone must be one of {', '.join(MILESTONES)}")
    return found


def _red_packet_problems(terms: Terms, bad) -> None:
    if terms.milestone is not None:
        bad("milestone", "a red packet is earned by grabbing it, not by a milestone")
    if terms.reward_fen is not None:
        bad("reward_fen", "a red-packet campaign's amounts come from its packets")
    missing = [name for name in ("packet_count", "packet_min_fen", "packet_max_fen") if getattr(terms, name) is None]
    for name in missing:
        bad(name, "required for a red-packet campaign")
    if not missing:
        for problem in packets.split_problems(
            budget_fen=terms.budget_fen, count=terms.packet_count, min_fen=terms.packet_min_fen, max_fen=terms.packet_max_fen
        ):
            bad("packet_count", problem)
        if terms.packet_min_fen < packets.PAYABLE_MIN_FEN or terms.packet_max_fen > packets.PAYABLE_MAX_FEN:
            bad(
                "packet_min_fen",
                f"WeChat Pay pays a red packet of {packets.PAYABLE_MIN_FEN} to {packets.PAYABLE_MAX_FEN:,} fen: "
                "packets must lie within that range",
            )


def _fixed_reward_problems(terms: Terms, bad) -> None:
    if terms.milestone not in MILESTONES:
        bad("milestone", f"a {terms.kind} campaign needs the milestone that earns it: one of {', '.join(MILESTONES)}")
    if terms.reward_fen is None or terms.reward_fen < 1:
        bad("reward_fen", "a fixed reward of at least 1 fen")
    elif terms.reward_fen > terms.budget_fen:
        bad("reward_fen", "one reward cannot exceed the whole budget")
    for name in ("packet_count", "packet_min_fen", "packet_max_fen"):
        if getattr(terms, name) is not None:
            bad(name, f"a {terms.kind} campaign has no packets")


def check(terms: Terms) -> None:
    found = problems(terms, now=clock.now())
    if found:
        raise CampaignInvalid(details=found)


# ---- status --------------------------------------------------------------------------------------


def payout_not_before(campaign: Campaign, granted_at: datetime) -> datetime:
    """When a reward granted at ``granted_at`` may be paid: after the campaign's payout hold."""
    return granted_at + timedelta(minutes=campaign.payout_hold_minutes)


def effective_status(campaign: Campaign, at: datetime) -> str:
    """What the stored status means at ``at``: the clock starts scheduled campaigns and ends
    running ones."""
    if campaign.status in (SCHEDULED, LIVE, PAUSED) and at >= campaign.ends_at:
        return ENDED
    if campaign.status == SCHEDULED and at >= campaign.starts_at:
        return LIVE
    return campaign.status


def snapshot(campaign: Campaign) -> dict:
    return {
        "status": campaign.status,
        **{name: getattr(campaign, name) for name in EDITABLE if name not in ("starts_at", "ends_at")},
        "starts_at": campaign.starts_at.isoformat(),
        "ends_at": campaign.ends_at.isoformat(),
        "approved_by": campaign.approved_by_id,
    }


async def _catch_up(campaign: Campaign, at: datetime) -> None:
    """Write down what the clock did to ``campaign`` (start, end), as the system."""
    now_status = effective_status(campaign, at)
    if now_status == campaign.status:
        return
    before = snapshot(campaign)
    event = "end" if now_status == ENDED else "start"
    if event == "end" and campaign.status == SCHEDULED and at >= campaign.starts_at:
        # Started and ended while nobody looked: it passes through live (checked) on its way.
        STATUS.next(campaign.status, "start")
        campaign.status = LIVE
    campaign.status = STATUS.next(campaign.status, event)
    await Campaign.filter(id=campaign.id).update(status=campaign.status, updated_at=at)
    await audit.record(system("campaign.clock"), f"campaign.{event}", "campaign", campaign.id, bank_id=campaign.bank_id, before=before, after=snapshot(campaign))


async def advance_due(at: datetime | None = None) -> int:
    """Write down every start and end the clock has made due; returns how many campaigns moved."""
    at = at or clock.now()
    due = await Campaign.filter(status__in=(SCHEDULED, LIVE, PAUSED)).filter(
        id__in=await _due_ids(at)
    ).values_list("id", flat=True)
    moved = 0
    for campaign_id in due:
        async with in_transaction():
            campaign = await Campaign.filter(id=campaign_id).select_for_update().first()
            if campaign is not None and effective_status(campaign, at) != campaign.status:
                await _catch_up(campaign, at)
                moved += 1
    return moved


async def _due_ids(at: datetime) -> list[int]:
    rows = await sql.fetch_all(
        "SELECT id FROM campaign WHERE (status = 'scheduled' AND starts_at <= :at) "
        "OR (status IN ('scheduled', 'live', 'paused') AND ends_at <= :at)",
        at=at,
    )
    return [row["id"] for row in rows]


# ---- staff: terms ------------------------------------------------------------------------------


def campaigns(actor: Actor, *, status: str | None = None, kind: str | None = None):
    query = access.for_staff(Campaign, actor, permission=MANAGE)
    if status:
        query = query.filter(status=status)
    if kind:
        query = query.filter(kind=kind)
    return query


async def campaign(actor: Actor, campaign_id) -> Campaign:
    access.require(actor, MANAGE)
    found = await access.for_staff(Campaign, actor, permission=MANAGE).filter(
        id=access.as_object_id(campaign_id, CampaignNotFound())
    ).first()
    if found is None:
        raise CampaignNotFound()
    return found


async def create(actor: Actor, terms: Terms) -> Campaign:
    """A draft campaign of the marketer's bank (association staff: an association-wide one)."""
    access.require(actor, MANAGE)
    check(terms)
    async with in_transaction():
        created = await Campaign.create(
            bank_id=actor.bank_id,
            status=DRAFT,
            created_by_id=int(actor.id),
            packet_seed=secrets.randbits(62) if terms.kind == RED_PACKET else None,
            **{**asdict(terms), "channels": list(terms.channels)},
        )
        await audit.record(actor, "campaign.create", "campaign", created.id, bank_id=created.bank_id, after=snapshot(created))
    return created


async def update(actor: Actor, campaign_id, changes: Mapping) -> Campaign:
    """Change a draft's terms (the whole result is checked again)."""
    unknown = sorted(set(changes) - set(EDITABLE) - {"kind"})
    if unknown or "kind" in changes:
        raise CampaignInvalid(details=[{"field": name, "problem": "cannot be changed"} for name in unknown or ["kind"]])
    async with in_transaction():
        found = await _locked(actor, campaign_id)
        if found.status != DRAFT:
            raise CampaignNotEditable(details={"status": found.status})
        before = snapshot(found)
        current = {name: getattr(found, name) for name in EDITABLE}
        current["channels"] = tuple(current["channels"] or ())
        merged = Terms(**{**current, **dict(changes)})
        merged = Terms(**{**asdict(merged), "channels": tuple(merged.channels or ())})
        check(merged)
        for name, value in asdict(merged).items():
            setattr(found, name, list(value) if name == "channels" else value)
        await found.save()
        await audit.record(actor, "campaign.update", "campaign", found.id, bank_id=found.bank_id, before=before, after=snapshot(found))
    return found


async def _locked(actor: Actor, campaign_id) -> Campaign:
    visible = await campaign(actor, campaign_id)
    return await Campaign.filter(id=visible.id).select_for_update().get()


# ---- staff: lifecycle ----------------------------------------------------------------------------


async def submit(actor: Actor, campaign_id, *, thresholds: ApprovalThresholds, reason: str | None = None) -> Campaign:
    """Schedule a draft, or send it for a second person's approval when its budget is above the
    bank's threshold."""
    async with in_transaction():
        found = await _locked(actor, campaign_id)
        check(Terms(**{name: getattr(found, name) for name in EDITABLE}))
        if found.budget_fen <= await thresholds.for_bank(found.bank_id):
            return await _move(actor, found, "schedule")
        STATUS.next(found.status, "submit_for_approval")  # refuse before proposing anything
        change = await approvals.propose(
            actor,
            BUDGET_CHANGE,
            bank_id=found.bank_id,
            target_type="campaign",
            target_id=found.id,
            payload={"budget_fen": found.budget_fen, "name": found.name},
            reason=reason or f"campaign budget of {found.budget_fen} fen is above the approval threshold",
        )
        found.change_request_id = change.id
        return await _move(actor, found, "submit_for_approval")


async def _apply_budget_approval(change: ChangeRequest, checker: Actor) -> None:
    found = await Campaign.filter(id=int(change.target_id)).select_for_update().first()
    if found is None:
        raise CampaignNotFound()
    if found.budget_fen != change.payload["budget_fen"] or found.change_request_id != change.id:
        raise CampaignNotEditable("the campaign changed since this approval was asked for")
    found.approved_by_id = int(checker.id)
    await _move(checker, found, "approve")


approvals.register(approvals.ChangeKind(name=BUDGET_CHANGE, propose_permission=MANAGE, approve_permission=APPROVE, apply=_apply_budget_approval))


async def transition(actor: Actor, campaign_id, event: str) -> Campaign:
    """pause, resume, end or withdraw (back to draft), from the campaign's status as of now."""
    if event not in ("pause", "resume", "end", "withdraw"):
        raise CampaignInvalid(details=[{"field": "event", "problem": f"unknown event {event}"}])
    async with in_transaction():
        found = await _locked(actor, campaign_id)
        await _catch_up(found, clock.now())
        if event == "withdraw" and found.status == PENDING_APPROVAL and found.change_request_id:
            # The change request is left for nobody to approve: withdrawn with the campaign.
            await ChangeRequest.filter(id=found.change_request_id, status="pending").update(status="withdrawn", decided_at=clock.now())
        return await _move(actor, found, event)


async def _move(actor: Actor, found: Campaign, event: str) -> Campaign:
    return await _save_status(actor, found, event, STATUS.next(found.status, event))


async def _save_status(actor: Actor, found: Campaign, event: str, status: str) -> Campaign:
    before = snapshot(found)
    found.status = status
    if status == DRAFT:
        found.change_request_id, found.approved_by_id = None, None
    await found.save(update_fields=["status", "change_request_id", "approved_by_id", "updated_at"])
    await audit.record(actor, f"campaign.{event}", "campaign", found.id, bank_id=found.bank_id, before=before, after=snapshot(found))
    return found


# ---- budget --------------------------------------------------------------------------------------


async def reserve_budget(campaign_id: int, amount_fen: int) -> bool:
    """Commit ``amount_fen`` of the campaign's budget, or False when it would pass the budget.
    One conditional UPDATE: atomic whatever runs concurrently. Call inside the caller's transaction."""
    if amount_fen < 0:
        raise ValueError("reserve a positive amount")
    row = await sql.fetch_one(
        "UPDATE campaign SET committed_fen = committed_fen + :amount, updated_at = :now "
        "WHERE id = :id AND committed_fen + :amount <= budget_fen RETURNING id",
        amount=amount_fen, now=clock.now(), id=campaign_id,
    )
    return row is not None


async def release_budget(campaign_id: int, amount_fen: int) -> None:
    """Give ``amount_fen`` back to the budget (a reward returned). Call inside the caller's transaction."""
    if amount_fen < 0:
        raise ValueError("release a positive amount")
    row = await sql.fetch_one(
        "UPDATE campaign SET committed_fen = committed_fen - :amount, updated_at = :now "
        "WHERE id = :id AND committed_fen >= :amount RETURNING id",
        amount=amount_fen, now=clock.now(), id=campaign_id,
    )
    if row is None:
        raise ValueError(f"campaign {campaign_id} has less than {amount_fen} fen committed to release")


async def live_campaigns(bank_id: int | None, kind: str, *, at: datetime) -> list[Campaign]:
    """Campaigns of ``kind`` running at ``at`` for a customer of ``bank_id`` (the bank's own and the
    association-wide ones)."""
    return await _running(bank_id, at).filter(kind=kind)


def _running(bank_id: int | None, at: datetime):
    mine = Q(bank_id=None) | Q(bank_id=bank_id) if bank_id is not None else Q(bank_id=None)
    return Campaign.filter(mine, status__in=(SCHEDULED, LIVE), starts_at__lte=at, ends_at__gt=at).order_by("id")


async def customer_campaigns(actor: Actor, *, at: datetime | None = None) -> list[Campaign]:
    """The live campaigns a customer may take part in: their bank's and the association's, on the
    channel they came by."""
    running = await _running(actor.bank_id, at or clock.now())
    return [c for c in running if not c.channels or actor.channel in c.channels]
