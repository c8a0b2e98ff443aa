"""Signing by certificate with a liveness check: the sandbox CA and liveness service honour their
ports, and a party signs a contract with them through the API."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

import pytest

from integrations.ca_sandbox import SandboxCertificateAuthority
from integrations.liveness_sandbox import SandboxLiveness
from lending_core.contracts.models import ContractParty, EvidenceRecord
from lending_core.contracts.ports import CertificateRejected, LivenessFailed, LivenessUnavailable
from tests.contracts.flows import (
    approved_borrower,
    ask_for_contract,
    contract_path,
    error_code,
    party,
    state_of,
    stranger,
)

DOCUMENT = "9f2c" * 16
NAME, ID_NUMBER = "林志远", "320102198204101012"


@pytest.fixture(scope="module")
def ca() -> SandboxCertificateAuthority:
    return SandboxCertificateAuthority()


def now() -> datetime:
    return datetime.now(timezone.utc)


# ---- the sandbox CA ----------------------------------------------------------------------------


async def test_a_signature_by_an_issued_certificate_verifies_and_names_the_signer(ca):
    issued = ca.issue(NAME, ID_NUMBER)

    signer = await ca.verify(DOCUMENT, issued.sign(DOCUMENT), issued.chain, at=now())

    assert (signer.subject_name, signer.subject_id_number) == (NAME, ID_NUMBER)
    assert signer.serial == issued.serial
    assert "Signing CA" in signer.issuer and len(signer.fingerprint_sha256) == 64
    with_root = await ca.verify(DOCUMENT, issued.sign(DOCUMENT), (*issued.chain, ca.root_pem), at=now())
    assert with_root.serial == issued.serial


async def test_the_ca_refuses_what_does_not_hold(ca):
    issued = ca.issue(NAME, ID_NUMBER)
    signature = issued.sign(DOCUMENT)
    other_ca = SandboxCertificateAuthority()
    stranger_cert = other_ca.issue(NAME, ID_NUMBER)
    raw = bytearray(base64.b64decode(signature))
    raw[-1] ^= 1
    cases = {
        "another document": (DOCUMENT.replace("9", "8"), signature, issued.chain, now()),
        "an altered signature": (DOCUMENT, base64.b64encode(bytes(raw)).decode(), issued.chain, now()),
        "not base64": (DOCUMENT, "not base64!", issued.chain, now()),
        "another CA's certificate": (DOCUMENT, stranger_cert.sign(DOCUMENT), stranger_cert.chain, now()),
        "no intermediate": (DOCUMENT, signature, issued.chain[:1], now()),
        "after the certificate lapsed": (DOCUMENT, signature, issued.chain, now() + timedelta(days=400)),
        "before it was issued": (DOCUMENT, signature, issued.chain, now() - timedelta(days=1)),
        "the CA's own certificate as signer": (DOCUMENT, signature, issued.chain[1:], now()),
        "garbage": (DOCUMENT, signature, ["-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"], now()),
        "an empty chain": (DOCUMENT, signature, [], now()),
    }
    for label, (document, sig, chain, at) in cases.items():
        with pytest.raises(CertificateRejected):
            await ca.verify(document, sig, chain, at=at)
            pytest.fail(f"accepted {label}")


async def test_a_revoked_certificate_is_refused(ca):
    issued = ca.issue(NAME, ID_NUMBER)
    ca.revoke(issued.serial)
    with pytest.raises(CertificateRejected, match="revoked"):
        await ca.verify(DOCUMENT, issued.sign(DOCUMENT), issued.chain, at=now())


async def test_processes_sharing_a_key_dir_share_the_hierarchy(tmp_path):
    first = SandboxCertificateAuthority(tmp_path / "ca")
    second = SandboxCertificateAuthority(tmp_path / "ca")
    issued = first.issue(NAME, ID_NUMBER)

    assert (await second.verify(DOCUMENT, issued.sign(DOCUMENT), issued.chain, at=now())).serial == issued.serial
    assert oct((tmp_path / "ca" / "issuing_key.pem").stat().st_mode & 0o777) == "0o600"


# ---- the liveness sandbox -------------------------------------------------------------------------


async def test_a_liveness_token_is_for_one_customer_once_and_only_if_it_passed():
    liveness = SandboxLiveness()
    token = liveness.issue_token(42)

    with pytest.raises(LivenessFailed, match="someone else"):
        await liveness.verify(token, customer_id=43)
    result = await liveness.verify(token, customer_id=42)
    assert result.check_id and result.checked_at.tzinfo is not None
    with pytest.raises(LivenessFailed, match="already used"):
        await liveness.verify(token, customer_id=42)
    with pytest.raises(LivenessFailed, match="did not pass"):
        await liveness.verify(liveness.issue_token(42, passed=False), customer_id=42)
    with pytest.raises(LivenessFailed):
        await SandboxLiveness().verify(liveness.issue_token(42), customer_id=42)  # another service's token
    with pytest.raises(LivenessFailed):
        await liveness.verify("a.b.c", customer_id=42)
    liveness.available = False
    with pytest.raises(LivenessUnavailable):
        await liveness.verify(liveness.issue_token(42), customer_id=42)


# ---- through the API ---------------------------------------------------------------------------------


@pytest.fixture
async def awaiting(demo, client):
    borrower, application = await approved_borrower(client)
    made = await ask_for_contract(borrower, application["id"], [
        party("guarantor", stranger(client, name="周海燕")), party("co_borrower", stranger(client, name="陈美玲", n=1))])
    assert made.status == 201, made.text
    return borrower, made.json


def certificate_body(app, person, contract: dict, *, name: str | None = None, id_number: str | None = None, token: str | None = None) -> dict:
    providers = app.ctx.providers
    issued = providers.certificate_authority.issue(name or person.name, id_number or person.id_number)
    return {
        "method": "ca_certificate",
        "signature": issued.sign(contract["document_sha256"]),
        "certificate_chain": list(issued.chain),
        "liveness_token": token or providers.liveness.issue_token(person.customer_id),
    }


async def test_a_party_signs_by_certificate_with_a_liveness_check(app, awaiting):
    borrower, contract = awaiting
    body = certificate_body(app, borrower, contract)

    response = await borrower.post(contract_path(contract["id"], "sign"), body)

    assert response.status == 200, response.text
    assert response.json["my_signature"]["method"] == "ca_certificate"
    stored = await ContractParty.get(contract_id=contract["id"], role="borrower")
    assert set(stored.signature_detail) == {"method", "certificate_serial", "certificate_issuer", "certificate_sha256", "liveness_check_id"}
    entry = await EvidenceRecord.filter(contract_id=contract["id"], kind="signed").first()
    assert entry.detail["signature_method"] == "ca_certificate"
    assert entry.detail["certificate_serial"] == stored.signature_detail["certificate_serial"]
    assert borrower.name not in str(entry.detail) and borrower.id_number not in str(entry.detail)


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"name": "王丽"}, 403, "CERTIFICATE_NOT_SIGNER"),
        ({"id_number": "110101199003071234"}, 403, "CERTIFICATE_NOT_SIGNER"),
        ({"token": "someone-else"}, 422, "LIVENESS_FAILED"),
        ({"document": "0" * 64}, 422, "CERTIFICATE_REJECTED"),
    ],
    ids=["another name", "another ID number", "someone else's liveness", "signature over another document"],
)
async def test_a_certificate_signature_must_be_the_party_s_own(app, awaiting, change, status, code):
    borrower, contract = awaiting
    token = app.ctx.providers.liveness.issue_token(borrower.customer_id + 1000) if "token" in change else None
    signed_contract = {**contract, "document_sha256": change.get("document", contract["document_sha256"])}
    body = certificate_body(app, borrower, signed_contract, name=change.get("name"), id_number=change.get("id_number"), token=token)
    before = await state_of(contract["id"])

    response = await borrower.post(contract_path(contract["id"], "sign"), body)

    assert (response.status, error_code(response)) == (status, code), response.text
    assert await state_of(contract["id"]) == before
