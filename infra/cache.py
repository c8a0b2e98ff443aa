"""A byte cache in Redis for things that can be recomputed, read and written in one round trip
each. Redis failures propagate; callers that treat the cache as optional catch them.

On Redis Cluster a read or write of several keys needs them in one slot: callers give related
keys a common hash tag (``…{tag}…``)."""

from __future__ import annotations

# Several keys written with one TTL as one command. A pipeline of SETs does the same in one round
# trip, but redis-py's pipeline machinery cost half as much CPU again as the script's call.
_SET_MANY = "for i, key in ipairs(KEYS) do redis.call('SET', key, ARGV[i + 1], 'EX', ARGV[1]) end"


class RedisCache:
    def __init__(self, redis, prefix: str):
        self._redis = redis
        self._prefix = prefix
        self._set_many = None  # registered on first use

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        return await self._redis.mget([self._prefix + key for key in keys]) if keys else []

    async def set_many(self, items: dict[str, bytes], ttl_seconds: int) -> None:
        if items:
            if self._set_many is None:
                self._set_many = self._redis.register_script(_SET_MANY)
            await self._set_many(keys=[self._prefix + key for key in items], args=[ttl_seconds, *items.values()])
