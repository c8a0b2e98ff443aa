"""Sandbox of a certificate authority (电子认证服务机构) for signatures by certificate.

It plays both sides a real deployment has: the CA that issues a citizen's signing certificate
(``issue``, for tests and the demo — in real life the customer's CA app or USB key holds the
private key) and the verifier the bank runs (``verify``). Its hierarchy is a root and one issuing
intermediate, ECDSA P-256; a signer's certificate names the person by common name (CN) and ID
number (``serialNumber``), as certificates for natural persons in China do.

``verify`` checks, at the time given: every certificate in the chain is directly issued by the
next and the last by the trusted root; each is within its validity; issuers are CAs and the
signer is not; the signer's key may sign (digital signature or non-repudiation); no certificate
is revoked (``revoke``); and the signature over the document hash verifies (ECDSA or RSA, SHA-256).

With ``key_dir`` the hierarchy is kept on disk (private keys 0600) so several processes share it;
without, it lives in memory for one process.

What a real integration needs: a contract with a licensed CA (under the Electronic Signature
Law, 《电子签名法》), its root and intermediate certificates as the trust store, online
revocation checking (OCSP or CRLs), and the CA's signing SDK in the mini-program or bank app.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from infra import clock
from lending_core.contracts.ports import CertificateRejected, CertifiedSigner

__all__ = ["IssuedCertificate", "SandboxCertificateAuthority"]

MAX_CHAIN = 4


@dataclass(frozen=True)
class IssuedCertificate:
    """A signing certificate with its private key, as the citizen's signing app would hold it."""

    private_key: ec.EllipticCurvePrivateKey
    certificate_pem: str
    chain: tuple[str, ...]  # the certificate first, then the intermediate: what a signer sends

    @property
    def serial(self) -> str:
        return format(x509.load_pem_x509_certificate(self.certificate_pem.encode()).serial_number, "x")

    def sign(self, document_sha256: str) -> str:
        """The signature (base64) over the document hash, as ``verify`` expects it."""
        raw = self.private_key.sign(document_sha256.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(raw).decode("ascii")


class SandboxCertificateAuthority:
    def __init__(self, key_dir: Path | None = None, *, name: str = "RCB Sandbox",
                 clock: Callable[[], datetime] = clock.now) -> None:
        self.name = name
        self._clock = clock
        self._revoked: set[int] = set()
        self.key_dir = Path(key_dir) if key_dir is not None else None
        if self.key_dir is not None and (self.key_dir / "root.pem").exists():
            self._load()
        else:
            self._create()

    # --- the hierarchy ------------------------------------------------------------------------

    def _create(self) -> None:
        now = self._clock()
        root_key = ec.generate_private_key(ec.SECP256R1())
        root_name = _name(f"{self.name} Root CA")
        root = _certificate(root_name, root_name, root_key.public_key(), root_key, now, days=3650, ca=True, path_length=1)
        issuing_key = ec.generate_private_key(ec.SECP256R1())
        issuing = _certificate(_name(f"{self.name} Signing CA"), root_name, issuing_key.public_key(), root_key, now,
                               days=1825, ca=True, path_length=0)
        if self.key_dir is None:
            self._root, self._issuing, self._issuing_key = root, issuing, issuing_key
            return
        self.key_dir.mkdir(parents=True, exist_ok=True)
        self._write("issuing_key.pem", issuing_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), private=True)
        self._write("issuing.pem", issuing.public_bytes(serialization.Encoding.PEM))
        # The root is written last: its presence says the hierarchy is complete.
        self._write("root.pem", root.public_bytes(serialization.Encoding.PEM))
        self._load()  # another process may have won the race: use what is on disk

    def _write(self, file_name: str, data: bytes, *, private: bool = False) -> None:
        staged = self.key_dir / f".{file_name}.{uuid.uuid4().hex}.tmp"
        descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
        try:
            os.write(descriptor, data)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        try:
            os.link(staged, self.key_dir / file_name)  # first writer wins, never a half-written file
        except FileExistsError:
            pass
        finally:
            staged.unlink()

    def _load(self) -> None:
        self._root = x509.load_pem_x509_certificate((self.key_dir / "root.pem").read_bytes())
        self._issuing = x509.load_pem_x509_certificate((self.key_dir / "issuing.pem").read_bytes())
        key = serialization.load_pem_private_key((self.key_dir / "issuing_key.pem").read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the sandbox CA's issuing key is not an EC key")
        self._issuing_key = key

    @property
    def root_pem(self) -> str:
        return self._root.public_bytes(serialization.Encoding.PEM).decode("ascii")

    # --- issuing (the citizen's side, for tests and the demo) ------------------------------------

    def issue(self, name: str, id_number: str, *, valid_days: int = 365,
              not_before: datetime | None = None) -> IssuedCertificate:
        """A signing certificate for a natural person, with its fresh private key."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, id_number),
        ])
        start = not_before or self._clock()
        certificate = _certificate(subject, self._issuing.subject, key.public_key(), self._issuing_key, start,
                                   days=valid_days, ca=False)
        pem = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
        return IssuedCertificate(key, pem, (pem, self._issuing.public_bytes(serialization.Encoding.PEM).decode("ascii")))

    def revoke(self, serial: str) -> None:
        self._revoked.add(int(serial, 16))

    # --- verifying (the bank's side) ---------------------------------------------------------------

    async def verify(self, document_sha256: str, signature: str, certificate_chain: Sequence[str], *,
                     at: datetime) -> CertifiedSigner:
        chain = _parse_chain(certificate_chain)
        signer = chain[0]
        issuers = [*chain[1:]]
        if issuers and _fingerprint(issuers[-1]) == _fingerprint(self._root):
            issuers.pop()  # the signer sent the root as well
        path = [signer, *issuers, self._root]
        for certificate, issuer in zip(path, path[1:]):
            try:
                certificate.verify_directly_issued_by(issuer)
            except (ValueError, TypeError, InvalidSignature):
                raise CertificateRejected("the certificate chain does not lead to the trusted root") from None
            if not _is_ca(issuer):
                raise CertificateRejected("a certificate in the chain was issued by a non-CA certificate")
        for certificate in path:
            if not certificate.not_valid_before_utc <= at <= certificate.not_valid_after_utc:
                raise CertificateRejected("a certificate in the chain is not valid at the time of signing")
            if certificate.serial_number in self._revoked:
                raise CertificateRejected("a certificate in the chain is revoked")
        if _is_ca(signer):
            raise CertificateRejected("a CA certificate cannot sign a contract")
        _check_may_sign(signer)
        _check_signature(signer, signature, document_sha256)
        name = _attribute(signer, NameOID.COMMON_NAME)
        id_number = _attribute(signer, NameOID.SERIAL_NUMBER)
        if not name or not id_number:
            raise CertificateRejected("the certificate does not name a natural person (CN and serialNumber)")
        return CertifiedSigner(
            subject_name=name,
            subject_id_number=id_number,
            serial=format(signer.serial_number, "x"),
            issuer=signer.issuer.rfc4514_string(),
            fingerprint_sha256=_fingerprint(signer),
            not_after=signer.not_valid_after_utc,
        )


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "RCB Sandbox CA"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _certificate(subject: x509.Name, issuer: x509.Name, public_key, signing_key, start: datetime, *, days: int,
                 ca: bool, path_length: int | None = None) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - timedelta(minutes=5))
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
    )
    if ca:
        usage = dict(digital_signature=False, content_commitment=False, key_cert_sign=True, crl_sign=True)
    else:
        usage = dict(digital_signature=True, content_commitment=True, key_cert_sign=False, crl_sign=False)
    builder = builder.add_extension(
        x509.KeyUsage(key_encipherment=False, data_encipherment=False, key_agreement=False,
                      encipher_only=False, decipher_only=False, **usage),
        critical=True,
    )
    return builder.sign(signing_key, hashes.SHA256())


def _parse_chain(certificate_chain: Sequence[str]) -> list[x509.Certificate]:
    if isinstance(certificate_chain, (str, bytes)) or not certificate_chain or len(certificate_chain) > MAX_CHAIN:
        raise CertificateRejected(f"send the certificate chain as 1-{MAX_CHAIN} PEM certificates, the signer's first")
    parsed = []
    for pem in certificate_chain:
        try:
            parsed.append(x509.load_pem_x509_certificate(pem.encode("ascii") if isinstance(pem, str) else pem))
        except (ValueError, TypeError, UnicodeEncodeError):
            raise CertificateRejected("a certificate in the chain is not a PEM X.509 certificate") from None
    return parsed


def _fingerprint(certificate: x509.Certificate) -> str:
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _check_may_sign(certificate: x509.Certificate) -> None:
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not (usage.digital_signature or usage.content_commitment):
        raise CertificateRejected("the certificate's key may not sign")


def _check_signature(certificate: x509.Certificate, signature: str, document_sha256: str) -> None:
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise CertificateRejected("the signature is not base64") from None
    key = certificate.public_key()
    message = document_sha256.encode("ascii")
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(raw, message, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
        else:
            raise CertificateRejected("the certificate's key type is not accepted (ECDSA or RSA)")
    except InvalidSignature:
        raise CertificateRejected("the signature does not verify over this contract's document hash") from None


def _attribute(certificate: x509.Certificate, oid) -> str | None:
    found = certificate.subject.get_attributes_for_oid(oid)
    value = found[0].value if found else None
    return value if isinstance(value, str) else None
