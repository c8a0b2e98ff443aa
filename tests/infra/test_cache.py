"""The Redis byte cache: several keys read in one command and written in one, each with its TTL."""

from __future__ import annotations

from infra.cache import RedisCache


async def test_what_is_written_together_is_read_back_in_order_with_its_ttl(redis):
    cache = RedisCache(redis, redis.test_prefix)
    await cache.set_many({"ds:{p1}:tax:all": b"tax record", "ds:{p1}:court:all": b"court record"}, ttl_seconds=600)

    assert await cache.get_many(["ds:{p1}:court:all", "ds:{p1}:missing:all", "ds:{p1}:tax:all"]) == [b"court record", None, b"tax record"]
    for key in ("ds:{p1}:tax:all", "ds:{p1}:court:all"):
        assert 590 <= await redis.ttl(redis.test_prefix + key) <= 600


async def test_a_rewrite_replaces_the_value_and_renews_the_ttl(redis):
    cache = RedisCache(redis, redis.test_prefix)
    await cache.set_many({"k": b"old"}, ttl_seconds=5)
    await cache.set_many({"k": b"new"}, ttl_seconds=600)

    assert await cache.get_many(["k"]) == [b"new"]
    assert await redis.ttl(redis.test_prefix + "k") > 5


async def test_nothing_to_read_or_write_asks_redis_nothing(redis):
    cache = RedisCache(redis, redis.test_prefix)
    await cache.set_many({}, ttl_seconds=600)

    assert await cache.get_many([]) == []
    assert [key async for key in redis.scan_iter(match=redis.test_prefix + "*")] == []
