"""A Redis Stream read by a consumer group: workers share its messages, and a worker that died
holding messages (read, never acknowledged) has them claimed by another after an idle time.

The stream is a queue of work, never the only copy of a fact (DESIGN.md, "Durability"): whoever
adds a message has already stored what it names, and acknowledges it only once the work
committed. If Redis loses the stream, ``ensure_group`` says so (the group had to be made anew)
and the caller re-adds what its database says is not done.

Claiming uses XAUTOCLAIM (Redis 6.2+); where the server does not know it, XPENDING + XCLAIM do
the same in two round trips.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from redis.exceptions import ResponseError


@dataclass(frozen=True)
class Message:
    id: str
    fields: Mapping[str, str]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _messages(entries) -> list[Message]:
    # XCLAIM and XAUTOCLAIM answer a message deleted meanwhile (trimmed) with no fields: skip it.
    return [Message(_text(mid), {_text(k): _text(v) for k, v in fields.items()}) for mid, fields in entries or () if fields]


class Stream:
    def __init__(self, redis, key: str, group: str, *, max_length: int = 1_000_000):
        self.redis = redis
        self.key = key
        self.group = group
        self.max_length = max_length
        self._autoclaim = True

    async def ensure_group(self) -> bool:
        """Create the group (and the stream) if missing. True when it was made now: on a
        stream that had one, that means Redis lost it."""
        try:
            await self.redis.xgroup_create(self.key, self.group, id="0", mkstream=True)
            return True
        except ResponseError as exc:
            if "BUSYGROUP" in str(exc):
                return False
            raise

    async def add(self, items: Sequence[Mapping[str, str | int]]) -> list[str]:
        """Append messages in one round trip (trimmed approximately to ``max_length``)."""
        if not items:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for item in items:
                pipe.xadd(self.key, dict(item), maxlen=self.max_length, approximate=True)
            return [_text(mid) for mid in await pipe.execute()]

    async def read(self, consumer: str, *, count: int, block_ms: int | None) -> list[Message]:
        """New messages for this consumer (they stay pending until acknowledged)."""
        answer = await self.redis.xreadgroup(self.group, consumer, {self.key: ">"}, count=count, block=block_ms)
        return [m for _, entries in answer or () for m in _messages(entries)]

    async def claim_idle(self, consumer: str, *, min_idle_ms: int, count: int) -> list[Message]:
        """Messages another consumer read but has not acknowledged for ``min_idle_ms``, now this
        consumer's."""
        if self._autoclaim:
            try:
                answer = await self.redis.xautoclaim(self.key, self.group, consumer, min_idle_ms, start_id="0-0", count=count)
                return _messages(answer[1])
            except ResponseError as exc:
                if "unknown command" not in str(exc).lower():
                    raise
                self._autoclaim = False
        pending = await self.redis.xpending_range(self.key, self.group, min="-", max="+", count=count, idle=min_idle_ms)
        ids = [entry["message_id"] for entry in pending]
        if not ids:
            return []
        return _messages(await self.redis.xclaim(self.key, self.group, consumer, min_idle_ms, ids))

    async def ack(self, ids: Sequence[str]) -> int:
        return int(await self.redis.xack(self.key, self.group, *ids)) if ids else 0

    async def pending_count(self) -> int:
        summary = await self.redis.xpending(self.key, self.group)
        return int(summary["pending"] if isinstance(summary, dict) else summary[0])
