"""The daily warning batch on real loans: every category fires through it (a rule's `fires`
fixture opens its signal, its `quiet` fixture does not), a rule that keeps firing updates its one
open signal, a cleared condition closes it, loans whose data failed are deferred and retried,
and banks are run separately, shared by workers through the chunks."""

from __future__ import annotations

import pytest

from infra import clock
from lending_core.org.models import Bank
from lending_core.risk import batch, schema
from lending_core.risk.models import RiskRun, RiskRunChunk, WarningSignal
from tests.risk.book import ON, product_for, real_loan, shape_loan



def first_rule_of_each_category():
    library = batch.shipped_library()
    # The parties category is the guarantor's and co-borrower's: take one of each.
    chosen = [rules[0] for rules in library.by_category().values()]
    chosen.append(library["COB_DIVORCE_FILED"])
    return chosen


async def open_signals(loan_id: int) -> dict[str, WarningSignal]:
    return {s.rule_code: s for s in await WarningSignal.filter(loan_id=loan_id, status="open")}


async def test_each_category_fires_through_the_batch_and_its_quiet_fixture_does_not(demo):
    rules = first_rule_of_each_category()
    assert {r.category for r in rules} == set(schema.CATEGORIES)
    loans = {}
    for rule in rules:
        for case, snapshot in (("fires", rule.fires_on), ("quiet", rule.quiet_on)):
            loan, _, guarantor, co_borrower = await real_loan()
            await shape_loan(loan, snapshot, guarantor_id=guarantor.id, co_borrower_id=co_borrower.id, product=product_for(rule))
            loans[rule.code, case] = loan
    hz = await Bank.get(code="HZRCB")
    result = await batch.run_bank(hz, ON, worker="t")
    assert result.status == "done" and result.loans == len(loans)
    for rule in rules:
        fired = await open_signals(loans[rule.code, "fires"].id)
        quiet = await open_signals(loans[rule.code, "quiet"].id)
        assert rule.code in fired, f"{rule.code} did not fire on its fixture"
        assert rule.code not in quiet, f"{rule.code} fired on its quiet fixture"
        signal = fired[rule.code]
        assert (signal.category, signal.severity, signal.source, signal.times) == (rule.category, rule.severity, "batch", 1)
        # The facts are the fields the rule read, as the fixture has them.
        assert signal.facts == {path: schema.value_at(rule.fires_on, path) for path in rule.condition.fields}
        # Every other rule that fires on the loan fires because the same library says so.
        expected = {r.code for r in batch.shipped_library().rules
                    if r.applies_to(product_for(rule) or signal.product_code) and r.fires({**rule.fires_on, "product": signal.product_code})}
        assert set(fired) == expected
    assert result.by_category.keys() >= set(schema.CATEGORIES)


async def test_a_rule_that_keeps_firing_updates_one_signal_and_a_cleared_one_closes(demo):
    library = batch.shipped_library()
    rule = library["CRT_DIVORCE_CASE"]
    loan, _, guarantor, co_borrower = await real_loan()
    await shape_loan(loan, rule.fires_on, guarantor_id=guarantor.id, co_borrower_id=co_borrower.id)
    hz = await Bank.get(code="HZRCB")
    await batch.run_bank(hz, ON, worker="t")
    first = (await open_signals(loan.id))[rule.code]
    second_day = await batch.run_bank(hz, ON.replace(day=16), worker="t")
    assert second_day.opened == 0 and second_day.updated >= 1
    again = (await open_signals(loan.id))[rule.code]
    assert again.id == first.id and again.times == 2 and again.last_seen_at >= first.last_seen_at
    assert await WarningSignal.filter(loan_id=loan.id, rule_code=rule.code).count() == 1

    await shape_loan(loan, rule.quiet_on, guarantor_id=guarantor.id, co_borrower_id=co_borrower.id)
    third_day = await batch.run_bank(hz, ON.replace(day=17), worker="t")
    assert third_day.closed >= 1
    closed = await WarningSignal.get(id=first.id)
    assert (closed.status, closed.closed_reason, closed.open_key) == ("closed", "cleared", None)
    # Firing again later opens a new signal: the closed one stays as history.
    await shape_loan(loan, rule.fires_on, guarantor_id=guarantor.id, co_borrower_id=co_borrower.id)
    await batch.run_bank(hz, ON.replace(day=18), worker="t")
    reopened = (await open_signals(loan.id))[rule.code]
    assert reopened.id != first.id and reopened.times == 1


async def test_a_finished_day_is_not_run_again_and_banks_are_run_separately(demo):
    rule = batch.shipped_library()["CRT_DIVORCE_CASE"]
    hz_loan, _, g1, c1 = await real_loan(bank="HZRCB")
    ls_loan, _, g2, c2 = await real_loan(bank="LSRCB")
    for loan, g, c in ((hz_loan, g1, c1), (ls_loan, g2, c2)):
        await shape_loan(loan, rule.fires_on, guarantor_id=g.id, co_borrower_id=c.id)
    hz = await Bank.get(code="HZRCB")
    done = await batch.run_bank(hz, ON, worker="t")
    assert done.loans == 1
    assert rule.code in await open_signals(hz_loan.id)
    assert await open_signals(ls_loan.id) == {}  # the other bank's loans wait for its own run
    again = await batch.run_bank(hz, ON, worker="t")
    assert again.status == "already_done"
    runs = await batch.run(ON, worker="t")
    assert {r.bank_code: r.status for r in runs}["HZRCB"] == "already_done"
    assert {r.bank_code: r.loans for r in runs}["LSRCB"] == 1
    assert rule.code in await open_signals(ls_loan.id)


async def test_chunks_are_shared_and_each_loan_is_evaluated_once(demo):
    rule = batch.shipped_library()["CRT_DIVORCE_CASE"]
    loans = []
    for _ in range(5):
        loan, _, g, c = await real_loan()
        await shape_loan(loan, rule.fires_on, guarantor_id=g.id, co_borrower_id=c.id)
        loans.append(loan)
    hz = await Bank.get(code="HZRCB")
    # A second worker joins the run a first one created (its lease still good): they share chunks.
    run_id, claim = await batch._claim(hz.id, ON, "w1", 2, rerun=False)
    assert claim == "claimed" and await RiskRunChunk.filter(run_id=run_id).count() == 3
    joined = await batch.run_bank(hz, ON, worker="w2", chunk_size=2)
    assert joined.status == "done" and joined.loans == 5 and joined.chunks == 3
    assert await WarningSignal.filter(rule_code=rule.code, status="open").count() == 5
    assert all(s.times == 1 for s in await WarningSignal.filter(rule_code=rule.code))
    run = await RiskRun.get(id=run_id)
    assert run.status == "done" and run.summary["workers"][0]["worker"] == "w2"


async def test_a_loan_whose_data_failed_is_deferred_reported_and_retried(demo):
    rule = batch.shipped_library()["CRT_DIVORCE_CASE"]
    healthy_rule = batch.shipped_library()["BUR_FRAUD_ALERT"]
    down, _, g1, c1 = await real_loan()
    fine, _, g2, c2 = await real_loan()
    await shape_loan(down, rule.fires_on, guarantor_id=g1.id, co_borrower_id=c1.id)
    await shape_loan(fine, healthy_rule.fires_on, guarantor_id=g2.id, co_borrower_id=c2.id)
    from lending_core.risk.models import CourtSnapshot

    # The court source failed for the first borrower after its last good answer.
    await CourtSnapshot.filter(customer_id=down.customer_id).update(failed_at=clock.now(), failure="source_unavailable")
    hz = await Bank.get(code="HZRCB")
    result = await batch.run_bank(hz, ON, worker="t")
    assert result.deferred == 1 and result.loans == 1
    assert await open_signals(down.id) == {}
    assert healthy_rule.code in await open_signals(fine.id)

    await CourtSnapshot.filter(customer_id=down.customer_id).update(fetched_at=clock.now())
    retried = await batch.retry_deferred(hz, ON)
    assert retried.loans == 1 and retried.deferred == 0
    assert rule.code in await open_signals(down.id)
    assert healthy_rule.code in await open_signals(fine.id)  # not closed by the partial pass
