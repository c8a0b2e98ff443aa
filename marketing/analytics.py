"""Marketing analytics per campaign, channel, branch or staff member: scans, registrations,
applications, approvals, loans and amount disbursed, cost so far and cost per disbursed loan,
for the console (JSON) and as a CSV export. One query per report (``infra.sql``).

What counts, over the window [since, until):
- a scan is a touch that is not a login (``InviteTouch``) made in the window;
- registrations, applications, approvals and disbursements are referral stages reached in the
  window (as on the leaderboard), voided referrals excluded;
- cost so far is the rewards granted in the window and not returned (``Reward``), whatever
  their payout's state: the budget is committed when a reward is granted.

What each dimension means:
- campaign: the referral's and the reward's campaign. A scan names no campaign, so a campaign is
  shown the scans of its bank's codes (any bank's, if association-wide) made while it ran: the
  scans of overlapping campaigns overlap;
- channel: how the referee first saw the code (qr, wxacode, poster, share_card, link, or login
  when the first touch was the login itself); rewards without a referral (red packets) have none;
- branch and staff member: the referral's credit (frozen at binding, customers' invitations
  included); scans of a staff member's own code, at the branch they are in now.
Rows without a key (a reward without a referral, a scan of a customer's code) are kept, keyed null.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from fractions import Fraction

from infra import clock, money, pii, sql
from infra.actors import Actor
from infra.errors import InvalidInput
from lending_core import access
from lending_core.org.models import Branch, Staff
from marketing.errors import CampaignNotFound
from marketing.models import Campaign
from marketing.performance import round_half_up

PERMISSION = "marketing.analytics"
DIMENSIONS = ("campaign", "channel", "branch", "staff")
METRICS = ("scans", "registrations", "applications", "approvals", "disbursed_loans", "disbursed_fen", "cost_fen")
MAX_WINDOW = timedelta(days=366)


@dataclass(frozen=True)
class _Dimension:
    scan_key: str
    scan_joins: str
    referral_key: str
    referral_joins: str
    reward_key: str
    reward_joins: str


_FIRST_TOUCH = "LEFT JOIN invite_touch ft ON ft.id = r.first_touch_id"
_DIMENSIONS = {
    "campaign": _Dimension(
        "c.id",
        "JOIN campaign c ON (c.bank_id IS NULL OR c.bank_id = ic.bank_id) AND t.at >= c.starts_at AND t.at < c.ends_at",
        "r.campaign_id",
        "",
        "w.campaign_id",
        "",
    ),
    "channel": _Dimension("t.channel", "", "COALESCE(ft.channel, r.channel)", _FIRST_TOUCH, "COALESCE(ft.channel, r.channel)", _FIRST_TOUCH),
    "branch": _Dimension("s.branch_id", "LEFT JOIN staff s ON s.id = ic.staff_id", "r.branch_id", "", "r.branch_id", ""),
    "staff": _Dimension("ic.staff_id", "", "r.inviter_staff_id", "", "r.inviter_staff_id", ""),
}


def _reached(column: str, value: str = "1") -> str:
    return f"CASE WHEN r.{column} >= :since AND r.{column} < :until THEN {value} ELSE 0 END"


def analytics_sql(by: str, *, scan_scope: str, referral_scope: str, reward_scope: str) -> str:
    d = _DIMENSIONS[by]
    return f"""
SELECT k, SUM(scans) AS scans, SUM(registrations) AS registrations, SUM(applications) AS applications,
       SUM(approvals) AS approvals, SUM(disbursed_loans) AS disbursed_loans,
       CAST(SUM(disbursed_fen) AS BIGINT) AS disbursed_fen, CAST(SUM(cost_fen) AS BIGINT) AS cost_fen
FROM (
    SELECT {d.scan_key} AS k, COUNT(*) AS scans, 0 AS registrations, 0 AS applications, 0 AS approvals,
           0 AS disbursed_loans, CAST(0 AS BIGINT) AS disbursed_fen, CAST(0 AS BIGINT) AS cost_fen
    FROM invite_touch t JOIN invite_code ic ON ic.id = t.invite_code_id {d.scan_joins}
    WHERE t.channel <> 'login' AND t.at >= :since AND t.at < :until AND {scan_scope}
    GROUP BY {d.scan_key}
    UNION ALL
    SELECT {d.referral_key} AS k, 0, SUM({_reached('bound_at')}), SUM({_reached('applied_at')}), SUM({_reached('approved_at')}),
           SUM({_reached('disbursed_at')}),
           CAST(SUM({_reached('disbursed_at', 'COALESCE(r.disbursed_principal_fen, 0)')}) AS BIGINT), CAST(0 AS BIGINT)
    FROM invite_referral r {d.referral_joins}
    WHERE r.voided_at IS NULL AND r.bound_at < :until
      AND (r.bound_at >= :since OR r.applied_at >= :since OR r.approved_at >= :since OR r.disbursed_at >= :since)
      AND {referral_scope}
    GROUP BY {d.referral_key}
    UNION ALL
    SELECT {d.reward_key} AS k, 0, 0, 0, 0, 0, CAST(0 AS BIGINT), CAST(SUM(w.amount_fen) AS BIGINT)
    FROM reward w LEFT JOIN invite_referral r ON r.id = w.referral_id {d.reward_joins}
    WHERE w.status <> 'returned' AND w.created_at >= :since AND w.created_at < :until AND {reward_scope}
    GROUP BY {d.reward_key}
) u
GROUP BY k
ORDER BY k
"""


@dataclass(frozen=True)
class Analytics:
    by: str
    scope: dict
    since: datetime
    until: datetime
    rows: list[dict]


def cost_per_loan(cost_fen: int, loans: int) -> int | None:
    """Cost per disbursed loan, rounded half up to the fen (none without a loan)."""
    return round_half_up(Fraction(cost_fen, loans)) if loans else None


def _window(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    until = until or clock.now()
    since = since or until - timedelta(days=30)
    if since.tzinfo is None or until.tzinfo is None:
        raise InvalidInput("since and until need a time zone")
    if not since < until or until - since > MAX_WINDOW:
        raise InvalidInput("since must come before until, at most 366 days apart", details={"fields": ["since", "until"]})
    return since.astimezone(timezone.utc), until.astimezone(timezone.utc)


async def analytics(actor: Actor, *, by: str, since: datetime | None = None, until: datetime | None = None, bank_id: int | None = None) -> Analytics:
    access.require(actor, PERMISSION)
    if by not in DIMENSIONS:
        raise InvalidInput(f"by is one of {DIMENSIONS}")
    since, until = _window(since, until)
    params: dict = {"since": since, "until": until}
    if bank_id is not None or not actor.is_association:
        bank = bank_id if bank_id is not None else actor.bank_id
        access.check_bank_visible(actor, bank)
        params["bank"], scope = bank, {"bank_id": bank}
        scopes = {"scan_scope": "ic.bank_id = :bank", "referral_scope": "r.bank_id = :bank", "reward_scope": "COALESCE(w.bank_id, r.bank_id) = :bank"}
    else:
        scope = {"association": True}
        scopes = {"scan_scope": "1 = 1", "referral_scope": "1 = 1", "reward_scope": "1 = 1"}
    found = await sql.fetch_all(analytics_sql(by, **scopes), **params)
    labels = await _labels(by, [row["k"] for row in found if row["k"] is not None])
    return Analytics(by, scope, since, until, [_row(row, labels, by) for row in found])


def _row(row, labels: dict, by: str) -> dict:
    counts = {metric: int(row[metric] or 0) for metric in METRICS}
    return {
        "key": row["k"] if by == "channel" or row["k"] is None else int(row["k"]),
        "label": labels.get(row["k"]),
        **counts,
        "cost_per_disbursed_loan_fen": cost_per_loan(counts["cost_fen"], counts["disbursed_loans"]),
    }


async def _labels(by: str, keys: list) -> dict:
    if by == "campaign":
        return dict(await Campaign.filter(id__in=keys).values_list("id", "name"))
    if by == "branch":
        return {id_: f"{code} {name}" for id_, code, name in await Branch.filter(id__in=keys).values_list("id", "code", "name")}
    if by == "staff":
        return {id_: f"{username} {pii.mask_name(name)}" for id_, username, name in await Staff.filter(id__in=keys).values_list("id", "username", "name")}
    return {}



# ---- one campaign --------------------------------------------------------------------------------

CAMPAIGN_DIMENSIONS = ("branch", "staff")


async def campaign_analytics(actor: Actor, campaign_id, *, by: str, at: datetime | None = None) -> Analytics:
    """One campaign's figures per branch or staff member (its leaderboard; the rows sum to its
    funnel), from its start up to ``at`` (default now).

    A referral counts towards the campaign it names, or, naming none, towards every campaign that
    ran for its bank when it was bound — as milestone rewards attribute it — and its later stages
    count whenever reached, so an application made after the campaign ended still shows. Scans are
    of the bank's codes while the campaign ran (as in ``analytics``); cost is the campaign's rewards."""
    access.require(actor, PERMISSION)
    if by not in CAMPAIGN_DIMENSIONS:
        raise InvalidInput(f"by is one of {CAMPAIGN_DIMENSIONS}")
    found = await access.for_staff(Campaign, actor, permission=PERMISSION).filter(
        id=access.as_object_id(campaign_id, CampaignNotFound())
    ).first()
    if found is None:
        raise CampaignNotFound()
    since, until = found.starts_at.astimezone(timezone.utc), (at or clock.now()).astimezone(timezone.utc)
    params: dict = {"since": since, "until": until, "ends": found.ends_at, "campaign": found.id}
    in_bank = {"scan": "1 = 1", "referral": "1 = 1"}
    if found.bank_id is not None:
        params["bank"] = found.bank_id
        in_bank = {"scan": "ic.bank_id = :bank", "referral": "r.bank_id = :bank"}
    scopes = {
        "scan_scope": f"{in_bank['scan']} AND t.at < :ends",
        "referral_scope": f"{in_bank['referral']} AND (r.campaign_id = :campaign OR (r.campaign_id IS NULL AND r.bound_at >= :since AND r.bound_at < :ends))",
        "reward_scope": "w.campaign_id = :campaign",
    }
    rows = await sql.fetch_all(analytics_sql(by, **scopes), **params)
    labels = await _labels(by, [row["k"] for row in rows if row["k"] is not None])
    return Analytics(by, {"campaign_id": found.id, "bank_id": found.bank_id}, since, until, [_row(row, labels, by) for row in rows])


def totals(rows: list[dict]) -> dict:
    """The rows added up: a campaign's funnel from its leaderboard."""
    summed = {metric: sum(row[metric] for row in rows) for metric in METRICS}
    return {**summed, "cost_per_disbursed_loan_fen": cost_per_loan(summed["cost_fen"], summed["disbursed_loans"])}


# ---- CSV -----------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "key",
    "label",
    "scans",
    "registrations",
    "applications",
    "approvals",
    "disbursed_loans",
    "disbursed_fen",
    "disbursed_yuan",
    "cost_fen",
    "cost_yuan",
    "cost_per_disbursed_loan_fen",
)
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> str | int:
    """A value as a CSV cell: numbers as they are, text that a spreadsheet would run as a formula
    prefixed with an apostrophe so it is shown as text."""
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def to_csv(result: Analytics) -> str:
    """The report as CSV (RFC 4180 quoting, CRLF line ends), with a byte-order mark so that a
    spreadsheet opens the Chinese names as UTF-8."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow([f"{result.by}_{column}" if column in ("key", "label") else column for column in CSV_COLUMNS])
    for row in result.rows:
        values = {**row, "disbursed_yuan": money.yuan_text(row["disbursed_fen"]), "cost_yuan": money.yuan_text(row["cost_fen"])}
        writer.writerow([safe_cell(values[column]) for column in CSV_COLUMNS])
    return out.getvalue()
