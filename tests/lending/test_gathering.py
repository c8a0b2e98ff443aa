"""Gathering data: concurrently, under a timeout, through a cache that may fail."""

from __future__ import annotations

from datetime import date

import pytest

from infra.identity_numbers import make_test_id_number
from lending_core.datasources.gather import DataSources, gather
from server.providers import sandbox_data_sources

@pytest.fixture(autouse=True)
def keyring(base_settings):
    # Cache keys are keyed hashes of the ID number: the process needs its keyring.
    from server.app import configure_pii

    configure_pii(base_settings)


SMALL_FIRM = make_test_id_number("320102", date(1980, 1, 1), 801)
SLOW = make_test_id_number("320102", date(1980, 1, 1), 996)


class DictCache:
    def __init__(self, broken: bool = False):
        self.items: dict[str, bytes] = {}
        self.broken = broken
        self.round_trips = 0

    async def get_many(self, keys):
        self.round_trips += 1
        if self.broken:
            raise ConnectionError("cache down")
        return [self.items.get(key) for key in keys]

    async def set_many(self, items, ttl_seconds):
        self.round_trips += 1
        if self.broken:
            raise ConnectionError("cache down")
        self.items.update(items)


def sources(cache=None, timeout: float = 3.0) -> DataSources:
    return sandbox_data_sources(cache=cache, timeout_seconds=timeout)


async def ask(s: DataSources, id_number: str = SMALL_FIRM):
    return await gather(s, ("tax", "court", "bank"), id_number=id_number, person_name="吴振华", bank_code="HZRCB")


async def test_a_second_ask_is_answered_from_the_cache_in_one_round_trip():
    cache = DictCache()
    s = sources(cache)
    first, _ = await ask(s)
    calls = s.tax.calls

    second, unavailable = await ask(s)

    assert second == first and unavailable == ()
    assert s.tax.calls == calls  # not asked again
    assert cache.round_trips == 3  # first: read + write; second: one read
    assert not any(SMALL_FIRM in key for key in cache.items)  # keyed by hash, never the ID


async def test_a_broken_cache_is_skipped():
    records, unavailable = await ask(sources(DictCache(broken=True)))
    assert set(records) == {"tax", "court", "bank"} and unavailable == ()


async def test_a_slow_source_is_reported_unavailable_and_not_cached():
    cache = DictCache()
    records, unavailable = await ask(sources(cache, timeout=0.05), SLOW)
    assert records == {} and unavailable == ("tax", "court", "bank")
    assert cache.items == {}
