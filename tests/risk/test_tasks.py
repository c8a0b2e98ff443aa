"""Disposal tasks: opened by signals of high severity (from the batch or one at a time), assigned
round-robin to the risk officers of the customer's branch, texted through the outbox with masked
data and a rate limit, worked through their status table over HTTP, and invisible to another
bank's officers."""

from __future__ import annotations

import pytest

from infra import clock, pii
from infra.errors import IllegalTransition
from infra.outbox import OutboxMessage
from integrations.sms_sandbox import SandboxSms
from lending_core.customers.models import BankRelationship
from lending_core.org.models import Bank, Branch, Staff
from lending_core.risk import batch, signals, tasks
from lending_core.risk.models import DisposalTask
from tests.risk.book import ON, real_loan, shape_loan
from tests.support import bearer, staff_token



async def officer(username: str, branch_code: str, phone: str) -> Staff:
    branch = await Branch.get(code=branch_code)
    return await Staff.create(bank_id=branch.bank_id, branch_id=branch.id, username=username, name="风险二号", phone=phone,
                              roles=["risk_officer"], password_hash="x")


async def at_branch(customer_id: int, bank_code: str, branch_code: str) -> None:
    bank = await Bank.get(code=bank_code)
    branch = await Branch.get(code=branch_code)
    await BankRelationship.filter(customer_id=customer_id, bank_id=bank.id).update(home_branch_id=branch.id)


async def raise_for(loan, severity="warning", rule="RT_LARGE_OUTFLOW"):
    return await signals.raise_signal(bank_id=loan.bank_id, customer_id=loan.customer_id, loan_id=loan.id, product_code="SHUIYITONG",
                                      rule_code=rule, category="realtime", severity=severity, source="realtime", facts={}, at=clock.now())


async def test_batch_signals_open_tasks_by_severity_round_robin_in_the_branch_with_deadlines(demo):
    second = await officer("hz.risk2", "HZ01", "13700000002")
    first = await Staff.get(username="hz.risk")
    library = batch.shipped_library()
    severe, watch = library["CRT_CRIMINAL_CASE"], library["CRT_DIVORCE_CASE"]
    assert (severe.severity, watch.severity) == ("severe", "watch")
    loans = []
    for rule in (severe, severe, severe, watch):
        loan, borrower, g, c = await real_loan()
        await at_branch(borrower.id, "HZRCB", "HZ01")
        await shape_loan(loan, rule.fires_on, guarantor_id=g.id, co_borrower_id=c.id)
        loans.append(loan)
    result = await batch.run_bank(await Bank.get(code="HZRCB"), ON, worker="t")
    assert result.tasks == 3
    made = await DisposalTask.all().order_by("id")
    assert [t.assigned_to_id for t in made] == [first.id, second.id, first.id]
    hz01 = (await Branch.get(code="HZ01")).id
    assert all(t.status == "open" and t.severity == "severe" and t.branch_id == hz01 for t in made)
    assert {round((t.deadline - clock.now()).total_seconds() / 3600) for t in made} == {24}
    # One text queued per officer given tasks (not per task), naming no customer.
    queued = await OutboxMessage.filter(topic=tasks.SMS_TOPIC).order_by("id")
    assert [m.payload for m in queued] == [{"officer_id": first.id}, {"officer_id": second.id}]


async def test_without_a_branch_officer_the_bank_officers_take_it_and_a_rerun_opens_no_second_task(demo):
    loan, borrower, *_ = await real_loan()
    await at_branch(borrower.id, "HZRCB", "HZ02")  # no risk officer works at HZ02
    signal = await raise_for(loan, "severe")
    task = await DisposalTask.get(signal_id=signal.id)
    assert task.assigned_to_id == (await Staff.get(username="hz.risk")).id and task.branch_id == (await Branch.get(code="HZ02")).id
    assert round((task.deadline - clock.now()).total_seconds() / 3600) == 24
    await raise_for(loan, "severe")
    assert await DisposalTask.filter(signal_id=signal.id).count() == 1
    assert await tasks.open_for_signals([signal], at=clock.now()) == 0


async def test_the_officer_is_texted_masked_data_once_and_a_burst_becomes_one_text(demo):
    sms = SandboxSms()
    handle = tasks.sms_handler(sms, per_hour=2)
    risk = await Staff.get(username="hz.risk")
    await Staff.filter(id=risk.id).update(phone="13700000001")
    loan, borrower, *_ = await real_loan(name="欧阳明远")
    signal = await raise_for(loan, "warning")
    message = await OutboxMessage.filter(topic=tasks.SMS_TOPIC).order_by("-id").first()
    await handle(message)
    await handle(message)  # delivered twice by the relay: texted once
    texts = sms.texts("13700000001")
    assert len(texts) == 1
    text = texts[0]
    bank = await Bank.get(id=loan.bank_id)
    assert pii.mask_name("欧阳明远") in text and "欧阳明远" not in text
    assert tasks.loan_reference(bank.code, loan.id) in text and "RT_LARGE_OUTFLOW" in text
    assert borrower.phone not in text and borrower.id_number not in text
    task = await DisposalTask.get(signal_id=signal.id)
    assert task.sms_sent_at is not None

    # Three more tasks at once: the first text names the others, which are then not texted.
    others = []
    for _ in range(3):
        other, *_ = await real_loan()
        others.append(await raise_for(other, "severe"))
    messages = await OutboxMessage.filter(topic=tasks.SMS_TOPIC).order_by("id")
    for message in messages[1:]:
        await handle(message)
    texts = sms.texts("13700000001")
    assert len(texts) == 2 and "另有2项" in texts[1]
    assert await DisposalTask.filter(sms_sent_at__isnull=True).count() == 0

    # The hourly limit is reached (two texts): the next one waits for the relay's retry.
    late, *_ = await real_loan()
    await raise_for(late, "severe")
    with pytest.raises(tasks.SmsRateLimited):
        await handle(await OutboxMessage.filter(topic=tasks.SMS_TOPIC).order_by("-id").first())


async def test_a_message_queued_per_task_by_the_earlier_version_still_texts_the_officer(demo):
    sms = SandboxSms()
    risk = await Staff.get(username="hz.risk")
    await Staff.filter(id=risk.id).update(phone="13700000001")
    loan, *_ = await real_loan()
    signal = await raise_for(loan, "severe")
    old = await OutboxMessage.create(topic=tasks.SMS_TOPIC, payload={"signal_id": signal.id}, bank_id=loan.bank_id,
                                     next_attempt_at=clock.now())
    await tasks.sms_handler(sms)(old)
    assert len(sms.texts("13700000001")) == 1 and await DisposalTask.filter(sms_sent_at__isnull=True).count() == 0


async def test_officers_work_a_task_through_its_statuses_over_http(demo, client):
    loan, *_ = await real_loan()
    signal = await raise_for(loan, "severe")
    task = await DisposalTask.get(signal_id=signal.id)
    token = await staff_token(client, "hz.risk")
    _, listed = await client.get("/api/v1/admin/risk/tasks?mine=true", headers=bearer(token))
    assert listed.status == 200 and [t["id"] for t in listed.json["items"]] == [task.id]
    _, signal_page = await client.get(f"/api/v1/admin/risk/signals?loan_id={loan.id}", headers=bearer(token))
    assert [s["rule_code"] for s in signal_page.json["items"]] == ["RT_LARGE_OUTFLOW"]
    _, refused = await client.post(f"/api/v1/admin/risk/tasks/{task.id}/resolve", headers=bearer(token), json={"outcome": "done"})
    assert refused.status == 409  # open → resolved is not in the table: take it first
    _, taken = await client.post(f"/api/v1/admin/risk/tasks/{task.id}/take", headers=bearer(token))
    assert taken.status == 200 and taken.json["status"] == "in_progress"
    _, noted = await client.post(f"/api/v1/admin/risk/tasks/{task.id}/notes", headers=bearer(token),
                                 json={"text": "已电话联系，客户手机13912345671"})
    assert noted.status == 200 and "13912345671" not in str(noted.json["notes"])
    _, resolved = await client.post(f"/api/v1/admin/risk/tasks/{task.id}/resolve", headers=bearer(token), json={"outcome": "客户已还款"})
    assert resolved.status == 200 and resolved.json["status"] == "resolved" and resolved.json["closed_at"]
    _, again = await client.post(f"/api/v1/admin/risk/tasks/{task.id}/escalate", headers=bearer(token), json={"reason": "x"})
    assert again.status == 409


async def test_another_banks_officer_sees_nothing(demo, client):
    loan, *_ = await real_loan(bank="HZRCB")
    signal = await raise_for(loan, "severe")
    task = await DisposalTask.get(signal_id=signal.id)
    token = await staff_token(client, "ls.risk")
    for path in ("/api/v1/admin/risk/signals", "/api/v1/admin/risk/tasks", "/api/v1/admin/risk/list-proposals?status=applied"):
        _, listed = await client.get(path, headers=bearer(token))
        assert listed.status == 200 and listed.json["items"] == [], path
    for path in (f"/api/v1/admin/risk/signals/{signal.id}", f"/api/v1/admin/risk/tasks/{task.id}"):
        _, found = await client.get(path, headers=bearer(token))
        assert found.status == 404, path
    _, taken = await client.post(f"/api/v1/admin/risk/tasks/{task.id}/take", headers=bearer(token))
    assert taken.status == 404
    # A staff member without the risk permissions is refused outright.
    _, refused = await client.get("/api/v1/admin/risk/tasks", headers=bearer(await staff_token(client, "hz.marketer")))
    assert refused.status == 403


def test_the_status_table_allows_only_its_moves():
    allowed = {("take", "open"), ("resolve", "in_progress"), ("escalate", "in_progress"), ("escalate", "open")}
    for event in tasks.STATUS.events:
        for status in tasks.STATUS.statuses:
            if (event, status) in allowed:
                tasks.STATUS.next(status, event)
            else:
                with pytest.raises(IllegalTransition):
                    tasks.STATUS.next(status, event)
