"""The transactional outbox: nothing leaves for a rolled-back command, every committed message
leaves at least once, failures are retried with backoff until declared dead."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta, timezone

import pytest
from tortoise.transactions import in_transaction

from infra import clock, pii
from infra.identity_numbers import make_test_id_number
from infra.outbox import DEAD, PENDING, SENDING, SENT, OutboxMessage, RelayPolicy, backoff, enqueue, relay_once

TOPIC = "test.notify"
POLICY = RelayPolicy(base_backoff=timedelta(seconds=2), max_backoff=timedelta(minutes=30), max_attempts=3)


class Recorder:
    """A handler that records the ids it was asked to send; optionally fails or yields."""

    def __init__(self, fail_with: Exception | None = None, yield_first: bool = False) -> None:
        self.sent: list[int] = []
        self.fail_with = fail_with
        self.yield_first = yield_first

    async def __call__(self, message: OutboxMessage) -> None:
        if self.yield_first:
            await asyncio.sleep(0)  # let a concurrent relay run between claim and send
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(message.id)


class FrozenClock:
    def __init__(self) -> None:
        self.at = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, delta: timedelta) -> None:
        self.at += delta


@pytest.fixture
def frozen(monkeypatch) -> FrozenClock:
    now = FrozenClock()
    monkeypatch.setattr(clock, "now", now)
    return now


async def reload(message_id: int) -> OutboxMessage:
    return await OutboxMessage.get(id=message_id)


async def test_a_message_enqueued_in_a_rolled_back_transaction_is_never_sent(db):
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with in_transaction():
            await enqueue(TOPIC, {"order": 1})
            raise Boom()
    handler = Recorder()

    assert await relay_once({TOPIC: handler}) == 0
    assert handler.sent == []
    assert await OutboxMessage.all().count() == 0


async def test_a_committed_message_is_sent_exactly_once_and_marked_sent(db):
    async with in_transaction():
        message_id = await enqueue(TOPIC, {"order": 1}, bank_id=7)
    handler = Recorder()

    assert await relay_once({TOPIC: handler}) == 1
    assert await relay_once({TOPIC: handler}) == 0  # a second pass finds nothing due

    assert handler.sent == [message_id]
    stored = await reload(message_id)
    assert stored.status == SENT
    assert stored.sent_at is not None
    assert stored.lease_until is None
    assert stored.attempts == 1
    assert stored.bank_id == 7


async def test_messages_of_topics_without_a_handler_wait(db):
    message_id = await enqueue("other.topic", {"order": 1})

    assert await relay_once({TOPIC: Recorder()}) == 0
    assert (await reload(message_id)).status == PENDING


async def test_a_failing_handler_leaves_the_message_pending_with_a_scrubbed_error_and_backoff(db, frozen):
    id_number = make_test_id_number("440304", date(1979, 11, 23), 457)
    message_id = await enqueue(TOPIC, {"order": 1})
    handler = Recorder(fail_with=RuntimeError(f"provider refused customer {id_number} (phone 13912345678)"))
    failed_at = frozen.at

    assert await relay_once({TOPIC: handler}, POLICY) == 0

    stored = await reload(message_id)
    assert stored.status == PENDING
    assert stored.attempts == 1
    assert stored.lease_until is None
    assert stored.next_attempt_at == failed_at + backoff(1, POLICY) == failed_at + timedelta(seconds=2)
    assert stored.last_error.startswith("RuntimeError: provider refused customer ")
    assert id_number not in stored.last_error
    assert pii.mask_id_number(id_number) in stored.last_error
    assert "13912345678" not in stored.last_error
    assert pii.mask_phone("13912345678") in stored.last_error


async def test_a_failed_message_is_not_retried_before_its_backoff_and_then_is(db, frozen):
    message_id = await enqueue(TOPIC, {"order": 1})
    await relay_once({TOPIC: Recorder(fail_with=RuntimeError("down"))}, POLICY)
    handler = Recorder()

    frozen.advance(timedelta(seconds=1))
    assert await relay_once({TOPIC: handler}, POLICY) == 0

    frozen.advance(timedelta(seconds=1))
    assert await relay_once({TOPIC: handler}, POLICY) == 1
    assert handler.sent == [message_id]
    stored = await reload(message_id)
    assert (stored.status, stored.attempts) == (SENT, 2)


async def test_the_longest_due_is_sent_first_and_a_message_held_for_later_blocks_none(db, frozen):
    retried = await enqueue(TOPIC, {"order": "retried"})
    held = await enqueue(TOPIC, {"order": "held"}, not_before=frozen.at + timedelta(hours=1))
    await relay_once({TOPIC: Recorder(fail_with=RuntimeError("down"))}, POLICY)  # retried is due again in 2 s
    frozen.advance(timedelta(seconds=1))
    later = await enqueue(TOPIC, {"order": "later"})  # made after retried, but due before it
    frozen.advance(timedelta(seconds=2))
    handler = Recorder()

    assert await relay_once({TOPIC: handler}, RelayPolicy(batch_size=1)) == 1
    assert await relay_once({TOPIC: handler}, RelayPolicy(batch_size=1)) == 1
    assert await relay_once({TOPIC: handler}, RelayPolicy(batch_size=1)) == 0
    assert handler.sent == [later, retried]
    assert (await reload(held)).status == PENDING


async def test_after_max_attempts_the_message_is_dead(db, frozen):
    message_id = await enqueue(TOPIC, {"order": 1})
    failing = Recorder(fail_with=ConnectionError("SMS gateway down"))

    for attempt in range(1, POLICY.max_attempts + 1):
        await relay_once({TOPIC: failing}, POLICY)
        stored = await reload(message_id)
        assert stored.attempts == attempt
        assert stored.status == (DEAD if attempt == POLICY.max_attempts else PENDING)
        frozen.advance(POLICY.max_backoff)

    assert stored.last_error == "ConnectionError: SMS gateway down"
    # A dead message is never picked up again, however long we wait.
    handler = Recorder()
    frozen.advance(timedelta(days=1))
    assert await relay_once({TOPIC: handler}, POLICY) == 0
    assert handler.sent == []


async def test_a_message_whose_lease_expired_is_sent_again(db, frozen):
    """A relay killed mid-send leaves the message 'sending' under a lease. Once the lease expires
    the message is sent again: delivery is at least once. That is safe only because handlers
    dedupe by message id (a payout's bill number, an SMS's dedupe key are derived from it)."""
    message_id = await enqueue(TOPIC, {"order": 1})
    await OutboxMessage.filter(id=message_id).update(
        status=SENDING, attempts=1, lease_until=frozen.at - timedelta(seconds=1)
    )
    handler = Recorder()

    assert await relay_once({TOPIC: handler}, POLICY) == 1

    assert handler.sent == [message_id]
    stored = await reload(message_id)
    assert (stored.status, stored.attempts, stored.lease_until) == (SENT, 2, None)


async def test_a_message_under_a_live_lease_is_left_to_its_sender(db, frozen):
    message_id = await enqueue(TOPIC, {"order": 1})
    await OutboxMessage.filter(id=message_id).update(
        status=SENDING, attempts=1, lease_until=frozen.at + timedelta(seconds=30)
    )
    handler = Recorder()

    assert await relay_once({TOPIC: handler}, POLICY) == 0
    assert handler.sent == []
    assert (await reload(message_id)).status == SENDING


async def test_two_concurrent_relays_send_each_message_once(db):
    messages = [await enqueue(TOPIC, {"order": n}) for n in range(50)]
    handler = Recorder(yield_first=True)

    sent_a, sent_b = await asyncio.gather(relay_once({TOPIC: handler}), relay_once({TOPIC: handler}))

    assert sent_a > 0 and sent_b > 0, "both relays should have taken part"
    assert sent_a + sent_b == 50
    assert sorted(handler.sent) == sorted(messages)  # each once: no duplicates, none missing
    assert await OutboxMessage.filter(status=SENT).count() == 50
    assert await OutboxMessage.filter(attempts=1).count() == 50


class Gauge:
    """A handler that holds each message a moment and records how many were in flight at once."""

    def __init__(self, fail_on: set[int] = frozenset()) -> None:
        self.in_flight = self.most = 0
        self.sent: list[int] = []
        self.fail_on = fail_on

    async def __call__(self, message: OutboxMessage) -> None:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await asyncio.sleep(0.01)
            if message.id in self.fail_on:
                raise ConnectionError("WeChat Pay busy")
            self.sent.append(message.id)
        finally:
            self.in_flight -= 1


async def test_a_parallel_topic_sends_up_to_its_width_at_once_beside_the_ordered_lane(db):
    ordered = [await enqueue(TOPIC, {"order": n}) for n in range(5)]
    standalone = [await enqueue("test.pay", {"order": n}) for n in range(12)]
    in_order, side_by_side = Gauge(), Gauge()

    sent = await relay_once({TOPIC: in_order, "test.pay": side_by_side}, RelayPolicy(parallel={"test.pay": 4}))

    assert sent == 17
    assert sorted(side_by_side.sent) == standalone and side_by_side.most == 4
    assert in_order.sent == ordered and in_order.most == 1  # one at a time, in the order they fell due
    assert await OutboxMessage.filter(status=SENT, attempts=1).count() == 17


async def test_a_failure_in_a_parallel_lane_is_retried_alone(db, frozen):
    messages = [await enqueue("test.pay", {"order": n}) for n in range(6)]
    handler = Gauge(fail_on={messages[2]})

    assert await relay_once({"test.pay": handler}, RelayPolicy(parallel={"test.pay": 3}, max_attempts=3)) == 5

    assert sorted(handler.sent) == [m for m in messages if m != messages[2]]
    failed = await reload(messages[2])
    assert (failed.status, failed.attempts, failed.last_error) == (PENDING, 1, "ConnectionError: WeChat Pay busy")


async def test_a_lane_whose_bookkeeping_fails_lets_the_others_finish_first(db, monkeypatch):
    """The database gone mid-pass: the pass fails, but only once every lane has stopped, so no
    send is left running behind the relay's back."""
    messages = [await enqueue("test.pay", {"order": n}) for n in range(4)]
    handler = Gauge()
    real_get, finished = OutboxMessage.get, []

    async def get(*args, **kwargs):
        message = await real_get(*args, **kwargs)
        if message.id == messages[0]:
            raise ConnectionError("database gone")
        await asyncio.sleep(0.02)
        finished.append(message.id)
        return message

    monkeypatch.setattr(OutboxMessage, "get", get)
    with pytest.raises(ConnectionError):
        await relay_once({"test.pay": handler}, RelayPolicy(parallel={"test.pay": 4}))

    assert sorted(finished) == messages[1:] and sorted(handler.sent) == messages[1:]


async def test_personal_data_in_the_payload_is_masked_at_enqueue(db):
    message_id = await enqueue(TOPIC, {"phone": "13812345678", "name": "张三丰", "order": 42})

    stored = await reload(message_id)
    assert stored.payload == {"phone": "138****5678", "name": "张*丰", "order": 42}


def test_backoff_grows_exponentially_and_is_capped():
    policy = RelayPolicy(base_backoff=timedelta(seconds=2), max_backoff=timedelta(minutes=30))

    assert [backoff(n, policy).total_seconds() for n in range(1, 8)] == [2, 4, 8, 16, 32, 64, 128]
    assert backoff(10, policy) == timedelta(seconds=1024)
    assert backoff(11, policy) == timedelta(minutes=30)  # 2048 s would exceed the cap
    assert backoff(46, policy) == policy.max_backoff
    assert backoff(0, policy) == policy.base_backoff


@pytest.mark.parametrize("attempts", [47, 100])
def test_backoff_stays_capped_for_any_number_of_attempts(attempts):
    policy = RelayPolicy(base_backoff=timedelta(seconds=2), max_backoff=timedelta(minutes=30))

    assert backoff(attempts, policy) == policy.max_backoff
