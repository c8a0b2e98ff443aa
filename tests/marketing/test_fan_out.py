"""The decided-application topic fans out to the WeChat result sender and marketing's funnel:
each listener runs until it succeeds once per message, so one listener's failure is retried alone
and never repeats the other's effect."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tortoise.transactions import in_transaction

from fakes.wechat import openid_for
from infra import clock, outbox
from infra.outbox import DEAD, PENDING, SENT, OutboxMessage, OutboxReceipt, RelayPolicy, fan_out, relay_once
from marketing import funnel
from marketing.models import InviteReferral
from server.handlers import outbox_handlers
from tests.marketing.support import fake_messages, staff_code
from tests.marketing.test_funnel import referred_applicant

TOPIC = "test.fanned"


class Listener:
    def __init__(self, failures: int = 0):
        self.calls: list[int] = []
        self.failures = failures

    async def __call__(self, message: OutboxMessage) -> None:
        self.calls.append(message.id)
        if self.failures:
            self.failures -= 1
            raise RuntimeError("listener down")


@pytest.fixture
def frozen(monkeypatch):
    now = {"at": clock.now()}
    monkeypatch.setattr(clock, "now", lambda: now["at"])
    return now


async def test_every_listener_hears_each_message_once(db):
    first, second = Listener(), Listener()
    handler = fan_out({"first": first, "second": second})
    async with in_transaction():
        message_id = await outbox.enqueue(TOPIC, {"n": 1})

    assert await relay_once({TOPIC: handler}) == 1
    assert await relay_once({TOPIC: handler}) == 0

    assert first.calls == second.calls == [message_id]
    assert set(await OutboxReceipt.filter(message_id=message_id).values_list("listener", flat=True)) == {"first", "second"}


async def test_a_failing_listener_is_retried_alone(db, frozen):
    steady, flaky = Listener(), Listener(failures=2)
    handlers = {TOPIC: fan_out({"steady": steady, "flaky": flaky})}
    policy = RelayPolicy(base_backoff=timedelta(seconds=2), max_attempts=5)
    message_id = await outbox.enqueue(TOPIC, {"n": 1})

    for _ in range(3):
        await relay_once(handlers, policy)
        frozen["at"] += timedelta(minutes=1)

    assert steady.calls == [message_id], "the listener that succeeded never ran again"
    assert flaky.calls == [message_id] * 3
    stored = await OutboxMessage.get(id=message_id)
    assert (stored.status, stored.attempts) == (SENT, 3)


async def test_the_failure_is_recorded_and_retried_with_backoff(db, frozen):
    handlers = {TOPIC: fan_out({"steady": Listener(), "down": Listener(failures=99)})}
    policy = RelayPolicy(max_attempts=2)
    message_id = await outbox.enqueue(TOPIC, {"n": 1})

    await relay_once(handlers, policy)
    stored = await OutboxMessage.get(id=message_id)
    assert stored.status == PENDING
    assert stored.last_error.startswith("ListenersFailed: down: RuntimeError: listener down")
    frozen["at"] += timedelta(hours=1)
    await relay_once(handlers, policy)

    assert (await OutboxMessage.get(id=message_id)).status == DEAD
    assert await OutboxReceipt.filter(message_id=message_id).values_list("listener", flat=True) == ["steady"]


async def test_wechat_tells_the_customer_once_although_the_funnel_failed_first(app, client, demo, fake_wechat, monkeypatch, frozen):
    person = await referred_applicant(client, (await staff_code("hz.manager")).code)
    await person.applied()
    handlers = outbox_handlers(app.ctx.settings, app.ctx.providers)
    real = funnel.on_application_decided

    async def broken(message):
        raise ConnectionError("database hiccup")

    monkeypatch.setattr(funnel, "on_application_decided", broken)
    handlers_broken = outbox_handlers(app.ctx.settings, app.ctx.providers)
    await relay_once(handlers_broken)
    openid = openid_for(app.ctx.settings.wechat_appid, person.wechat_user)
    assert len(await fake_messages(fake_wechat, openid)) == 1
    assert (await InviteReferral.get(referee_id=person.customer_id)).stage == "registered"

    monkeypatch.setattr(funnel, "on_application_decided", real)
    frozen["at"] += timedelta(minutes=5)
    await relay_once(outbox_handlers(app.ctx.settings, app.ctx.providers))

    assert (await InviteReferral.get(referee_id=person.customer_id)).stage == "approved"
    assert len(await fake_messages(fake_wechat, openid)) == 1, "the retry did not tell the customer again"
    assert (await OutboxMessage.get(topic="lending.application_decided")).status == SENT
    assert handlers.keys() == handlers_broken.keys()
