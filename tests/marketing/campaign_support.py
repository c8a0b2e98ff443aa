"""Campaigns for the campaign and red-packet tests: made through the service as a marketer would."""

from __future__ import annotations

from datetime import datetime, timedelta

from infra import clock
from infra.actors import Actor
from lending_core.org import service as org
from lending_core.org.models import Bank, Staff
from marketing import campaigns
from marketing.models import Campaign

ADMIN = "/api/v1/admin/campaigns"
THRESHOLDS = campaigns.ApprovalThresholds(default_fen=5_000_000)


async def staff_actor(username: str) -> Actor:
    return org.staff_actor(await Staff.get(username=username))


async def bank_id(code: str = "HZRCB") -> int:
    return (await Bank.get(code=code)).id


def red_packet_terms(
    *,
    count: int = 10,
    budget_fen: int = 1_000,
    min_fen: int = 30,
    max_fen: int = 200,
    per_person: int = 1,
    per_day: int = 1,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    channels: tuple[str, ...] = (),
) -> campaigns.Terms:
    now = clock.now()
    return campaigns.Terms(
        kind="red_packet",
        name="春节红包",
        starts_at=starts_at or now - timedelta(minutes=1),
        ends_at=ends_at or now + timedelta(days=1),
        budget_fen=budget_fen,
        per_person_limit=per_person,
        per_day_limit=per_day,
        channels=channels,
        packet_count=count,
        packet_min_fen=min_fen,
        packet_max_fen=max_fen,
    )


async def scheduled_campaign(terms: campaigns.Terms | None = None, *, by: str = "hz.marketer") -> Campaign:
    """A red-packet campaign submitted under the approval threshold: scheduled (live once started)."""
    actor = await staff_actor(by)
    created = await campaigns.create(actor, terms or red_packet_terms())
    return await campaigns.submit(actor, created.id, thresholds=THRESHOLDS)


def json_terms(**overrides) -> dict:
    now = clock.now()
    body = {
        "kind": "red_packet",
        "name": "春节红包",
        "starts_at": (now + timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(days=7)).isoformat(),
        "budget_fen": 100_000,
        "per_person_limit": 1,
        "per_day_limit": 1,
        "packet_count": 100,
        "packet_min_fen": 100,
        "packet_max_fen": 5_000,
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}
