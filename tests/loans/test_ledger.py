"""The ledger: balanced transactions only, idempotent keys, balances derived from legs — and on
PostgreSQL the deferred trigger that refuses an unbalanced transaction whoever writes it."""

from __future__ import annotations

from datetime import date

import pytest
from tortoise import connections
from tortoise.exceptions import BaseORMException
from tortoise.transactions import in_transaction

from lending_core.ledger import service as ledger
from lending_core.ledger.models import LedgerLeg, LedgerTransaction
from lending_core.org.models import Bank

ON = date(2025, 3, 1)


async def accounts(bank_id: int) -> tuple[int, int, int]:
    specs = [*ledger.loan_accounts(bank_id, 99)]
    ids = await ledger.open_accounts(specs + ledger.bank_accounts(bank_id))
    return ids[ledger.loan_code(99, "interest")], ids[ledger.bank_code(bank_id, ledger.INTEREST_INCOME)], ids[ledger.loan_code(99, "penalty")]


async def test_a_balanced_transaction_is_stored_once_under_its_key(demo):
    bank = await Bank.get(code="HZRCB")
    receivable, income, _ = await accounts(bank.id)
    legs = [ledger.Leg(receivable, 700), ledger.Leg(income, -700)]
    first = await ledger.post("interest_due", legs, "interest:99:1", "c1", bank_id=bank.id, business_date=ON)
    again = await ledger.post("interest_due", legs, "interest:99:1", "c1", bank_id=bank.id, business_date=ON)
    assert first.created and not again.created and again.transaction_id == first.transaction_id
    assert await LedgerTransaction.all().count() == 1 and await LedgerLeg.all().count() == 2
    assert await ledger.balances([receivable, income]) == {receivable: 700, income: -700}
    assert await ledger.total_of_all_accounts() == 0


async def test_a_key_reused_for_other_legs_is_refused(demo):
    bank = await Bank.get(code="HZRCB")
    receivable, income, _ = await accounts(bank.id)
    await ledger.post("interest_due", [ledger.Leg(receivable, 700), ledger.Leg(income, -700)], "k", "c", bank_id=bank.id, business_date=ON)
    with pytest.raises(ledger.LedgerKeyReused):
        await ledger.post("interest_due", [ledger.Leg(receivable, 701), ledger.Leg(income, -701)], "k", "c", bank_id=bank.id, business_date=ON)


@pytest.mark.parametrize(
    "amounts",
    [(700, -699), (700,), (0, 0), (700.0, -700.0), (True, -1)],
    ids=["sum-not-zero", "one-leg", "nothing-moves", "floats", "a-bool"],
)
async def test_unbalanced_or_malformed_legs_are_refused_before_anything_is_stored(demo, amounts):
    bank = await Bank.get(code="HZRCB")
    receivable, income, _ = await accounts(bank.id)
    legs = [ledger.Leg(account, amount) for account, amount in zip((receivable, income), amounts)]
    with pytest.raises(ledger.UnbalancedTransaction):
        await ledger.post("interest_due", legs, "bad", "c", bank_id=bank.id, business_date=ON)
    assert await LedgerTransaction.all().count() == 0 and await LedgerLeg.all().count() == 0


async def test_the_database_refuses_an_unbalanced_transaction_written_behind_the_codes_back(demo):
    connection = connections.get("default")
    if connection.capabilities.dialect != "postgres":
        pytest.skip("the balance trigger is PostgreSQL's (migration 0008); SQLite has no deferred constraint triggers, so there the code's check is the guard")
    import asyncpg

    # At commit the driver's own error surfaces (tortoise translates statement errors only).
    refused = (BaseORMException, asyncpg.exceptions.CheckViolationError)
    bank = await Bank.get(code="HZRCB")
    receivable, income, penalty = await accounts(bank.id)
    posted = await ledger.post("interest_due", [ledger.Leg(receivable, 700), ledger.Leg(income, -700)], "ok", "c", bank_id=bank.id, business_date=ON)

    with pytest.raises(refused, match="unbalanced"):
        async with in_transaction() as tx:
            await tx.execute_query(
                "INSERT INTO ledger_transaction (bank_id, kind, key, correlation_id, business_date, created_at) "
                "VALUES ($1, 'forged', 'forged', 'forged', $2, now())", [bank.id, ON])
            forged = (await tx.execute_query_dict("SELECT id FROM ledger_transaction WHERE key = 'forged'"))[0]["id"]
            await tx.execute_query("INSERT INTO ledger_leg (transaction_id, account_id, amount_fen) VALUES ($1, $2, 500)", [forged, penalty])
    with pytest.raises(refused, match="unbalanced"):
        # One statement, committed on its own: an extra leg on a stored transaction.
        await connection.execute_query("INSERT INTO ledger_leg (transaction_id, account_id, amount_fen) VALUES ($1, $2, 1)", [posted.transaction_id, penalty])
    with pytest.raises(refused, match="unbalanced"):
        # A leg of a transaction that does not exist: no foreign key, but it sums to itself.
        await connection.execute_query("INSERT INTO ledger_leg (transaction_id, account_id, amount_fen) VALUES (987654, $1, 5)", [penalty])
    with pytest.raises(refused, match="unbalanced"):
        await connection.execute_query("UPDATE ledger_leg SET amount_fen = amount_fen + 1 WHERE account_id = $1", [receivable])
    with pytest.raises(refused, match="unbalanced"):
        await connection.execute_query("DELETE FROM ledger_leg WHERE account_id = $1", [income])

    # Rewriting both legs in one transaction keeps it balanced: the check runs at commit.
    async with in_transaction() as tx:
        await tx.execute_query("UPDATE ledger_leg SET amount_fen = 800 WHERE account_id = $1", [receivable])
        await tx.execute_query("UPDATE ledger_leg SET amount_fen = -800 WHERE account_id = $1", [income])
    assert await LedgerTransaction.all().count() == 1
    assert await ledger.balances([receivable, income, penalty]) == {receivable: 800, income: -800, penalty: 0}
    assert await ledger.unbalanced_transactions() == []
