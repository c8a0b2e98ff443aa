"""Per-channel figures for staff: sign-ins, new customers, applications and approvals by the
door they came through."""

from __future__ import annotations

from datetime import datetime

from tortoise.functions import Count

from channels.models import AuthSession
from infra.actors import Actor
from lending_core import access
from lending_core.applications.models import Application
from lending_core.customers.models import BankRelationship


async def channel_counts(actor: Actor, *, since: datetime, until: datetime) -> dict[str, dict[str, int]]:
    access.require(actor, "customers.read")
    sign_ins = AuthSession.filter(subject_kind="customer", created_at__gte=since, created_at__lt=until)
    arrivals = BankRelationship.filter(created_at__gte=since, created_at__lt=until)
    if not actor.is_association:
        sign_ins = sign_ins.filter(bank_id=actor.bank_id)
        arrivals = arrivals.filter(bank_id=actor.bank_id)
    applied = Application.filter(created_at__gte=since, created_at__lt=until)
    if not actor.is_association:
        applied = applied.filter(bank_id=actor.bank_id)
    approved = applied.filter(status__in=["approved", "contracted"])
    figures: dict[str, dict[str, int]] = {}
    for name, query, field in (
        ("sign_ins", sign_ins, "channel"),
        ("new_customers", arrivals, "first_channel"),
        ("applications", applied, "channel"),
        ("approvals", approved, "channel"),
    ):
        for row in await query.annotate(n=Count("id")).group_by(field).values(field, "n"):
            figures.setdefault(row[field], dict.fromkeys(("sign_ins", "new_customers", "applications", "approvals"), 0))[name] = row["n"]
    return figures
