"""Helpers for tests that drive the HTTP API."""

from __future__ import annotations

import uuid

from channels import sessions
from infra.actors import Actor
from server.demo_data import DEMO_PASSWORD


async def staff_token(client, username: str) -> str:
    _, response = await client.post("/api/v1/staff/login", json={"username": username, "password": DEMO_PASSWORD})
    assert response.status == 200, response.text
    return response.json["access_token"]


async def customer_token(app, customer_id: int, bank_id: int | None, channel: str = "wechat_miniprogram") -> str:
    """Customers sign in through channels; these tests need only a valid session for one."""
    pair = await sessions.start_session(
        Actor(kind="customer", id=customer_id, bank_id=bank_id, channel=channel), channel=channel, policy=app.ctx.token_policy
    )
    return pair.access_token


def bearer(token: str, **extra: str) -> dict:
    return {"Authorization": f"Bearer {token}", **extra}


def new_key() -> str:
    return uuid.uuid4().hex
