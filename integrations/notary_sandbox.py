"""Sandbox of the evidence notary (司法存证): a separate local authority with its own key.

It stands where a third-party judicial evidence service would, and keeps the separation that
makes its receipts worth something: its Ed25519 private key lives in a file in ``key_dir``
(mode 0600, created on first use), never in our database, so whoever can rewrite our tables
still cannot forge a receipt.

- ``notarise(entry_hash)`` signs ``NotaryReceipt.signed_bytes()`` with a timestamp from the
  notary's own clock (timezone-aware UTC) and a fresh receipt id (uuid4 hex), and appends the
  receipt to the notary's own journal, ``key_dir/journal.jsonl`` (append-only, one JSON object
  a line), which a verifier can consult independently of our database.
- ``rotate_key()`` starts signing with a new key and destroys the old private key; every
  public key ever used stays in ``key_dir/public_keys/<key id>.pub`` (raw 32 bytes), so
  ``public_key(key_id)`` still checks old receipts. A key id is ``ports.key_id_of``.
- ``available = False`` makes ``notarise`` raise ``NotaryUnavailable`` (for fault tests).
- Several processes may share one ``key_dir``: the first to create the key wins, the others
  load it, and a rotation is noticed on the next ``notarise``.

What a real integration needs: a contract with a judicial evidence-preservation service
(a court-recognised platform or a notary office's e-evidence service, often on a judicial
blockchain), its API credentials and request-signing certificate, its receipt format mapped to
``NotaryReceipt`` (or ``signed_bytes`` adapted to what it signs), its published verification
keys or certificate chain, and its way of producing a notarised certificate for a court.
"""

from __future__ import annotations

import base64
import json
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra import clock
from lending_core.contracts.ports import NotaryReceipt, NotaryUnavailable, key_id_of

__all__ = ["SandboxNotary"]

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_KEY_ID = re.compile(r"[0-9a-f]{16}")


def _raw_public(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class SandboxNotary:
    def __init__(self, key_dir: Path, name: str = "sandbox-notary",
                 clock: Callable[[], datetime] = clock.now) -> None:
        self.key_dir = Path(key_dir)
        self.name = name
        self.available = True
        self._clock = clock
        self._signing_key: Ed25519PrivateKey | None = None
        self._signing_key_stamp: tuple[int, int] | None = None

    @property
    def private_key_path(self) -> Path:
        return self.key_dir / "signing_key.pem"

    @property
    def journal_path(self) -> Path:
        return self.key_dir / "journal.jsonl"

    @property
    def _public_dir(self) -> Path:
        return self.key_dir / "public_keys"

    async def notarise(self, entry_hash: str) -> NotaryReceipt:
        if not self.available:
            raise NotaryUnavailable("the evidence notary did not answer")
        if not isinstance(entry_hash, str) or not _SHA256_HEX.fullmatch(entry_hash):
            raise ValueError("the notary notarises a SHA-256 hex digest (64 lower-case hex characters)")
        signing_key = self._current_key()
        notarised_at = self._clock()
        if notarised_at.tzinfo is None:
            raise ValueError("the notary's clock must be timezone-aware")
        unsigned = NotaryReceipt(
            receipt_id=uuid.uuid4().hex,
            entry_hash=entry_hash,
            notarised_at=notarised_at.astimezone(timezone.utc),
            notary=self.name,
            key_id=key_id_of(_raw_public(signing_key)),
            signature="",
        )
        signature = base64.b64encode(signing_key.sign(unsigned.signed_bytes())).decode("ascii")
        receipt = replace(unsigned, signature=signature)
        self._append_to_journal(receipt)
        return receipt

    def public_key(self, key_id: str) -> bytes:
        if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
            raise KeyError(key_id)
        try:
            raw = (self._public_dir / f"{key_id}.pub").read_bytes()
        except FileNotFoundError:
            raise KeyError(key_id) from None
        if key_id_of(raw) != key_id:
            raise KeyError(key_id)
        return raw

    @property
    def current_key_id(self) -> str:
        return key_id_of(_raw_public(self._current_key()))

    def rotate_key(self) -> str:
        """Sign with a new key from now on; returns its id. The old private key is destroyed."""
        self.key_dir.mkdir(parents=True, exist_ok=True)
        new_key = Ed25519PrivateKey.generate()
        staged = self._stage_private_key(new_key)
        os.replace(staged, self.private_key_path)
        self._forget_loaded_key()
        return key_id_of(_raw_public(new_key))

    def journal(self) -> list[NotaryReceipt]:
        """Every receipt this notary has issued, oldest first."""
        if not self.journal_path.exists():
            return []
        with self.journal_path.open(encoding="utf-8") as lines:
            return [NotaryReceipt.from_dict(json.loads(line)) for line in lines if line.strip()]

    # --- keys -------------------------------------------------------------------------------

    def _current_key(self) -> Ed25519PrivateKey:
        try:
            stat = self.private_key_path.stat()
        except FileNotFoundError:
            self._create_first_key()
            stat = self.private_key_path.stat()
        stamp = (stat.st_ino, stat.st_mtime_ns)
        if self._signing_key is None or stamp != self._signing_key_stamp:
            loaded = serialization.load_pem_private_key(self.private_key_path.read_bytes(), password=None)
            if not isinstance(loaded, Ed25519PrivateKey):
                raise ValueError(f"{self.private_key_path} does not hold an Ed25519 private key")
            self._signing_key, self._signing_key_stamp = loaded, stamp
        return self._signing_key

    def _create_first_key(self) -> None:
        self.key_dir.mkdir(parents=True, exist_ok=True)
        staged = self._stage_private_key(Ed25519PrivateKey.generate())
        try:
            # A hard link either creates the key file complete or fails because another process
            # got there first: no one ever reads a half-written key.
            os.link(staged, self.private_key_path)
        except FileExistsError:
            pass
        finally:
            staged.unlink()

    def _stage_private_key(self, private_key: Ed25519PrivateKey) -> Path:
        """Write the key's public half where verifiers find it, and its private half to a new
        0600 file beside the key file; returns that file."""
        raw_public = _raw_public(private_key)
        self._public_dir.mkdir(parents=True, exist_ok=True)
        public_path = self._public_dir / f"{key_id_of(raw_public)}.pub"
        public_staged = self._public_dir / f".{public_path.name}.{uuid.uuid4().hex}.tmp"
        public_staged.write_bytes(raw_public)
        os.replace(public_staged, public_path)

        pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
        staged = self.key_dir / f".signing_key.{uuid.uuid4().hex}.tmp"
        descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(descriptor, 0o600)  # whatever the umask
            os.write(descriptor, pem)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        return staged

    def _forget_loaded_key(self) -> None:
        self._signing_key, self._signing_key_stamp = None, None

    # --- journal ----------------------------------------------------------------------------

    def _append_to_journal(self, receipt: NotaryReceipt) -> None:
        line = (json.dumps(receipt.as_dict(), sort_keys=True, separators=(",", ":")) + "\n").encode("utf-8")
        # O_APPEND and one write per line: processes sharing the journal never interleave lines.
        descriptor = os.open(self.journal_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(descriptor, line)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
