"""The Redis connection: real Redis via ``REDIS_URL``, else an in-process Redis-compatible store.

Redis holds only what can be rebuilt (DESIGN.md, "Durability"): counters, nonces, rate limits,
caches, queues of work. Callers must treat it as fallible; ``ping`` never raises.
"""

from __future__ import annotations

import asyncio

from redis import asyncio as redis_asyncio

from infra.settings import Settings

PING_TIMEOUT_SECONDS = 0.5


def create_redis(settings: Settings) -> redis_asyncio.Redis:
    if settings.redis_url:
        return redis_asyncio.Redis.from_url(
            settings.redis_url,
            socket_connect_timeout=1,
            socket_timeout=2,
            health_check_interval=15,
            decode_responses=False,
        )
    import fakeredis  # only the embedded default needs it

    return fakeredis.FakeAsyncRedis(decode_responses=False)


async def ping(client: redis_asyncio.Redis) -> bool:
    try:
        return bool(await asyncio.wait_for(client.ping(), PING_TIMEOUT_SECONDS))
    except Exception:  # any failure means "down" to a health check
        return False
