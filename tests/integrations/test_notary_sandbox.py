"""The sandbox evidence notary: its own key in its own file (0600, never in our database), its
own clock, its journal, key rotation, the fault switch, and the contract with
``ports.EvidenceNotary``."""

from __future__ import annotations

import base64
import hashlib
import inspect
import stat
import typing
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from integrations.notary_sandbox import SandboxNotary
from lending_core.contracts import ports

HASH = hashlib.sha256(b"an evidence entry").hexdigest()
NOON_BEIJING = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=8)))


def private_bytes(notary: SandboxNotary) -> bytes:
    key = serialization.load_pem_private_key(notary.private_key_path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())


def test_the_sandbox_honours_the_protocol():
    for method in ("notarise", "public_key"):
        promised, implemented = getattr(ports.EvidenceNotary, method), getattr(SandboxNotary, method)
        assert inspect.iscoroutinefunction(implemented) == inspect.iscoroutinefunction(promised)
        assert list(inspect.signature(implemented).parameters) == list(inspect.signature(promised).parameters)
        assert typing.get_type_hints(implemented) == typing.get_type_hints(promised, vars(ports))
    assert issubclass(ports.NotaryUnavailable, ports.DependencyUnavailable)


async def test_a_receipt_is_signed_by_the_notarys_own_key_and_clock(tmp_path):
    notary = SandboxNotary(tmp_path / "notary", clock=lambda: NOON_BEIJING)
    receipt = await notary.notarise(HASH)
    assert receipt.entry_hash == HASH and receipt.notary == "sandbox-notary"
    assert receipt.notarised_at == NOON_BEIJING and receipt.notarised_at.tzinfo == timezone.utc
    assert len(receipt.receipt_id) == 32 and int(receipt.receipt_id, 16) >= 0
    raw = notary.public_key(receipt.key_id)
    Ed25519PublicKey.from_public_bytes(raw).verify(base64.b64decode(receipt.signature), receipt.signed_bytes())
    assert receipt.key_id == ports.key_id_of(raw) == notary.current_key_id


async def test_receipts_carry_fresh_ids_and_real_time(tmp_path):
    notary = SandboxNotary(tmp_path / "notary")
    before = datetime.now(timezone.utc)
    first, second = await notary.notarise(HASH), await notary.notarise(HASH)
    assert first.receipt_id != second.receipt_id
    assert before <= first.notarised_at <= second.notarised_at <= datetime.now(timezone.utc)


async def test_the_private_key_is_a_0600_file_of_the_notarys_own(tmp_path):
    key_dir = tmp_path / "notary"
    notary = SandboxNotary(key_dir)
    receipt = await notary.notarise(HASH)
    assert notary.private_key_path.parent == key_dir
    assert stat.S_IMODE(notary.private_key_path.stat().st_mode) == 0o600
    secret = private_bytes(notary)
    # Nothing the notary hands out (what we would store) holds the private key in any form.
    handed_out = [repr(receipt).encode(), repr(receipt.as_dict()).encode(), notary.public_key(receipt.key_id)]
    for form in (secret, secret.hex().encode(), base64.b64encode(secret)):
        assert not any(form in blob for blob in handed_out)
    assert secret not in notary.journal_path.read_bytes()
    # Only the key file holds it; nothing left behind from writing it.
    holders = [path.name for path in key_dir.rglob("*") if path.is_file() and b"PRIVATE KEY" in path.read_bytes()]
    assert holders == [notary.private_key_path.name]


async def test_the_key_is_created_once_and_reloaded(tmp_path):
    key_dir = tmp_path / "notary"
    assert not key_dir.exists()
    first = await SandboxNotary(key_dir).notarise(HASH)
    again = SandboxNotary(key_dir)
    second = await again.notarise(HASH)
    assert first.key_id == second.key_id
    assert again.public_key(first.key_id) == again.public_key(second.key_id)


async def test_the_journal_keeps_every_receipt_in_order(tmp_path):
    notary = SandboxNotary(tmp_path / "notary")
    issued = [await notary.notarise(hashlib.sha256(bytes([n])).hexdigest()) for n in range(3)]
    assert notary.journal() == issued
    # Another instance (a verifier at the notary's side) reads the same journal.
    assert SandboxNotary(notary.key_dir).journal() == issued
    assert len(notary.journal_path.read_text(encoding="utf-8").splitlines()) == 3


async def test_rotation_signs_with_a_new_key_and_keeps_the_old_public_key(tmp_path):
    notary = SandboxNotary(tmp_path / "notary")
    old = await notary.notarise(HASH)
    old_secret = private_bytes(notary)
    new_key_id = notary.rotate_key()
    new = await notary.notarise(HASH)
    assert new.key_id == new_key_id != old.key_id
    assert stat.S_IMODE(notary.private_key_path.stat().st_mode) == 0o600
    assert private_bytes(notary) != old_secret
    for receipt in (old, new):
        Ed25519PublicKey.from_public_bytes(notary.public_key(receipt.key_id)).verify(
            base64.b64decode(receipt.signature), receipt.signed_bytes())
    assert not any(old_secret in path.read_bytes() for path in notary.key_dir.rglob("*") if path.is_file())


async def test_another_process_notices_a_rotation(tmp_path):
    signer, rotator = SandboxNotary(tmp_path / "notary"), SandboxNotary(tmp_path / "notary")
    before = await signer.notarise(HASH)
    new_key_id = rotator.rotate_key()
    after = await signer.notarise(HASH)
    assert before.key_id != after.key_id == new_key_id


async def test_an_unknown_key_id_is_a_key_error(tmp_path):
    notary = SandboxNotary(tmp_path / "notary")
    await notary.notarise(HASH)
    for key_id in ("0" * 16, "../journal.jsonl", "", notary.current_key_id.upper()):
        with pytest.raises(KeyError):
            notary.public_key(key_id)


async def test_a_switched_off_notary_is_unavailable_and_records_nothing(tmp_path):
    notary = SandboxNotary(tmp_path / "notary")
    notary.available = False
    with pytest.raises(ports.NotaryUnavailable):
        await notary.notarise(HASH)
    assert notary.journal() == []
    notary.available = True
    assert (await notary.notarise(HASH)).entry_hash == HASH


@pytest.mark.parametrize("bad", ["", "xyz", HASH.upper(), HASH[:-1], HASH + "0"])
async def test_only_a_sha256_hex_digest_is_notarised(tmp_path, bad):
    with pytest.raises(ValueError):
        await SandboxNotary(tmp_path / "notary").notarise(bad)


async def test_a_receipt_survives_storage_as_json(tmp_path):
    receipt = await SandboxNotary(tmp_path / "notary").notarise(HASH)
    assert ports.NotaryReceipt.from_dict(receipt.as_dict()) == receipt
