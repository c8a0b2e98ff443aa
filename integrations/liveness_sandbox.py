"""Sandbox of the liveness (face) check (活体检测) that goes with a signature by certificate.

A real liveness SDK runs in the mini-program or bank app, compares the live face with the
photo of the ID on record, and hands the device a one-time token that the server redeems. Here
``issue_token(customer_id)`` stands in for the SDK: the token is ``<check id>.<customer id>.
<result>.<HMAC>`` under the sandbox's key, so it cannot be made up, is bound to one customer and
can be redeemed once (per process). ``passed=False`` issues the token of a failed check;
``available = False`` makes ``verify`` raise ``LivenessUnavailable``.

What a real integration needs: a liveness/face-comparison provider authorised to compare against
the public-security ID photo database, its SDK in each app, and its server-side result API.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable
from datetime import datetime

from infra import clock
from lending_core.contracts.ports import LivenessFailed, LivenessResult, LivenessUnavailable

__all__ = ["SandboxLiveness"]


class SandboxLiveness:
    def __init__(self, secret: bytes | None = None, *, clock: Callable[[], datetime] = clock.now) -> None:
        self._secret = secret or secrets.token_bytes(32)
        self._clock = clock
        self._redeemed: set[str] = set()
        self.available = True

    def issue_token(self, customer_id: int, *, passed: bool = True) -> str:
        body = f"{uuid.uuid4().hex}.{int(customer_id)}.{'pass' if passed else 'fail'}"
        return f"{body}.{self._mac(body)}"

    async def verify(self, token: str, *, customer_id: int) -> LivenessResult:
        if not self.available:
            raise LivenessUnavailable("the liveness service did not answer")
        parts = token.split(".") if isinstance(token, str) else []
        if len(parts) != 4:
            raise LivenessFailed("the liveness token is not one this service issued")
        check_id, subject, result, mac = parts
        if not hmac.compare_digest(mac, self._mac(f"{check_id}.{subject}.{result}")):
            raise LivenessFailed("the liveness token is not one this service issued")
        if subject != str(int(customer_id)):
            raise LivenessFailed("the liveness check was for someone else")
        if result != "pass":
            raise LivenessFailed("the liveness check did not pass")
        if check_id in self._redeemed:
            raise LivenessFailed("the liveness token was already used")
        self._redeemed.add(check_id)
        return LivenessResult(check_id=check_id, checked_at=self._clock())

    def _mac(self, body: str) -> str:
        return hmac.new(self._secret, body.encode("ascii"), hashlib.sha256).hexdigest()
