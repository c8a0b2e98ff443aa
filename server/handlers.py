"""Which code handles each kind of outbox message. Marketing and risk add theirs here.

A topic several parts listen to fans out (``infra.outbox.fan_out``): each listener is run until it
succeeds once per message and then leaves a receipt, so when one listener fails the message is
retried for that listener alone — a decided application is never announced to the customer twice
because marketing's funnel failed, nor counted twice because WeChat was busy.
"""

from __future__ import annotations

from channels import wechat
from infra.outbox import Handler, fan_out
from infra.settings import Settings
from lending_core.applications import service as applications
from lending_core.contracts import service as contracts
from marketing import funnel
from server.providers import Providers


def outbox_handlers(settings: Settings, providers: Providers) -> dict[str, Handler]:
    templates = dict(settings.wechat_templates)
    return {
        wechat.SUBSCRIBE_TOPIC: wechat.subscribe_sender(providers.mini_program, templates),
        # Listener names are stored in receipts: renaming one re-runs it for retried messages.
        applications.DECIDED_TOPIC: fan_out(
            {
                "wechat.application_result": wechat.application_result_sender(providers.mini_program, templates),
                "marketing.funnel": funnel.on_application_decided,
            }
        ),
        funnel.LOAN_DISBURSED_TOPIC: fan_out({"marketing.funnel": funnel.on_loan_disbursed}),
        contracts.NOTARISE_TOPIC: contracts.notarise_handler(providers.notary),
        contracts.INVITE_TOPIC: contracts.invite_handler(providers.sms),
    }
