"""Test set-up: one database for the session (built by the real migrations), emptied before
each test that uses it; a Redis of the test's own (a fresh in-process store, or a key prefix of
its own on real Redis).

The suite runs both ways: with no DATABASE_URL/REDIS_URL on SQLite and the in-process store;
with them on PostgreSQL and Redis (the database named in DATABASE_URL is dropped and recreated).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import replace

import pytest
import pytest_asyncio
from tortoise import Tortoise, connections

from infra.settings import Settings
from server import database
from tests.support import fake_wechat_process

ENV = {**os.environ, "APP_ENV": "test", "LOG_JSON": "true", "RUN_EMBEDDED_WORKERS": "false"}


@pytest.fixture(scope="session")
def fake_wechat() -> str:
    """The fake WeChat server (fakes.wechat) in a process of its own, as in the demo: our real
    WeChat client talks to it over HTTP. Yields its base URL."""
    with fake_wechat_process() as url:
        yield url


@pytest.fixture(scope="session")
def base_settings(tmp_path_factory, fake_wechat) -> Settings:
    env = dict(ENV, WECHAT_API_BASE=fake_wechat, WECHAT_TIMEOUT_MS="2000", NOTARY_DIR=str(tmp_path_factory.mktemp("notary")))
    if not env.get("DATABASE_URL"):
        env["DATABASE_URL"] = f"sqlite://{tmp_path_factory.mktemp('db')}/test.sqlite3"
    return Settings.from_env(env)


@pytest_asyncio.fixture(scope="session")
async def schema(base_settings: Settings):
    """The database, migrated once for the whole session."""
    from server.app import configure_pii

    configure_pii(base_settings)
    if not base_settings.uses_embedded_database:
        await database.recreate_postgres_database(base_settings.database_url)
    await database.apply_migrations(base_settings.database_url)
    await database.open_database(base_settings.database_url)
    yield base_settings
    await database.close_database()


def _tables() -> list[str]:
    return [model._meta.db_table for app in Tortoise.apps.values() for model in app.values()]


@pytest_asyncio.fixture
async def db(schema: Settings):
    """An empty database for this test (and nothing the process kept from the last one)."""
    from lending_core.products.service import forget_cached
    from lending_core.risk import rulebook

    forget_cached()
    rulebook.forget_cached()
    connection = connections.get("default")
    tables = _tables()
    if schema.uses_embedded_database:
        # Foreign keys off while emptying, so the order of the tables does not matter.
        await connection.execute_script(
            "PRAGMA foreign_keys = OFF;"
            + "".join(f'DELETE FROM "{table}";' for table in tables)
            + "DELETE FROM sqlite_sequence; PRAGMA foreign_keys = ON;"
        )
    else:
        await connection.execute_script(
            "TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"
        )
    yield schema


@pytest_asyncio.fixture(scope="session")
async def _session_redis(base_settings: Settings):
    """One Redis client for the session, under a key prefix of its own (emptied before each test)."""
    from infra.redis import create_redis  # the client the services use, so the suite tests it too

    client = create_redis(base_settings)
    client.test_prefix = f"test:{uuid.uuid4().hex[:12]}:"
    yield client
    await _empty_redis(client)
    await client.aclose()


async def _empty_redis(client) -> None:
    keys = [key async for key in client.scan_iter(match=client.test_prefix + "*")]
    if keys:
        await client.delete(*keys)


@pytest_asyncio.fixture
async def redis(_session_redis):
    """Redis for this test: the session's client, with nothing under its prefix."""
    await _empty_redis(_session_redis)
    return _session_redis


@pytest_asyncio.fixture
async def settings(db: Settings, redis) -> Settings:
    return replace(db, redis_key_prefix=redis.test_prefix)


@pytest_asyncio.fixture
async def demo(settings: Settings) -> dict:
    from server import demo_data

    await demo_data.load()
    return settings


@pytest_asyncio.fixture(scope="session")
async def _session_app(schema: Settings, _session_redis):
    """The API, built and started once: building it per test costs more than most tests."""
    from server.app import create_app
    from tests.support import StartedOnceClient

    app = create_app(
        replace(schema, redis_key_prefix=_session_redis.test_prefix),
        name=f"test_{uuid.uuid4().hex[:10]}",
        redis=_session_redis,
        manage_database=False,
    )
    client = StartedOnceClient(app)
    yield app, client
    await client.stop()


@pytest.fixture
def app(_session_app, settings):
    return _session_app[0]


@pytest.fixture
def client(_session_app, settings):
    return _session_app[1]
