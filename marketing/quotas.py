"""Staff-wide marketing (全员营销): quotas per staff member and branch, and the leaderboard.

A quota is set by a bank's admins or marketers for their own bank (association admins for any),
for a month or a quarter (``marketing.performance``). The leaderboard counts, for the period,
what each staff member, branch or bank brought in — a stage counts in the period it was
*reached* (a person bound in October who drew a loan in November is a November disbursement) —
beside its quota, with the attainment of each target in basis points and their mean, and a
rank. It is computed by the database in one query (``infra.sql``): no referral row is loaded.

Credit follows the referral, as the roll-ups do (``marketing.rollups``): a staff member is
credited with the people their own code brought and with those their customers invited
(``staff_credit = "customer"``, shown apart as ``referrals_via_customers``); a branch and a bank
with the referrals bound to them, frozen at binding, so numbers stay true when staff move.
Voided referrals count for no one.
"""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from infra import audit, pii, sql
from infra.actors import Actor
from lending_core import access
from lending_core.org.models import Branch, Staff
from marketing import performance
from marketing.errors import InvalidQuota, QuotaExists
from marketing.models import Quota

MANAGE = "quotas.manage"
READ = "org.read"  # every staff member sees their bank's quotas and leaderboard

TARGETS = ("referrals_target", "applications_target", "approvals_target", "disbursed_target_fen")
MAX_COUNT_TARGET = 1_000_000
MAX_AMOUNT_TARGET_FEN = 10**13  # 100 billion yuan: far above any branch, far below a BIGINT overflow

LEVELS = ("staff", "branch", "bank")
METRICS = ("referrals", "applications", "approvals", "disbursed_loans", "disbursed_fen")
# The attainment of each target, by the metric it measures.
ATTAINED = {"referrals_target": "referrals", "applications_target": "applications", "approvals_target": "approvals", "disbursed_target_fen": "disbursed_fen"}
RANK_BY = ("disbursed_fen", "approvals", "applications", "referrals", "attainment_bps")


# ---- quotas --------------------------------------------------------------------------------------


def _targets(values: dict) -> dict:
    targets = {}
    for name in TARGETS:
        value = values.get(name, 0)
        ceiling = MAX_AMOUNT_TARGET_FEN if name == "disbursed_target_fen" else MAX_COUNT_TARGET
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= ceiling:
            raise InvalidQuota(f"{name} must be a whole number from 0 to {ceiling}", details={"field": name})
        targets[name] = value
    if not any(targets.values()):
        raise InvalidQuota("a quota needs at least one positive target")
    return targets


def _period(label: str) -> str:
    try:
        return performance.period(label).label
    except performance.InvalidPeriod:
        raise InvalidQuota('period must be a month "YYYY-MM" or a quarter "YYYY-Qn"', details={"field": "period"}) from None


async def _owner(actor: Actor, *, staff_id: int | None, branch_id: int | None) -> dict:
    if (staff_id is None) == (branch_id is None):
        raise InvalidQuota("a quota is for one staff member or one branch: give staff_id or branch_id")
    if staff_id is not None:
        staff = await access.get_for_staff(Staff, actor, staff_id, permission=MANAGE)
        if staff.bank_id is None or not staff.is_active:
            raise InvalidQuota("quotas are for active staff of a bank", details={"field": "staff_id"})
        return {"staff_id": staff.id, "branch_id": None, "bank_id": staff.bank_id}
    branch = await access.get_for_staff(Branch, actor, branch_id, permission=MANAGE)
    return {"staff_id": None, "branch_id": branch.id, "bank_id": branch.bank_id}


def _snapshot(quota: Quota) -> dict:
    return {"period": quota.period, "staff_id": quota.staff_id, "branch_id": quota.branch_id, **{name: getattr(quota, name) for name in TARGETS}}


async def create(actor: Actor, *, staff_id: int | None, branch_id: int | None, period: str, targets: dict) -> Quota:
    owner = await _owner(actor, staff_id=staff_id, branch_id=branch_id)
    values = _targets(targets)
    label = _period(period)
    try:
        async with in_transaction():
            quota = await Quota.create(**owner, period=label, set_by_id=int(actor.id), **values)
            await audit.record(actor, "quota.create", "quota", quota.id, bank_id=quota.bank_id, after=_snapshot(quota))
    except IntegrityError:
        raise QuotaExists(details={"period": label}) from None
    return quota


def visible(actor: Actor, *, period: str | None = None, staff_id: int | None = None, branch_id: int | None = None):
    query = access.for_staff(Quota, actor, permission=READ)
    if period is not None:
        query = query.filter(period=_period(period))
    if staff_id is not None:
        query = query.filter(staff_id=staff_id)
    if branch_id is not None:
        query = query.filter(branch_id=branch_id)
    return query


async def get(actor: Actor, quota_id: int) -> Quota:
    return await access.get_for_staff(Quota, actor, quota_id, permission=READ)


async def update(actor: Actor, quota_id: int, changes: dict) -> Quota:
    async with in_transaction():
        found = await access.get_for_staff(Quota, actor, quota_id, permission=MANAGE)
        quota = await Quota.filter(id=found.id).select_for_update().get()
        before = _snapshot(quota)
        values = _targets({**{name: getattr(quota, name) for name in TARGETS}, **changes})
        for name, value in values.items():
            setattr(quota, name, value)
        quota.set_by_id = int(actor.id)
        await quota.save()
        await audit.record(actor, "quota.update", "quota", quota.id, bank_id=quota.bank_id, before=before, after=_snapshot(quota))
    return quota


async def delete(actor: Actor, quota_id: int) -> None:
    async with in_transaction():
        quota = await access.get_for_staff(Quota, actor, quota_id, permission=MANAGE)
        await audit.record(actor, "quota.delete", "quota", quota.id, bank_id=quota.bank_id, before=_snapshot(quota))
        await Quota.filter(id=quota.id).delete()


# ---- leaderboard ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Level:
    """How one level of the leaderboard reads: whose rows, the referral column that credits them,
    and the quota column (none for banks: quotas are for staff and branches)."""

    table: str
    credit_column: str
    quota_column: str | None
    label: str
    branch: str
    bank: str


_LEVELS = {
    "staff": _Level("staff", "inviter_staff_id", "staff_id", "o.username", "o.branch_id", "o.bank_id"),
    "branch": _Level("branch", "branch_id", "branch_id", "o.code", "o.id", "o.bank_id"),
    "bank": _Level("bank", "bank_id", None, "o.code", "CAST(NULL AS BIGINT)", "o.id"),
}


def _in_period(column: str, value: str = "1") -> str:
    return f"CASE WHEN r.{column} >= :since AND r.{column} < :until THEN {value} ELSE 0 END"


def leaderboard_sql(level: str, *, referral_scope: str, owner_scope: str, rank_by: str) -> str:
    """The leaderboard of one level as one query. Scopes are SQL conditions over the referral
    ``r`` and the owner ``o`` (staff, branch or bank); ``rank_by`` is one of ``RANK_BY``."""
    spec = _LEVELS[level]
    activity = ",\n".join(
        [
            f"SUM({_in_period('bound_at')}) AS referrals",
            f"SUM(CASE WHEN r.staff_credit = 'customer' THEN {_in_period('bound_at')} ELSE 0 END) AS referrals_via_customers",
            f"SUM({_in_period('applied_at')}) AS applications",
            f"SUM({_in_period('approved_at')}) AS approvals",
            f"SUM({_in_period('disbursed_at')}) AS disbursed_loans",
            f"CAST(SUM({_in_period('disbursed_at', 'COALESCE(r.disbursed_principal_fen, 0)')}) AS BIGINT) AS disbursed_fen",
        ]
    )
    columns = ("referrals", "referrals_via_customers", "applications", "approvals", "disbursed_loans", "disbursed_fen")
    if spec.quota_column:
        quota_join = f"LEFT JOIN staff_quota q ON q.{spec.quota_column} = o.id AND q.period = :period"
        quota_columns = ", ".join(f"q.{name} AS {name}" for name in TARGETS) + ", q.id AS quota_id"
        listed = "(a.owner_id IS NOT NULL OR (q.id IS NOT NULL AND {owner_scope}))".format(owner_scope=owner_scope)
    else:
        quota_join = ""
        quota_columns = ", ".join(f"CAST(NULL AS BIGINT) AS {name}" for name in TARGETS) + ", CAST(NULL AS BIGINT) AS quota_id"
        listed = "a.owner_id IS NOT NULL"
    # Attainment per target: floor(actual * 10000 / target), none without a positive target.
    attained = {name: f"CASE WHEN {name} > 0 THEN {metric} * 10000 / {name} END" for name, metric in ATTAINED.items()}
    targets_set = " + ".join(f"CASE WHEN {name} > 0 THEN 1 ELSE 0 END" for name in TARGETS)
    mean = f"({' + '.join(f'COALESCE({expr}, 0)' for expr in attained.values())}) / NULLIF({targets_set}, 0)"
    rank_expr = "COALESCE(attainment_bps, -1)" if rank_by == "attainment_bps" else rank_by
    return f"""
WITH activity AS (
    SELECT r.{spec.credit_column} AS owner_id,
{activity}
    FROM invite_referral r
    WHERE r.voided_at IS NULL AND r.{spec.credit_column} IS NOT NULL AND r.bound_at < :until
      AND (r.bound_at >= :since OR r.applied_at >= :since OR r.approved_at >= :since OR r.disbursed_at >= :since)
      AND {referral_scope}
    GROUP BY r.{spec.credit_column}
),
board AS (
    SELECT o.id AS owner_id, {spec.label} AS label, {spec.branch} AS branch_id, {spec.bank} AS bank_id,
           {", ".join(f"COALESCE(a.{c}, 0) AS {c}" for c in columns)},
           {quota_columns}
    FROM {spec.table} o
    LEFT JOIN activity a ON a.owner_id = o.id
    {quota_join}
    WHERE {listed}
),
scored AS (
    SELECT board.*, {", ".join(f"{expr} AS {ATTAINED[name]}_bps" for name, expr in attained.items())},
           {mean} AS attainment_bps
    FROM board
)
SELECT scored.*, RANK() OVER (ORDER BY {rank_expr} DESC) AS rank
FROM scored
ORDER BY rank, owner_id
"""


@dataclass(frozen=True)
class Board:
    level: str
    period: performance.Period
    scope: dict
    rank_by: str
    rows: list[dict]


async def leaderboard(
    actor: Actor,
    *,
    period: str,
    level: str = "staff",
    branch_id: int | None = None,
    bank_id: int | None = None,
    rank_by: str = "disbursed_fen",
) -> Board:
    """The leaderboard of staff, branches or banks for ``period``: within one branch, one bank
    (a bank's staff: always their own), or, for association staff, every bank."""
    access.require(actor, READ)
    if level not in LEVELS or rank_by not in RANK_BY:
        raise InvalidQuota(f"level is one of {LEVELS}, rank_by one of {RANK_BY}")
    span = performance.period(_period(period))
    params = {"since": span.starts_at, "until": span.ends_at, "period": span.label}
    if branch_id is not None:
        branch = await access.get_for_staff(Branch, actor, branch_id, permission=READ)
        scope = {"branch_id": branch.id, "bank_id": branch.bank_id}
        referral_scope, params["branch"], params["bank"] = "r.branch_id = :branch AND r.bank_id = :bank", branch.id, branch.bank_id
        owner_scope = {"staff": "o.branch_id = :branch", "branch": "o.id = :branch", "bank": "o.id = :bank"}[level]
    elif bank_id is not None or not actor.is_association:
        bank = bank_id if bank_id is not None else actor.bank_id
        access.check_bank_visible(actor, bank)
        scope = {"bank_id": bank}
        referral_scope, params["bank"] = "r.bank_id = :bank", bank
        owner_scope = "o.id = :bank" if level == "bank" else "o.bank_id = :bank"
    else:
        scope, referral_scope, owner_scope = {"association": True}, "1 = 1", "1 = 1"
    rows = await sql.fetch_all(leaderboard_sql(level, referral_scope=referral_scope, owner_scope=owner_scope, rank_by=rank_by), **params)
    if level == "staff":
        names = dict(await Staff.filter(id__in=[row["owner_id"] for row in rows]).values_list("id", "name"))
        for row in rows:
            row["name"] = pii.mask_name(names.get(row["owner_id"])) if names.get(row["owner_id"]) else None
    elif level == "branch":
        names = dict(await Branch.filter(id__in=[row["owner_id"] for row in rows]).values_list("id", "name"))
        for row in rows:
            row["name"] = names.get(row["owner_id"])
    return Board(level, span, scope, rank_by, [_row(row) for row in rows])


def _int(value) -> int | None:
    # PostgreSQL hands back numeric sums and divisions as Decimals of whole numbers.
    return None if value is None else int(value)


def _row(row: dict) -> dict:
    quota = None
    if row.get("quota_id") is not None:
        quota = {"id": _int(row["quota_id"]), **{name: _int(row[name]) for name in TARGETS}}
    return {
        "rank": _int(row["rank"]),
        "owner_id": _int(row["owner_id"]),
        "label": row["label"],
        "name": row.get("name"),
        "branch_id": _int(row["branch_id"]),
        "bank_id": _int(row["bank_id"]),
        **{metric: _int(row[metric]) for metric in ("referrals", "referrals_via_customers", *METRICS[1:])},
        "quota": quota,
        "attainment_bps": {
            **{metric: _int(row[f"{metric}_bps"]) for metric in ATTAINED.values()},
            "overall": _int(row["attainment_bps"]),
        },
    }
