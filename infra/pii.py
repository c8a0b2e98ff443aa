"""Personal-data protection (JR/T 0171-2020): field encryption, lookup hashes and masking.

ID numbers, phone numbers, names and bank-card numbers are stored only as AES-256-GCM tokens,
found by a keyed hash, and shown or logged only in masked form.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "CARD_NUMBER",
    "ID_NUMBER",
    "NAME",
    "PHONE",
    "InvalidKeySpec",
    "Keyring",
    "PiiNotConfigured",
    "UndecryptableValue",
    "configure",
    "generate_key_spec",
    "is_ciphertext",
    "keyring",
    "lookup_hash",
    "mask_card_number",
    "mask_id_number",
    "mask_name",
    "mask_phone",
    "mask_value",
    "scrub_text",
]

# The kinds of personal data we protect; they name lookup-hash domains and masking rules.
ID_NUMBER = "id_number"
PHONE = "phone"
CARD_NUMBER = "card_number"
NAME = "name"

TOKEN_VERSION = "v1"
KEY_BYTES = 32
MIN_HASH_KEY_BYTES = 32
NONCE_BYTES = 12
_TAG_BYTES = 16
# Key ids travel inside tokens and key specs, so they must not contain the separators "." "," ":".
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")


class InvalidKeySpec(ValueError):
    """Encryption keys must be 32 bytes each under distinct ids, the active id must be one of them,
    and the lookup-hash key must be at least 32 bytes and differ from every encryption key."""


class UndecryptableValue(ValueError):
    """A token must be one this keyring wrote: a known version and key id, intact ciphertext."""


class PiiNotConfigured(RuntimeError):
    """Personal data can only be encrypted or hashed after ``pii.configure`` installed a keyring."""


def _b64encode(raw: bytes) -> str:
    # Unpadded: tokens live in database columns and URLs, where "=" is only noise.
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    """Strict url-safe base64, with or without padding; raises ``ValueError`` on anything else."""
    stripped = text.strip().rstrip("=")
    padded = stripped + "=" * (-len(stripped) % 4)
    try:
        return base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError("not url-safe base64") from exc


class Keyring:
    """The encryption keys (one active, older ones kept to read old tokens) and the hash key."""

    def __init__(self, encryption_keys: Mapping[str, bytes], active_key_id: str, hash_key: bytes) -> None:
        if not encryption_keys:
            raise InvalidKeySpec("at least one encryption key is required")
        for key_id, key in encryption_keys.items():
            if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
                raise InvalidKeySpec("key ids must be 1-32 characters of letters, digits, '_' or '-'")
            if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_BYTES:
                raise InvalidKeySpec(f"encryption key {key_id!r} must be exactly {KEY_BYTES} bytes")
        if active_key_id not in encryption_keys:
            raise InvalidKeySpec(f"active key id {active_key_id!r} is not among the encryption keys")
        if not isinstance(hash_key, (bytes, bytearray)) or len(hash_key) < MIN_HASH_KEY_BYTES:
            raise InvalidKeySpec(f"the lookup-hash key must be at least {MIN_HASH_KEY_BYTES} bytes")
        # One key for two jobs would tie the hash key's lifetime to encryption-key rotation.
        if any(hmac.compare_digest(bytes(hash_key), bytes(key)) for key in encryption_keys.values()):
            raise InvalidKeySpec("the lookup-hash key must differ from every encryption key")
        self._ciphers = {key_id: AESGCM(bytes(key)) for key_id, key in encryption_keys.items()}
        self._active_key_id = active_key_id
        self._hash_key = bytes(hash_key)

    @classmethod
    def from_spec(cls, encryption_keys: str, active_key_id: str, hash_key: str) -> Keyring:
        """Build from settings text: ``"k1:<b64>,k2:<b64>"``, ``"k2"`` and ``"<b64>"`` (url-safe base64)."""
        keys: dict[str, bytes] = {}
        entries = [entry.strip() for entry in (encryption_keys or "").split(",") if entry.strip()]
        if not entries:
            raise InvalidKeySpec("no encryption keys given: expected 'k1:<base64 of 32 bytes>[,k2:...]'")
        for entry in entries:
            key_id, separator, encoded = entry.partition(":")
            key_id = key_id.strip()
            if not separator or not key_id or not encoded.strip():
                # Never echo the entry: it may hold key material.
                raise InvalidKeySpec("each encryption key must look like '<key id>:<base64 of 32 bytes>'")
            if key_id in keys:
                raise InvalidKeySpec(f"encryption key id {key_id!r} appears more than once")
            try:
                keys[key_id] = _b64decode(encoded)
            except ValueError:
                raise InvalidKeySpec(f"encryption key {key_id!r} is not url-safe base64") from None
        try:
            decoded_hash_key = _b64decode(hash_key or "")
        except ValueError:
            raise InvalidKeySpec("the lookup-hash key is not url-safe base64") from None
        return cls(keys, (active_key_id or "").strip(), decoded_hash_key)

    @property
    def active_key_id(self) -> str:
        return self._active_key_id

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._ciphers)

    def __repr__(self) -> str:
        # Keyrings end up in debug output and tracebacks; only ever show the ids.
        return f"Keyring(key_ids={sorted(self._ciphers)}, active_key_id={self._active_key_id!r})"

    def encrypt(self, plaintext: str) -> str:
        """A ``"v1.<key id>.<b64 of nonce+ciphertext>"`` token under the active key."""
        if not isinstance(plaintext, str):
            raise TypeError("only text can be encrypted")
        header = f"{TOKEN_VERSION}.{self._active_key_id}"
        nonce = secrets.token_bytes(NONCE_BYTES)
        # The header is associated data, so a token relabelled with another key id fails to open.
        sealed = self._ciphers[self._active_key_id].encrypt(nonce, plaintext.encode("utf-8"), header.encode("ascii"))
        return f"{header}.{_b64encode(nonce + sealed)}"

    def decrypt(self, token: str) -> str:
        key_id, body = self._split(token)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UndecryptableValue(f"no key with id {key_id!r} in the keyring")
        try:
            raw = _b64decode(body)
        except ValueError:
            raise UndecryptableValue("the token body is not url-safe base64") from None
        if len(raw) < NONCE_BYTES + _TAG_BYTES:
            raise UndecryptableValue("the token is too short to hold a nonce and tag")
        header = f"{TOKEN_VERSION}.{key_id}".encode("ascii")
        try:
            plaintext = cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], header)
            return plaintext.decode("utf-8")
        except (InvalidTag, UnicodeDecodeError):
            raise UndecryptableValue("the token was altered or was not written with this key") from None

    def needs_rotation(self, token: str) -> bool:
        """Whether ``token`` was written under a key other than the active one."""
        key_id, _ = self._split(token)
        return key_id != self._active_key_id

    @staticmethod
    def _split(token: str) -> tuple[str, str]:
        if not isinstance(token, str):
            raise UndecryptableValue("a token is text")
        version, key_id, body = (token.split(".", 2) + ["", ""])[:3]
        if version != TOKEN_VERSION:
            raise UndecryptableValue(f"tokens must start with {TOKEN_VERSION!r}")
        if not _KEY_ID.fullmatch(key_id) or not body:
            raise UndecryptableValue("a token looks like 'v1.<key id>.<base64>'")
        return key_id, body

    def lookup_hash(self, kind: str, value: str) -> str:
        """HMAC-SHA256 hex of ``kind``, NUL, normalised ``value``: equal values of one kind match."""
        if not isinstance(kind, str) or not kind or "\x00" in kind:
            # A NUL inside the kind would let two (kind, value) pairs produce the same message.
            raise ValueError("a lookup-hash kind is non-empty text without NUL")
        if not isinstance(value, str):
            raise TypeError("only text can be hashed")
        message = f"{kind}\x00{_normalise(kind, value)}".encode("utf-8")
        return hmac.new(self._hash_key, message, hashlib.sha256).hexdigest()


def _normalise(kind: str, value: str) -> str:
    # NFKC folds full-width digits and letters (common from Chinese input methods) to ASCII,
    # so "１３８..." and "138..." hash alike.
    text = "".join(unicodedata.normalize("NFKC", value).split())
    if kind == ID_NUMBER:
        text = text.upper()
    return text


_installed_keyring: Keyring | None = None


def is_ciphertext(value: str) -> bool:
    """Whether ``value`` has the shape of a token from ``Keyring.encrypt`` (not whether it opens)."""
    return value.startswith(TOKEN_VERSION + ".") and value.count(".") >= 2


def configure(keyring: Keyring) -> None:
    """Install the process-wide keyring; the composition root calls this at start-up."""
    global _installed_keyring
    if not isinstance(keyring, Keyring):
        raise TypeError("configure() takes a Keyring")
    _installed_keyring = keyring


def keyring() -> Keyring:
    if _installed_keyring is None:
        raise PiiNotConfigured("no keyring installed: call infra.pii.configure(Keyring...) at start-up")
    return _installed_keyring


def lookup_hash(kind: str, value: str) -> str:
    """``keyring().lookup_hash``: the installed keyring's hash of ``value``."""
    return keyring().lookup_hash(kind, value)


def generate_key_spec() -> tuple[str, str]:
    """Fresh ``("k1:<b64>", "<b64 hash key>")`` for development settings and docs."""
    return f"k1:{_b64encode(secrets.token_bytes(KEY_BYTES))}", _b64encode(secrets.token_bytes(MIN_HASH_KEY_BYTES))


# --- Masking -----------------------------------------------------------------------------------
# Masking functions run inside loggers and audit writers, so they never raise: odd input
# (None, non-text, too short) comes back masked or empty rather than as an exception.

# Hiding fewer characters than this is trivially guessed, so such values are starred entirely.
_MIN_HIDDEN = 4
_SEPARATORS = re.compile(r"[\s\-]+")


def _as_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    try:
        return str(value).strip()
    except Exception:
        return ""


def _keep_ends(text: str, head: int, tail: int) -> str:
    hidden = len(text) - head - tail
    if hidden < _MIN_HIDDEN:
        return "*" * len(text)
    return text[:head] + "*" * hidden + text[len(text) - tail :]


def mask_id_number(value: str | None) -> str:
    """First 4 and last 4 shown, same length: ``"3201**********1234"``."""
    return _keep_ends(_SEPARATORS.sub("", _as_text(value)).upper(), 4, 4)


def mask_phone(value: str | None) -> str:
    """First 3 and last 4 shown: ``"138****5678"``."""
    return _keep_ends(_SEPARATORS.sub("", _as_text(value)), 3, 4)


def mask_card_number(value: str | None) -> str:
    """First 6 (the issuer's BIN) and last 4 shown, separators dropped: ``"622202*********0123"``."""
    return _keep_ends(_SEPARATORS.sub("", _as_text(value)), 6, 4)


def mask_name(value: str | None) -> str:
    """``"张三"`` -> ``"*三"``; ``"张三丰"`` -> ``"张*丰"``; ``"John Smith"`` -> ``"J*** ****h"``."""
    text = _as_text(value)
    if len(text) <= 1:
        return "*" * len(text)
    if len(text) == 2:
        return "*" + text[1]
    # Spaces stay so a masked Western name still reads as a name in support screens.
    middle = "".join(char if char.isspace() else "*" for char in text[1:-1])
    return text[0] + middle + text[-1]


_MASKERS = {
    ID_NUMBER: mask_id_number,
    PHONE: mask_phone,
    CARD_NUMBER: mask_card_number,
    NAME: mask_name,
}


def mask_value(kind: str, value: str | None) -> str:
    """Mask ``value`` by the rule for ``kind``; an unknown kind is starred entirely."""
    masker = _MASKERS.get(kind)
    if masker is None:
        return "*" * len(_as_text(value))
    return masker(value)


# --- Scrubbing free text -----------------------------------------------------------------------
# A match must stand alone: not inside a longer digit run, not glued to ASCII letters (hex
# hashes, trace ids, tokens) and not part of a decimal amount. "\n" and friends count as
# boundaries because JSON log lines escape newlines. Chinese characters are boundaries too,
# so "手机13812345678" is still caught.
_STANDS_ALONE_BEFORE = r"(?:(?<=\\[nrt])|(?<![0-9A-Za-z])(?<![0-9]\.))"
_STANDS_ALONE_AFTER = r"(?![0-9A-Za-z])(?!\.[0-9])"
_SCRUB = re.compile(
    _STANDS_ALONE_BEFORE
    + r"(?:"
    # An 18-character run is masked as an ID even if it is a card: the ID mask shows less.
    + r"(?P<id18>[0-9]{17}[0-9Xx])"
    + r"|(?P<card>[0-9]{4}(?:[ -][0-9]{4}){3}(?:[ -]?[0-9]{1,3})?|[0-9]{16,19})"
    + r"|(?P<id15>[0-9]{15})"
    + r"|(?P<phone_prefix>(?:\+86|0086|86)[ -]?)?(?P<phone>1[3-9][0-9](?:[0-9]{8}|[ -][0-9]{4}[ -][0-9]{4}))"
    + r")"
    + _STANDS_ALONE_AFTER
)
# What every ``_SCRUB`` match contains: 11 digits in a row (IDs, ungrouped cards and phones) or
# 3 digits, a separator, 4 digits, a separator, 4 digits (grouped phones; the tail of a grouped
# card's first three groups). Most log lines have neither. Looking for them in the line's shape
# (its UTF-8 bytes with every ASCII digit made "0": ``[0-9]`` is ASCII only, and no other
# character encodes to an ASCII byte) is bytes searches in C: about 1.5 µs on a request log line,
# where a regex search for the same takes 5 and the scrub itself 17. Keep it in step with
# ``_SCRUB``: a line it passes over is never scrubbed (tests/infra/test_pii.py checks it against
# the pattern's own shapes).
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_GROUPED_SHAPE = re.compile(rb"000[ -]0000[ -]0000")


def _might_scrub(text: str) -> bool:
    shape = text.encode("utf-8", "surrogatepass").translate(_DIGITS_AS_ZERO)
    if b"00000000000" in shape:
        return True
    return (b"0 0000" in shape or b"0-0000" in shape) and _GROUPED_SHAPE.search(shape) is not None


def _scrub_match(match: re.Match[str]) -> str:
    if match["id18"] or match["id15"]:
        return mask_id_number(match["id18"] or match["id15"])
    if match["card"]:
        return mask_card_number(match["card"])
    return (match["phone_prefix"] or "") + mask_phone(match["phone"])


def scrub_text(text: str) -> str:
    """``text`` with anything that looks like an ID, mobile or card number replaced by its mask.

    The log formatter's last line of defence. It errs on the side of masking: any standalone
    16-19 digit run is treated as a card number. Amounts such as ``12345.67`` are left alone.
    """
    text = _as_text_unstripped(text)
    if not _might_scrub(text):
        return text
    return _SCRUB.sub(_scrub_match, text)


def _as_text_unstripped(value: object) -> str:
    # Unlike the maskers, scrubbing must keep the log line's own leading and trailing whitespace.
    if isinstance(value, str):
        return value
    return _as_text(value)
