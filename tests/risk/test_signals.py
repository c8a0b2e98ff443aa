"""raise_signal and close_signal: one open signal per loan (or customer) and rule, updated while
it keeps firing; refused input; personal data kept out of the facts."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from infra import clock
from lending_core.risk import signals
from lending_core.risk.errors import InvalidSignal
from lending_core.risk.models import DisposalTask, WarningSignal
from tests.risk.book import real_loan



def raise_args(loan, **changes):
    return {"bank_id": loan.bank_id, "customer_id": loan.customer_id, "loan_id": loan.id, "product_code": "SHUIYITONG",
            "rule_code": "RT_LARGE_OUTFLOW", "category": "realtime", "severity": "watch", "source": "realtime",
            "facts": {"amount_fen": 5_000_000}, "at": clock.now(), **changes}


async def test_a_signal_opens_once_and_is_updated_while_it_keeps_firing(demo):
    loan, *_ = await real_loan()
    first = await signals.raise_signal(**raise_args(loan))
    later = clock.now() + timedelta(minutes=5)
    again = await signals.raise_signal(**raise_args(loan, at=later, facts={"amount_fen": 7_000_000}))
    assert again.id == first.id
    assert (again.times, again.facts, again.status) == (2, {"amount_fen": 7_000_000}, "open")
    assert again.last_seen_at == later and again.first_seen_at == first.first_seen_at
    # Another rule, or the same rule on the customer without a loan, is another signal.
    other = await signals.raise_signal(**raise_args(loan, rule_code="RT_BALANCE_DRAINED"))
    customer_level = await signals.raise_signal(**raise_args(loan, loan_id=None))
    assert len({first.id, other.id, customer_level.id}) == 3
    assert await WarningSignal.filter(status="open").count() == 3


async def test_concurrent_raises_of_one_signal_leave_one_row(demo):
    loan, *_ = await real_loan()
    raised = await asyncio.gather(*(signals.raise_signal(**raise_args(loan)) for _ in range(5)))
    assert len({s.id for s in raised}) == 1
    stored = await WarningSignal.get(id=raised[0].id)
    assert stored.times == 5


async def test_closing_frees_the_key_and_a_new_firing_opens_a_new_signal(demo):
    loan, *_ = await real_loan()
    first = await signals.raise_signal(**raise_args(loan))
    await signals.close_signal(first.id, at=clock.now(), reason="cleared by officer")
    await signals.close_signal(first.id, at=clock.now(), reason="again")  # closing twice changes nothing
    closed = await WarningSignal.get(id=first.id)
    assert (closed.status, closed.open_key, closed.closed_reason) == ("closed", None, "cleared by officer")
    second = await signals.raise_signal(**raise_args(loan))
    assert second.id != first.id and second.times == 1


async def test_a_raise_to_a_higher_severity_opens_the_task_a_watch_did_not(demo):
    loan, *_ = await real_loan()
    watch = await signals.raise_signal(**raise_args(loan))
    assert not await DisposalTask.filter(signal_id=watch.id).exists()
    severe = await signals.raise_signal(**raise_args(loan, severity="severe"))
    assert severe.id == watch.id and severe.severity == "severe"
    assert await DisposalTask.filter(signal_id=watch.id).count() == 1


@pytest.mark.parametrize("change", [
    {"severity": "critical"}, {"source": "manual"}, {"category": "weather"}, {"at": datetime(2025, 1, 1)},
])
async def test_bad_input_is_refused(demo, change):
    loan, *_ = await real_loan()
    with pytest.raises(InvalidSignal):
        await signals.raise_signal(**raise_args(loan, **change))
    assert await WarningSignal.all().count() == 0


async def test_facts_keep_no_clear_personal_data(demo):
    loan, *_ = await real_loan()
    signal = await signals.raise_signal(**raise_args(loan, facts={"counterparty": "13912345671", "id_number": "320102198403121237", "amount_fen": 1}))
    stored = await WarningSignal.get(id=signal.id)
    text = str(stored.facts)
    assert "13912345671" not in text and "320102198403121237" not in text and stored.facts["amount_fen"] == 1
