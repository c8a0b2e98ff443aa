"""Which code handles each kind of outbox message. Marketing and risk add theirs here.

A topic several parts listen to fans out (``infra.outbox.fan_out``): each listener is run until it
succeeds once per message and then leaves a receipt, so when one listener fails the message is
retried for that listener alone — a decided application is never announced to the customer twice
because marketing's funnel failed, nor counted twice because WeChat was busy.
"""

from __future__ import annotations

from pathlib import Path

from channels import wechat
from channels.models import WeChatAccount
from infra.outbox import Handler, RelayPolicy, fan_out
from infra.settings import Settings
from lending_core.applications import service as applications
from lending_core.contracts import service as contracts
from lending_core.risk import tasks as risk_tasks
from marketing import funnel, payouts, rewards
from marketing import service as referrals
from server.providers import Providers


def relay_policy(settings: Settings) -> RelayPolicy:
    """A payout stands alone (one reward, locked by its own row; its bill number is its message's
    id), so several are sent at once (PAYOUTS_AT_ONCE): one at a time, the relay waited on WeChat
    Pay and the database half the time."""
    return RelayPolicy(parallel={payouts.PAY_TOPIC: settings.payouts_at_once})


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
        risk_tasks.SMS_TOPIC: risk_tasks.sms_handler(providers.sms),
        referrals.REFERRAL_TOPIC: fan_out({"marketing.rewards": rewards.on_referral_advanced}),
        payouts.PAY_TOPIC: payouts.Payer(
            wechat_pay=providers.wechat_pay,
            top_up=providers.top_up,
            openids=mini_program_openids(providers.wechat_pay.appid),
            after_accepted=_payout_fault(settings),
            policy=relay_policy(settings),
        ),
    }


def mini_program_openids(appid: str):
    """Red packets go to the customer's mini-program openid, kept (encrypted) by the channels."""

    async def openid_of(customer_id: int) -> str | None:
        account = await WeChatAccount.filter(customer_id=customer_id, appid=appid).order_by("-updated_at").first()
        return account.openid if account else None

    return openid_of


def _payout_fault(settings: Settings):
    """The kill -9 drill's hook (PAYOUT_FAULT), off unless asked for."""
    if settings.payout_fault == "crash_after_wechat_pay_accepted":
        return payouts.CrashAfterAccepted(Path(settings.payout_fault_marker))
    return None
