"""The real-time monitoring worker (``python -m server.cli monitor``): reads the transaction
events' stream in a consumer group beside any number of other workers, has the risk area
process each batch (``lending_core.risk.transactions.process``) and acknowledges what the
database says is processed.

- A message is acknowledged only after the transaction that processed its event committed (or
  when the event turns out to be processed already). A worker that dies holding messages leaves
  them pending; another claims them once they have been idle ``claim_idle_ms``.
- Redis may lose the stream (it keeps nothing on disk here). When the group has to be made anew
  the worker queues again every event the database still has as received; a sweep does the same
  every ``sweep_seconds`` for events left waiting longer than ``stale_seconds`` (an ingest whose
  queueing failed, a message lost on fail-over).
- ``run`` keeps up to ``in_flight`` batches in their own transactions at once (``pump``): the next
  batch is read as soon as its events arrive and its Python work done while PostgreSQL commits the previous one, so on a
  2-core machine neither the worker nor the database waits for the other, and a batch that
  settles (tens of statements) does not hold up the events read after it. Concurrent batches
  never share an event (each message is read once; ``process`` locks its rows SKIP LOCKED), and
  what they may share — a loan, a signal, a core account — is locked in key order, as between
  two workers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from redis.exceptions import RedisError, ResponseError

from infra import clock
from infra.streams import Message, Stream
from lending_core.loans.ports import CoreBanking
from lending_core.risk import transactions

log = logging.getLogger("risk.monitor")


@dataclass(frozen=True)
class MonitorSettings:
    batch: int = 500
    block_ms: int = 1000
    claim_idle_ms: int = 30_000
    sweep_seconds: float = 10.0
    stale_seconds: float = 60.0
    in_flight: int = 2  # batches processed at once by ``pump`` (``step`` takes one at a time)


def event_stream(redis, key_prefix: str) -> Stream:
    return Stream(redis, transactions.stream_key(key_prefix), transactions.GROUP)


class Monitor:
    def __init__(self, redis, key_prefix: str, core_banking: CoreBanking, *, consumer: str, settings: MonitorSettings = MonitorSettings(),
                 watcher: transactions.Watcher | None = None, now: Callable[[], datetime] = clock.now,
                 on_batch: Callable[[transactions.Processed], None] | None = None):
        self.stream = event_stream(redis, key_prefix)
        self.core_banking = core_banking
        self.consumer = consumer
        self.settings = settings
        self.watcher = watcher or transactions.Watcher(core_banking)
        self.now = now  # a benchmark replays a business day of its own
        self.on_batch = on_batch  # told of each committed batch (the benchmark times them)
        self._last_sweep = 0.0
        self._last_claim = 0.0
        self._in_flight: set[asyncio.Task] = set()
        self.processed = 0

    async def start(self) -> int:
        """Join the group; if it had to be made (first start, or Redis lost the stream) queue
        again whatever the database has not processed. Returns how many were queued again."""
        if await self.stream.ensure_group():
            requeued = await transactions.requeue_stale(self.stream, older_than=timedelta(0))
            if requeued:
                log.warning("transaction stream was missing: %d unprocessed events queued again from the database", requeued)
            return requeued
        return 0

    async def step(self, *, block_ms: int | None = None) -> int:
        """One round: claim what dead workers left (now and then), read new messages, process
        and acknowledge. Returns the number of events acknowledged."""
        return await self.handle(await self._next(block_ms))

    async def pump(self, *, block_ms: int | None = None) -> int:
        """One round of the pipelined loop: while fewer than ``in_flight`` batches run, wait for
        the next messages (blocking the read, not the batches, which go on meanwhile) and start
        them as a batch beside the others; when as many as allowed run, wait for one to finish.
        Events that arrive while a batch runs so start at once, not when it ends. Returns the
        events acknowledged by the batches that finished; a failed batch's error is raised here
        (its messages stay pending). ``flush`` waits for the rest."""
        room = max(1, self.settings.in_flight) - len(self._in_flight)
        messages = await self._next(block_ms) if room > 0 else []
        if messages:
            self._in_flight.add(asyncio.create_task(self.handle(messages)))
            room -= 1
        waited = self.settings.block_ms if block_ms is None else block_ms
        # Full, or a read that did not block found nothing: wait for a batch rather than spin.
        if self._in_flight and (room <= 0 or (not messages and not waited)):
            await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
        return self._finished()

    @property
    def in_flight(self) -> int:
        """Batches started by ``pump`` and not finished yet."""
        return len(self._in_flight)

    async def flush(self) -> int:
        """Wait for every batch in flight; the events they acknowledged."""
        if self._in_flight:
            await asyncio.wait(self._in_flight)
        return self._finished()

    def _finished(self) -> int:
        done = [task for task in self._in_flight if task.done()]
        self._in_flight.difference_update(done)
        failed = [task.exception() for task in done if task.exception() is not None]
        if failed:
            raise failed[0]
        return sum(task.result() for task in done)

    async def _next(self, block_ms: int | None) -> list[Message]:
        """What dead workers left (now and then), else new messages."""
        now = time.monotonic()
        messages: list[Message] = []
        if now - self._last_claim >= self.settings.claim_idle_ms / 2000:
            self._last_claim = now
            messages += await self.stream.claim_idle(self.consumer, min_idle_ms=self.settings.claim_idle_ms, count=self.settings.batch)
        if not messages:
            block = self.settings.block_ms if block_ms is None else block_ms
            messages += await self.stream.read(self.consumer, count=self.settings.batch, block_ms=block or None)
        return messages

    async def handle(self, messages: list[Message]) -> int:
        by_event: dict[int, list[str]] = {}
        hints: dict[int, tuple[int, str] | None] = {}
        garbage = []
        for message in messages:
            try:
                event_id = int(message.fields["id"])
            except (KeyError, ValueError):
                garbage.append(message.id)  # not ours to process: nothing can be done with it
                continue
            by_event.setdefault(event_id, []).append(message.id)
            hints[event_id] = transactions.hint_of(message.fields)
        if garbage:
            await self.stream.ack(garbage)
        if not by_event:
            return 0
        result = await transactions.process(list(by_event), watcher=self.watcher, core_banking=self.core_banking, at=self.now(), hints=hints)
        # Only after the commit: a crash before this line leaves them pending for another worker.
        acknowledged = [mid for event_id in result.done for mid in by_event.get(event_id, ())]
        await self.stream.ack(acknowledged)
        if self.on_batch is not None:
            self.on_batch(result)
        self.processed += len(result.done)
        return len(result.done)

    async def sweep(self) -> int:
        self._last_sweep = time.monotonic()
        return await transactions.requeue_stale(self.stream, older_than=timedelta(seconds=self.settings.stale_seconds))

    async def run(self, stop: asyncio.Event) -> None:
        await self.start()
        while not stop.is_set():
            try:
                if time.monotonic() - self._last_sweep >= self.settings.sweep_seconds:
                    await self.sweep()
                await self.pump()
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                log.warning("transaction stream or group gone (Redis lost it): rebuilding from the database")
                await self.start()
            except RedisError:
                log.warning("Redis unavailable; events wait in the database", exc_info=True)
                await _pause(stop, 1.0)
            except Exception:
                # The batch rolled back and stays pending: it is claimed again after the idle time.
                log.exception("processing a batch of transaction events failed")
                await _pause(stop, 1.0)
        try:
            await self.flush()
        except Exception:
            log.exception("processing a batch of transaction events failed")


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass
