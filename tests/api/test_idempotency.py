"""Idempotency-Key with Stripe's semantics, through the HTTP API and at the service level.

Routes: POST /api/v1/me/consents requires the key; POST /api/v1/admin/staff accepts it.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from tortoise import connections
from tortoise.backends.base.client import TransactionalDBClient

from infra import idempotency
from infra.audit import AuditEntry
from infra.idempotency import IdempotencyRecord, StoredResponse
from lending_core.customers.models import BankRelationship, Consent
from lending_core.org.models import Staff
from tests.support import bearer, customer_token, new_key, staff_token


CONSENTS = "/api/v1/me/consents"
STAFF = "/api/v1/admin/staff"
CREDIT_BUREAU = {"purpose": "credit_bureau"}


async def demo_customers() -> list[tuple[int, int]]:
    """(customer id, bank id) of the two demo customers, in the order they were loaded."""
    return [(r.customer_id, r.bank_id) for r in await BankRelationship.all().order_by("customer_id")]


async def first_customer_headers(app) -> dict:
    customer_id, bank_id = (await demo_customers())[0]
    return bearer(await customer_token(app, customer_id, bank_id))


async def grant(client, headers: dict, key: str | bytes | None, body=CREDIT_BUREAU):
    if key is not None:
        headers = {**headers, "Idempotency-Key": key}
    _, response = await client.post(CONSENTS, json=body, headers=headers)
    return response


def error_code(response) -> str:
    return response.json["error"]["code"]


def new_staff_body(username: str = "hz.newcomer") -> dict:
    return {"username": username, "name": "新员工", "roles": ["account_manager"], "password": "Strong-pass-2026"}


# --- the key itself ----------------------------------------------------------------------------


async def test_missing_key_on_a_required_route_is_refused_and_writes_nothing(client, app, demo):
    headers = await first_customer_headers(app)

    response = await grant(client, headers, key=None)

    assert response.status == 400
    assert error_code(response) == "IDEMPOTENCY_KEY_REQUIRED"
    assert await Consent.all().count() == 0
    assert await IdempotencyRecord.all().count() == 0


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("k" * (idempotency.MAX_KEY_LENGTH + 1), id="too-long"),
        pytest.param("ключ-🔑".encode("utf-8"), id="non-ascii"),
        pytest.param("", id="empty"),
    ],
)
async def test_invalid_key_is_refused_and_writes_nothing(client, app, demo, key):
    headers = await first_customer_headers(app)

    response = await grant(client, headers, key=key)

    assert response.status == 400
    assert error_code(response) == "IDEMPOTENCY_KEY_INVALID"
    assert await Consent.all().count() == 0
    assert await IdempotencyRecord.all().count() == 0


async def test_key_of_the_maximum_length_is_accepted(client, app, demo):
    headers = await first_customer_headers(app)

    response = await grant(client, headers, key="k" * idempotency.MAX_KEY_LENGTH)

    assert response.status == 201
    assert await Consent.all().count() == 1


# --- replay ------------------------------------------------------------------------------------


async def test_replay_returns_the_same_status_and_bytes_and_creates_nothing_more(client, app, demo):
    headers = await first_customer_headers(app)
    key = new_key()

    first = await grant(client, headers, key)
    second = await grant(client, headers, key)

    assert first.status == 201
    assert "Idempotent-Replayed" not in first.headers
    assert second.status == 201
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert second.body == first.body
    assert second.headers.get("content-type") == first.headers.get("content-type")
    assert await Consent.all().count() == 1
    assert await AuditEntry.filter(action="consent.grant").count() == 1


async def test_a_new_key_makes_a_new_consent(client, app, demo):
    headers = await first_customer_headers(app)

    first = await grant(client, headers, new_key())
    second = await grant(client, headers, new_key())

    assert (first.status, second.status) == (201, 201)
    assert first.json["id"] != second.json["id"]
    assert await Consent.all().count() == 2


async def test_same_key_with_a_different_body_is_refused(client, app, demo):
    headers = await first_customer_headers(app)
    key = new_key()
    assert (await grant(client, headers, key)).status == 201

    response = await grant(client, headers, key, body={"purpose": "tax"})

    assert response.status == 422
    assert error_code(response) == "IDEMPOTENCY_KEY_REUSED"
    assert await Consent.all().count() == 1
    assert await Consent.filter(purpose="tax").count() == 0


async def test_same_key_from_another_caller_is_independent(client, app, demo):
    (first_id, first_bank), (second_id, second_bank) = await demo_customers()
    first_headers = bearer(await customer_token(app, first_id, first_bank))
    second_headers = bearer(await customer_token(app, second_id, second_bank))
    key = new_key()

    mine = await grant(client, first_headers, key)
    theirs = await grant(client, second_headers, key)

    assert (mine.status, theirs.status) == (201, 201)
    assert "Idempotent-Replayed" not in theirs.headers
    assert theirs.body != mine.body
    assert theirs.json["bank_id"] == second_bank
    assert await Consent.filter(customer_id=first_id).count() == 1
    assert await Consent.filter(customer_id=second_id).count() == 1
    consent = await Consent.get(id=theirs.json["id"])
    assert consent.customer_id == second_id


async def test_concurrent_requests_with_one_key_have_one_effect(client, app, demo):
    headers = await first_customer_headers(app)
    key = new_key()

    responses = await asyncio.gather(grant(client, headers, key), grant(client, headers, key))

    assert [r.status for r in responses] == [201, 201]
    assert responses[0].body == responses[1].body
    replayed = sorted(r.headers.get("Idempotent-Replayed", "") for r in responses)
    assert replayed == ["", "true"]
    assert await Consent.all().count() == 1
    assert await IdempotencyRecord.all().count() == 1


async def test_a_request_that_fails_validation_stores_nothing_so_a_corrected_retry_succeeds(client, app, demo):
    headers = await first_customer_headers(app)
    key = new_key()

    refused = await grant(client, headers, key, body={"purpose": ""})
    assert refused.status == 422
    assert error_code(refused) == "VALIDATION_FAILED"
    assert await IdempotencyRecord.all().count() == 0

    retried = await grant(client, headers, key)

    assert retried.status == 201
    assert "Idempotent-Replayed" not in retried.headers
    assert await Consent.all().count() == 1


async def test_a_request_refused_by_the_service_stores_nothing(client, app, demo):
    headers = await first_customer_headers(app)
    key = new_key()

    refused = await grant(client, headers, key, body={"purpose": "no_such_purpose"})
    assert 400 <= refused.status < 500
    assert await IdempotencyRecord.all().count() == 0

    retried = await grant(client, headers, key)

    assert retried.status == 201
    assert await Consent.all().count() == 1


# --- a route where the key is optional ---------------------------------------------------------


async def test_optional_key_route_works_without_a_key(client, demo):
    headers = bearer(await staff_token(client, "hz.admin"))

    _, response = await client.post(STAFF, json=new_staff_body(), headers=headers)

    assert response.status == 201
    assert await Staff.filter(username="hz.newcomer").count() == 1
    assert await IdempotencyRecord.all().count() == 0


async def test_optional_key_route_replays_with_a_key(client, demo):
    headers = bearer(await staff_token(client, "hz.admin"), **{"Idempotency-Key": new_key()})

    _, first = await client.post(STAFF, json=new_staff_body(), headers=headers)
    _, second = await client.post(STAFF, json=new_staff_body(), headers=headers)

    assert (first.status, second.status) == (201, 201)
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert second.body == first.body
    assert await Staff.filter(username="hz.newcomer").count() == 1


async def test_optional_key_route_refuses_an_invalid_key(client, demo):
    headers = bearer(await staff_token(client, "hz.admin"), **{"Idempotency-Key": "k" * 300})

    _, response = await client.post(STAFF, json=new_staff_body(), headers=headers)

    assert response.status == 400
    assert error_code(response) == "IDEMPOTENCY_KEY_INVALID"
    assert await Staff.filter(username="hz.newcomer").count() == 0


async def test_staff_keys_are_scoped_to_the_staff_member(client, demo):
    key = new_key()
    first_headers = bearer(await staff_token(client, "hz.admin"), **{"Idempotency-Key": key})
    second_headers = bearer(await staff_token(client, "hz.admin2"), **{"Idempotency-Key": key})

    _, first = await client.post(STAFF, json=new_staff_body("hz.newcomer"), headers=first_headers)
    _, second = await client.post(STAFF, json=new_staff_body("hz.newcomer"), headers=second_headers)

    assert first.status == 201
    # Not a replay of hz.admin's response: hz.admin2's own attempt, refused because the name is taken.
    assert second.status == 409
    assert error_code(second) == "USERNAME_TAKEN"
    assert "Idempotent-Replayed" not in second.headers


# --- run_once, the service level ---------------------------------------------------------------


class Boom(Exception):
    pass


async def _write_audit_row() -> None:
    await AuditEntry.create(actor_kind="system", actor_id="test", action="test.effect", object_type="test", object_id="1")


async def test_run_once_leaves_no_record_when_the_command_raises(db):
    async def failing_command() -> StoredResponse:
        await _write_audit_row()
        raise Boom()

    with pytest.raises(Boom):
        await idempotency.run_once("customer:1", "key-1", "fp", failing_command)

    assert await IdempotencyRecord.all().count() == 0
    assert await AuditEntry.filter(action="test.effect").count() == 0

    calls = []

    async def working_command() -> StoredResponse:
        calls.append(1)
        await _write_audit_row()
        return StoredResponse(201, "application/json", b'{"ok":true}')

    result = await idempotency.run_once("customer:1", "key-1", "fp", working_command)

    assert result == StoredResponse(201, "application/json", b'{"ok":true}', replayed=False)
    assert calls == [1]
    assert await IdempotencyRecord.all().count() == 1
    assert await AuditEntry.filter(action="test.effect").count() == 1


async def test_run_once_replays_and_refuses_a_different_fingerprint(db):
    calls = []

    async def command() -> StoredResponse:
        calls.append(1)
        return StoredResponse(201, "application/json", b'{"id":1}')

    first = await idempotency.run_once("staff:7", "key-2", "fp-a", command)
    again = await idempotency.run_once("staff:7", "key-2", "fp-a", command)
    other_caller = await idempotency.run_once("staff:8", "key-2", "fp-a", command)

    assert first.replayed is False
    assert again == StoredResponse(201, "application/json", b'{"id":1}', replayed=True)
    assert other_caller.replayed is False
    assert len(calls) == 2
    with pytest.raises(idempotency.IdempotencyKeyReused):
        await idempotency.run_once("staff:7", "key-2", "fp-b", command)
    assert len(calls) == 2


@pytest.mark.parametrize("key", ["", "k" * 256, "ключ", "tab\there"])
async def test_run_once_refuses_an_invalid_key_before_running(db, key):
    async def command() -> StoredResponse:  # pragma: no cover - must not run
        raise AssertionError("the command ran")

    with pytest.raises(idempotency.IdempotencyKeyInvalid):
        await idempotency.run_once("staff:7", key, "fp", command)
    assert await IdempotencyRecord.all().count() == 0


# --- run_prepared: the slow part outside the transaction ------------------------------------------


def _no_transaction_open() -> bool:
    return not isinstance(connections.get("default"), TransactionalDBClient)


async def _effects() -> int:
    return await AuditEntry.filter(action="test.effect").count()


async def test_run_prepared_prepares_in_no_transaction_and_commits_the_writes_with_the_response(db):
    seen = []

    async def prepare() -> str:
        seen.append(("prepare", _no_transaction_open()))
        return "decided"

    async def command(prepared: str) -> StoredResponse:
        seen.append((prepared, _no_transaction_open()))
        await _write_audit_row()
        return StoredResponse(201, "application/json", b'{"id":7}')

    first = await idempotency.run_prepared("customer:1", "key-p", "fp", prepare, command)
    again = await idempotency.run_prepared("customer:1", "key-p", "fp", prepare, command)

    assert seen == [("prepare", True), ("decided", False)]  # once each; only the writes in a transaction
    assert (first.replayed, again) == (False, StoredResponse(201, "application/json", b'{"id":7}', replayed=True))
    assert await _effects() == 1
    stored = await IdempotencyRecord.get(caller="customer:1", key="key-p")
    assert (stored.status_code, bytes(stored.body)) == (201, b'{"id":7}')
    with pytest.raises(idempotency.IdempotencyKeyReused):
        await idempotency.run_prepared("customer:1", "key-p", "other fp", prepare, command)


@pytest.mark.parametrize("fails_in", ["prepare", "command"])
async def test_run_prepared_gives_up_its_claim_when_it_fails_so_a_retry_runs(db, fails_in):
    async def prepare() -> str:
        if fails_in == "prepare":
            raise Boom()
        return "decided"

    async def command(prepared: str) -> StoredResponse:
        await _write_audit_row()
        if fails_in == "command":
            raise Boom()
        return StoredResponse(201, "application/json", b"{}")

    with pytest.raises(Boom):
        await idempotency.run_prepared("customer:1", "key-f", "fp", prepare, command)
    assert await IdempotencyRecord.all().count() == 0
    assert await _effects() == 0

    fails_in = "nowhere"
    assert (await idempotency.run_prepared("customer:1", "key-f", "fp", prepare, command)).status_code == 201
    assert await _effects() == 1


async def test_a_duplicate_waits_for_the_first_and_replays_it_without_preparing(db):
    release, prepared_by = asyncio.Event(), []

    async def slow_prepare() -> str:
        prepared_by.append("first")
        await release.wait()
        return "decided"

    async def duplicate_prepare() -> str:  # pragma: no cover - must not run
        prepared_by.append("duplicate")
        return "decided"

    async def command(prepared: str) -> StoredResponse:
        await _write_audit_row()
        return StoredResponse(201, "application/json", b'{"id":8}')

    first = asyncio.create_task(idempotency.run_prepared("customer:1", "key-d", "fp", slow_prepare, command))
    while not prepared_by:
        await asyncio.sleep(0.01)
    duplicate = asyncio.create_task(idempotency.run_prepared("customer:1", "key-d", "fp", duplicate_prepare, command))
    await asyncio.sleep(0.2)
    assert not duplicate.done()  # waiting for the first's outcome
    release.set()

    results = await asyncio.gather(first, duplicate)
    assert prepared_by == ["first"]
    assert [r.replayed for r in results] == [False, True]
    assert results[0].body == results[1].body
    assert await _effects() == 1


async def test_a_duplicate_is_told_to_retry_when_the_first_takes_too_long(db, monkeypatch):
    monkeypatch.setattr(idempotency, "WAIT_FOR_OUTCOME_SECONDS", 0.2)
    release = asyncio.Event()

    async def slow_prepare() -> str:
        await release.wait()
        return "decided"

    async def command(prepared: str) -> StoredResponse:
        return StoredResponse(201, "application/json", b"{}")

    first = asyncio.create_task(idempotency.run_prepared("customer:1", "key-t", "fp", slow_prepare, command))
    await asyncio.sleep(0.05)
    with pytest.raises(idempotency.IdempotencyKeyInProgress):
        await idempotency.run_prepared("customer:1", "key-t", "fp", slow_prepare, command)
    release.set()
    assert (await first).replayed is False


async def test_a_stale_claim_is_taken_over_and_the_request_presumed_dead_cannot_commit(db):
    release, claimed = asyncio.Event(), asyncio.Event()

    async def slow_prepare() -> str:
        claimed.set()
        await release.wait()
        return "decided"

    async def quick_prepare() -> str:
        return "decided"

    async def command(prepared: str) -> StoredResponse:
        await _write_audit_row()
        return StoredResponse(201, "application/json", b'{"by":"whoever completes"}')

    presumed_dead = asyncio.create_task(idempotency.run_prepared("customer:1", "key-s", "fp", slow_prepare, command))
    await claimed.wait()
    # Its claim ages past the limit (as if its worker had hung), and another request takes over.
    await IdempotencyRecord.filter(key="key-s").update(created_at=datetime.now(timezone.utc) - idempotency.CLAIM_STALE_AFTER - timedelta(seconds=1))
    taker = await idempotency.run_prepared("customer:1", "key-s", "fp", quick_prepare, command)
    assert taker.replayed is False

    release.set()
    with pytest.raises(idempotency.IdempotencyKeyInProgress):
        await presumed_dead  # its writes rolled back: the key belongs to the taker now
    assert await _effects() == 1
    assert (await IdempotencyRecord.get(key="key-s")).status_code == 201
