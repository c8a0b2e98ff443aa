"""The WeChat mini-program door: login with a ``wx.login`` code, phone binding, subscribe messages.

The session key WeChat gives us stays on the server (encrypted); the client gets only our tokens.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from tortoise.transactions import in_transaction

from channels import customer_sessions
from channels.models import WeChatAccount
from channels.ports import MiniProgram, WeChatRefused
from channels.sessions import TokenPair, TokenPolicy
from infra import outbox, pii
from infra.actors import Actor, system
from infra.errors import NotFound
from infra.outbox import OutboxMessage
from lending_core.channel_names import WECHAT_MINIPROGRAM
from lending_core.customers import service as customers
from lending_core.customers.models import Customer

log = logging.getLogger(__name__)

SUBSCRIBE_TOPIC = "wechat.subscribe_message"
# WeChat's answer when the user has not subscribed (or unsubscribed): final, not worth retrying.
USER_REFUSED = 43101


class WeChatAccountMissing(NotFound):
    """This customer has not signed in on the mini-program."""


@dataclass(frozen=True)
class Login:
    customer: Customer
    tokens: TokenPair
    bank_id: int | None
    is_new: bool


async def login(
    mini_program: MiniProgram, code: str, *, bank_id: int | None, policy: TokenPolicy, invite_bank_id: int | None = None
) -> Login:
    """Exchange a ``wx.login`` code for our session. The bank is the one chosen now (by city or
    county), else the one remembered from last time, else the bank of the invite code the customer
    arrived with; without any the customer chooses next."""
    wechat = await mini_program.code_to_session(code)
    actor = system("wechat-login")
    arrival = await customers.arrive_by_wechat(actor, appid=mini_program.appid, openid=wechat.openid, unionid=wechat.unionid)
    customer = arrival.customer
    async with in_transaction():
        openid_hash = pii.lookup_hash("wechat_openid", wechat.openid)
        updated = await WeChatAccount.filter(appid=mini_program.appid, openid_hash=openid_hash).update(
            customer_id=customer.id, session_key=wechat.session_key
        )
        if not updated:
            await WeChatAccount.create(
                customer=customer, appid=mini_program.appid, openid_hash=openid_hash, openid=wechat.openid, session_key=wechat.session_key
            )
    signed_in = customer_sessions.customer_actor(customer, bank_id=None, channel=WECHAT_MINIPROGRAM)
    if bank_id is None and customer.last_bank_id is None:
        bank_id = invite_bank_id
    if bank_id is not None:
        bank = await customers.choose_bank(signed_in, bank_id)
        chosen = bank.id
    else:
        chosen = customer.last_bank_id
    tokens = await customer_sessions.sign_in(customer, bank_id=chosen, channel=WECHAT_MINIPROGRAM, policy=policy)
    return Login(customer, tokens, chosen, arrival.is_new)


async def bind_phone(actor: Actor, mini_program: MiniProgram, code: str) -> Customer:
    return await customers.bind_phone(actor, await mini_program.phone_number(code))


async def bind_phone_encrypted(actor: Actor, mini_program: MiniProgram, encrypted_data: str, iv: str) -> Customer:
    """The older form: the phone encrypted by WeChat with this user's session key."""
    customer = await customers.current(actor)
    account = await WeChatAccount.filter(customer_id=customer.id, appid=mini_program.appid).order_by("-updated_at").first()
    if account is None:
        raise WeChatAccountMissing()
    return await customers.bind_phone(actor, mini_program.decrypt_phone(account.session_key, encrypted_data, iv))


async def notify(customer_id: int, kind: str, data: dict, *, page: str | None = None) -> None:
    """Queue a subscribe message (application result, contract to sign, repayment due, overdue)
    in the caller's transaction; it is sent after commit."""
    await outbox.enqueue(SUBSCRIBE_TOPIC, {"customer_id": customer_id, "kind": kind, "data": data, "page": page})


def subscribe_sender(mini_program: MiniProgram, templates: dict[str, str]):
    """The outbox handler that sends queued subscribe messages."""

    async def send(message: OutboxMessage) -> None:
        payload = message.payload
        account = await WeChatAccount.filter(customer_id=payload["customer_id"], appid=mini_program.appid).order_by("-updated_at").first()
        if account is None:
            log.info("no mini-program account to notify", extra={"outbox_id": message.id})
            return
        data = {key: {"value": str(value)[:20]} for key, value in payload["data"].items()}
        try:
            await mini_program.send_subscribe_message(account.openid, templates[payload["kind"]], data, payload.get("page"))
        except WeChatRefused as refused:
            # A refusal will not change on retry (unsubscribed user, bad template): record and drop.
            log.info("subscribe message refused", extra={"outbox_id": message.id, "errcode": refused.errcode})

    return send



RESULT_WORDS = {"approved": "已批准", "rejected": "未通过", "manual_review": "审核中", "withdrawn": "已撤回"}


def application_result_sender(mini_program: MiniProgram, templates: dict[str, str]):
    """The outbox handler for decided applications: tell the customer on the mini-program."""
    send = subscribe_sender(mini_program, templates)

    async def notify_result(message: OutboxMessage) -> None:
        event = message.payload
        if event.get("channel") != WECHAT_MINIPROGRAM:
            return  # the bank apps tell their own users
        words = RESULT_WORDS.get(event["status"], event["status"])
        await send(
            OutboxMessage(
                id=message.id,
                topic=SUBSCRIBE_TOPIC,
                payload={
                    "customer_id": event["customer_id"],
                    "kind": "application_result",
                    "data": {"thing1": "贷款申请结果", "phrase2": words, "character_string3": str(event["application_id"])},
                    "page": f"pages/application/index?id={event['application_id']}",
                },
            )
        )

    return notify_result
