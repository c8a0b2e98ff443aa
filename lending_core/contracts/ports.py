"""Outside parties the contract area needs: the evidence notary, the SMS gateway for
one-time signing codes, and — for signatures under the Electronic Signature Law by certificate —
a certificate authority and a liveness (face) check. Implementations: ``integrations``.

A notary receipt is the notary's Ed25519 signature over ``NotaryReceipt.signed_bytes()``: the
canonical JSON of the entry hash, the notary's own timestamp, the receipt id and the notary's
name. Anyone holding the notary's public key can check it without trusting our database.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

from infra.errors import DependencyUnavailable, InvalidInput

KEY_ID_HEX_CHARS = 16


class NotaryUnavailable(DependencyUnavailable):
    """The evidence notary did not answer; the entry stays stored and is notarised on a retry."""


class SmsUnavailable(DependencyUnavailable):
    """The SMS gateway did not take the message; nothing was sent, try again shortly."""


class CertificateRejected(InvalidInput):
    """A certificate signature must verify over the document hash with a certificate that chains
    to the authority's trusted root, is within its validity and is not revoked."""


class CertificateAuthorityUnavailable(DependencyUnavailable):
    """The certificate authority (or its revocation service) did not answer; try again shortly."""


class LivenessFailed(InvalidInput):
    """The liveness check did not pass, was for someone else, or its token was already used."""


class LivenessUnavailable(DependencyUnavailable):
    """The liveness service did not answer; try again shortly."""


def iso_utc(at: datetime) -> str:
    """``2024-05-01T08:30:00.000000Z``: one spelling per instant, whatever zone ``at`` is in."""
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("evidence timestamps must be timezone-aware datetimes")
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso_utc(text: str) -> datetime:
    """The inverse of ``iso_utc``."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def canonical_json(payload: Mapping[str, Any]) -> bytes:
    """Deterministic JSON: sorted keys, no spaces, UTF-8. What is hashed and what is signed."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def key_id_of(public_key: bytes) -> str:
    """A notary key's id: the first 16 hex characters of the SHA-256 of its raw public key."""
    return hashlib.sha256(public_key).hexdigest()[:KEY_ID_HEX_CHARS]


@dataclass(frozen=True)
class NotaryReceipt:
    """The notary's signed statement that it saw ``entry_hash`` at ``notarised_at``."""

    receipt_id: str
    entry_hash: str  # sha256 hex of the evidence entry's canonical bytes
    notarised_at: datetime  # by the notary's clock, timezone-aware UTC
    notary: str  # the authority's name, e.g. "sandbox-notary"
    key_id: str  # which of the notary's keys signed (see ``key_id_of``)
    signature: str  # base64 Ed25519 signature over ``signed_bytes()``

    def signed_bytes(self) -> bytes:
        return canonical_json({
            "entry_hash": self.entry_hash,
            "notarised_at": iso_utc(self.notarised_at),
            "receipt_id": self.receipt_id,
            "notary": self.notary,
        })

    def as_dict(self) -> dict[str, str]:
        """JSON-safe fields, for storage beside the entry and for the notary's journal."""
        return {
            "receipt_id": self.receipt_id,
            "entry_hash": self.entry_hash,
            "notarised_at": iso_utc(self.notarised_at),
            "notary": self.notary,
            "key_id": self.key_id,
            "signature": self.signature,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, str]) -> NotaryReceipt:
        return cls(
            receipt_id=data["receipt_id"],
            entry_hash=data["entry_hash"],
            notarised_at=parse_iso_utc(data["notarised_at"]),
            notary=data["notary"],
            key_id=data["key_id"],
            signature=data["signature"],
        )


class EvidenceNotary(Protocol):
    """司法存证: an authority outside the bank that timestamps and signs evidence-entry hashes."""

    async def notarise(self, entry_hash: str) -> NotaryReceipt:
        """A signed receipt for ``entry_hash``; raises ``NotaryUnavailable`` if unreachable."""
        ...

    def public_key(self, key_id: str) -> bytes:
        """The raw Ed25519 public key with this id, retired keys included; ``KeyError`` if the
        notary never had such a key."""
        ...


class SmsSender(Protocol):
    async def send(self, phone: str, text: str) -> None:
        """Send ``text`` to the mobile ``phone``; raises ``SmsUnavailable`` if not accepted."""
        ...


@dataclass(frozen=True)
class CertifiedSigner:
    """Whom a verified certificate names, and which certificate it is.

    ``subject_name`` and ``subject_id_number`` are personal data: the caller compares them with
    the party and keeps only the certificate's serial, issuer and fingerprint."""

    subject_name: str
    subject_id_number: str
    serial: str  # hex, as the CA prints it
    issuer: str  # the issuing CA's distinguished name (RFC 4514)
    fingerprint_sha256: str  # of the signer's certificate (DER)
    not_after: datetime


class CertificateAuthority(Protocol):
    """电子认证服务 (CA): checks a signature made with a citizen's signing certificate."""

    async def verify(self, document_sha256: str, signature: str, certificate_chain: Sequence[str], *,
                     at: datetime) -> CertifiedSigner:
        """Check that ``signature`` (base64) is the certificate's signature over the ASCII bytes of
        ``document_sha256``, and that ``certificate_chain`` (PEM, the signer's certificate first,
        then intermediates) leads to the authority's trusted root and is valid and unrevoked
        ``at``. Raises ``CertificateRejected`` otherwise."""
        ...


@dataclass(frozen=True)
class LivenessResult:
    check_id: str  # the liveness service's reference for the check (kept as evidence)
    checked_at: datetime


class LivenessCheck(Protocol):
    """活体检测: proves that the person in front of the camera is the customer, live."""

    async def verify(self, token: str, *, customer_id: int) -> LivenessResult:
        """Redeem the token the liveness SDK gave the customer's device; raises
        ``LivenessFailed`` if it did not pass, is someone else's or was used before."""
        ...
