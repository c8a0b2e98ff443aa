"""Sandbox of the SMS gateway: nothing leaves the machine.

Messages are kept in memory per phone (the last ``keep`` of each), so tests and the demo can
read the one-time code a customer would have received: ``last_text(phone)``. Phones are
normalised as ``infra.identity_numbers.validate_phone`` does, so "+86 138-1234-5678" and
"13812345678" are one inbox. The log shows only the masked phone and never the text, which
holds a one-time code. ``available = False`` makes ``send`` raise ``SmsUnavailable``.

What a real integration needs: an SMS provider licensed for financial notifications (a telecom
operator's gateway or a cloud SMS service), its credentials, an approved sender signature and
message templates (one-time codes go out through a template, not free text), per-phone and
per-day rate limits, and delivery receipts.
"""

from __future__ import annotations

import logging
from collections import deque

from infra.identity_numbers import validate_phone
from infra.pii import mask_phone
from lending_core.contracts.ports import SmsUnavailable

__all__ = ["SandboxSms"]

log = logging.getLogger(__name__)


class SandboxSms:
    def __init__(self, keep: int = 20) -> None:
        if keep < 1:
            raise ValueError("the sandbox keeps at least one message per phone")
        self.keep = keep
        self.available = True
        self._inboxes: dict[str, deque[str]] = {}

    async def send(self, phone: str, text: str) -> None:
        if not self.available:
            raise SmsUnavailable("the SMS gateway did not take the message")
        phone = validate_phone(phone)
        if not isinstance(text, str) or not text:
            raise ValueError("an SMS has text")
        self._inboxes.setdefault(phone, deque(maxlen=self.keep)).append(text)
        log.info("sandbox sms sent", extra={"phone": mask_phone(phone), "chars": len(text)})

    def last_text(self, phone: str) -> str | None:
        inbox = self._inboxes.get(validate_phone(phone))
        return inbox[-1] if inbox else None

    def texts(self, phone: str) -> list[str]:
        """The messages kept for ``phone``, oldest first."""
        return list(self._inboxes.get(validate_phone(phone), ()))
