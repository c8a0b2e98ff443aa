"""Staff incentives under a campaign's rule: the figures a bank uses in its performance review.

A campaign (typically a QR-share campaign of staff-wide marketing) may carry one incentive rule
(``IncentiveRule``): fen per disbursed loan plus basis points of the amount disbursed, a share of
that for loans to people a staff member's customers invited, and a cap per staff member. A loan
counts when the referral credited to the staff member reached "disbursed" within the campaign's
window (up to now while it runs) at the campaign's bank (any bank for an association-wide one),
and was not voided. The database adds up loans and amounts per staff member in one query; the
amount each earns is ``performance.incentive`` (exact, rounded once half up to the fen, capped).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tortoise.transactions import in_transaction

from infra import audit, clock, pii, sql
from infra.actors import Actor
from infra.errors import NotFound
from lending_core import access
from lending_core.org.models import Staff
from marketing import performance
from marketing.errors import InvalidIncentiveRule, NoIncentiveRule
from marketing.models import Campaign, IncentiveRule

MANAGE = "incentives.manage"
READ = "incentives.read"

MAX_PER_LOAN_FEN = 10_000_000  # 100,000 yuan a loan: anything above is a typing error
MAX_CAP_FEN = 10**12


@dataclass(frozen=True)
class StaffIncentive:
    staff_id: int
    username: str
    name: str | None
    branch_id: int | None
    bank_id: int | None
    direct_loans: int
    direct_fen: int
    indirect_loans: int
    indirect_fen: int
    incentive: performance.Incentive


@dataclass(frozen=True)
class Incentives:
    campaign: Campaign
    rule: IncentiveRule
    window: tuple[datetime, datetime]
    rows: list[StaffIncentive]

    @property
    def total_fen(self) -> int:
        return sum(row.incentive.amount_fen for row in self.rows)


async def _campaign(actor: Actor, campaign_id: int, permission: str, *, writing: bool) -> Campaign:
    """A campaign the caller may see: their bank's, or (to read their own staff's figures) an
    association-wide one. Only association staff change an association-wide campaign's rule."""
    access.require(actor, permission)
    campaign = await Campaign.filter(id=access.as_object_id(campaign_id, NotFound("no such campaign"))).first()
    visible = campaign is not None and (actor.is_association or campaign.bank_id == actor.bank_id or (campaign.bank_id is None and not writing))
    if not visible:
        raise NotFound("no such campaign")
    return campaign


def terms_of(rule: IncentiveRule) -> performance.IncentiveTerms:
    return performance.IncentiveTerms(rule.per_disbursed_loan_fen, rule.disbursed_bps, rule.indirect_share_bps, rule.cap_fen)


def _checked(values: dict) -> dict:
    bounds = {
        "per_disbursed_loan_fen": (0, MAX_PER_LOAN_FEN),
        "disbursed_bps": (0, performance.BPS),
        "indirect_share_bps": (0, performance.BPS),
    }
    for name, (low, high) in bounds.items():
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidIncentiveRule(f"{name} must be a whole number from {low} to {high}", details={"field": name})
    cap = values.get("cap_fen")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or not 1 <= cap <= MAX_CAP_FEN):
        raise InvalidIncentiveRule(f"cap_fen must be a whole number from 1 to {MAX_CAP_FEN}, or null", details={"field": "cap_fen"})
    if not values["per_disbursed_loan_fen"] and not values["disbursed_bps"]:
        raise InvalidIncentiveRule("a rule pays something: per_disbursed_loan_fen or disbursed_bps above zero")
    return values


def _snapshot(rule: IncentiveRule) -> dict:
    return {name: getattr(rule, name) for name in ("per_disbursed_loan_fen", "disbursed_bps", "indirect_share_bps", "cap_fen")}


async def set_rule(actor: Actor, campaign_id: int, *, per_disbursed_loan_fen: int, disbursed_bps: int, indirect_share_bps: int, cap_fen: int | None) -> IncentiveRule:
    """Set (or replace) the campaign's incentive rule. Amounts already shown are recomputed from
    the new rule: a review uses the rule in force when it is run, and the audit trail has the old."""
    campaign = await _campaign(actor, campaign_id, MANAGE, writing=True)
    values = _checked(
        {"per_disbursed_loan_fen": per_disbursed_loan_fen, "disbursed_bps": disbursed_bps, "indirect_share_bps": indirect_share_bps, "cap_fen": cap_fen}
    )
    async with in_transaction():
        rule = await IncentiveRule.filter(campaign_id=campaign.id).select_for_update().first()
        before = _snapshot(rule) if rule else None
        if rule is None:
            rule = await IncentiveRule.create(campaign_id=campaign.id, bank_id=campaign.bank_id, set_by_id=int(actor.id), **values)
        else:
            await IncentiveRule.filter(id=rule.id).update(set_by_id=int(actor.id), **values)
            rule = await IncentiveRule.get(id=rule.id)
        await audit.record(actor, "incentive_rule.set", "campaign", campaign.id, bank_id=campaign.bank_id, before=before, after=values)
    return rule


async def rule_of(actor: Actor, campaign_id: int) -> tuple[Campaign, IncentiveRule]:
    campaign = await _campaign(actor, campaign_id, READ, writing=False)
    rule = await IncentiveRule.filter(campaign_id=campaign.id).first()
    if rule is None:
        raise NoIncentiveRule()
    return campaign, rule


INCENTIVE_SQL = """
SELECT r.inviter_staff_id AS staff_id, s.username AS username, s.branch_id AS branch_id, s.bank_id AS bank_id,
       SUM(CASE WHEN r.staff_credit = 'customer' THEN 0 ELSE 1 END) AS direct_loans,
       CAST(SUM(CASE WHEN r.staff_credit = 'customer' THEN 0 ELSE COALESCE(r.disbursed_principal_fen, 0) END) AS BIGINT) AS direct_fen,
       SUM(CASE WHEN r.staff_credit = 'customer' THEN 1 ELSE 0 END) AS indirect_loans,
       CAST(SUM(CASE WHEN r.staff_credit = 'customer' THEN COALESCE(r.disbursed_principal_fen, 0) ELSE 0 END) AS BIGINT) AS indirect_fen
FROM invite_referral r
JOIN staff s ON s.id = r.inviter_staff_id
WHERE r.voided_at IS NULL AND r.disbursed_at >= :since AND r.disbursed_at < :until AND {scope}
GROUP BY r.inviter_staff_id, s.username, s.branch_id, s.bank_id
"""


async def incentives(actor: Actor, campaign_id: int, *, as_of: datetime | None = None) -> Incentives:
    """Each staff member's incentive under the campaign's rule, most first. A bank's staff see
    their own bank's staff only (also under an association-wide campaign)."""
    campaign, rule = await rule_of(actor, campaign_id)
    until = min(campaign.ends_at, as_of or clock.now())
    conditions, params = ["1 = 1"], {"since": campaign.starts_at, "until": until}
    if campaign.bank_id is not None:
        conditions.append("r.bank_id = :campaign_bank")
        params["campaign_bank"] = campaign.bank_id
    if not actor.is_association:
        conditions.append("r.bank_id = :bank")
        params["bank"] = actor.bank_id
    found = await sql.fetch_all(INCENTIVE_SQL.format(scope=" AND ".join(conditions)), **params) if until > campaign.starts_at else []
    names = dict(await Staff.filter(id__in=[row["staff_id"] for row in found]).values_list("id", "name"))
    terms = terms_of(rule)
    rows = []
    for row in found:
        counts = {key: int(row[key]) for key in ("direct_loans", "direct_fen", "indirect_loans", "indirect_fen")}
        name = names.get(row["staff_id"])
        rows.append(
            StaffIncentive(
                staff_id=int(row["staff_id"]),
                username=row["username"],
                name=pii.mask_name(name) if name else None,
                branch_id=row["branch_id"],
                bank_id=row["bank_id"],
                incentive=performance.incentive(terms, **counts),
                **counts,
            )
        )
    rows.sort(key=lambda r: (-r.incentive.amount_fen, r.staff_id))
    return Incentives(campaign, rule, (campaign.starts_at, until), rows)
