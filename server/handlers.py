"""Which code sends each kind of outbox message. Marketing and risk add theirs here."""

from __future__ import annotations

from channels import wechat
from infra.outbox import Handler
from infra.settings import Settings
from server.providers import Providers


def outbox_handlers(settings: Settings, providers: Providers) -> dict[str, Handler]:
    return {wechat.SUBSCRIBE_TOPIC: wechat.subscribe_sender(providers.mini_program, dict(settings.wechat_templates))}
