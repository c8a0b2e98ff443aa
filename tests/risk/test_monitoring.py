"""Product monitoring figures against a hand-built book whose rates were worked out by hand (the
expected values below are written out, not recomputed), the PNG charts, and who may see what.

The book (bank HZRCB, product KUAIEDAI unless said), looked at on 15 June 2026:

| loan | drawn | principal | instalments (due → paid) | principal repaid | dpd now |
| --- | --- | --- | --- | --- | --- |
| L1 | 01-10 | 1,200,000 | 02-10…06-10 each paid on its due date | 5 × 100,000 | 0 |
| L2 | 01-20 | 600,000 | 02-20 never paid | 0 | 115 |
| L3 | 02-05 | 400,000 | 02-27 → 04-20, 04-05 → 04-20, 05-05 never | 200,000 on 04-20 | 41 |
| L4 | 02-25 | 300,000 | 03-25 never | 0 | 82 |
| L5 | 03-15 | 500,000 | 04-15, 05-15 paid on time, 06-15 due today | 2 × 100,000 | 0 |
| L6 | 03-01 | 200,000 | 04-01 paid (closed) | 200,000 | closed |
| L7 | 03-20 | 100,000 | 04-20, 05-20 paid on time, 06-05 never | 2 × 20,000 | 10 |
| L8 | 03-05 | 100,000 | 03-31 → 05-10 (closed): exactly 30 days late on 30 April | 100,000 | closed |

plus loans that must not count: one at LSRCB (dpd 200) and one of SHEBAODAI at HZRCB (dpd 95).
"""

from __future__ import annotations

import struct
from datetime import date, datetime, timezone

import pytest

from lending_core.applications.models import Application
from lending_core.contracts.models import Contract
from lending_core.customers.models import Customer
from lending_core.loans.models import Instalment, LoanReceipt, Repayment
from lending_core.org.models import Bank
from lending_core.products.models import Product
from lending_core.risk import monitoring
from lending_core.risk.models import WarningSignal
from tests.support import StaffConsole

AS_OF = date(2026, 6, 15)
PRODUCT, OTHER_PRODUCT = "KUAIEDAI", "SHEBAODAI"
FIGURES = "/api/v1/admin/monitoring/figures"
CHARTS = "/api/v1/admin/monitoring/charts"
QUERY = f"product={PRODUCT}&as_of={AS_OF.isoformat()}&months=6"


@pytest.fixture
def console(client, demo) -> StaffConsole:
    return StaffConsole(client)


@pytest.fixture
async def book(demo) -> dict:
    hz, ls = await Bank.get(code="HZRCB"), await Bank.get(code="LSRCB")
    builder = Book(await Customer.first(), {p.code: p for p in await Product.all()})
    await builder.loan(hz, PRODUCT, "L1", date(2026, 1, 10), 1_200_000, dpd=0, applied=date(2026, 1, 5),
                       instalments=[(date(2026, m, 10), 100_000, date(2026, m, 10)) for m in (2, 3, 4, 5, 6)])
    await builder.loan(hz, PRODUCT, "L2", date(2026, 1, 20), 600_000, dpd=115, applied=date(2026, 1, 6),
                       instalments=[(date(2026, 2, 20), 100_000, None)])
    await builder.loan(hz, PRODUCT, "L3", date(2026, 2, 5), 400_000, dpd=41, applied=date(2026, 2, 1),
                       instalments=[(date(2026, 2, 27), 100_000, date(2026, 4, 20)), (date(2026, 4, 5), 100_000, date(2026, 4, 20)),
                                    (date(2026, 5, 5), 100_000, None)])
    await builder.loan(hz, PRODUCT, "L4", date(2026, 2, 25), 300_000, dpd=82, applied=date(2026, 2, 2),
                       instalments=[(date(2026, 3, 25), 100_000, None)])
    await builder.loan(hz, PRODUCT, "L5", date(2026, 3, 15), 500_000, dpd=0, applied=date(2026, 3, 1),
                       instalments=[(date(2026, 4, 15), 100_000, date(2026, 4, 15)), (date(2026, 5, 15), 100_000, date(2026, 5, 15)),
                                    (date(2026, 6, 15), 100_000, None)])
    await builder.loan(hz, PRODUCT, "L6", date(2026, 3, 1), 200_000, dpd=0, applied=date(2026, 3, 2), closed=True,
                       instalments=[(date(2026, 4, 1), 200_000, date(2026, 4, 1))])
    await builder.loan(hz, PRODUCT, "L7", date(2026, 3, 20), 100_000, dpd=10, applied=date(2026, 3, 3),
                       instalments=[(date(2026, 4, 20), 20_000, date(2026, 4, 20)), (date(2026, 5, 20), 20_000, date(2026, 5, 20)),
                                    (date(2026, 6, 5), 20_000, None)])
    await builder.loan(hz, PRODUCT, "L8", date(2026, 3, 5), 100_000, dpd=0, applied=date(2026, 3, 4), closed=True,
                       instalments=[(date(2026, 3, 31), 100_000, date(2026, 5, 10))])
    # Not of the selection: another bank, another product.
    await builder.loan(ls, PRODUCT, "LS1", date(2026, 1, 15), 999_900, dpd=200, applied=date(2026, 1, 7),
                       instalments=[(date(2025, 11, 27), 100_000, None)])
    await builder.loan(hz, OTHER_PRODUCT, "Q1", date(2026, 2, 10), 250_000, dpd=95, applied=date(2026, 2, 3),
                       instalments=[(date(2026, 3, 12), 50_000, None)])
    # Applications without loans: March 2 rejected; April approved, rejected, in review, withdrawn.
    for status, day in [("rejected", date(2026, 3, 10)), ("rejected", date(2026, 3, 11)), ("approved", date(2026, 4, 2)),
                        ("rejected", date(2026, 4, 3)), ("manual_review", date(2026, 4, 4)), ("withdrawn", date(2026, 4, 5))]:
        await builder.application(hz, PRODUCT, status, day)
    await builder.application(hz, PRODUCT, "approved", date(2025, 12, 20))  # before the six months shown
    await builder.application(ls, PRODUCT, "rejected", date(2026, 3, 12))
    await builder.application(hz, OTHER_PRODUCT, "rejected", date(2026, 3, 13))
    # Warning signals.
    for bank, product, category, severity, status in [
        (hz, PRODUCT, "repayment", "warning", "open"), (hz, PRODUCT, "repayment", "severe", "open"),
        (hz, PRODUCT, "repayment", "watch", "closed"), (hz, PRODUCT, "court", "severe", "open"),
        (ls, PRODUCT, "repayment", "severe", "open"), (hz, OTHER_PRODUCT, "bureau", "warning", "open"),
    ]:
        await builder.signal(bank, product, category, severity, status)
    return {"hz": hz.id, "ls": ls.id}


class Book:
    """Rows of a loan book written straight to the tables the figures read."""

    def __init__(self, customer: Customer, products: dict[str, Product]):
        self.customer, self.products, self.count = customer, products, 0

    async def application(self, bank: Bank, product: str, status: str, day: date) -> Application:
        return await Application.create(
            bank=bank, customer=self.customer, product=self.products[product], product_version=1, channel="wechat_miniprogram",
            amount_fen=1_000_000, term_months=12, repayment_method="equal_instalment", status=status, decision={},
            created_at=datetime(day.year, day.month, day.day, 2, 0, tzinfo=timezone.utc),
        )

    async def loan(self, bank, product, ref, drawn_on, principal, *, dpd, applied, instalments, closed=False) -> LoanReceipt:
        self.count += 1
        application = await self.application(bank, product, "contracted", applied)
        contract = await Contract.create(
            bank=bank, application=application, customer=self.customer, product=self.products[product], product_version=1,
            template="t", limit_fen=principal, rate_bps=400, penalty_rate_bps=600, term_months=12, repayment_method="equal_principal",
            collateral="none", servicing={}, document_html="", document_sha256="0" * 64, status="effective",
            sign_by=datetime(2026, 12, 31, tzinfo=timezone.utc),
        )
        loan = await LoanReceipt.create(
            bank=bank, contract=contract, customer=self.customer, request_key=ref, principal_fen=principal, rate_bps=400,
            penalty_rate_bps=600, term_months=12, repayment_method="equal_principal", day_basis=360, allocation=[],
            early_repayment_fee_bps=0, collateral="none", apr_bps=400, drawn_on=drawn_on, maturity_date=date(2027, 1, 1),
            settlement_account="6200000000", principal_account_id=self.count, interest_account_id=self.count,
            penalty_account_id=self.count, settlement_ledger_account_id=self.count, status="closed" if closed else "active",
            dpd=dpd,
        )
        paid_by_day: dict[date, int] = {}
        for number, (due, amount, paid_on) in enumerate(instalments, start=1):
            await Instalment.create(
                loan=loan, bank_id=bank.id, number=number, due_date=due, principal_fen=amount, interest_fen=0,
                principal_paid_fen=amount if paid_on else 0, status="paid" if paid_on else "overdue", paid_on=paid_on,
            )
            if paid_on:
                paid_by_day[paid_on] = paid_by_day.get(paid_on, 0) + amount
        for day, amount in paid_by_day.items():
            await Repayment.create(
                loan=loan, bank_id=bank.id, payer_customer_id=self.customer.id, source="auto_debit", request_key=f"{ref}-{day}",
                business_date=day, amount_fen=amount, principal_fen=amount, interest_fen=0, penalty_fen=0, fee_fen=0, ledger_key=f"{ref}-{day}",
            )
        return loan

    async def signal(self, bank, product, category, severity, status) -> None:
        self.count += 1
        at = datetime(2026, 6, 1, tzinfo=timezone.utc)
        await WarningSignal.create(
            bank=bank, customer=self.customer, product_code=product, rule_code=f"RULE_{self.count}", category=category,
            severity=severity, source="batch", status=status, first_seen_at=at, last_seen_at=at,
            closed_at=at if status == "closed" else None,
        )


def selection(bank_id: int | None, product: str | None = PRODUCT) -> monitoring.Selection:
    return monitoring.Selection(bank_id=bank_id, product_code=product, as_of=AS_OF, months=6)


# ---- the figures --------------------------------------------------------------------------------


async def test_approval_rate_by_month_counts_final_outcomes(book):
    approvals = await monitoring.approvals(selection(book["hz"]))
    # Approved: 8 contracted loans + 1 approved; rejected 3; in review 1; withdrawn counts in neither.
    assert (approvals["applications"], approvals["approved"], approvals["rejected"], approvals["in_review"]) == (14, 9, 3, 1)
    assert approvals["approval_rate"] == "0.7500"  # 9 / 12
    assert [(m["month"], m["applications"], m["approval_rate"]) for m in approvals["by_month"]] == [
        ("2026-01", 2, "1.0000"), ("2026-02", 2, "1.0000"), ("2026-03", 6, "0.6667"),
        ("2026-04", 4, "0.5000"), ("2026-05", 0, None), ("2026-06", 0, None),
    ]


async def test_overdue_buckets_on_principal_and_on_count(book):
    overdue = await monitoring.overdue_buckets(selection(book["hz"]))
    # Active: L1 700,000 + L2 600,000 + L3 200,000 + L4 300,000 + L5 300,000 + L7 60,000.
    assert (overdue["loans"], overdue["outstanding_fen"]) == (6, 2_160_000)
    assert [(b["bucket"], b["loans"], b["outstanding_fen"], b["principal_rate"], b["count_rate"]) for b in overdue["buckets"]] == [
        ("current", 2, 1_000_000, "0.4630", "0.3333"),
        ("1-30", 1, 60_000, "0.0278", "0.1667"),
        ("31-60", 1, 200_000, "0.0926", "0.1667"),
        ("61-90", 1, 300_000, "0.1389", "0.1667"),
        ("90+", 1, 600_000, "0.2778", "0.1667"),
    ]
    assert (overdue["overdue_loans"], overdue["overdue_fen"], overdue["principal_rate"], overdue["count_rate"]) == (4, 1_160_000, "0.5370", "0.6667")
    default = monitoring.default_of(overdue)
    assert (default["loans"], default["outstanding_fen"], default["principal_rate"], default["count_rate"]) == (1, 600_000, "0.2778", "0.1667")


async def test_vintage_curves_follow_each_cohort_month_by_month(book):
    curves = {c["cohort"]: c for c in await monitoring.vintage(selection(book["hz"]))}
    assert {k: (c["loans"], c["disbursed_fen"]) for k, c in curves.items()} == {
        "2026-01": (2, 1_800_000), "2026-02": (2, 700_000), "2026-03": (4, 900_000),
    }

    def points(cohort):
        return [(p["month_on_book"], p["observed_at"], p["dpd30_fen"], p["dpd30_rate"], p["dpd90_rate"]) for p in curves[cohort]["points"]]

    # January: L2's February instalment is more than 30 days late from 22 March, more than 90 from 22 May.
    assert points("2026-01") == [
        (1, "2026-02-28", 0, "0.0000", "0.0000"),
        (2, "2026-03-31", 600_000, "0.3333", "0.0000"),
        (3, "2026-04-30", 600_000, "0.3333", "0.0000"),
        (4, "2026-05-31", 600_000, "0.3333", "0.3333"),
    ]
    # February: L3 is 32 days late at the end of March and cured on 20 April; L4 is late from April.
    assert points("2026-02") == [
        (1, "2026-03-31", 400_000, "0.5714", "0.0000"),
        (2, "2026-04-30", 300_000, "0.4286", "0.0000"),
        (3, "2026-05-31", 300_000, "0.4286", "0.0000"),
    ]
    # March: L8 is exactly 30 days late on 30 April — not more than 30 — and paid by the end of May.
    assert points("2026-03") == [(1, "2026-04-30", 0, "0.0000", "0.0000"), (2, "2026-05-31", 0, "0.0000", "0.0000")]


async def test_warnings_by_category_and_severity(book):
    warnings = await monitoring.warnings(selection(book["hz"]))
    assert (warnings["open"], warnings["closed"]) == (3, 1)
    assert warnings["by_category"] == [
        {"category": "repayment", "open": 2, "closed": 1, "open_by_severity": {"warning": 1, "severe": 1}},
        {"category": "court", "open": 1, "closed": 0, "open_by_severity": {"severe": 1}},
    ]


async def test_the_association_sees_every_bank_and_every_product(book):
    everything = await monitoring.figures_of(selection(None, None))
    assert everything["overdue"]["loans"] == 8  # six above, the other bank's and the other product's
    assert everything["default"]["loans"] == 3  # L2, LS1, Q1
    assert everything["warnings"]["open"] == 5


# ---- the API ------------------------------------------------------------------------------------


async def test_staff_of_a_bank_get_their_banks_figures(console, book):
    response = await console.get("hz.risk", f"{FIGURES}?{QUERY}")
    assert response.status == 200, response.text
    figures = response.json
    assert (figures["bank_id"], figures["product"], figures["as_of"]) == (book["hz"], PRODUCT, "2026-06-15")
    assert figures["approvals"]["approval_rate"] == "0.7500"
    assert figures["overdue"]["principal_rate"] == "0.5370"
    assert figures["default"]["principal_rate"] == "0.2778"
    assert [c["cohort"] for c in figures["vintage"]] == ["2026-01", "2026-02", "2026-03"]
    assert figures["warnings"]["open"] == 3


async def test_another_banks_staff_are_refused_and_others_need_the_permission(console, book):
    other = await console.get("ls.risk", f"{FIGURES}?bank_id={book['hz']}&{QUERY}")
    assert other.status == 404
    chart = await console.get("ls.risk", f"{CHARTS}/vintage.png?bank_id={book['hz']}&{QUERY}")
    assert chart.status == 404
    assert (await console.get("hz.manager", f"{FIGURES}?{QUERY}")).status == 403
    # LSRCB's own figures are its own: one loan, 90+ days past due.
    own = (await console.get("ls.risk", f"{FIGURES}?{QUERY}")).json
    assert (own["bank_id"], own["overdue"]["loans"], own["default"]["count_rate"]) == (book["ls"], 1, "1.0000")
    association = (await console.get("assoc.admin", f"{FIGURES}?bank_id={book['hz']}&{QUERY}")).json
    assert association["overdue"]["loans"] == 6


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("chart", ["vintage", "overdue", "approvals"])
async def test_charts_are_png_images_of_the_expected_size(console, book, chart):
    from PIL import Image
    import io

    response = await console.get("hz.risk", f"{CHARTS}/{chart}.png?{QUERY}")
    assert response.status == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert png_size(response.content) == (960, 540)
    image = Image.open(io.BytesIO(response.content))
    image.verify()  # the whole file decodes, not only its header
    assert image.size == (960, 540)


async def test_charts_of_an_empty_selection_still_draw_and_unknown_charts_are_not_found(console, demo):
    for chart in ("vintage", "overdue", "approvals"):
        response = await console.get("hz.risk", f"{CHARTS}/{chart}.png?{QUERY}")
        assert response.status == 200 and png_size(response.content) == (960, 540)
    assert (await console.get("hz.risk", f"{CHARTS}/pie.png?{QUERY}")).status == 404
