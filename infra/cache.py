"""A byte cache in Redis for things that can be recomputed, read and written in one round trip
each. Redis failures propagate; callers that treat the cache as optional catch them."""

from __future__ import annotations


class RedisCache:
    def __init__(self, redis, prefix: str):
        self._redis = redis
        self._prefix = prefix

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        return await self._redis.mget([self._prefix + key for key in keys]) if keys else []

    async def set_many(self, items: dict[str, bytes], ttl_seconds: int) -> None:
        pipeline = self._redis.pipeline(transaction=False)
        for key, value in items.items():
            pipeline.set(self._prefix + key, value, ex=ttl_seconds)
        await pipeline.execute()
