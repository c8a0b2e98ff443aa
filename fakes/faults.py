"""Injected faults, shared by the fake WeChat and the fake WeChat Pay: each endpoint has a queue
of faults a test asked for; each call counts, and takes the head of its queue."""

from __future__ import annotations

import asyncio


async def next_fault(calls: dict[str, int], faults: dict[str, list], endpoint: str):
    """Count a call to ``endpoint`` and return the fault it must answer with, or None: none is
    queued, or the fault was a delay (slept here; the call then answers normally). A fault asked
    for ``times`` calls stays at the head of the queue until they are used up."""
    calls[endpoint] = calls.get(endpoint, 0) + 1
    queue = faults.get(endpoint) or []
    if not queue:
        return None
    fault = queue[0]
    fault.times -= 1
    if fault.times <= 0:
        queue.pop(0)
    if fault.mode == "delay":
        await asyncio.sleep(fault.seconds)
        return None
    return fault
