"""Lists from signals: the list policy proposes entries (a risk officer confirms or rejects) or
applies them at once, through the lists' own service, once per customer, bank and level."""

from __future__ import annotations

from lending_core.org.models import Bank
from lending_core.risk import batch, lists, schema
from lending_core.risk.models import ListProposal
from lending_core.risk_lists.models import ListEntry
from tests.risk.book import ON, real_loan, shape_loan
from tests.support import bearer, staff_token


async def loan_on(snapshot, *, bank="HZRCB"):
    loan, borrower, g, c = await real_loan(bank=bank)
    await shape_loan(loan, snapshot, guarantor_id=g.id, co_borrower_id=c.id)
    return loan, borrower


async def run(bank="HZRCB", on=ON):
    return await batch.run_bank(await Bank.get(code=bank), on, worker="t")


async def test_the_policy_proposes_by_rule_condition_and_severity(demo):
    library = batch.shipped_library()
    overdue_95 = schema.snapshot({"repayment": {"days_past_due": 95, "overdue_principal_fen": 800_000, "overdue_interest_fen": 90_000}})
    far_overdue, far = await loan_on(overdue_95)
    just_overdue, near = await loan_on(library["REP_OVERDUE_30"].fires_on)  # 31 days: a signal, no list
    enforced, sued = await loan_on(library["CRT_UNDER_ENFORCEMENT"].fires_on)
    result = await run()
    proposals = {(p.customer_id, p.level): p for p in await ListProposal.all()}
    assert (far.id, "blacklist_restrict") in proposals
    assert not any(customer == near.id for customer, _ in proposals)
    assert (sued.id, "blacklist_prohibit") in proposals
    # The enforcement signal is severe: the greylist is applied without asking anyone.
    assert (sued.id, "greylist") in proposals
    assert result.list_proposals == len(proposals)
    assert proposals[far.id, "blacklist_restrict"].status == "proposed"
    assert await lists.apply_automatic() >= 1
    grey = await ListProposal.get(id=proposals[sued.id, "greylist"].id)
    assert grey.status == "applied" and grey.entry_id
    entry = await ListEntry.get(id=grey.entry_id)
    assert (entry.level, entry.bank_id, entry.source, entry.status) == ("greylist", sued_bank := (await Bank.get(code="HZRCB")).id, "system", "active")
    assert await lists.active_entry(sued.id, sued_bank, "greylist") is not None
    # What waits for confirmation stays waiting; nothing is proposed twice on the next day.
    assert (await ListProposal.get(id=proposals[sued.id, "blacklist_prohibit"].id)).status == "proposed"
    await run(on=ON.replace(day=16))
    assert await ListProposal.all().count() == len(proposals)


async def test_an_officer_confirms_or_rejects_over_http_and_only_their_banks(demo, client):
    library = batch.shipped_library()
    _, sued = await loan_on(library["CRT_UNDER_ENFORCEMENT"].fires_on)
    _, overdue = await loan_on(schema.snapshot({"repayment": {"days_past_due": 120, "overdue_principal_fen": 800_000}}))
    await run()
    prohibit = await ListProposal.get(customer_id=sued.id, level="blacklist_prohibit")
    restrict = await ListProposal.get(customer_id=overdue.id, level="blacklist_restrict")

    other = await staff_token(client, "ls.risk")
    _, listed = await client.get("/api/v1/admin/risk/list-proposals", headers=bearer(other))
    assert listed.status == 200 and listed.json["items"] == []
    _, hidden = await client.post(f"/api/v1/admin/risk/list-proposals/{prohibit.id}/confirm", headers=bearer(other))
    assert hidden.status == 404

    token = await staff_token(client, "hz.risk")
    _, listed = await client.get("/api/v1/admin/risk/list-proposals", headers=bearer(token))
    assert {p["id"] for p in listed.json["items"]} >= {prohibit.id, restrict.id}
    _, confirmed = await client.post(f"/api/v1/admin/risk/list-proposals/{prohibit.id}/confirm", headers=bearer(token))
    assert confirmed.status == 200 and confirmed.json["status"] == "applied" and confirmed.json["entry_id"]
    entry = await ListEntry.get(id=confirmed.json["entry_id"])
    assert entry.level == "blacklist_prohibit" and entry.source == "staff" and "320102" not in entry.reason
    _, twice = await client.post(f"/api/v1/admin/risk/list-proposals/{prohibit.id}/confirm", headers=bearer(token))
    assert twice.status == 409

    _, rejected = await client.post(f"/api/v1/admin/risk/list-proposals/{restrict.id}/reject", headers=bearer(token),
                                    json={"reason": "已结清，核实为系统延迟"})
    assert rejected.status == 200 and rejected.json["status"] == "rejected" and rejected.json["entry_id"] is None
    assert await lists.active_entry(overdue.id, restrict.bank_id, "blacklist_restrict") is None


def test_the_shipped_policy_names_known_rules_levels_and_severities():
    library = batch.shipped_library()
    policies = lists.load_policies()
    assert {p.level for p in policies} == {"blacklist_restrict", "blacklist_prohibit", "greylist"}
    for policy in policies:
        assert policy.rules is None or all(code in {r.code for r in library.rules} for code in policy.rules)
