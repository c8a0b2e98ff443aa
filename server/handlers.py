"""Which code sends each kind of outbox message. Channels, marketing and risk add theirs here."""

from __future__ import annotations

from infra.outbox import Handler
from infra.settings import Settings


def outbox_handlers(settings: Settings) -> dict[str, Handler]:
    return {}
