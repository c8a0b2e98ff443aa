"""Staff password hashing with scrypt (memory-hard, in the standard library).

Stored form: ``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>`` so parameters can be raised later and
old hashes still verify.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

N, R, P, LENGTH = 2**14, 8, 1, 32
MIN_LENGTH = 10


class WeakPassword(ValueError):
    """A staff password has at least 10 characters, with letters and digits."""


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH or not any(c.isalpha() for c in password) or not any(c.isdigit() for c in password):
        raise WeakPassword(WeakPassword.__doc__)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=LENGTH)
    return "$".join(["scrypt", str(N), str(R), str(P), _b64(salt), _b64(digest)])


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.urlsafe_b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(), salt=base64.urlsafe_b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


@functools.cache
def dummy_hash() -> str:
    """Verified against when the username is unknown, so a wrong username costs as long as a
    wrong password and timing does not reveal which usernames exist."""
    return hash_password("not-a-real-password-0")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()
