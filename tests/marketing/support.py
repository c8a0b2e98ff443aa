"""People and staff for the marketing tests, so a test reads as the story it tells."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx

from infra import clock
from infra.actors import Actor, system
from lending_core.customers import service as customers
from lending_core.customers.models import Customer
from lending_core.org.models import Bank, Branch, Staff
from marketing import service as invites
from marketing.models import InviteCode

LOGIN = "/api/v1/channels/wechat/login"
APPID = "wx0000000000demo"


def device() -> str:
    return f"dev-{uuid.uuid4().hex}"


def wechat_user(prefix: str = "mkt") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def login_code(user: str) -> str:
    return f"{user}.{uuid.uuid4().hex[:8]}"


async def new_customer(*, phone: str | None = None, days_ago: int = 0, bank: str | None = None) -> Customer:
    """A mini-program visitor (optionally with a phone, a bank, or arrived some days ago)."""
    arrival = await customers.arrive_by_wechat(system("test"), appid=APPID, openid=f"o{uuid.uuid4().hex}", unionid=None)
    customer = arrival.customer
    if phone:
        await customers.bind_phone(as_customer(customer.id), phone)
    if bank:
        await customers.choose_bank(as_customer(customer.id), (await Bank.get(code=bank)).id)
    if days_ago:
        await Customer.filter(id=customer.id).update(created_at=clock.now() - timedelta(days=days_ago))
    return await Customer.get(id=customer.id)


def as_customer(customer_id: int, bank_id: int | None = None) -> Actor:
    return Actor(kind="customer", id=customer_id, bank_id=bank_id, channel="wechat_miniprogram")


async def customer_code(customer: Customer, *, bank: str | None = "HZRCB", device_id: str | None = None) -> InviteCode:
    bank_id = (await Bank.get(code=bank)).id if bank else None
    return await invites.my_code(as_customer(customer.id, bank_id), device_id=device_id)


async def staff_member(username: str) -> Staff:
    return await Staff.get(username=username)


async def staff_code(username: str, *, device_id: str | None = None) -> InviteCode:
    staff = await staff_member(username)
    return await invites.my_code(Actor(kind="staff", id=staff.id, bank_id=staff.bank_id, roles=frozenset(staff.roles)), device_id=device_id)


async def second_branch_manager(bank: str = "HZRCB", branch: str = "HZ02") -> Staff:
    """An account manager at the bank's second branch (the demo puts all staff at the first)."""
    home = await Branch.get(code=branch, bank__code=bank)
    first = await Staff.get(username="hz.manager")
    return await Staff.create(
        bank_id=home.bank_id,
        branch_id=home.id,
        username=f"{bank.lower()}.{branch.lower()}.{uuid.uuid4().hex[:6]}",
        name="城东客户经理",
        phone=None,
        roles=first.roles,
        password_hash=first.password_hash,
    )


async def fake_calls(fake_wechat: str, endpoint: str) -> int:
    async with httpx.AsyncClient(base_url=fake_wechat, timeout=10) as http:
        return (await http.get("__fake__/calls")).json().get(endpoint, 0)


async def fake_messages(fake_wechat: str, openid: str) -> list[dict]:
    async with httpx.AsyncClient(base_url=fake_wechat, timeout=10) as http:
        return [m for m in (await http.get("__fake__/messages")).json() if m.get("touser") == openid]
