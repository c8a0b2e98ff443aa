"""The audit trail names who did what to which object, and never stores personal data in clear."""

from __future__ import annotations

import json
from datetime import date

from tortoise import connections

from infra import audit, pii
from infra.actors import Actor
from infra.audit import AuditEntry
from infra.identity_numbers import make_test_id_number
from infra.logs import request_id_var

ID_NUMBER = make_test_id_number("510104", date(1966, 2, 28), 318)
PHONE = "15987654321"
NAME = "欧阳明轩"
REPRESENTATIVE = "司马清风"
CARD = "6222021234567890123"
STAFF = Actor(kind="staff", id=42, bank_id=3, roles=frozenset({"bank_admin"}))


async def raw_row(entry_id: int) -> str:
    """The stored row exactly as the database holds it, as text."""
    rows = [row for row in await connections.get("default").execute_query_dict("SELECT * FROM audit_entry") if row["id"] == entry_id]
    assert len(rows) == 1
    return json.dumps(rows[0], ensure_ascii=False, default=str)


async def test_record_stores_actor_action_and_object(db):
    token = request_id_var.set("req-audit-0001")
    try:
        entry_id = await audit.record(STAFF, "staff.create", "staff", 99, bank_id=3, after={"username": "hz.new"})
    finally:
        request_id_var.reset(token)

    stored = await AuditEntry.get(id=entry_id)
    assert (stored.actor_kind, stored.actor_id) == ("staff", "42")
    assert (stored.action, stored.object_type, stored.object_id) == ("staff.create", "staff", "99")
    assert stored.bank_id == 3
    assert stored.before is None
    assert stored.after == {"username": "hz.new"}
    assert stored.request_id == "req-audit-0001"
    assert stored.at is not None


async def test_personal_data_is_masked_at_any_depth(db):
    before = {
        "name": NAME,
        "id_number": ID_NUMBER,
        "phone": PHONE,
        "status": "active",
    }
    after = {
        "customer": {"full_name": NAME, "contacts": [{"phone": PHONE, "kind": "mobile"}]},
        "guarantors": [[{"name": REPRESENTATIVE, "id_number": ID_NUMBER}]],
        "company": {"legal_representative": REPRESENTATIVE},
        "payout": {"card_number": CARD, "amount_fen": 150000},
    }

    entry_id = await audit.record(STAFF, "customer.update", "customer", 7, before=before, after=after)

    stored = await AuditEntry.get(id=entry_id)
    assert stored.before == {
        "name": pii.mask_name(NAME),
        "id_number": pii.mask_id_number(ID_NUMBER),
        "phone": pii.mask_phone(PHONE),
        "status": "active",
    }
    assert stored.after == {
        "customer": {"full_name": "欧**轩", "contacts": [{"phone": "159****4321", "kind": "mobile"}]},
        "guarantors": [[{"name": "司**风", "id_number": pii.mask_id_number(ID_NUMBER)}]],
        "company": {"legal_representative": "司**风"},
        "payout": {"card_number": pii.mask_card_number(CARD), "amount_fen": 150000},
    }
    row = await raw_row(entry_id)
    for clear in (ID_NUMBER, PHONE, NAME, REPRESENTATIVE, CARD):
        assert clear not in row
    assert pii.mask_id_number(ID_NUMBER) in row  # proves we looked at the right row


async def test_the_callers_snapshot_is_not_modified(db):
    after = {"customer": {"name": NAME, "phone": PHONE}}

    await audit.record(STAFF, "customer.update", "customer", 7, after=after)

    assert after == {"customer": {"name": NAME, "phone": PHONE}}


async def test_a_tuple_in_a_snapshot_is_masked_too(db):
    entry_id = await audit.record(STAFF, "x", "customer", 7, after={"people": ({"name": NAME},)})

    assert (await AuditEntry.get(id=entry_id)).after == {"people": [{"name": "欧**轩"}]}


async def test_personal_data_given_as_a_number_is_masked_too(db):
    entry_id = await audit.record(STAFF, "customer.update", "customer", 7, after={"contact": {"phone": int(PHONE)}})

    row = await raw_row(entry_id)
    assert PHONE not in row
    assert pii.mask_phone(PHONE) in row
