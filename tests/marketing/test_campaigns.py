"""Campaigns: terms checked as a whole, a status table driven by staff and by the clock, budgets
above the threshold approved by a second person, each bank's campaigns its own, and a budget
that can never be passed."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest

from infra import clock
from infra.audit import AuditEntry
from infra.errors import IllegalTransition
from lending_core.approvals.models import ChangeRequest
from lending_core.org.models import Staff
from marketing import campaigns
from marketing.models import Campaign
from tests.marketing.campaign_support import ADMIN, bank_id, json_terms, red_packet_terms, scheduled_campaign, staff_actor
from tests.marketing.support import new_customer
from tests.support import StaffConsole, bearer, customer_token


# ---- terms ---------------------------------------------------------------------------------------


def _fields(found: list[dict]) -> set[str]:
    return {problem["field"] for problem in found}


def test_sound_red_packet_terms_have_no_problems():
    assert campaigns.problems(red_packet_terms()) == []


@pytest.mark.parametrize(
    "change, field",
    [
        ({"ends_at": clock.now() - timedelta(days=2)}, "ends_at"),  # ends before it starts
        ({"budget_fen": 0}, "budget_fen"),
        ({"per_person_limit": 0}, "per_person_limit"),
        ({"per_day_limit": 3, "per_person_limit": 2}, "per_day_limit"),
        ({"milestone": "disbursed"}, "milestone"),  # a red packet is grabbed, not earned
        ({"reward_fen": 100}, "reward_fen"),
        ({"packet_min_fen": 0}, "packet_count"),  # less than one fen
        ({"packet_count": 10, "budget_fen": 9, "packet_min_fen": 1}, "packet_count"),  # below count × min
        ({"packet_count": 10, "budget_fen": 2_001, "packet_max_fen": 200}, "packet_count"),  # above count × max
        ({"packet_min_fen": 300, "packet_max_fen": 200}, "packet_count"),
        ({"packet_min_fen": 29}, "packet_min_fen"),  # below what WeChat Pay pays
        ({"packet_max_fen": 49_901, "packet_count": 1, "budget_fen": 49_901}, "packet_min_fen"),  # above it
        ({"packet_count": None}, "packet_count"),
        ({"kind": "lottery"}, "kind"),
        ({"audience": "everyone"}, "audience"),
        ({"name": ""}, "name"),
        ({"payout_hold_minutes": -1}, "payout_hold_minutes"),
        ({"payout_hold_minutes": campaigns.MAX_PAYOUT_HOLD_MINUTES + 1}, "payout_hold_minutes"),
        ({"kind": "qr_share", "packet_count": None, "packet_min_fen": None, "packet_max_fen": None, "payout_hold_minutes": 30}, "payout_hold_minutes"),
    ],
)
def test_each_broken_term_is_named(change, field):
    terms = replace(red_packet_terms(), **change)
    assert field in _fields(campaigns.problems(terms))


def test_a_referral_campaign_needs_its_milestone_and_fixed_reward_and_no_packets():
    base = red_packet_terms()
    referral = replace(base, kind="referral_reward", packet_count=None, packet_min_fen=None, packet_max_fen=None)
    assert _fields(campaigns.problems(referral)) == {"milestone", "reward_fen"}
    assert campaigns.problems(replace(referral, milestone="disbursed", reward_fen=500)) == []
    assert _fields(campaigns.problems(replace(referral, milestone="disbursed", reward_fen=500, packet_count=3))) == {"packet_count"}
    assert _fields(campaigns.problems(replace(referral, milestone="paid", reward_fen=500))) == {"milestone"}
    assert _fields(campaigns.problems(replace(referral, milestone="applied", reward_fen=base.budget_fen + 1))) == {"reward_fen"}


def test_a_campaign_already_over_is_refused():
    past = red_packet_terms(starts_at=clock.now() - timedelta(days=3), ends_at=clock.now() - timedelta(days=1))
    assert campaigns.problems(past) == []  # whole in itself…
    assert _fields(campaigns.problems(past, now=clock.now())) == {"ends_at"}  # …but over


async def test_invalid_terms_are_refused_over_http_with_every_problem(client, demo):
    console = StaffConsole(client)

    answer = await console.post("hz.marketer", ADMIN, json_terms(budget_fen=5, packet_count=100, per_person_limit=1, per_day_limit=2))

    assert answer.status == 422, answer.text
    assert answer.json["error"]["code"] == "CAMPAIGN_INVALID"
    assert _fields(answer.json["error"]["details"]) == {"packet_count", "per_day_limit"}
    assert await Campaign.all().count() == 0


async def test_a_body_cannot_set_a_status_or_what_is_committed(client, demo):
    answer = await StaffConsole(client).post("hz.marketer", ADMIN, json_terms(status="live", committed_fen=0))
    assert answer.status == 422
    assert answer.json["error"]["code"] == "FIELD_NOT_ALLOWED"


# ---- making and changing -------------------------------------------------------------------------


async def test_a_marketer_makes_a_draft_of_their_bank_and_it_is_audited(client, demo):
    console = StaffConsole(client)

    made = await console.post("hz.marketer", ADMIN, json_terms())

    assert made.status == 201, made.text
    body = made.json
    assert body["status"] == "draft"
    assert body["bank_id"] == await bank_id("HZRCB")
    assert body["budget_yuan"] == "1000.00"
    assert body["committed_fen"] == 0
    stored = await Campaign.get(id=body["id"])
    assert stored.packet_seed is not None  # the split is drawn from it
    entry = await AuditEntry.get(action="campaign.create", object_id=str(body["id"]))
    assert entry.actor_id == str((await Staff.get(username="hz.marketer")).id)


async def test_other_staff_cannot_manage_campaigns_and_other_banks_cannot_see_them(client, demo):
    console = StaffConsole(client)
    made = (await console.post("hz.marketer", ADMIN, json_terms())).json

    assert (await console.post("hz.reviewer", ADMIN, json_terms())).status == 403
    assert (await console.get("ls.marketer", f"{ADMIN}/{made['id']}")).status == 404
    assert (await console.post("ls.marketer", f"{ADMIN}/{made['id']}/submit", {})).status == 404
    assert [c["id"] for c in (await console.get("ls.marketer", ADMIN)).json["items"]] == []
    assert [c["id"] for c in (await console.get("hz.admin", ADMIN)).json["items"]] == [made["id"]]
    assert (await console.get("assoc.admin", f"{ADMIN}/{made['id']}")).status == 200  # the association sees all


async def test_an_association_marketer_runs_an_association_wide_campaign(client, demo):
    hz = await Staff.get(username="hz.marketer")
    await Staff.create(username="assoc.marketer", name="省联社营销", roles=["association_marketer"], password_hash=hz.password_hash)

    made = await StaffConsole(client).post("assoc.marketer", ADMIN, json_terms())

    assert made.status == 201, made.text
    assert made.json["bank_id"] is None


async def test_only_a_draft_can_change_and_the_result_is_checked_as_a_whole(client, demo):
    console = StaffConsole(client)
    made = (await console.post("hz.marketer", ADMIN, json_terms())).json
    path = f"{ADMIN}/{made['id']}"

    async def patch(body):
        _, answer = await client.patch(path, json=body, headers=await console.headers("hz.marketer"))
        return answer

    changed = await patch({"name": "中秋红包", "budget_fen": 200_000})
    assert changed.status == 200, changed.text
    assert (changed.json["name"], changed.json["budget_fen"]) == ("中秋红包", 200_000)
    too_big = await patch({"budget_fen": 600_000})  # 100 packets of at most 50 yuan
    assert too_big.status == 422 and _fields(too_big.json["error"]["details"]) == {"packet_count"}

    assert (await console.post("hz.marketer", f"{path}/submit", {})).json["status"] == "scheduled"
    refused = await patch({"name": "改名"})
    assert refused.status == 409 and refused.json["error"]["code"] == "CAMPAIGN_NOT_EDITABLE"
    assert (await console.post("hz.marketer", f"{path}/withdraw")).json["status"] == "draft"
    assert (await patch({"name": "改名"})).status == 200


# ---- status --------------------------------------------------------------------------------------


def test_the_whole_transition_table():
    allowed = {
        ("schedule", "draft"): "scheduled",
        ("submit_for_approval", "draft"): "pending_approval",
        ("approve", "pending_approval"): "scheduled",
        ("withdraw", "pending_approval"): "draft",
        ("withdraw", "scheduled"): "draft",
        ("start", "scheduled"): "live",
        ("pause", "live"): "paused",
        ("resume", "paused"): "live",
        ("end", "scheduled"): "ended",
        ("end", "live"): "ended",
        ("end", "paused"): "ended",
    }
    statuses = ["draft", "pending_approval", "scheduled", "live", "paused", "ended"]
    assert campaigns.STATUS.statuses == set(statuses)
    for status in statuses:
        for event in campaigns.STATUS.events:
            if (event, status) in allowed:
                assert campaigns.STATUS.next(status, event) == allowed[(event, status)]
            else:
                with pytest.raises(IllegalTransition):
                    campaigns.STATUS.next(status, event)


def test_the_clock_starts_and_ends_campaigns():
    now = clock.now()
    c = Campaign(status="scheduled", starts_at=now + timedelta(hours=1), ends_at=now + timedelta(hours=2))
    assert campaigns.effective_status(c, now) == "scheduled"
    assert campaigns.effective_status(c, now + timedelta(hours=1)) == "live"
    assert campaigns.effective_status(c, now + timedelta(hours=2)) == "ended"
    for stored in ("live", "paused"):
        c.status = stored
        assert campaigns.effective_status(c, now + timedelta(minutes=90)) == stored
        assert campaigns.effective_status(c, now + timedelta(hours=3)) == "ended"
    for stored in ("draft", "pending_approval", "ended"):
        c.status = stored
        assert campaigns.effective_status(c, now + timedelta(hours=3)) == stored  # never moved by the clock


async def test_what_the_clock_did_is_written_down_when_staff_look(client, demo):
    starts = await scheduled_campaign(red_packet_terms(starts_at=clock.now() - timedelta(minutes=5)))
    later = await scheduled_campaign(red_packet_terms(starts_at=clock.now() + timedelta(hours=1)))
    over = await scheduled_campaign(red_packet_terms(starts_at=clock.now() - timedelta(hours=2), ends_at=clock.now() + timedelta(seconds=1)))
    assert {starts.status, later.status, over.status} == {"scheduled"}

    moved = await campaigns.advance_due(clock.now() + timedelta(seconds=2))

    assert moved == 2
    assert (await Campaign.get(id=starts.id)).status == "live"
    assert (await Campaign.get(id=later.id)).status == "scheduled"
    assert (await Campaign.get(id=over.id)).status == "ended"
    actions = await AuditEntry.filter(object_type="campaign", object_id=str(over.id), actor_kind="system").order_by("id").values_list("action", flat=True)
    assert actions == ["campaign.end"]
    assert await campaigns.advance_due(clock.now() + timedelta(seconds=2)) == 0  # nothing left to do


async def test_pause_resume_end_and_illegal_moves(client, demo):
    console = StaffConsole(client)
    live = await scheduled_campaign()
    path = f"{ADMIN}/{live.id}"

    assert (await console.get("hz.marketer", path)).json["status"] == "live"
    assert (await console.post("hz.marketer", f"{path}/resume")).json["error"]["code"] == "ILLEGAL_TRANSITION"
    assert (await console.post("hz.marketer", f"{path}/pause")).json["status"] == "paused"
    assert (await console.post("hz.marketer", f"{path}/resume")).json["status"] == "live"
    assert (await console.post("hz.marketer", f"{path}/end")).json["status"] == "ended"
    again = await console.post("hz.marketer", f"{path}/pause")
    assert again.status == 409 and again.json["error"]["details"]["status"] == "ended"
    actions = await AuditEntry.filter(object_type="campaign", object_id=str(live.id)).order_by("id").values_list("action", flat=True)
    assert actions == ["campaign.create", "campaign.schedule", "campaign.start", "campaign.pause", "campaign.resume", "campaign.end"]


# ---- maker-checker -------------------------------------------------------------------------------


async def test_a_budget_above_the_threshold_waits_for_a_second_person(client, demo):
    console = StaffConsole(client)
    made = (await console.post("hz.admin", ADMIN, json_terms(budget_fen=6_000_000, packet_count=2_000, packet_max_fen=5_000))).json
    path = f"{ADMIN}/{made['id']}"

    submitted = await console.post("hz.admin", f"{path}/submit", {"reason": "春节大促"})

    assert submitted.status == 200, submitted.text
    assert submitted.json["status"] == "pending_approval"
    change_id = submitted.json["change_request_id"]
    change = await ChangeRequest.get(id=change_id)
    assert (change.kind, change.target_id, change.payload["budget_fen"]) == ("campaign.budget", str(made["id"]), 6_000_000)
    approve = f"/api/v1/admin/change-requests/{change_id}/approve"
    assert (await console.post("hz.admin", approve, {})).json["error"]["code"] == "SELF_APPROVAL"
    assert (await console.post("hz.marketer", approve, {})).status == 403  # a marketer cannot approve budgets
    assert (await console.post("ls.admin", approve, {})).status == 404  # nor another bank's admin
    assert (await console.get("hz.admin", path)).json["status"] == "pending_approval"

    approved = await console.post("hz.admin2", approve, {"note": "同意"})

    assert approved.status == 200, approved.text
    after = (await console.get("hz.admin", path)).json
    assert after["status"] == "scheduled"
    assert after["approved_by"] == (await Staff.get(username="hz.admin2")).id


async def test_a_bank_sets_its_own_threshold(demo):
    actor = await staff_actor("hz.marketer")
    made = await campaigns.create(actor, red_packet_terms(count=10, budget_fen=1_000))
    own = campaigns.ApprovalThresholds(default_fen=5_000_000, per_bank_fen={"HZRCB": 999})

    assert (await campaigns.submit(actor, made.id, thresholds=own)).status == "pending_approval"


async def test_withdrawing_a_pending_campaign_withdraws_its_change_request(client, demo):
    console = StaffConsole(client)
    made = (await console.post("hz.admin", ADMIN, json_terms(budget_fen=6_000_000, packet_count=2_000, packet_max_fen=5_000))).json
    change_id = (await console.post("hz.admin", f"{ADMIN}/{made['id']}/submit", {})).json["change_request_id"]

    assert (await console.post("hz.admin", f"{ADMIN}/{made['id']}/withdraw")).json["status"] == "draft"

    assert (await ChangeRequest.get(id=change_id)).status == "withdrawn"
    assert (await console.post("hz.admin2", f"/api/v1/admin/change-requests/{change_id}/approve", {})).status == 409


# ---- budget --------------------------------------------------------------------------------------


async def test_the_budget_can_never_be_passed_however_many_reserve_at_once(demo):
    made = await scheduled_campaign(red_packet_terms(count=10, budget_fen=1_000, max_fen=100))

    granted = await asyncio.gather(*(campaigns.reserve_budget(made.id, 30) for _ in range(50)))

    assert sum(granted) == 33  # 33 × 30 = 990 ≤ 1,000 < 34 × 30
    assert (await Campaign.get(id=made.id)).committed_fen == 990
    await campaigns.release_budget(made.id, 30)
    assert (await Campaign.get(id=made.id)).committed_fen == 960
    with pytest.raises(ValueError):
        await campaigns.release_budget(made.id, 10_000)


async def test_live_campaigns_are_the_banks_own_and_the_associations(demo):
    mine = await scheduled_campaign()
    others = await scheduled_campaign(by="ls.marketer")
    later = await scheduled_campaign(red_packet_terms(starts_at=clock.now() + timedelta(hours=1)))
    paused = await scheduled_campaign()
    await campaigns.transition(await staff_actor("hz.marketer"), paused.id, "pause")

    found = await campaigns.live_campaigns(await bank_id("HZRCB"), "red_packet", at=clock.now())

    assert [c.id for c in found] == [mine.id]
    assert others.id not in {c.id for c in await campaigns.live_campaigns(None, "red_packet", at=clock.now())}
    assert later.id in {c.id for c in await campaigns.live_campaigns(await bank_id("HZRCB"), "red_packet", at=clock.now() + timedelta(hours=2))}


async def test_a_customer_sees_the_live_campaigns_of_their_bank_and_channel(app, client, demo):
    everywhere = await scheduled_campaign()
    bank_app_only = await scheduled_campaign(red_packet_terms(channels=("mobile_bank",)))
    customer = await new_customer(bank="HZRCB")
    headers = bearer(await customer_token(app, customer.id, await bank_id("HZRCB")))

    _, answer = await client.get("/api/v1/campaigns", headers=headers)

    assert answer.status == 200, answer.text
    assert [c["id"] for c in answer.json["items"]] == [everywhere.id]
    assert answer.json["items"][0]["packets_left"] == 10
    assert "committed_fen" not in answer.json["items"][0]
    assert bank_app_only.id not in [c["id"] for c in answer.json["items"]]


async def test_a_payout_hold_is_set_over_http_within_a_week(client, demo):
    console = StaffConsole(client)

    held = await console.post("hz.marketer", ADMIN, json_terms(payout_hold_minutes=45))
    too_long = await console.post("hz.marketer", ADMIN, json_terms(payout_hold_minutes=campaigns.MAX_PAYOUT_HOLD_MINUTES + 1))

    assert (held.status, held.json["payout_hold_minutes"]) == (201, 45), held.text
    assert too_long.status == 422
    assert (await Campaign.get(id=held.json["id"])).payout_hold_minutes == 45
    assert await Campaign.all().count() == 1
