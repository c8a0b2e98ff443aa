"""Campaigns, winners and the fake WeChat Pay's ledger, for the payout tests."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from tortoise.transactions import in_transaction

from channels.models import WeChatAccount
from infra import clock, outbox, pii
from infra.actors import Actor, system
from infra.outbox import OutboxMessage, relay_once
from lending_core.customers import service as customers
from lending_core.customers.models import Customer
from lending_core.org.models import Bank, Staff
from marketing import campaigns
from marketing.models import DUE, Campaign, Reward
from marketing.payouts import PAY_TOPIC
from server.handlers import outbox_handlers
from server.providers import build_providers

APPID = "wx0000000000demo"


async def campaign(kind: str = "red_packet", *, budget_fen: int = 1_000_000, bank: str = "HZRCB", **terms) -> Campaign:
    now = clock.now()
    staff = await Staff.get(username="hz.manager")
    defaults = {"milestone": None, "reward_fen": None, "per_person_limit": 1, "per_day_limit": 1}
    if kind in ("referral_reward", "phone_credit"):
        defaults.update(milestone="disbursed", reward_fen=1000, per_person_limit=5, per_day_limit=5)
    return await Campaign.create(
        bank_id=(await Bank.get(code=bank)).id if bank else None,
        kind=kind,
        name=f"测试活动{uuid.uuid4().hex[:4]}",
        status="live",
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=30),
        budget_fen=budget_fen,
        created_by_id=staff.id,
        **{**defaults, **terms},
    )


async def wechat_customer(*, phone: str | None = None, with_account: bool = True) -> tuple[Customer, str]:
    """A mini-program customer and their openid (the WeChat account the channels keep)."""
    openid = f"o{uuid.uuid4().hex}"
    arrival = await customers.arrive_by_wechat(system("test"), appid=APPID, openid=openid, unionid=None)
    customer = arrival.customer
    if with_account:
        await WeChatAccount.create(customer=customer, appid=APPID, openid_hash=pii.lookup_hash("wechat_openid", openid), openid=openid, session_key="c2Vzc2lvbg==")
    if phone:
        await customers.bind_phone(Actor(kind="customer", id=customer.id, channel="wechat_miniprogram"), phone)
    return await Customer.get(id=customer.id), openid


async def due_reward(of: Campaign, customer: Customer, amount_fen: int, *, kind: str = "red_packet", seq: int = 1) -> tuple[Reward, OutboxMessage]:
    """A granted reward, as the grab or a milestone leaves it: budget reserved, payout queued."""
    async with in_transaction():
        assert await campaigns.reserve_budget(of.id, amount_fen)
        reward = await Reward.create(
            campaign_id=of.id, bank_id=of.bank_id, customer_id=customer.id, kind=kind, amount_fen=amount_fen, status=DUE, seq=seq
        )
        message = await OutboxMessage.get(id=await outbox.enqueue(PAY_TOPIC, {"reward_id": reward.id}, bank_id=of.bank_id))
    return reward, message


_built: dict[int, tuple] = {}


def handlers(settings, redis):
    """The outbox handlers, built once per test's settings as a worker builds them once (the
    sandbox top-up provider keeps its orders in memory)."""
    key = id(settings)
    if key not in _built or _built[key][0] is not settings:
        _built.clear()
        _built[key] = (settings, outbox_handlers(settings, build_providers(settings, redis)))
    return _built[key][1]


async def relay_all(settings, redis) -> int:
    """Relay until nothing more is due now."""
    sent, found = 0, await relay_once(handlers(settings, redis))
    while found:
        sent += found
        found = await relay_once(handlers(settings, redis))
    return sent


async def make_due_now() -> None:
    """Skip the relay's backoff: every pending message is due now."""
    await OutboxMessage.filter(status="pending").update(next_attempt_at=clock.now() - timedelta(seconds=1))


class FakePay:
    """The fake WeChat Pay's hooks."""

    def __init__(self, base_url: str):
        self.base_url = base_url

    async def _call(self, method: str, path: str, **kwargs):
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10) as http:
            response = await http.request(method, f"__fake__/pay/{path}", **kwargs)
            response.raise_for_status()
            return response.json()

    async def reset(self) -> None:
        await self._call("POST", "reset")

    async def ledger(self) -> list[dict]:
        return await self._call("GET", "ledger")

    async def fault(self, endpoint: str = "sendminiprogramhb", **fault) -> None:
        await self._call("POST", "faults", json={"endpoint": endpoint, **fault})

    async def packet(self, bill_no: str, event: str) -> dict:
        return await self._call("POST", f"packets/{bill_no}/{event}")
