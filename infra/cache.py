"""A byte cache in Redis for things that can be recomputed. Redis failures propagate; callers
that treat the cache as optional catch them."""

from __future__ import annotations


class RedisCache:
    def __init__(self, redis, prefix: str):
        self._redis = redis
        self._prefix = prefix

    async def get(self, key: str) -> bytes | None:
        return await self._redis.get(self._prefix + key)

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        await self._redis.set(self._prefix + key, value, ex=ttl_seconds)
