"""The CoreBanking interface, as every implementation must honour it; run against the sandbox
(the only implementation until a member bank's real interface is written — it joins this list)."""

from __future__ import annotations

import pytest

from integrations.core_banking_sandbox import SandboxCoreBanking, UnknownAccount
from lending_core.loans.ports import INSUFFICIENT_FUNDS, CoreBanking, CoreBankingUnavailable, DebitRequest

IMPLEMENTATIONS = [SandboxCoreBanking]


@pytest.fixture(params=IMPLEMENTATIONS, ids=lambda cls: cls.__name__)
def core(request, db) -> CoreBanking:
    return request.param()


async def test_accounts_are_opened_once_per_customer_bank_and_kind(core):
    first = await core.account_of("HZRCB", 7, "settlement")
    assert await core.account_of("HZRCB", 7, "settlement") == first
    assert len({first, await core.account_of("HZRCB", 7, "time_deposit"), await core.account_of("LSRCB", 7, "settlement")}) == 3
    assert (await core.balance(first)).balance_fen == 0
    with pytest.raises(ValueError):
        await core.account_of("HZRCB", 7, "cheque")


async def test_credit_debit_and_the_same_key_again(core):
    account = await core.account_of("HZRCB", 7, "settlement")
    assert (await core.credit(account, 10_000, "c1")).balance_fen == 10_000
    assert (await core.credit(account, 10_000, "c1")).balance_fen == 10_000  # replayed: nothing moved
    debit = await core.debit(account, 4_000, "d1")
    assert debit.ok and debit.amount_fen == 4_000 and debit.balance_fen == 6_000
    refused = await core.debit(account, 6_001, "d2")
    assert refused.status == INSUFFICIENT_FUNDS and refused.amount_fen == 0 and refused.balance_fen == 6_000
    partial = await core.debit(account, 6_001, "d3", partial=True)
    assert partial.ok and partial.amount_fen == 6_000 and partial.balance_fen == 0
    assert (await core.balance(account)).balance_fen == 0
    with pytest.raises(ValueError):
        await core.debit(account, 1, "c1")  # a key names one request


async def test_frozen_money_cannot_be_debited_until_unfrozen(core):
    account = await core.account_of("HZRCB", 7, "time_deposit")
    await core.credit(account, 50_000, "c1")
    assert (await core.freeze(account, 40_000, "f1")).frozen_fen == 40_000
    assert (await core.freeze(account, 20_000, "f2")).status == INSUFFICIENT_FUNDS
    assert (await core.debit(account, 10_001, "d1")).status == INSUFFICIENT_FUNDS
    balance = await core.balance(account)
    assert (balance.balance_fen, balance.frozen_fen, balance.available_fen) == (50_000, 40_000, 10_000)
    await core.unfreeze(account, 40_000, "u1")
    await core.unfreeze(account, 40_000, "u1")  # replayed
    assert (await core.debit(account, 50_000, "d2")).ok


async def test_a_batch_debit_takes_what_each_account_holds_in_order(core):
    a, b = await core.account_of("HZRCB", 1, "settlement"), await core.account_of("HZRCB", 2, "settlement")
    await core.credit(a, 1_000, "ca")
    requests = [DebitRequest(a, 600, "1"), DebitRequest(b, 100, "2"), DebitRequest(a, 600, "3")]
    answers = await core.debit_batch(requests)
    assert [(m.key, m.amount_fen) for m in answers] == [("1", 600), ("2", 0), ("3", 400)]
    assert [m.amount_fen for m in await core.debit_batch(requests)] == [600, 0, 400]  # replayed
    assert (await core.balance(a)).balance_fen == 0


async def test_unknown_accounts_and_bad_amounts_are_refused(core):
    with pytest.raises(UnknownAccount):
        await core.credit("NOPE", 1, "k")
    account = await core.account_of("HZRCB", 7, "settlement")
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError):
            await core.credit(account, bad, f"k{bad}")


async def test_an_unavailable_core_banking_moves_nothing(core):
    account = await core.account_of("HZRCB", 7, "settlement")
    core.unavailable = True
    with pytest.raises(CoreBankingUnavailable):
        await core.credit(account, 1_000, "c1")
    core.unavailable = False
    assert (await core.balance(account)).balance_fen == 0
