"""The evidence log of a contract (电子合同 司法存证), as pure functions over plain values.

Every contract event (generated, viewed, each signature, effective, expired) is one
``EvidenceEntry``. Each entry carries the SHA-256 of the one before it (the first carries
``GENESIS_HASH``), so editing, removing or reordering a stored entry breaks the links after it.
Links alone do not stop someone who rewrites the whole chain, so each entry's hash is also sent
to the evidence notary, whose signed, timestamped receipt is kept beside the entry: a rewritten
entry no longer matches the hash the notary signed, and the receipt cannot be re-signed without
the notary's private key, which we never hold.

``verify_chain`` checks both, entry by entry, and says where the first failure is.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from lending_core.contracts.ports import NotaryReceipt, canonical_json, iso_utc, key_id_of

__all__ = [
    "GENESIS_HASH",
    "ChainReport",
    "EntryCheck",
    "EvidenceEntry",
    "canonical_bytes",
    "entry_hash",
    "next_entry",
    "receipt_problem",
    "verify_chain",
]

GENESIS_HASH = "0" * 64
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_KIND = re.compile(r"[a-z][a-z_]{0,31}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class EvidenceEntry:
    """One contract event as it is hashed, stored and notarised."""

    sequence: int  # 1 for the contract's first event, then +1 per event
    contract_id: int
    kind: str  # "generated" | "viewed" | "signed" | "effective" | "expired" …
    occurred_at: datetime  # timezone-aware; kept in UTC
    document_sha256: str  # the contract document the event is about
    # Who and how: actor role, customer id, ip, user agent, channel, signature method… (str or int)
    detail: dict[str, str | int] = field(default_factory=dict)
    previous_hash: str = GENESIS_HASH  # entry_hash of the entry before, GENESIS_HASH for the first

    def __post_init__(self) -> None:
        if not _is_int(self.sequence) or self.sequence < 1:
            raise ValueError("an evidence entry's sequence is an int from 1")
        if not _is_int(self.contract_id) or self.contract_id < 1:
            raise ValueError("an evidence entry's contract id is a positive int")
        if not isinstance(self.kind, str) or not _KIND.fullmatch(self.kind):
            raise ValueError("an evidence entry's kind is a lower-case word such as 'signed'")
        object.__setattr__(self, "occurred_at", _utc(self.occurred_at))
        for name in ("document_sha256", "previous_hash"):
            if not isinstance(getattr(self, name), str) or not _SHA256_HEX.fullmatch(getattr(self, name)):
                raise ValueError(f"an evidence entry's {name} is 64 lower-case hex characters")
        if not isinstance(self.detail, Mapping):
            raise ValueError("an evidence entry's detail is a mapping of text to text or int")
        for key, value in self.detail.items():
            # Floats, None and nesting have more than one JSON spelling or none: they would make
            # the hash depend on the encoder.
            if not isinstance(key, str) or not key or not (isinstance(value, str) or _is_int(value)):
                raise ValueError("an evidence entry's detail maps non-empty text to text or int")
        object.__setattr__(self, "detail", dict(self.detail))


def _utc(at: datetime) -> datetime:
    iso_utc(at)  # refuses naive datetimes
    return at.astimezone(timezone.utc)


def canonical_bytes(entry: EvidenceEntry) -> bytes:
    """The entry as deterministic JSON: sorted keys, no spaces, UTF-8, times in UTC with
    microseconds and a "Z" (``2024-05-01T08:30:00.000000Z``)."""
    return canonical_json({
        "sequence": entry.sequence,
        "contract_id": entry.contract_id,
        "kind": entry.kind,
        "occurred_at": iso_utc(entry.occurred_at),
        "document_sha256": entry.document_sha256,
        "detail": entry.detail,
        "previous_hash": entry.previous_hash,
    })


def entry_hash(entry: EvidenceEntry) -> str:
    return hashlib.sha256(canonical_bytes(entry)).hexdigest()


def next_entry(previous: EvidenceEntry | None, *, contract_id: int, kind: str, occurred_at: datetime,
               document_sha256: str, detail: Mapping[str, str | int] | None = None) -> EvidenceEntry:
    """The entry that follows ``previous`` (``None``: the contract's first) in the same contract."""
    if previous is not None and previous.contract_id != contract_id:
        raise ValueError("an evidence entry follows an entry of its own contract")
    return EvidenceEntry(
        sequence=1 if previous is None else previous.sequence + 1,
        contract_id=contract_id,
        kind=kind,
        occurred_at=occurred_at,
        document_sha256=document_sha256,
        detail=dict(detail or {}),
        previous_hash=GENESIS_HASH if previous is None else entry_hash(previous),
    )


@dataclass(frozen=True)
class EntryCheck:
    """What was checked for one stored entry; ``problems`` is empty when it holds."""

    sequence: int
    entry_hash: str  # recomputed from the entry as stored
    link_ok: bool  # in place, and previous_hash is the hash of the entry before it
    receipt_ok: bool  # a receipt for exactly this hash, signed by a key of the notary
    problems: tuple[str, ...] = ()
    receipt_id: str | None = None
    notarised_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def problem(self) -> str | None:
        return "; ".join(self.problems) or None


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checks: tuple[EntryCheck, ...]
    first_failure: str | None = None  # e.g. "entry 3: previous_hash does not match entry 2"
    first_failed_sequence: int | None = None
    # Problems that belong to no stored entry (an empty log, receipts for entries that are gone).
    chain_problems: tuple[str, ...] = ()


def receipt_problem(receipt: NotaryReceipt, expected_hash: str,
                    public_key: Callable[[str], bytes]) -> str | None:
    """Why ``receipt`` does not prove ``expected_hash`` (``None`` if it does).

    ``public_key`` looks up the notary's raw Ed25519 public key by key id and raises
    ``KeyError`` for a key the notary never had (``EvidenceNotary.public_key`` does).
    """
    if receipt.entry_hash != expected_hash:
        return (f"notary receipt does not match the entry (recorded hash {expected_hash}, "
                f"receipt for {receipt.entry_hash})")
    try:
        raw_key = public_key(receipt.key_id)
    except KeyError:
        return f"receipt signed with a key the notary does not know (key id {receipt.key_id})"
    if key_id_of(raw_key) != receipt.key_id:
        return f"the notary's key {receipt.key_id} is not the key it was asked for"
    try:
        signature = base64.b64decode(receipt.signature, validate=True)
        Ed25519PublicKey.from_public_bytes(raw_key).verify(signature, receipt.signed_bytes())
    except (InvalidSignature, binascii.Error, ValueError):
        return "receipt signature invalid"
    return None


def verify_chain(entries: Sequence[EvidenceEntry], receipts: Mapping[int, NotaryReceipt],
                 public_key: Callable[[str], bytes]) -> ChainReport:
    """Check a contract's evidence log as stored (in stored order) against its notary receipts.

    ``receipts`` maps an entry's sequence to the receipt stored for it; ``public_key`` is the
    notary's key lookup (see ``receipt_problem``). Each entry must be in place (sequence 1, 2, …,
    one contract), linked to the entry before it, and covered by a valid receipt for its hash.
    """
    checks: list[EntryCheck] = []
    previous: EvidenceEntry | None = None
    previous_hash = GENESIS_HASH
    for entry in entries:
        this_hash = entry_hash(entry)
        where = f"entry {entry.sequence}"
        link_problems: list[str] = []
        expected_sequence = 1 if previous is None else previous.sequence + 1
        if entry.sequence != expected_sequence:
            if previous is None:
                link_problems.append(f"{where}: the log starts here, entries before it are missing")
            elif entry.sequence > expected_sequence:
                gap = (f"entry {expected_sequence} is" if entry.sequence - expected_sequence == 1
                       else f"entries {expected_sequence}-{entry.sequence - 1} are")
                link_problems.append(f"{where}: follows entry {previous.sequence}, {gap} missing")
            else:
                link_problems.append(f"{where}: out of order, follows entry {previous.sequence}")
        if previous is not None and entry.contract_id != previous.contract_id:
            link_problems.append(f"{where}: belongs to contract {entry.contract_id}, "
                                 f"not {previous.contract_id}")
        if entry.previous_hash != previous_hash:
            after = "the start of the log" if previous is None else f"entry {previous.sequence}"
            link_problems.append(f"{where}: previous_hash does not match {after}")

        receipt = receipts.get(entry.sequence)
        if receipt is None:
            receipt_problems = [f"{where}: no receipt"]
        else:
            problem = receipt_problem(receipt, this_hash, public_key)
            receipt_problems = [f"{where}: {problem}"] if problem else []

        checks.append(EntryCheck(
            sequence=entry.sequence,
            entry_hash=this_hash,
            link_ok=not link_problems,
            receipt_ok=not receipt_problems,
            problems=tuple(link_problems + receipt_problems),
            receipt_id=None if receipt is None else receipt.receipt_id,
            notarised_at=None if receipt is None else receipt.notarised_at,
        ))
        previous, previous_hash = entry, this_hash

    chain_problems: list[str] = []
    if not entries:
        chain_problems.append("the evidence log is empty")
    # A receipt whose entry is gone proves an entry was removed, even from the end of the log.
    stored = {entry.sequence for entry in entries}
    chain_problems += [f"entry {sequence}: missing, but the notary issued a receipt for it"
                       for sequence in sorted(set(receipts) - stored)]

    failed = next((check for check in checks if check.problems), None)
    first_failure = failed.problems[0] if failed else (chain_problems[0] if chain_problems else None)
    return ChainReport(
        ok=first_failure is None,
        checks=tuple(checks),
        first_failure=first_failure,
        first_failed_sequence=failed.sequence if failed else None,
        chain_problems=tuple(chain_problems),
    )
