"""How far the people a staff member, a branch or a bank brought in got: counts per stage.

A stage counts everyone who reached it or went further (an approved referee was also an
applicant). Voided referrals count for no one and are shown apart. A staff member's numbers
include people invited by customers they brought in (``staff_credit = "customer"``), shown
apart as well. Every query starts from ``lending_core.access``: a bank's staff see their bank.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tortoise.functions import Count, Sum

from infra.actors import Actor
from lending_core import access
from lending_core.org.models import Branch, Staff
from marketing.funnel import STAGES
from marketing.models import InviteReferral

PERMISSION = "org.read"  # every staff member sees their bank's marketing numbers (leaderboards)


@dataclass
class StageCounts:
    registered: int = 0
    applied: int = 0
    approved: int = 0
    disbursed: int = 0
    disbursed_principal_fen: int = 0
    voided: int = 0

    def add(self, stage: str, voided: bool, count: int, principal_fen: int | None) -> None:
        if voided:
            self.voided += count
            return
        for reached in STAGES[: STAGES.index(stage) + 1]:
            setattr(self, reached, getattr(self, reached) + count)
        self.disbursed_principal_fen += principal_fen or 0


@dataclass
class Summary:
    scope: dict
    totals: StageCounts = field(default_factory=StageCounts)
    breakdown_by: str | None = None
    breakdown: dict[int | None, StageCounts] = field(default_factory=dict)
    by_credit: dict[str, StageCounts] = field(default_factory=dict)


async def summary(actor: Actor, *, staff_id: int | None = None, branch_id: int | None = None, bank_id: int | None = None) -> Summary:
    """For one staff member (split by how they got the credit), one branch (by staff member) or
    one bank (by branch); association staff without a bank get every bank (by bank)."""
    query = access.for_staff(InviteReferral, actor, permission=PERMISSION)
    if staff_id is not None:
        staff = await access.get_for_staff(Staff, actor, staff_id, permission=PERMISSION)
        return await _tally(query.filter(inviter_staff_id=staff.id), {"staff_id": staff.id, "bank_id": staff.bank_id}, "staff_credit")
    if branch_id is not None:
        branch = await access.get_for_staff(Branch, actor, branch_id, permission=PERMISSION)
        return await _tally(query.filter(branch_id=branch.id), {"branch_id": branch.id, "bank_id": branch.bank_id}, "inviter_staff_id")
    if bank_id is not None or not actor.is_association:
        bank_id = bank_id if bank_id is not None else actor.bank_id
        access.check_bank_visible(actor, bank_id)
        return await _tally(query.filter(bank_id=bank_id), {"bank_id": bank_id}, "branch_id")
    return await _tally(query, {"association": True}, "bank_id")


async def _tally(query, scope: dict, key: str) -> Summary:
    rows = (
        await query.annotate(n=Count("id"), principal=Sum("disbursed_principal_fen"))
        .group_by(key, "stage", "void_reason")
        .values(key, "stage", "void_reason", "n", "principal")
    )
    result = Summary(scope=scope)
    for row in rows:
        voided, count, principal = row["void_reason"] is not None, int(row["n"]), _fen(row["principal"])
        result.totals.add(row["stage"], voided, count, principal)
        if key == "staff_credit":
            result.by_credit.setdefault(row[key] or "direct", StageCounts()).add(row["stage"], voided, count, principal)
        else:
            result.breakdown.setdefault(row[key], StageCounts()).add(row["stage"], voided, count, principal)
    result.breakdown_by = None if key == "staff_credit" else key
    return result


def _fen(value) -> int:
    # PostgreSQL sums a bigint column as numeric: it comes back as a Decimal of whole fen.
    return int(value) if value is not None else 0
