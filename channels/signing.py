"""Signed server-to-server requests (bank apps, partner platforms).

The caller signs ``METHOD \\n PATH \\n TIMESTAMP \\n NONCE \\n hex(SHA-256(body))`` with HMAC-SHA256
under its secret and sends ``X-Key-Id``, ``X-Timestamp`` (Unix seconds), ``X-Nonce`` and
``X-Signature`` (hex). We check the signature before looking at the body, refuse timestamps
outside the window, and refuse a nonce seen within the window (kept in Redis: if Redis is down we
cannot tell a replay, so we refuse with 503 rather than accept).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass
from typing import Awaitable, Callable, Generic, TypeVar

from infra.errors import DependencyUnavailable, Unauthenticated

security_log = logging.getLogger("security")

T = TypeVar("T")
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class SignatureRequired(Unauthenticated):
    """Server-to-server requests must be signed (X-Key-Id, X-Timestamp, X-Nonce, X-Signature)."""


class SignatureInvalid(Unauthenticated):
    """The signature does not match the request, or the key is unknown or disabled."""


class SignatureExpired(Unauthenticated):
    """The request's timestamp is outside the accepted window: check the caller's clock."""


class NonceReplayed(Unauthenticated):
    """This nonce was already used: a replayed request is refused."""


@dataclass(frozen=True)
class SignedRequest:
    method: str
    path: str
    key_id: str | None
    timestamp: str | None
    nonce: str | None
    signature: str | None
    body: bytes


@dataclass(frozen=True)
class Verified(Generic[T]):
    key_id: str
    principal: T


def canonical(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    return "\n".join([method.upper(), path, timestamp, nonce, hashlib.sha256(body).hexdigest()]).encode()


def sign(secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    return hmac.new(secret.encode(), canonical(method, path, timestamp, nonce, body), hashlib.sha256).hexdigest()


async def verify(
    request: SignedRequest,
    *,
    load: Callable[[str], Awaitable[tuple[str, T] | None]],
    redis,
    nonce_prefix: str,
    window_seconds: int,
    now: float,
    source: str,
) -> Verified[T]:
    """Check a signed request; ``load(key_id)`` gives (secret, principal) for an active key."""

    def refuse(error: Unauthenticated, reason: str) -> Unauthenticated:
        # Security review reads these: who tried what from where, never the body.
        security_log.warning("signed request refused", extra={"reason": reason, "key_id": request.key_id, "source": source, "path": request.path})
        return error

    if not (request.key_id and request.timestamp and request.nonce and request.signature):
        raise refuse(SignatureRequired(), "missing")
    if not _KEY_ID.match(request.key_id) or not _NONCE.match(request.nonce) or not request.timestamp.isdigit():
        raise refuse(SignatureInvalid(), "malformed")
    if abs(now - int(request.timestamp)) > window_seconds:
        raise refuse(SignatureExpired(), "timestamp")
    loaded = await load(request.key_id)
    if loaded is None:
        raise refuse(SignatureInvalid(), "unknown_key")
    secret, principal = loaded
    expected = sign(secret, request.method, request.path, request.timestamp, request.nonce, request.body)
    if not hmac.compare_digest(expected, request.signature.lower()):
        raise refuse(SignatureInvalid(), "bad_signature")
    try:
        fresh = await redis.set(f"{nonce_prefix}{request.key_id}:{request.nonce}", b"1", nx=True, ex=window_seconds * 2)
    except Exception:
        raise DependencyUnavailable("cannot check for replays right now; retry shortly") from None
    if not fresh:
        raise refuse(NonceReplayed(), "replay")
    return Verified(request.key_id, principal)
