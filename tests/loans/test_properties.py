"""Random lives of a credit line: drawdowns, repayments (due amounts, parts, payoffs, too much,
negative), money coming and going on the account, days passing with the daily job, and retries
of each — and after every step the books still hold:

- every ledger transaction balances and all accounts together sum to zero;
- no money is created or lost: the core-banking account holds exactly what came from outside
  plus what the ledger says the bank paid in, less what it took;
- each loan owes what its schedule says less what was paid: the ledger's three balances equal
  the instalment rows, the principal equals the drawdown less the principal repaid, and a loan
  never repaid early still has exactly its schedule, its fallen-due interest less interest paid;
- refused commands and retries move nothing; the line never lends beyond its limit.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from infra.errors import DomainError
from integrations.core_banking_sandbox import SandboxCoreBanking
from integrations.data_sandbox import SandboxPropertyRegistry
from lending_core.ledger import service as ledger
from lending_core.loans import daily, schedule, service
from lending_core.loans.models import DailyRun, LoanReceipt
from tests.loans.lines import START, as_customer, credit_line, movement_counts, person, repayments, rows, sandbox_balance

LIMIT = 3_000_000

terms = st.fixed_dictionaries({
    "method": st.sampled_from(schedule.METHODS),
    "term": st.integers(1, 12),
    "rate": st.sampled_from([0, 435, 720, 1_800]),
    "uplift": st.sampled_from([3_000, 5_000]),
    "fee": st.sampled_from([0, 100, 300]),
    "basis": st.sampled_from([360, 365]),
    "allocation": st.permutations(["penalty", "interest", "principal"]),
})
repay = st.tuples(st.just("repay"), st.integers(0, 5), st.sampled_from(["due", "payoff", "part", "over", "negative"]), st.integers(1, 99), st.booleans())
advance = st.tuples(st.just("advance"), st.integers(1, 45), st.booleans())
steps = st.tuples(
    # Every life starts with a drawdown; repayments and days passing come most often after it.
    st.tuples(st.just("draw"), st.integers(10_000, LIMIT), st.just(False)),
    st.lists(
        st.one_of(
            st.tuples(st.just("draw"), st.integers(1, LIMIT + 100_000), st.booleans()),
            repay, repay, advance, advance,
            st.tuples(st.just("deposit"), st.integers(1, 2_000_000)),
            st.tuples(st.just("spend"), st.integers(1, 2_000_000)),
        ),
        min_size=5,
        max_size=12,
    ),
).map(lambda first_and_rest: [first_and_rest[0], *first_and_rest[1]])


class Book:
    """What the test knows independently of the code under test."""

    def __init__(self, borrower, line, terms, core):
        self.borrower, self.line, self.terms, self.core = borrower, line, terms, core
        self.today = START
        self.loans: list[int] = []
        self.outside_fen = 0  # money put in (+) or taken out (−) of the account by the customer, not by us
        self.keys = itertools.count()
        self.last: dict[str, tuple] = {}

    @property
    def actor(self):
        return as_customer(self.borrower)

    def key(self, kind: str, retry: bool, args: tuple) -> str:
        if retry and kind in self.last:
            return self.last[kind][0]
        key = f"{kind}-{next(self.keys)}"
        self.last[kind] = (key, args)
        return key


async def settlement_account(book: Book) -> str:
    return await book.core.account_of("HZRCB", book.borrower.id, "settlement")


async def refused_moves_nothing(call, counts_before):
    try:
        await call()
    except DomainError as refusal:
        event(f"{call.__name__} refused: {type(refusal).__name__}")
        assert await movement_counts() == counts_before
        return False
    event(f"{call.__name__} done")
    return True


async def step(book: Book, action: tuple) -> None:
    kind = action[0]
    counts = await movement_counts()
    if kind == "draw":
        _, amount, retry = action
        amount = book.last["draw"][1][0] if retry and "draw" in book.last else amount
        key = book.key("draw", retry, (amount,))

        async def draw():
            return await service.draw(book.actor, book.line.id, amount, key, core_banking=book.core,
                                      properties=SandboxPropertyRegistry(), on=book.today)

        if await refused_moves_nothing(draw, counts):
            loan = await LoanReceipt.get(contract_id=book.line.id, request_key=key)
            if loan.id not in book.loans:
                book.loans.append(loan.id)
            else:
                assert await movement_counts() == counts  # a retry paid nothing
    elif kind == "repay":
        _, which, how, percent, retry = action
        if not book.loans:
            return
        loan_id = book.loans[which % len(book.loans)]
        if retry and "repay" in book.last:
            loan_id, amount = book.last["repay"][1]
        else:
            amount = await _amount(book, loan_id, how, percent)
        key = book.key("repay", retry, (loan_id, amount))
        repaid_before = len(await repayments(loan_id))

        async def repay():
            return await service.repay(book.actor, loan_id, amount, key, core_banking=book.core, on=book.today)

        if await refused_moves_nothing(repay, counts) and len(await repayments(loan_id)) == repaid_before:
            assert await movement_counts() == counts  # a retry debited nothing
    elif kind == "deposit":
        await book.core.credit(await settlement_account(book), action[1], f"salary-{book.borrower.id}-{next(book.keys)}")
        book.outside_fen += action[1]
    elif kind == "spend":
        moved = await book.core.debit(await settlement_account(book), action[1], f"spend-{book.borrower.id}-{next(book.keys)}", partial=True)
        book.outside_fen -= moved.amount_fen
    else:
        _, days, rerun = action
        book.today += timedelta(days=days)
        report = await daily.run(book.today, core_banking=book.core, bank_codes=["HZRCB"])
        for name in ("went_overdue", "collected_fen", "closed", "penalty_fen"):
            if getattr(report.banks[0], name):
                event(f"daily: {name}")
        if rerun:
            counts = await movement_counts()
            await daily.run(book.today, core_banking=book.core, bank_codes=["HZRCB"], rerun=True)
            assert await movement_counts() == counts


async def _amount(book: Book, loan_id: int, how: str, percent: int) -> int:
    try:
        _, quote = await service.payoff_quote(book.actor, loan_id, on=book.today)
    except DomainError:
        return 100  # closed: any amount is refused
    return {
        "due": quote.due_fen or 1,
        "payoff": quote.total_fen,
        "part": max(1, quote.total_fen * percent // 100),
        "over": quote.total_fen + percent,
        "negative": -percent,
    }[how]


async def check(book: Book) -> None:
    assert await ledger.unbalanced_transactions() == []
    assert await ledger.total_of_all_accounts() == 0
    outstanding = 0
    mirror = None
    for loan_id in book.loans:
        loan = await LoanReceipt.get(id=loan_id)
        mirror = loan.settlement_ledger_account_id
        owed = (await ledger.loan_balances([loan_id]))[loan_id]
        instalments = await rows(loan_id)
        paid = await repayments(loan_id)
        assert owed == {
            "principal": sum(i.principal_fen - i.principal_paid_fen for i in instalments),
            "interest": sum(i.interest_fen - i.interest_paid_fen for i in instalments if i.status != "scheduled"),
            "penalty": sum(i.penalty_fen - i.penalty_paid_fen for i in instalments),
        }
        assert min(owed.values()) >= 0 and all(i.principal_paid_fen <= i.principal_fen for i in instalments)
        assert owed["principal"] == loan.principal_fen - sum(r.principal_fen for r in paid)
        assert sum(i.principal_fen for i in instalments) + sum(r.prepaid_principal_fen for r in paid) == loan.principal_fen
        assert sum(r.amount_fen for r in paid) == sum(r.principal_fen + r.interest_fen + r.penalty_fen + r.fee_fen for r in paid)
        if not any(r.prepaid_principal_fen for r in paid):
            plan = schedule.build_schedule(loan.repayment_method, loan.principal_fen, loan.rate_bps, loan.term_months, loan.drawn_on)
            assert [(i.due_date, i.principal_fen, i.interest_fen) for i in instalments] == [
                (p.due_date, p.principal_fen, p.interest_fen) for p in plan.instalments
            ]
            fallen_due = sum(p.interest_fen for p in plan.instalments if p.due_date <= book.today)
            assert owed["interest"] == fallen_due - sum(r.interest_fen for r in paid)
        if loan.status == "closed":
            assert owed == {"principal": 0, "interest": 0, "penalty": 0}
        else:
            outstanding += owed["principal"]
    assert outstanding <= book.line.limit_fen
    if mirror is not None:
        # Conservation: the account holds what came from outside plus what the bank moved in (the
        # mirror account is the bank's side: negative when it paid the customer).
        balance, _ = await sandbox_balance(await settlement_account(book))
        assert balance == book.outside_fen - (await ledger.balances([mirror]))[mirror]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(terms=terms, actions=steps)
async def test_random_drawdowns_repayments_days_and_retries_keep_the_books(demo, terms, actions):
    # Examples share the test's database: an earlier example's run of the same date must not stand
    # in for this one's (its loans are left alone by this example's checks).
    await DailyRun.all().delete()
    core = SandboxCoreBanking()
    borrower = await person()
    line = await credit_line(
        borrower, limit_fen=LIMIT, rate_bps=terms["rate"], term_months=terms["term"], method=terms["method"],
        servicing={"penalty_uplift_bps": terms["uplift"], "early_repayment_fee_bps": terms["fee"], "day_basis": terms["basis"],
                   "allocation": list(terms["allocation"])},
    )
    book = Book(borrower, line, terms, core)
    for action in actions:
        await step(book, action)
        await check(book)
