"""The suspicious-cluster report, for marketers and risk officers: where referral rewards may be
farmed rather than earned.

Velocity limits stop a device or address from scanning too fast (``marketing.service``); this
report looks back at what got through, computed by the database (``infra.sql``):

- ``devices`` and ``networks``: many referees bound from one device, or one network (the keyed
  hash of the /24 or /48 the request came from), within the window;
- ``rings``: cycles in the inviter graph (A invited B, B invited C, C invited A). Binding refuses
  loops, so a ring here means the refusal was raced past, or records were merged into one;
- ``bursts``: one invite code binding many referees within a few minutes.

One signal also acts, before a reward is paid (``marketing.payouts``): a customer on a phone that
more customers use than a family would (``PAYOUT_DEVICE_LIMIT``) is not paid. A farm's first
account on a phone looks like anybody when it wins; by the time its payout is due (a campaign may
hold payouts for a while to make sure of it) the phone holds the farm. Phones an account manager
uses are left out: helping customers sign up on one's own phone is how a rural branch works.

Devices and networks appear as the first characters of their keyed hash: enough to tell clusters
apart and to match them with another report, never enough to recover a device or an address.
A bank's staff see their bank's referrals; association staff every bank's, or one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from tortoise import connections

from infra import clock, sql
from infra.actors import Actor
from lending_core import access

PERMISSION = "marketing.abuse_report"
KEY_PREFIX_CHARS = 16
MAX_MEMBERS = 50


# More customers than this on one phone is a farm's phone, not a family's.
PAYOUT_DEVICE_LIMIT = 3

DEVICE_CROWD_SQL = """
SELECT COUNT(DISTINCT other.owner_id) AS customers
FROM known_device mine
JOIN known_device other ON other.device_hash = mine.device_hash AND other.owner_kind = 'customer'
WHERE mine.owner_kind = 'customer' AND mine.owner_id = :customer
  AND NOT EXISTS (SELECT 1 FROM known_device s WHERE s.device_hash = mine.device_hash AND s.owner_kind = 'staff')
GROUP BY mine.device_hash
ORDER BY customers DESC
LIMIT 1
"""


async def on_a_crowded_device(customer_id: int) -> bool:
    """Whether a phone this customer uses is used by more than ``PAYOUT_DEVICE_LIMIT`` customers
    (this one included), phones an account manager also uses aside."""
    row = await sql.fetch_one(DEVICE_CROWD_SQL, customer=customer_id)
    return row is not None and int(row["customers"]) > PAYOUT_DEVICE_LIMIT


@dataclass(frozen=True)
class Thresholds:
    """What counts as suspicious; a report may be asked with stricter or looser ones."""

    per_device: int = 3
    per_network: int = 10
    burst_count: int = 5
    burst_seconds: int = 600
    ring_max_length: int = 8
    limit: int = 100


@dataclass
class Report:
    scope: dict
    since: datetime
    until: datetime
    thresholds: Thresholds
    devices: list[dict] = field(default_factory=list)
    networks: list[dict] = field(default_factory=list)
    rings: list[dict] = field(default_factory=list)
    bursts: list[dict] = field(default_factory=list)


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("a report window needs timezone-aware times")
    return at.astimezone(timezone.utc)


def _epoch(column: str) -> str:
    """Seconds since 1970 of a timestamp column: the two databases spell it differently."""
    if connections.get("default").capabilities.dialect == "postgres":
        return f"CAST(EXTRACT(EPOCH FROM {column}) AS BIGINT)"
    return f"CAST(strftime('%s', {column}) AS INTEGER)"


def _cluster_sql(column: str, scope: str) -> str:
    return f"""
SELECT r.{column} AS cluster_key, COUNT(*) AS referees, COUNT(DISTINCT r.invite_code_id) AS invite_codes,
       SUM(CASE WHEN r.voided_at IS NOT NULL THEN 1 ELSE 0 END) AS voided,
       SUM(CASE WHEN r.disbursed_at IS NOT NULL THEN 1 ELSE 0 END) AS disbursed,
       MIN(r.bound_at) AS first_at, MAX(r.bound_at) AS last_at
FROM invite_referral r
WHERE r.{column} IS NOT NULL AND r.bound_at >= :since AND r.bound_at < :until AND {scope}
GROUP BY r.{column}
HAVING COUNT(*) >= :threshold
ORDER BY COUNT(*) DESC, r.{column}
LIMIT :limit
"""


def _members_sql(column: str, scope: str, keys: str) -> str:
    return f"""
SELECT m.cluster_key, m.referral_id, m.referee_id, m.inviter_customer_id, m.inviter_staff_id, m.stage, m.voided
FROM (
    SELECT r.{column} AS cluster_key, r.id AS referral_id, r.referee_id, r.inviter_customer_id, r.inviter_staff_id, r.stage,
           CASE WHEN r.voided_at IS NOT NULL THEN 1 ELSE 0 END AS voided,
           ROW_NUMBER() OVER (PARTITION BY r.{column} ORDER BY r.bound_at, r.id) AS n
    FROM invite_referral r
    WHERE r.{column} IN ({keys}) AND r.bound_at >= :since AND r.bound_at < :until AND {scope}
) m
WHERE m.n <= :members
ORDER BY m.cluster_key, m.n
"""


RING_SQL = """
WITH RECURSIVE edge AS (
    SELECT r.inviter_customer_id AS src, r.referee_id AS dst FROM invite_referral r
    WHERE r.inviter_customer_id IS NOT NULL AND {scope}
),
walk (start, node, path, depth) AS (
    SELECT e.src, e.dst, ',' || CAST(e.src AS TEXT) || ',' || CAST(e.dst AS TEXT) || ',', 1
    FROM edge e WHERE e.dst >= e.src
    UNION ALL
    SELECT w.start, e.dst, w.path || CAST(e.dst AS TEXT) || ',', w.depth + 1
    FROM walk w JOIN edge e ON e.src = w.node
    WHERE w.node <> w.start AND w.depth < :max_length AND e.dst >= w.start
      AND (e.dst = w.start OR w.path NOT LIKE '%,' || CAST(e.dst AS TEXT) || ',%')
)
SELECT start, path, depth FROM walk WHERE node = start ORDER BY depth DESC, start LIMIT :limit
"""
# Each referee has one inviter, so a cycle is one closed walk; starting it only at its smallest
# member (every later step stays above the start) finds it exactly once.


def _burst_sql(scope: str) -> str:
    return f"""
WITH bound AS (
    SELECT r.id, r.invite_code_id AS code_id, {_epoch('r.bound_at')} AS t
    FROM invite_referral r
    WHERE r.bound_at >= :since AND r.bound_at < :until AND {scope}
),
windows AS (
    SELECT a.code_id, a.t AS start_t, COUNT(*) AS referees
    FROM bound a JOIN bound c ON c.code_id = a.code_id AND c.t >= a.t AND c.t < a.t + :burst_seconds
    GROUP BY a.id, a.code_id, a.t
    HAVING COUNT(*) >= :burst_count
),
largest AS (
    SELECT w.code_id, w.start_t, w.referees,
           ROW_NUMBER() OVER (PARTITION BY w.code_id ORDER BY w.referees DESC, w.start_t) AS n,
           COUNT(*) OVER (PARTITION BY w.code_id) AS windows
    FROM windows w
)
SELECT l.code_id, l.start_t, l.referees, l.windows, ic.code, ic.owner_kind, ic.customer_id, ic.staff_id, ic.bank_id
FROM largest l JOIN invite_code ic ON ic.id = l.code_id
WHERE l.n = 1
ORDER BY l.referees DESC, l.code_id
LIMIT :limit
"""


async def report(actor: Actor, *, since: datetime | None = None, until: datetime | None = None, bank_id: int | None = None, thresholds: Thresholds = Thresholds()) -> Report:
    access.require(actor, PERMISSION)
    until = _utc(until or clock.now())
    since = _utc(since or until - timedelta(days=30))
    if bank_id is not None or not actor.is_association:
        bank = bank_id if bank_id is not None else actor.bank_id
        access.check_bank_visible(actor, bank)
        scope, params, shown = "r.bank_id = :bank", {"bank": bank}, {"bank_id": bank}
    else:
        scope, params, shown = "1 = 1", {}, {"association": True}
    result = Report(shown, since, until, thresholds)
    window = {**params, "since": since, "until": until}
    for column, threshold, into in (("device_hash", thresholds.per_device, result.devices), ("network_hash", thresholds.per_network, result.networks)):
        into.extend(await _clusters(column, scope, window, threshold, thresholds.limit))
    for row in await sql.fetch_all(RING_SQL.format(scope=scope), **params, max_length=thresholds.ring_max_length, limit=thresholds.limit):
        members = [int(part) for part in row["path"].strip(",").split(",")][:-1]  # the walk ends where it began
        result.rings.append({"length": len(members), "customer_ids": members})
    bursts = await sql.fetch_all(_burst_sql(scope), **window, burst_seconds=thresholds.burst_seconds, burst_count=thresholds.burst_count, limit=thresholds.limit)
    for row in bursts:
        result.bursts.append(
            {
                "invite_code": row["code"],
                "owner_kind": row["owner_kind"],
                "inviter_customer_id": row["customer_id"],
                "inviter_staff_id": row["staff_id"],
                "bank_id": row["bank_id"],
                "referees": int(row["referees"]),
                "within_seconds": thresholds.burst_seconds,
                "starting_at": datetime.fromtimestamp(int(row["start_t"]), tz=timezone.utc),
                "suspicious_windows": int(row["windows"]),
            }
        )
    return result


async def _clusters(column: str, scope: str, window: dict, threshold: int, limit: int) -> list[dict]:
    rows = await sql.fetch_all(_cluster_sql(column, scope), **window, threshold=threshold, limit=limit)
    if not rows:
        return []
    marks, keys = sql.in_list("k", [row["cluster_key"] for row in rows])
    members: dict[str, list[dict]] = {}
    for member in await sql.fetch_all(_members_sql(column, scope, marks), **window, **keys, members=MAX_MEMBERS):
        members.setdefault(member["cluster_key"], []).append(
            {
                "referral_id": member["referral_id"],
                "referee_id": member["referee_id"],
                "inviter_customer_id": member["inviter_customer_id"],
                "inviter_staff_id": member["inviter_staff_id"],
                "stage": member["stage"],
                "voided": bool(member["voided"]),
            }
        )
    return [
        {
            "key_ref": row["cluster_key"][:KEY_PREFIX_CHARS],
            "referees": int(row["referees"]),
            "invite_codes": int(row["invite_codes"]),
            "voided": int(row["voided"]),
            "disbursed": int(row["disbursed"]),
            "first_at": sql.as_datetime(row["first_at"]),
            "last_at": sql.as_datetime(row["last_at"]),
            "referrals": members.get(row["cluster_key"], []),
        }
        for row in rows
    ]
