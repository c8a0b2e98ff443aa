"""Product monitoring (M19): the figures a risk meeting looks at, per product and bank, computed
in SQL over the applications, the loan book and the warning signals.

- approvals: applications by month of submission; the approval rate is approved ÷ decided, where
  approved is the final outcome (approved, contracted, or lapsed after approval) and decided
  adds the rejections; withdrawn and still-in-review applications count in neither.
- overdue: active loans by days past due (the daily job's ``dpd``) in buckets current, 1–30,
  31–60, 61–90, 90+; each bucket's share of outstanding principal and of the number of loans.
- default: active loans more than 90 days past due, by principal and by count.
- vintage: each monthly cohort of drawdowns, at the end of each later month (month on book 1, 2,
  …): the share of the cohort's disbursed principal that was outstanding on loans more than 30
  (and more than 90) days past due then. Days past due at a past date are rebuilt from the
  instalments (the oldest instalment due before it and not paid by it), outstanding principal
  from the repayments made by it — so a cured loan counts while it was late, not after.
- warnings: signals by category, open and closed, open ones by severity.

Outstanding principal is the drawn principal less the principal repaid (the repayment rows mirror
the ledger's principal account). Rates are exact decimal strings (4 places); None when there is
nothing to divide by. Months are the bank's calendar months (Asia/Shanghai).
"""

from __future__ import annotations

import asyncio
import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from tortoise.expressions import Q

from infra import clock, sql
from infra.actors import Actor
from infra.errors import NotFound
from lending_core import access
from lending_core.ledger.bulk import is_postgres

BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")
APPROVED = ("approved", "contracted", "lapsed")
REJECTED = "rejected"
IN_REVIEW = "manual_review"
VINTAGE_THRESHOLDS = (30, 90)  # more than this many days past due
DEFAULT_DPD = 90
MAX_MONTHS = 36
RATE_PLACES = Decimal("0.0001")
CHARTS = ("vintage", "overdue", "approvals")


class ChartNotFound(NotFound):
    """No such chart (vintage, overdue, approvals)."""


@dataclass(frozen=True)
class Selection:
    """What the figures are of: one bank or all (None), one product or all (None)."""

    bank_id: int | None
    product_code: str | None
    as_of: date
    months: int = 12


def rate(part: int, whole: int) -> str | None:
    if not whole:
        return None
    return str((Decimal(part) / Decimal(whole)).quantize(RATE_PLACES, rounding=ROUND_HALF_UP))


def selection_for(actor: Actor, *, bank_id: int | None, product_code: str | None, as_of: date | None = None, months: int = 12) -> Selection:
    """Staff of a bank see their bank's figures (another bank's is not found); association staff
    see one bank's or, with no bank, the whole association's."""
    access.require(actor, "monitoring.read")
    if bank_id is None and not actor.is_association:
        bank_id = actor.bank_id
    access.check_bank_visible(actor, bank_id)
    return Selection(
        bank_id=bank_id,
        product_code=product_code.upper() if product_code else None,
        as_of=as_of or clock.business_date(),
        months=max(1, min(months, MAX_MONTHS)),
    )


async def products(actor: Actor) -> list[dict]:
    """The products whose figures the staff member may choose among: the published products
    their bank may offer (the province-wide ones and its own); every one for association staff.
    Each as {code, name} by code."""
    from lending_core.products.models import Product, ProductVersion

    access.require(actor, "monitoring.read")
    query = Product.filter(published_version__not_isnull=True)
    if not actor.is_association:
        query = query.filter(Q(owner_bank_id__isnull=True) | Q(owner_bank_id=actor.bank_id))
    found = []
    for product in await query.order_by("code"):
        published = await ProductVersion.filter(product_id=product.id, version=product.published_version).only("definition").first()
        found.append({"code": product.code, "name": (published.definition or {}).get("name", product.code) if published else product.code})
    return found


async def figures(actor: Actor, *, bank_id: int | None = None, product_code: str | None = None, as_of: date | None = None, months: int = 12) -> dict:
    """Every figure for the selection, as JSON for the console."""
    chosen = selection_for(actor, bank_id=bank_id, product_code=product_code, as_of=as_of, months=months)
    return await figures_of(chosen)


async def figures_of(chosen: Selection) -> dict:
    overdue = await overdue_buckets(chosen)
    return {
        "bank_id": chosen.bank_id,
        "product": chosen.product_code,
        "as_of": chosen.as_of.isoformat(),
        "approvals": await approvals(chosen),
        "overdue": overdue,
        "default": default_of(overdue),
        "vintage": await vintage(chosen),
        "warnings": await warnings(chosen),
    }


async def chart_png(actor: Actor, chart: str, *, bank_id: int | None = None, product_code: str | None = None, as_of: date | None = None, months: int = 12) -> bytes:
    """One chart of the selection's figures as a PNG (drawn off the event loop)."""
    if chart not in CHARTS:
        raise ChartNotFound()
    from lending_core.risk import charts  # matplotlib loads only when a chart is asked for

    draw = charts.CHARTS[chart]
    chosen = selection_for(actor, bank_id=bank_id, product_code=product_code, as_of=as_of, months=months)
    return await asyncio.to_thread(draw, await figures_of(chosen))


# ---- the queries --------------------------------------------------------------------------------


def _filters(chosen: Selection, *, bank: str, product: str) -> tuple[str, dict]:
    clauses, params = [], {}
    if chosen.bank_id is not None:
        clauses.append(f"{bank} = :bank")
        params["bank"] = chosen.bank_id
    if chosen.product_code is not None:
        clauses.append(f"{product} = :product")
        params["product"] = chosen.product_code
    return "".join(f" AND {c}" for c in clauses), params


def _month_of(column: str, *, timestamp: bool) -> str:
    """'YYYY-MM' of a date column, or of a UTC timestamp column in the bank's time zone."""
    if is_postgres():
        return f"to_char({column} AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM')" if timestamp else f"to_char({column}, 'YYYY-MM')"
    return f"substr(datetime({column}, '+8 hours'), 1, 7)" if timestamp else f"substr({column}, 1, 7)"


def _first_month(chosen: Selection) -> date:
    """The first day of the earliest month shown (``months`` months up to ``as_of``'s)."""
    index = chosen.as_of.year * 12 + chosen.as_of.month - 1 - (chosen.months - 1)
    return date(index // 12, index % 12 + 1, 1)


def _month_label(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _months_between(cohort: str, day: date) -> int:
    year, month = map(int, cohort.split("-"))
    return (day.year * 12 + day.month) - (year * 12 + month)


async def approvals(chosen: Selection) -> dict:
    where, params = _filters(chosen, bank="a.bank_id", product="p.code")
    month = _month_of("a.created_at", timestamp=True)
    approved = ", ".join(f"'{s}'" for s in APPROVED)
    rows = await sql.fetch_all(
        f"""SELECT {month} AS month, COUNT(*) AS applications,
                   SUM(CASE WHEN a.status IN ({approved}) THEN 1 ELSE 0 END) AS approved,
                   SUM(CASE WHEN a.status = '{REJECTED}' THEN 1 ELSE 0 END) AS rejected,
                   SUM(CASE WHEN a.status = '{IN_REVIEW}' THEN 1 ELSE 0 END) AS in_review
            FROM application a JOIN product p ON p.id = a.product_id
            WHERE {month} >= :first AND {month} <= :last{where}
            GROUP BY {month} ORDER BY {month}""",
        first=_month_label(_first_month(chosen)), last=_month_label(chosen.as_of), **params,
    )
    by_month = {row["month"]: row for row in rows}
    series = []
    totals = {"applications": 0, "approved": 0, "rejected": 0, "in_review": 0}
    for label in _labels(_first_month(chosen), chosen.as_of):
        row = by_month.get(label, {})
        point = {key: int(row.get(key) or 0) for key in totals}
        for key in totals:
            totals[key] += point[key]
        series.append({"month": label, **point, "approval_rate": rate(point["approved"], point["approved"] + point["rejected"])})
    return {**totals, "approval_rate": rate(totals["approved"], totals["approved"] + totals["rejected"]), "by_month": series}


def _labels(first: date, last: date) -> list[str]:
    labels, year, month = [], first.year, first.month
    while (year, month) <= (last.year, last.month):
        labels.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return labels


def _book_sql(where: str, *, at: str | None = None) -> str:
    """Loans of the selection with their product and outstanding principal (by ``:at`` if given)."""
    by = f" AND r.business_date <= {at}" if at else ""
    return f"""SELECT l.id, l.bank_id, p.code AS product, l.dpd, l.principal_fen, l.drawn_on,
                      l.principal_fen - COALESCE((SELECT SUM(r.principal_fen) FROM loan_repayment r
                                                  WHERE r.loan_id = l.id{by}), 0) AS outstanding_fen
               FROM loan_receipt l JOIN contract c ON c.id = l.contract_id JOIN product p ON p.id = c.product_id
               WHERE 1 = 1{where}"""


async def overdue_buckets(chosen: Selection) -> dict:
    where, params = _filters(chosen, bank="l.bank_id", product="p.code")
    rows = await sql.fetch_all(
        f"""SELECT CASE WHEN b.dpd <= 0 THEN 'current' WHEN b.dpd <= 30 THEN '1-30' WHEN b.dpd <= 60 THEN '31-60'
                        WHEN b.dpd <= 90 THEN '61-90' ELSE '90+' END AS bucket,
                   COUNT(*) AS loans, SUM(b.outstanding_fen) AS outstanding_fen
            FROM ({_book_sql(where + " AND l.status = 'active'")}) b
            GROUP BY 1""",
        **params,
    )
    found = {row["bucket"]: (int(row["loans"]), int(row["outstanding_fen"] or 0)) for row in rows}
    loans = sum(n for n, _ in found.values())
    outstanding = sum(fen for _, fen in found.values())
    buckets = []
    for name in BUCKETS:
        n, fen = found.get(name, (0, 0))
        buckets.append({"bucket": name, "loans": n, "outstanding_fen": fen, "principal_rate": rate(fen, outstanding), "count_rate": rate(n, loans)})
    overdue = [b for b in buckets if b["bucket"] != "current"]
    overdue_loans, overdue_fen = sum(b["loans"] for b in overdue), sum(b["outstanding_fen"] for b in overdue)
    return {
        "loans": loans,
        "outstanding_fen": outstanding,
        "overdue_loans": overdue_loans,
        "overdue_fen": overdue_fen,
        "principal_rate": rate(overdue_fen, outstanding),
        "count_rate": rate(overdue_loans, loans),
        "buckets": buckets,
    }


def default_of(overdue: dict) -> dict:
    """Active loans more than 90 days past due (the 90+ bucket): the default rate."""
    worst = next(b for b in overdue["buckets"] if b["bucket"] == "90+")
    return {
        "dpd_over": DEFAULT_DPD,
        "loans": worst["loans"],
        "outstanding_fen": worst["outstanding_fen"],
        "principal_rate": rate(worst["outstanding_fen"], overdue["outstanding_fen"]),
        "count_rate": rate(worst["loans"], overdue["loans"]),
    }


async def vintage(chosen: Selection) -> list[dict]:
    """One curve per monthly cohort of drawdowns within the selection's months."""
    first = _first_month(chosen)
    where, params = _filters(chosen, bank="l.bank_id", product="p.code")
    cohort_month = _month_of("b.drawn_on", timestamp=False)
    cohorts = await sql.fetch_all(
        f"""SELECT {cohort_month} AS cohort, COUNT(*) AS loans, SUM(b.principal_fen) AS disbursed_fen
            FROM ({_book_sql(where + " AND l.drawn_on >= :first AND l.drawn_on <= :as_of")}) b
            GROUP BY 1 ORDER BY 1""",
        first=first, as_of=chosen.as_of, **params,
    )
    curves = {row["cohort"]: {"cohort": row["cohort"], "loans": int(row["loans"]), "disbursed_fen": int(row["disbursed_fen"]), "points": []} for row in cohorts}
    if not curves:
        return []
    late = {
        threshold: f"""EXISTS (SELECT 1 FROM loan_instalment i WHERE i.loan_id = b.id AND i.due_date < :late_{threshold}
                               AND (i.paid_on IS NULL OR i.paid_on > :at))"""
        for threshold in VINTAGE_THRESHOLDS
    }
    sums = ", ".join(f"SUM(CASE WHEN {condition} THEN b.outstanding_fen ELSE 0 END) AS dpd{t}_fen" for t, condition in late.items())
    counts = ", ".join(f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END) AS dpd{t}_loans" for t, condition in late.items())
    # One query per month end: the month ends are few (≤ MAX_MONTHS), the loans many.
    for label in _labels(first, chosen.as_of):
        year, month = map(int, label.split("-"))
        at = _month_end(year, month)
        if at > chosen.as_of:
            break
        rows = await sql.fetch_all(
            f"""SELECT {cohort_month} AS cohort, {sums}, {counts}
                FROM ({_book_sql(where + " AND l.drawn_on >= :first AND l.drawn_on <= :at", at=":at")}) b
                GROUP BY 1""",
            first=first, at=at, **{f"late_{t}": at - timedelta(days=t) for t in VINTAGE_THRESHOLDS}, **params,
        )
        for row in rows:
            curve = curves.get(row["cohort"])
            mob = _months_between(row["cohort"], at)
            if curve is None or mob < 1:
                continue
            point = {"month_on_book": mob, "observed_at": at.isoformat()}
            for t in VINTAGE_THRESHOLDS:
                fen = int(row[f"dpd{t}_fen"] or 0)
                point[f"dpd{t}_fen"] = fen
                point[f"dpd{t}_loans"] = int(row[f"dpd{t}_loans"] or 0)
                point[f"dpd{t}_rate"] = rate(fen, curve["disbursed_fen"])
            curve["points"].append(point)
    return list(curves.values())


async def warnings(chosen: Selection) -> dict:
    """Warning signals of the selection by category: open and closed, open ones by severity."""
    where, params = _filters(chosen, bank="s.bank_id", product="s.product_code")
    rows = await sql.fetch_all(
        f"""SELECT s.category, s.status, s.severity, COUNT(*) AS n FROM warning_signal s
            WHERE 1 = 1{where} GROUP BY s.category, s.status, s.severity""",
        **params,
    )
    by_category: dict[str, dict] = {}
    for row in rows:
        entry = by_category.setdefault(row["category"], {"category": row["category"], "open": 0, "closed": 0, "open_by_severity": {}})
        n = int(row["n"])
        if row["status"] == "open":
            entry["open"] += n
            entry["open_by_severity"][row["severity"]] = entry["open_by_severity"].get(row["severity"], 0) + n
        else:
            entry["closed"] += n
    categories = sorted(by_category.values(), key=lambda e: (-e["open"], e["category"]))
    return {"open": sum(e["open"] for e in categories), "closed": sum(e["closed"] for e in categories), "by_category": categories}
