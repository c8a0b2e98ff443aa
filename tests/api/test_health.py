"""/healthz: ok, degraded without Redis (lending keeps working), 503 without the database."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis import asyncio as redis_asyncio

from api import health
from server.app import create_app
from tests.support import bearer, staff_token


UNUSED_PORT = 1  # nothing listens on port 1: connections are refused at once


class UnreachableDatabase:
    """A connection whose server has gone away: every query fails as asyncpg/sqlite would."""

    async def execute_query(self, query, values=None):
        raise ConnectionError("connection to the database server was lost")


class HangingDatabase:
    async def execute_query(self, query, values=None):
        await asyncio.sleep(60)


def database_is(monkeypatch, connection) -> None:
    real_get = health.connections.get
    monkeypatch.setattr(
        health.connections, "get", lambda alias: connection if alias == "default" else real_get(alias)
    )


@pytest.fixture
async def redis_down():
    client = redis_asyncio.Redis(host="127.0.0.1", port=UNUSED_PORT, socket_connect_timeout=0.2, socket_timeout=0.2)
    yield client
    await client.aclose()


@pytest.fixture
def app_without_redis(settings, redis_down):
    return create_app(settings, name=f"test_{uuid.uuid4().hex[:10]}", redis=redis_down, manage_database=False)


async def test_all_up_is_ok(client, demo):
    _, response = await client.get("/healthz")

    assert response.status == 200
    assert response.json == {"status": "ok", "database": "ok", "redis": "ok"}


async def test_redis_down_is_degraded_but_200(app_without_redis, demo):
    _, response = await app_without_redis.asgi_client.get("/healthz")

    assert response.status == 200
    assert response.json == {"status": "degraded", "database": "ok", "redis": "down"}


async def test_lending_routes_work_with_redis_down(app_without_redis, demo):
    client = app_without_redis.asgi_client
    token = await staff_token(client, "hz.admin")

    _, response = await client.get("/api/v1/admin/staff", headers=bearer(token))

    assert response.status == 200, response.text
    usernames = {member["username"] for member in response.json["items"]}
    assert "hz.admin" in usernames


async def test_database_down_is_503_with_an_error(client, demo, monkeypatch):
    database_is(monkeypatch, UnreachableDatabase())

    _, response = await client.get("/healthz")

    assert response.status == 503
    assert response.headers.get("retry-after") == "5"
    body = response.json
    assert body["status"] == "down"
    assert body["database"] == "down"
    assert body["redis"] == "ok"
    assert body["error"]["code"] == "DATABASE_UNAVAILABLE"
    assert body["error"]["message"]


async def test_a_database_that_does_not_answer_counts_as_down(client, demo, monkeypatch):
    database_is(monkeypatch, HangingDatabase())
    monkeypatch.setattr(health, "DB_TIMEOUT_SECONDS", 0.1)

    _, response = await client.get("/healthz")

    assert response.status == 503
    assert response.json["database"] == "down"


async def test_both_down_is_503(app_without_redis, demo, monkeypatch):
    database_is(monkeypatch, UnreachableDatabase())

    _, response = await app_without_redis.asgi_client.get("/healthz")

    assert response.status == 503
    assert (response.json["status"], response.json["database"], response.json["redis"]) == ("down", "down", "down")
