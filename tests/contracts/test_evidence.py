"""The evidence log: canonical encoding, the hash chain, and verification against the
sandbox notary's receipts — including a tamperer who recomputes the whole chain."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given
from hypothesis import strategies as st

from integrations.notary_sandbox import SandboxNotary
from lending_core.contracts.evidence import (
    GENESIS_HASH,
    EvidenceEntry,
    canonical_bytes,
    entry_hash,
    next_entry,
    verify_chain,
)
from lending_core.contracts.ports import NotaryReceipt, key_id_of

CONTRACT_ID = 7
DOCUMENT = hashlib.sha256(b"loan contract LC-2024-0007, rendered PDF").hexdigest()
T0 = datetime(2024, 5, 1, 8, 30, tzinfo=timezone.utc)
PHONE_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4) MicroMessenger/8.0.47"
EVENTS = [
    ("generated", {"actor": "system", "product": "consumer_loan", "product_version": 1}),
    ("viewed", {"actor": "customer", "customer_id": 42, "ip": "10.1.2.3", "user_agent": PHONE_UA,
                "channel": "mini_program"}),
    ("signed", {"actor": "customer", "customer_id": 42, "ip": "10.1.2.3", "user_agent": PHONE_UA,
                "channel": "mini_program", "signature_method": "sms_code"}),
    ("signed", {"actor": "staff", "staff_id": 9, "ip": "172.16.0.5", "user_agent": "bank-console",
                "channel": "staff_console", "signature_method": "bank_seal"}),
    ("effective", {"actor": "system"}),
    ("viewed", {"actor": "customer", "customer_id": 42, "ip": "10.1.2.9", "user_agent": PHONE_UA,
                "channel": "mini_program"}),
]


@pytest.fixture
def notary(tmp_path) -> SandboxNotary:
    return SandboxNotary(tmp_path / "notary")


async def build_chain(notary: SandboxNotary, events=EVENTS, *, rotate_after: int | None = None):
    entries: list[EvidenceEntry] = []
    receipts: dict[int, NotaryReceipt] = {}
    for number, (kind, detail) in enumerate(events, start=1):
        entry = next_entry(entries[-1] if entries else None, contract_id=CONTRACT_ID, kind=kind,
                           occurred_at=T0 + timedelta(minutes=number), document_sha256=DOCUMENT, detail=detail)
        entries.append(entry)
        receipts[entry.sequence] = await notary.notarise(entry_hash(entry))
        if number == rotate_after:
            notary.rotate_key()
    return entries, receipts


def relinked(entries: list[EvidenceEntry]) -> list[EvidenceEntry]:
    """What a tamperer with write access to our tables does: make every link agree again."""
    result: list[EvidenceEntry] = []
    for entry in entries:
        result.append(replace(entry, previous_hash=entry_hash(result[-1]) if result else GENESIS_HASH))
    return result


def with_ip(entry: EvidenceEntry, ip: str) -> EvidenceEntry:
    return replace(entry, detail={**entry.detail, "ip": ip})


# --- canonical encoding -------------------------------------------------------------------------

def test_canonical_bytes_of_a_worked_example():
    entry = EvidenceEntry(sequence=1, contract_id=7, kind="viewed",
                          occurred_at=datetime(2024, 5, 1, 16, 30, 5, 120, tzinfo=timezone(timedelta(hours=8))),
                          document_sha256="ab" * 32, detail={"ip": "10.1.2.3", "customer_id": 42, "note": "已阅读"})
    expected = ('{"contract_id":7,"detail":{"customer_id":42,"ip":"10.1.2.3","note":"已阅读"},'
                f'"document_sha256":"{"ab" * 32}","kind":"viewed","occurred_at":"2024-05-01T08:30:05.000120Z",'
                f'"previous_hash":"{"0" * 64}","sequence":1}}').encode("utf-8")
    assert canonical_bytes(entry) == expected
    assert entry_hash(entry) == hashlib.sha256(expected).hexdigest()


@given(st.dictionaries(st.text(min_size=1, max_size=12),
                       st.one_of(st.text(max_size=20), st.integers(-(2**63), 2**63)), max_size=8),
       st.randoms())
def test_canonical_bytes_do_not_depend_on_dict_order(detail, random):
    keys = list(detail)
    random.shuffle(keys)
    shuffled = {key: detail[key] for key in keys}
    first = EvidenceEntry(1, CONTRACT_ID, "signed", T0, DOCUMENT, detail)
    second = EvidenceEntry(1, CONTRACT_ID, "signed", T0, DOCUMENT, shuffled)
    assert first == second
    assert canonical_bytes(first) == canonical_bytes(second)
    assert entry_hash(first) == entry_hash(second)


def test_one_instant_in_any_zone_is_one_entry():
    in_beijing = T0.astimezone(timezone(timedelta(hours=8)))
    utc_entry = EvidenceEntry(1, CONTRACT_ID, "viewed", T0, DOCUMENT, {"ip": "10.1.2.3"})
    beijing_entry = EvidenceEntry(1, CONTRACT_ID, "viewed", in_beijing, DOCUMENT, {"ip": "10.1.2.3"})
    assert beijing_entry == utc_entry and beijing_entry.occurred_at.tzinfo == timezone.utc
    assert canonical_bytes(beijing_entry) == canonical_bytes(utc_entry)


def test_every_field_is_in_the_hash():
    base = EvidenceEntry(2, CONTRACT_ID, "signed", T0, DOCUMENT, {"ip": "10.1.2.3"}, "1" * 64)
    variants = [replace(base, sequence=3), replace(base, contract_id=8), replace(base, kind="viewed"),
                replace(base, occurred_at=T0 + timedelta(microseconds=1)), replace(base, document_sha256="2" * 64),
                replace(base, detail={"ip": "10.1.2.4"}), replace(base, detail={"ip": "10.1.2.3", "x": 1}),
                replace(base, previous_hash="3" * 64), replace(base, detail={"ip": 1})]
    hashes = {entry_hash(variant) for variant in variants} | {entry_hash(base)}
    assert len(hashes) == len(variants) + 1


@pytest.mark.parametrize("change, message", [
    ({"occurred_at": datetime(2024, 5, 1, 8, 30)}, "timezone-aware"),
    ({"detail": {"amount": 1.5}}, "detail"),
    ({"detail": {"ip": None}}, "detail"),
    ({"detail": {"nested": {"a": 1}}}, "detail"),
    ({"document_sha256": "AB" * 32}, "document_sha256"),
    ({"previous_hash": "0" * 63}, "previous_hash"),
    ({"sequence": 0}, "sequence"),
    ({"kind": "Signed!"}, "kind"),
])
def test_an_entry_refuses_what_has_no_single_encoding(change, message):
    fields = dict(sequence=1, contract_id=CONTRACT_ID, kind="signed", occurred_at=T0,
                  document_sha256=DOCUMENT, detail={"ip": "10.1.2.3"})
    with pytest.raises(ValueError, match=message):
        EvidenceEntry(**{**fields, **change})


def test_next_entry_links_to_the_entry_before():
    first = next_entry(None, contract_id=CONTRACT_ID, kind="generated", occurred_at=T0, document_sha256=DOCUMENT)
    second = next_entry(first, contract_id=CONTRACT_ID, kind="viewed", occurred_at=T0, document_sha256=DOCUMENT)
    assert (first.sequence, first.previous_hash) == (1, GENESIS_HASH)
    assert (second.sequence, second.previous_hash) == (2, entry_hash(first))
    with pytest.raises(ValueError, match="its own contract"):
        next_entry(first, contract_id=CONTRACT_ID + 1, kind="viewed", occurred_at=T0, document_sha256=DOCUMENT)


# --- verification -------------------------------------------------------------------------------

async def test_an_untouched_chain_verifies(notary):
    entries, receipts = await build_chain(notary)
    report = verify_chain(entries, receipts, notary.public_key)
    assert report.ok and report.first_failure is None and report.first_failed_sequence is None
    assert [check.sequence for check in report.checks] == [1, 2, 3, 4, 5, 6]
    assert all(check.link_ok and check.receipt_ok and check.problem is None for check in report.checks)
    assert [check.entry_hash for check in report.checks] == [entry_hash(entry) for entry in entries]
    assert [check.receipt_id for check in report.checks] == [receipts[n].receipt_id for n in range(1, 7)]


async def test_an_edited_entry_fails_where_it_was_edited(notary):
    entries, receipts = await build_chain(notary)
    entries[2] = with_ip(entries[2], "203.0.113.77")
    report = verify_chain(entries, receipts, notary.public_key)
    assert not report.ok and report.first_failed_sequence == 3
    assert report.first_failure.startswith("entry 3: notary receipt does not match the entry")
    assert f"receipt for {receipts[3].entry_hash}" in report.first_failure
    third, fourth = report.checks[2], report.checks[3]
    assert third.link_ok and not third.receipt_ok
    assert not fourth.link_ok and fourth.receipt_ok
    assert fourth.problems == ("entry 4: previous_hash does not match entry 3",)
    assert [check.ok for check in report.checks] == [True, True, False, False, True, True]


async def test_a_recomputed_chain_still_fails_because_the_receipts_do_not_match(notary):
    entries, receipts = await build_chain(notary)
    forged = relinked(entries[:2] + [with_ip(entries[2], "203.0.113.77")] + entries[3:])
    report = verify_chain(forged, receipts, notary.public_key)
    assert all(check.link_ok for check in report.checks)  # the links alone would not notice
    assert not report.ok and report.first_failed_sequence == 3
    assert report.first_failure.startswith("entry 3: notary receipt does not match the entry")
    assert [check.receipt_ok for check in report.checks] == [True, True, False, False, False, False]


async def test_a_removed_entry_fails_at_the_gap(notary):
    entries, receipts = await build_chain(notary)
    report = verify_chain(entries[:2] + entries[3:], receipts, notary.public_key)
    assert not report.ok and report.first_failed_sequence == 4
    assert report.first_failure == "entry 4: follows entry 2, entry 3 is missing"
    assert "entry 4: previous_hash does not match entry 2" in report.checks[2].problems
    assert report.chain_problems == ("entry 3: missing, but the notary issued a receipt for it",)


async def test_a_removed_entry_renumbered_and_relinked_still_fails(notary):
    entries, receipts = await build_chain(notary)
    forged = relinked([replace(entry, sequence=number) for number, entry in
                       enumerate(entries[:2] + entries[3:], start=1)])
    report = verify_chain(forged, {n: r for n, r in receipts.items() if n != 6}, notary.public_key)
    assert not report.ok and report.first_failed_sequence == 3
    assert report.first_failure.startswith("entry 3: notary receipt does not match the entry")


async def test_a_removed_last_entry_is_betrayed_by_its_receipt(notary):
    entries, receipts = await build_chain(notary)
    report = verify_chain(entries[:5], receipts, notary.public_key)
    assert not report.ok and report.first_failed_sequence is None
    assert report.first_failure == "entry 6: missing, but the notary issued a receipt for it"


async def test_reordered_entries_fail(notary):
    entries, receipts = await build_chain(notary)
    swapped = entries[:2] + [entries[3], entries[2]] + entries[4:]
    report = verify_chain(swapped, receipts, notary.public_key)
    assert not report.ok and report.first_failed_sequence == 4
    assert report.first_failure == "entry 4: follows entry 2, entry 3 is missing"
    assert "entry 3: out of order, follows entry 4" in report.checks[3].problems


async def test_reordered_entries_renumbered_and_relinked_still_fail(notary):
    entries, receipts = await build_chain(notary)
    swapped = relinked(entries[:2] + [replace(entries[3], sequence=3), replace(entries[2], sequence=4)]
                       + entries[4:])
    report = verify_chain(swapped, receipts, notary.public_key)
    assert not report.ok and report.first_failed_sequence == 3
    assert report.first_failure.startswith("entry 3: notary receipt does not match the entry")


async def test_an_entry_without_a_receipt_fails(notary):
    entries, receipts = await build_chain(notary)
    del receipts[5]
    report = verify_chain(entries, receipts, notary.public_key)
    assert not report.ok and report.first_failure == "entry 5: no receipt"
    assert report.checks[4].link_ok and not report.checks[4].receipt_ok


async def test_an_entry_of_another_contract_fails(notary):
    entries, receipts = await build_chain(notary)
    entries[3] = replace(entries[3], contract_id=CONTRACT_ID + 1)
    report = verify_chain(relinked(entries), receipts, notary.public_key)
    assert not report.ok
    assert report.first_failure == f"entry 4: belongs to contract {CONTRACT_ID + 1}, not {CONTRACT_ID}"


async def test_a_receipt_from_another_notary_fails(notary, tmp_path):
    entries, receipts = await build_chain(notary)
    impostor = SandboxNotary(tmp_path / "impostor")
    receipts[2] = await impostor.notarise(entry_hash(entries[1]))
    report = verify_chain(entries, receipts, notary.public_key)
    assert not report.ok and report.first_failed_sequence == 2
    assert report.first_failure == (
        f"entry 2: receipt signed with a key the notary does not know (key id {receipts[2].key_id})")


async def test_a_receipt_forged_under_the_notarys_key_id_fails(notary):
    entries, receipts = await build_chain(notary)
    forger_key = Ed25519PrivateKey.generate()
    forged = replace(receipts[4], notarised_at=receipts[4].notarised_at - timedelta(days=30))
    receipts[4] = replace(forged, signature=base64.b64encode(forger_key.sign(forged.signed_bytes())).decode())
    report = verify_chain(entries, receipts, notary.public_key)
    assert not report.ok and report.first_failure == "entry 4: receipt signature invalid"


@pytest.mark.parametrize("field, value", [
    ("notarised_at", datetime(2020, 1, 1, tzinfo=timezone.utc)),  # backdated
    ("receipt_id", "0" * 32),
    ("notary", "another-notary"),
    ("signature", "not base64!"),
])
async def test_an_edited_receipt_fails(notary, field, value):
    entries, receipts = await build_chain(notary)
    receipts[6] = replace(receipts[6], **{field: value})
    report = verify_chain(entries, receipts, notary.public_key)
    assert not report.ok and report.first_failure == "entry 6: receipt signature invalid"


async def test_a_key_lookup_answering_with_the_wrong_key_fails(notary, tmp_path):
    entries, receipts = await build_chain(notary)
    other = SandboxNotary(tmp_path / "other")
    other_key = other.public_key(other.current_key_id)
    report = verify_chain(entries, receipts, lambda key_id: other_key)
    assert not report.ok and report.first_failed_sequence == 1
    assert "is not the key it was asked for" in report.first_failure


async def test_receipts_signed_before_a_key_rotation_still_verify(notary):
    entries, receipts = await build_chain(notary, rotate_after=3)
    old_key_id, new_key_id = receipts[1].key_id, receipts[6].key_id
    assert old_key_id != new_key_id
    assert {receipts[n].key_id for n in (1, 2, 3)} == {old_key_id}
    assert {receipts[n].key_id for n in (4, 5, 6)} == {new_key_id}
    assert verify_chain(entries, receipts, notary.public_key).ok
    # A verifier that starts afresh from the notary's directory knows both keys.
    assert verify_chain(entries, receipts, SandboxNotary(notary.key_dir).public_key).ok
    # And one that only knows the new key cannot check the old receipts.
    only_new = {new_key_id: notary.public_key(new_key_id)}
    report = verify_chain(entries, receipts, only_new.__getitem__)
    assert report.first_failed_sequence == 1 and "does not know" in report.first_failure


def test_an_empty_log_proves_nothing():
    report = verify_chain([], {}, lambda key_id: b"")
    assert not report.ok and report.first_failure == "the evidence log is empty"


async def test_a_receipt_checks_out_with_nothing_but_the_public_key(notary):
    # What a court's expert does: no code of ours, only the published key and the receipt.
    entries, receipts = await build_chain(notary, EVENTS[:1])
    receipt = receipts[1]
    raw = notary.public_key(receipt.key_id)
    assert len(raw) == 32 and hashlib.sha256(raw).hexdigest()[:16] == receipt.key_id == key_id_of(raw)
    payload = json.dumps({"entry_hash": entry_hash(entries[0]), "notarised_at": receipt.notarised_at.strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ"), "notary": "sandbox-notary", "receipt_id": receipt.receipt_id},
        sort_keys=True, separators=(",", ":")).encode()
    assert payload == receipt.signed_bytes()
    Ed25519PublicKey.from_public_bytes(raw).verify(base64.b64decode(receipt.signature), payload)
