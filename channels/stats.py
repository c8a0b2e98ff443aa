"""Per-channel figures for staff: sign-ins and new customers by the door they came through.
(Applications and approvals per channel join these once applications exist.)"""

from __future__ import annotations

from datetime import datetime

from tortoise.functions import Count

from channels.models import AuthSession
from infra.actors import Actor
from lending_core import access
from lending_core.customers.models import BankRelationship


async def channel_counts(actor: Actor, *, since: datetime, until: datetime) -> dict[str, dict[str, int]]:
    access.require(actor, "customers.read")
    sign_ins = AuthSession.filter(subject_kind="customer", created_at__gte=since, created_at__lt=until)
    arrivals = BankRelationship.filter(created_at__gte=since, created_at__lt=until)
    if not actor.is_association:
        sign_ins = sign_ins.filter(bank_id=actor.bank_id)
        arrivals = arrivals.filter(bank_id=actor.bank_id)
    figures: dict[str, dict[str, int]] = {}
    for row in await sign_ins.annotate(n=Count("id")).group_by("channel").values("channel", "n"):
        figures.setdefault(row["channel"], {"sign_ins": 0, "new_customers": 0})["sign_ins"] = row["n"]
    for row in await arrivals.annotate(n=Count("id")).group_by("first_channel").values("first_channel", "n"):
        figures.setdefault(row["first_channel"], {"sign_ins": 0, "new_customers": 0})["new_customers"] = row["n"]
    return figures
