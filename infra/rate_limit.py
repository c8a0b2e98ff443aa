"""Fixed-window rate limits in Redis: one INCR per request, the window's expiry set with it.

Redis holds only counters here; if it is down the caller decides whether to fail open or closed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import NamedTuple

from infra.errors import DomainError


class RateLimited(DomainError):
    """Too many requests: slow down and retry after the given number of seconds."""

    def __init__(self, retry_after: int):
        super().__init__("too many requests; retry later", details={"retry_after": retry_after})
        self.retry_after = retry_after


@dataclass(frozen=True)
class Limit:
    requests: int
    window_seconds: int


_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


class Window(NamedTuple):  # made several times a grab: a tuple is made in a third of a frozen dataclass's time
    """The counter of one fixed window: its key, how long Redis keeps it, and when it is over."""

    key: str
    ttl_seconds: int
    retry_after: int


def window(key: str, limit: Limit, now: float) -> Window:
    """The counter ``key`` counts in at ``now`` (for scripts that count several limits at once)."""
    current = int(now // limit.window_seconds)
    return Window(f"{key}:{current}", limit.window_seconds + 1, max(1, int((current + 1) * limit.window_seconds - now) + 1))


async def hit(redis, key: str, limit: Limit, *, now: float | None = None) -> None:
    """Count one request against ``key``; raise ``RateLimited`` past the limit."""
    counter = window(key, limit, time.time() if now is None else now)
    count = await redis.eval(_SCRIPT, 1, counter.key, counter.ttl_seconds)
    if int(count) > limit.requests:
        raise RateLimited(retry_after=counter.retry_after)
