"""Asking the data sources a product needs: concurrently, each under a timeout, through a cache.

A source that fails or is slow is reported as unavailable — the decision then goes to a person
with that reason — and never fails the request. The cache is keyed by the keyed hash of the ID
number, never the number itself; it is read in one round trip and written in one, and a cache
that fails is skipped.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import orjson

from infra import pii
from lending_core.datasources import ports

log = logging.getLogger(__name__)


class Cache(Protocol):
    async def get_many(self, keys: list[str]) -> list[bytes | None]: ...

    async def set_many(self, items: dict[str, bytes], ttl_seconds: int) -> None: ...


@dataclass(frozen=True)
class DataSources:
    credit_bureau: ports.CreditBureau
    tax: ports.TaxBureau
    court: ports.Courts
    social_security: ports.SocialSecurity
    provident_fund: ports.ProvidentFund
    property: ports.PropertyRegistry
    bank: ports.BankData
    local: ports.LocalData
    cache: Cache | None = None
    timeout_seconds: float = 3.0
    cache_ttl_seconds: int = 600


def _ask(sources: DataSources, name: str, *, id_number: str, person_name: str, bank_code: str):
    return {
        "credit_bureau": lambda: sources.credit_bureau.report(id_number, person_name),
        "tax": lambda: sources.tax.record(id_number),
        "court": lambda: sources.court.record(id_number, person_name),
        "social_security": lambda: sources.social_security.record(id_number),
        "provident_fund": lambda: sources.provident_fund.record(id_number),
        "property": lambda: sources.property.record(id_number),
        "bank": lambda: sources.bank.record(bank_code, id_number),
        "local": lambda: sources.local.record(bank_code, id_number),
    }[name]


async def _one(sources: DataSources, name: str, *, id_number: str, person_name: str, bank_code: str) -> dict[str, Any] | None:
    try:
        record = await asyncio.wait_for(_ask(sources, name, id_number=id_number, person_name=person_name, bank_code=bank_code)(), sources.timeout_seconds)
    except (ports.SourceUnavailable, asyncio.TimeoutError):
        log.warning("data source unavailable", extra={"source": name})
        return None
    except Exception:  # an outside party's bug must not become our 500
        log.exception("data source failed", extra={"source": name})
        return None
    return asdict(record)


async def _cached(sources: DataSources, keys: list[str]) -> list[bytes | None]:
    if sources.cache is None:
        return [None] * len(keys)
    try:
        return await sources.cache.get_many(keys)
    except Exception:
        log.warning("data cache unavailable")
        return [None] * len(keys)


async def gather(
    sources: DataSources, needed: tuple[str, ...], *, id_number: str, person_name: str, bank_code: str
) -> tuple[dict[str, dict[str, Any]], tuple[str, ...]]:
    """(records by source name, the sources that did not answer)."""
    person = pii.lookup_hash(pii.ID_NUMBER, id_number)
    # One person's keys share a hash tag: read and written together, they must share a slot on a cluster.
    keys = [f"ds:{{{person}}}:{name}:{bank_code if name in ('bank', 'local') else 'all'}" for name in needed]
    records: dict[str, dict[str, Any]] = {}
    missing = []
    for name, key, cached in zip(needed, keys, await _cached(sources, keys)):
        if cached:
            records[name] = orjson.loads(cached)
        else:
            missing.append((name, key))
    answers = await asyncio.gather(
        *(_one(sources, name, id_number=id_number, person_name=person_name, bank_code=bank_code) for name, _ in missing)
    )
    fresh = {key: answer for (_, key), answer in zip(missing, answers) if answer is not None}
    records.update({name: answer for (name, _), answer in zip(missing, answers) if answer is not None})
    if fresh and sources.cache is not None:
        try:
            await sources.cache.set_many({key: orjson.dumps(value) for key, value in fresh.items()}, sources.cache_ttl_seconds)
        except Exception:
            log.warning("data cache unavailable")
    return records, tuple(name for name in needed if name not in records)
