"""Sessions and tokens: short-lived signed access tokens, rotating refresh tokens.

Access tokens are HS256 JWTs checked without a database read; refresh tokens are random secrets
stored only as hashes. The audience separates customer tokens from staff tokens, so one can never
be used as the other.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

import jwt
from jwt.algorithms import HMACAlgorithm

from infra import clock
from infra.actors import Actor
from infra.errors import Unauthenticated
from channels.models import AuthSession

ALGORITHM = "HS256"
AUDIENCES = ("customer", "staff")


class _HS256(HMACAlgorithm):
    """PyJWT's HS256, with each secret checked and prepared once instead of on every token:
    PyJWT tries the secret as a PEM, DER and X.509 key and parses it as JSON each time (74 → 42
    µs a token check). The checks are PyJWT's own; a secret they refuse is refused every time (a
    raise is never remembered)."""

    def __init__(self):
        super().__init__(HMACAlgorithm.SHA256)

    def prepare_key(self, key):
        return _prepared_key(key)


@lru_cache(maxsize=8)
def _prepared_key(key: str | bytes) -> bytes:
    return HMACAlgorithm(HMACAlgorithm.SHA256).prepare_key(key)


# PyJWT's documented way to replace an algorithm: on its module-level instance, the one
# jwt.encode and jwt.decode use.
jwt.unregister_algorithm(ALGORITHM)
jwt.register_algorithm(ALGORITHM, _HS256())


class TokenInvalid(Unauthenticated):
    """The token is missing, malformed, forged or for another audience."""


class TokenExpired(Unauthenticated):
    """The access token has expired: use the refresh token for a new one."""


class RefreshRefused(Unauthenticated):
    """The refresh token is unknown, expired, revoked or already used."""


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int

    def as_dict(self) -> dict:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        }


@dataclass(frozen=True)
class TokenPolicy:
    secret_key: str
    access_ttl_seconds: int
    refresh_ttl_seconds: int


def _hash(refresh_token: str) -> str:
    return hashlib.sha256(refresh_token.encode()).hexdigest()


def _access_token(session: AuthSession, actor: Actor, policy: TokenPolicy) -> str:
    now = clock.now()
    claims = {
        "aud": session.subject_kind,
        "sub": str(session.subject_id),
        "sid": session.id,
        "bank": session.bank_id,
        "chn": session.channel,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=policy.access_ttl_seconds)).timestamp()),
    }
    if actor.roles:
        claims["roles"] = sorted(actor.roles)
    return jwt.encode(claims, policy.secret_key, algorithm=ALGORITHM)


async def start_session(actor: Actor, *, channel: str, policy: TokenPolicy, family: str | None = None) -> TokenPair:
    if actor.kind not in AUDIENCES:
        raise ValueError("sessions are for customers and staff")
    refresh_token = secrets.token_urlsafe(32)
    session = await AuthSession.create(
        family=family or secrets.token_hex(16),
        subject_kind=actor.kind,
        subject_id=int(actor.id),
        bank_id=actor.bank_id,
        channel=channel,
        refresh_hash=_hash(refresh_token),
        expires_at=clock.now() + timedelta(seconds=policy.refresh_ttl_seconds),
    )
    return TokenPair(_access_token(session, actor, policy), refresh_token, policy.access_ttl_seconds)


async def refresh(refresh_token: str, *, audience: str, policy: TokenPolicy, current_actor) -> TokenPair:
    """Rotate: the old refresh token is spent and a new pair issued. ``current_actor`` reloads the
    subject (so a disabled staff member or changed roles take effect at the next refresh)."""
    session = await AuthSession.filter(refresh_hash=_hash(refresh_token), subject_kind=audience).first()
    now = clock.now()
    if session is None or session.revoked_at or session.expires_at <= now:
        raise RefreshRefused()
    spent = await AuthSession.filter(id=session.id, used_at=None).update(used_at=now)
    if not spent:
        # A second use of one refresh token: someone holds a copy. End every session of the sign-in.
        await AuthSession.filter(family=session.family, revoked_at=None).update(revoked_at=now)
        raise RefreshRefused("this refresh token was already used; sign in again")
    actor = await current_actor(session.subject_id, session.bank_id)
    return await start_session(actor, channel=session.channel, policy=policy, family=session.family)


async def revoke(refresh_token: str) -> None:
    await AuthSession.filter(refresh_hash=_hash(refresh_token), revoked_at=None).update(revoked_at=clock.now())


def read_access_token(token: str, *, audience: str, secret_key: str) -> dict:
    """The token's claims (read-only: the dict is shared between requests), or TokenExpired /
    TokenInvalid. A token is immutable, so once its signature has been checked the verdict is
    remembered until it expires: checking the signature was ~130 µs of every protected request."""
    try:
        claims = _verified_claims(token, audience, secret_key)
    except jwt.ExpiredSignatureError:
        raise TokenExpired() from None
    except jwt.PyJWTError:
        raise TokenInvalid() from None
    if claims["exp"] <= time.time():  # a remembered token that has since expired
        raise TokenExpired()
    return claims


# Bounded: a flood of distinct tokens only evicts. An entry (the token and its claims) is about
# 1 KB, so 8,192 of them are ~9 MB per worker; 65,536 were ~70 MB, which a soak of 20,000 customers
# saw as a worker's memory growing for ten minutes. The tokens active in the last minutes of a
# worker's traffic fit, and a miss costs one signature check.
@lru_cache(maxsize=8_192)
def _verified_claims(token: str, audience: str, secret_key: str) -> dict:
    # Failures raise and lru_cache never stores a raise, so only good signatures are remembered.
    return jwt.decode(token, secret_key, algorithms=[ALGORITHM], audience=audience, options={"require": ["exp", "sub", "aud"]})
