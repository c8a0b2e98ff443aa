"""What the risk officer's console page reads besides the task workflow: a task's detail with its
signal and the rule's suggested disposal, the task list naming each task's loan and rule, a
signal's rule, and the products a member of staff may choose in product monitoring — each only
within the caller's bank."""

from __future__ import annotations

from infra import clock
from lending_core.risk import batch, signals
from lending_core.risk.models import DisposalTask
from tests.risk.book import real_loan
from tests.support import bearer, staff_token

RISK = "/api/v1/admin/risk"


async def raise_for(loan, rule_code: str, *, category: str, severity: str, source: str):
    return await signals.raise_signal(bank_id=loan.bank_id, customer_id=loan.customer_id, loan_id=loan.id, product_code="SHUIYITONG",
                                      rule_code=rule_code, category=category, severity=severity, source=source,
                                      facts={"repayment.days_past_due": 35}, at=clock.now())


async def test_a_tasks_detail_carries_its_signal_and_the_rules_suggested_disposal(demo, client):
    loan, *_ = await real_loan()
    rule = batch.shipped_library()["REP_OVERDUE_30"]
    signal = await raise_for(loan, rule.code, category=rule.category, severity=rule.severity, source="batch")
    task = await DisposalTask.get(signal_id=signal.id)
    token = await staff_token(client, "hz.risk")

    _, detail = await client.get(f"{RISK}/tasks/{task.id}", headers=bearer(token))

    assert detail.status == 200, detail.text
    assert (detail.json["id"], detail.json["status"], detail.json["signal_id"]) == (task.id, "open", signal.id)
    assert detail.json["signal"]["id"] == signal.id and detail.json["signal"]["loan_id"] == loan.id
    assert detail.json["signal"]["facts"] == {"repayment.days_past_due": 35}
    assert detail.json["rule"] == {"code": rule.code, "name": rule.name, "category": rule.category, "severity": rule.severity,
                                   "disposal": rule.disposal}
    assert rule.disposal  # the catalogue's rules each say what to do

    _, listed = await client.get(f"{RISK}/tasks", headers=bearer(token))
    row = next(t for t in listed.json["items"] if t["id"] == task.id)
    assert (row["loan_id"], row["rule_code"], row["category"], row["product_code"]) == (loan.id, rule.code, "repayment", "SHUIYITONG")

    _, signal_detail = await client.get(f"{RISK}/signals/{signal.id}", headers=bearer(token))
    assert signal_detail.status == 200 and signal_detail.json["rule"]["disposal"] == rule.disposal


async def test_a_real_time_signal_has_no_rule_book_entry(demo, client):
    loan, *_ = await real_loan()
    signal = await raise_for(loan, "RT_LARGE_OUTFLOW", category="realtime", severity="warning", source="realtime")
    task = await DisposalTask.get(signal_id=signal.id)
    _, detail = await client.get(f"{RISK}/tasks/{task.id}", headers=bearer(await staff_token(client, "hz.risk")))
    assert detail.status == 200 and detail.json["rule"] is None and detail.json["signal"]["rule_code"] == "RT_LARGE_OUTFLOW"


async def test_another_banks_officer_cannot_read_the_detail(demo, client):
    loan, *_ = await real_loan(bank="HZRCB")
    rule = batch.shipped_library()["REP_OVERDUE_30"]
    signal = await raise_for(loan, rule.code, category=rule.category, severity=rule.severity, source="batch")
    task = await DisposalTask.get(signal_id=signal.id)
    token = await staff_token(client, "ls.risk")
    for path in (f"{RISK}/tasks/{task.id}", f"{RISK}/signals/{signal.id}"):
        _, found = await client.get(path, headers=bearer(token))
        assert found.status == 404, path
    _, listed = await client.get(f"{RISK}/tasks", headers=bearer(token))
    assert listed.status == 200 and task.id not in [t["id"] for t in listed.json["items"]]


async def test_monitoring_offers_the_products_of_the_callers_bank(demo, client):
    path = "/api/v1/admin/monitoring/products"
    _, hz = await client.get(path, headers=bearer(await staff_token(client, "hz.risk")))
    _, yx = await client.get(path, headers=bearer(await staff_token(client, "yx.risk")))
    assert hz.status == 200 and yx.status == 200
    hz_codes, yx_codes = [p["code"] for p in hz.json["items"]], [p["code"] for p in yx.json["items"]]
    assert "KUAIEDAI" in hz_codes and hz_codes == sorted(hz_codes)
    # 云溪E贷 is the county bank's own product: only its staff choose it.
    assert "YUNXIEDAI" in yx_codes and "YUNXIEDAI" not in hz_codes
    assert next(p["name"] for p in hz.json["items"] if p["code"] == "KUAIEDAI") == "快E贷"
    _, association = await client.get(path, headers=bearer(await staff_token(client, "assoc.admin")))
    assert association.status == 200 and set(hz_codes) | set(yx_codes) <= {p["code"] for p in association.json["items"]}
    _, refused = await client.get(path, headers=bearer(await staff_token(client, "hz.marketer")))
    assert refused.status == 403
