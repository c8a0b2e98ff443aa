"""Which code sends each kind of outbox message. Marketing and risk add theirs here."""

from __future__ import annotations

from channels import wechat
from lending_core.applications import service as applications
from infra.outbox import Handler
from infra.settings import Settings
from server.providers import Providers


def outbox_handlers(settings: Settings, providers: Providers) -> dict[str, Handler]:
    templates = dict(settings.wechat_templates)
    return {
        wechat.SUBSCRIBE_TOPIC: wechat.subscribe_sender(providers.mini_program, templates),
        # Marketing will listen to decided applications too: this topic then fans out.
        applications.DECIDED_TOPIC: wechat.application_result_sender(providers.mini_program, templates),
    }
