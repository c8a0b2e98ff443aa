"""The evidence report of a signed contract: verifying when untouched, naming the entry a
tamperer changed — also when they recompute the whole chain — and surviving a notary outage."""

from __future__ import annotations

import pytest

from infra.outbox import OutboxMessage
from lending_core.contracts import service as contracts
from lending_core.contracts.evidence import GENESIS_HASH, EvidenceEntry, entry_hash
from lending_core.contracts.models import Contract, EvidenceRecord
from tests.contracts.flows import (
    approved_borrower,
    ask_for_contract,
    contract_path,
    party,
    relay_contract_messages,
    signs,
    verified_customer,
)

pytestmark = pytest.mark.usefixtures("demo")


@pytest.fixture
async def effective(app, client):
    """A sunshine-loan contract signed by all three parties (every entry notarised)."""
    borrower, application = await approved_borrower(client)
    guarantor = await verified_customer(client, "home_owner", name="周海燕")
    co_borrower = await verified_customer(client, "deposit_holder", name="陈美玲")
    made = await ask_for_contract(borrower, application["id"], [party("guarantor", guarantor), party("co_borrower", co_borrower)])
    contract_id = made.json["id"]
    for person in (borrower, guarantor, co_borrower):
        await signs(app, person, contract_id)
    assert (await Contract.get(id=contract_id)).status == "effective"
    return {"id": contract_id, "borrower": borrower, "guarantor": guarantor}


async def report_of(person, contract_id: int) -> dict:
    response = await person.get(contract_path(contract_id, "evidence"))
    assert response.status == 200, response.text
    return response.json


async def record(contract_id: int, kind: str, nth: int = 0) -> EvidenceRecord:
    return (await EvidenceRecord.filter(contract_id=contract_id, kind=kind).order_by("sequence"))[nth]


async def test_an_untouched_contract_verifies_entry_by_entry(effective):
    report = await report_of(effective["borrower"], effective["id"])

    assert report["ok"] is True and report["first_failure"] is None
    assert [e["sequence"] for e in report["timeline"]] == list(range(1, len(report["timeline"]) + 1))
    assert report["timeline"][0]["previous_hash"] == GENESIS_HASH
    for before, after in zip(report["timeline"], report["timeline"][1:]):
        assert after["previous_hash"] == before["entry_hash"]
    assert all(e["entry_hash"] == e["recomputed_hash"] and e["receipt"]["entry_hash"] == e["entry_hash"] for e in report["timeline"])


async def test_a_changed_entry_is_detected_and_named(effective):
    signed = await record(effective["id"], "signed", 1)
    changed = {**signed.detail, "ip": "203.0.113.66"}  # claim the signature came from elsewhere
    await EvidenceRecord.filter(id=signed.id).update(detail=changed)

    report = await report_of(effective["borrower"], effective["id"])

    assert report["ok"] is False
    assert report["first_failed_sequence"] == signed.sequence
    assert report["first_failure"].startswith(f"entry {signed.sequence}: notary receipt does not match the entry")
    entries = {e["sequence"]: e for e in report["timeline"]}
    assert not entries[signed.sequence]["receipt_ok"]
    assert any("recorded hash does not match" in p for p in entries[signed.sequence]["problems"])
    # The next entry no longer links to it; the ones before are intact.
    assert not entries[signed.sequence + 1]["link_ok"]
    assert all(entries[n]["problems"] == [] for n in entries if n < signed.sequence)


async def test_a_rewritten_chain_still_fails_because_the_receipts_do_not_match(effective):
    rows = await EvidenceRecord.filter(contract_id=effective["id"]).order_by("sequence")
    target = next(r for r in rows if r.kind == "signed")
    # The tamperer changes one entry and recomputes every hash after it, so the links hold.
    previous_hash = GENESIS_HASH
    for row in rows:
        detail = {**row.detail, "channel": "branch_counter"} if row.id == target.id else row.detail
        entry = EvidenceEntry(sequence=row.sequence, contract_id=row.contract_id, kind=row.kind, occurred_at=row.occurred_at,
                              document_sha256=row.document_sha256, detail=detail, previous_hash=previous_hash)
        previous_hash = entry_hash(entry)
        await EvidenceRecord.filter(id=row.id).update(detail=detail, previous_hash=entry.previous_hash, entry_hash=previous_hash)

    report = await report_of(effective["guarantor"], effective["id"])

    assert report["ok"] is False
    assert all(e["link_ok"] for e in report["timeline"])  # the chain itself looks whole
    assert report["first_failed_sequence"] == target.sequence
    assert report["first_failure"] == (f"entry {target.sequence}: notary receipt does not match the entry "
                                       f"(recorded hash {report['timeline'][target.sequence - 1]['entry_hash']}, "
                                       f"receipt for {report['timeline'][target.sequence - 1]['receipt']['entry_hash']})")
    assert [e["receipt_ok"] for e in report["timeline"]] == [e["sequence"] < target.sequence for e in report["timeline"]]


async def test_a_forged_receipt_is_detected(effective):
    effective_entry = await record(effective["id"], "effective")
    receipt = dict(effective_entry.receipt)
    receipt["notarised_at"] = "2020-01-01T00:00:00.000000Z"  # backdated
    await EvidenceRecord.filter(id=effective_entry.id).update(receipt=receipt)

    report = await report_of(effective["borrower"], effective["id"])

    assert report["ok"] is False
    assert report["first_failure"] == f"entry {effective_entry.sequence}: receipt signature invalid"


async def test_a_changed_document_is_detected(effective):
    contract = await Contract.get(id=effective["id"])
    await Contract.filter(id=contract.id).update(document_html=contract.document_html.replace("连带责任保证", "一般保证"))

    report = await report_of(effective["borrower"], effective["id"])

    assert report["ok"] is False
    assert report["document"]["ok"] is False
    assert report["document"]["recomputed_sha256"] != report["document"]["sha256"] == contract.document_sha256
    assert report["first_failure"].startswith("document:")


async def test_a_removed_entry_is_detected(effective):
    last = await EvidenceRecord.filter(contract_id=effective["id"]).order_by("-sequence").first()
    await EvidenceRecord.filter(id=last.id).delete()

    report = await report_of(effective["borrower"], effective["id"])

    assert report["ok"] is False
    assert "the contract is effective but no evidence entry says so" in report["problems"]


async def test_signing_while_the_notary_is_down_records_the_signature_and_the_outbox_notarises_later(app, client):
    borrower, application = await approved_borrower(client)
    guarantor = await verified_customer(client, "home_owner", name="周海燕")
    co_borrower = await verified_customer(client, "deposit_holder", name="陈美玲")
    contract_id = (await ask_for_contract(borrower, application["id"], [party("guarantor", guarantor), party("co_borrower", co_borrower)])).json["id"]
    notary = app.ctx.providers.notary
    notary.available = False
    try:
        signed = await signs(app, borrower, contract_id)
        down = await report_of(borrower, contract_id)
    finally:
        notary.available = True

    assert signed["my_signature"]["signed_at"] is not None
    pending = [e for e in down["timeline"] if e["receipt"] is None]
    assert [e["kind"] for e in pending] == ["signed"]
    assert down["ok"] is False
    assert down["first_failure"] == f"entry {pending[0]['sequence']}: no receipt"
    assert all(e["link_ok"] for e in down["timeline"])
    queued = await OutboxMessage.filter(topic=contracts.NOTARISE_TOPIC, status="pending").count()
    assert queued >= len(pending)

    await relay_contract_messages(app)

    after = await report_of(borrower, contract_id)
    assert after["ok"] is True, after["first_failure"]
    assert all(e["receipt"] for e in after["timeline"])
    assert await OutboxMessage.filter(topic=contracts.NOTARISE_TOPIC, status="pending").count() == 0


async def test_a_notary_outage_never_loses_an_entry_even_when_the_retry_fails_too(app, effective):
    notary = app.ctx.providers.notary
    notary.available = False
    try:
        viewed = await effective["borrower"].get(contract_path(effective["id"]))
        assert viewed.status == 200
        await relay_contract_messages(app)  # still down: the message is rescheduled, not lost
    finally:
        notary.available = True
    entry = await EvidenceRecord.filter(contract_id=effective["id"]).order_by("-sequence").first()
    assert entry.kind == "viewed" and entry.receipt is None
    message = next(m for m in await OutboxMessage.filter(topic=contracts.NOTARISE_TOPIC)
                   if m.payload["evidence_record_id"] == entry.id)
    assert message.status == "pending" and message.attempts == 1 and "NotaryUnavailable" in message.last_error

    await OutboxMessage.filter(id=message.id).update(next_attempt_at=message.created_at)
    await relay_contract_messages(app)

    assert (await EvidenceRecord.get(id=entry.id)).receipt is not None
    assert (await report_of(effective["borrower"], effective["id"]))["ok"] is True


async def test_an_entry_changed_before_it_was_notarised_is_never_notarised(app, effective):
    notary = app.ctx.providers.notary
    notary.available = False
    try:
        await effective["borrower"].get(contract_path(effective["id"]))
    finally:
        notary.available = True
    entry = await EvidenceRecord.filter(contract_id=effective["id"]).order_by("-sequence").first()
    await EvidenceRecord.filter(id=entry.id).update(detail={**entry.detail, "channel": "changed"})

    assert await contracts.notarise_record(notary, entry.id) is False
    assert (await EvidenceRecord.get(id=entry.id)).receipt is None
