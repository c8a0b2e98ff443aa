"""Micro-benchmark of the warning rule library's evaluators over a synthetic book in memory.

    python -m bench.risk_rules [--loans 1000000] [--runs 5] [--seed 20200331]

Generates N loans with NumPy (realistic, zero-inflated distributions; whole sources missing for
the loans that have none: no business, no guarantor, no collateral…) as one Polars frame, then
times, best of --runs:

- the full library (every rule, with product applicability) through the Polars evaluator;
- a subset of 26 rules (three or four per category, covering every construct the library uses:
  comparisons, and/or/not, ``in``, ``is None``, cross-multiplied ratios, chained comparisons,
  arithmetic on fields, cross-category reads) through our evaluator, through the same rules
  written by hand in NumPy (over arrays taken from the frame beforehand: values with nulls
  filled, validity masks, text as category codes) and written by hand in Polars — each checked
  to give exactly our answers;
- the real-time evaluator: the full library on single loans, one at a time.

The ratio printed is hand-written time ÷ our time (1.0 = as fast as hand-written; the issue's
target is ≥ 0.5). Not wired into ``bench.run``; figures are printed only.
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

import numpy as np
import polars as pl

from lending_core.risk import schema
from lending_core.risk.library import Library, catalogue_products, load_library
from lending_core.risk.vectorized import frame_schema

# Share of loans for which a whole source has data.
PRESENT = {"account": 0.92, "bureau": 0.97, "court": 0.98, "business": 0.25, "employment": 0.6, "parties": 0.3, "collateral": 0.15}
# Fields whose presence is not their group's: the external lists are checked for everyone.
PRESENT_FIELD = {"collateral.external_blacklist": 0.95, "collateral.fraud_list": 0.95, "collateral.aml_watchlist": 0.95,
                 "repayment.days_since_last_payment": 0.98, "account.payroll_missing_months": 0.35}
# How often a rare flag is set, where not the default 1%.
FLAG_RATE = {"repayment.first_instalment_missed": 0.02, "court.criminal_case": 0.001, "collateral.fraud_list": 0.002,
             "employment.employer_changed_6m": 0.08, "business.legal_rep_changed_6m": 0.04}
# How often a mostly-zero figure is not zero, where not the default 1.2%.
NONZERO_RATE = {"repayment.late_instalments_12m": 0.08, "repayment.max_dpd_12m": 0.07, "repayment.early_repayment_requests_3m": 0.03,
                "bureau.inquiries_1m": 0.15, "bureau.new_loans_3m": 0.08, "bureau.new_loan_amount_3m_fen": 0.08, "court.new_cases_3m": 0.02,
                "court.active_enforcements": 0.004, "repayment.consecutive_missed": 0.02}
TEXT_MIX = {
    "bureau.worst_class_elsewhere": [0.93, 0.04, 0.015, 0.01, 0.005],
    "business.tax_grade": [0.25, 0.5, 0.15, 0.07, 0.03],
    "business.tax_grade_prev": [0.27, 0.5, 0.15, 0.06, 0.02],
    "business.registration_status": [0.96, 0.02, 0.01, 0.01],
}
CARD_USE = np.log(0.3)  # typical share of card limits in use
# A "before" figure drawn around its "now" counterpart, so shares and drops look real.
BEFORE = {
    "account.balance_30d_ago_fen": ("account.balance_fen", 0.5), "account.inflow_monthly_avg_6m_fen": ("account.inflow_30d_fen", 0.4),
    "account.outflow_30d_fen": ("account.inflow_30d_fen", 0.4), "bureau.card_used_fen": ("bureau.card_limit_fen", 0.6),
    "bureau.total_debt_6m_ago_fen": ("bureau.total_debt_fen", 0.3), "business.invoice_amount_prev_3m_fen": ("business.invoice_amount_3m_fen", 0.35),
    "employment.ss_base_12m_ago_fen": ("employment.ss_base_fen", 0.2), "employment.employer_headcount_6m_ago": ("employment.employer_headcount", 0.2),
    "parties.co_borrower_income_12m_ago_fen": ("parties.co_borrower_income_fen", 0.3), "collateral.value_at_grant_fen": ("collateral.current_value_fen", 0.15),
}


def synthetic_book(n: int, seed: int = 20200331) -> pl.DataFrame:
    """N loans as one frame of the book schema (``vectorized.frame_schema``)."""
    rng = np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {}
    term = rng.choice([12, 24, 36, 60], n, p=[0.35, 0.3, 0.25, 0.1])
    on_book = (rng.random(n) * term).astype(np.int64)
    principal = np.clip(np.round(rng.lognormal(np.log(8_000_000), 0.8, n), -4), 100_000, 300_000_000).astype(np.int64)
    outstanding = (principal * (1 - on_book / term) * rng.uniform(0.9, 1.0, n)).astype(np.int64)
    columns.update({
        "principal_fen": principal, "outstanding_fen": outstanding, "instalment_fen": principal // term + principal // 200,
        "months_on_book": on_book, "term_months": term.astype(np.int64), "days_to_maturity": ((term - on_book) * 30 - rng.integers(0, 40, n)).astype(np.int64),
    })
    late = rng.random(n) < 0.06
    columns["repayment.days_past_due"] = np.where(late, rng.geometric(1 / 25, n), 0).astype(np.int64)
    for f in schema.FIELDS:
        if f.path in columns or f.path in BEFORE:
            continue
        columns[f.path] = _draw(f, n, rng)
    for path, (base, sigma) in BEFORE.items():
        f = schema.BY_PATH[path]
        scale = CARD_USE if path == "bureau.card_used_fen" else 0.0
        columns[path] = np.clip(columns[base] * rng.lognormal(scale, sigma, n), f.low, f.high).astype(np.int64)
    frame = pl.DataFrame({f.path: columns[f.path] for f in schema.FIELDS})
    masks, cast = {}, []
    for f in schema.FIELDS:
        share = PRESENT_FIELD.get(f.path, PRESENT.get(f.group) if f.nullable else None)
        if share is None:
            continue
        key = f.path if f.path in PRESENT_FIELD else f.group
        if key not in masks:
            masks[key] = pl.Series(rng.random(n) < share)
        cast.append(pl.when(masks[key]).then(pl.col(f.path)).alias(f.path))
    products = np.array(catalogue_products())
    frame = frame.with_columns(cast).with_columns(product=pl.Series(products[rng.integers(0, len(products), n)]))
    return frame.select([pl.col(name).cast(dtype) for name, dtype in frame_schema().items()])


def _draw(f: schema.Field, n: int, rng: np.random.Generator) -> np.ndarray:
    if f.kind == "bool":
        return rng.random(n) < FLAG_RATE.get(f.path, 0.01)
    if f.kind == "text":
        mix = TEXT_MIX.get(f.path, [1 / len(f.values)] * len(f.values))
        return np.array(f.values)[rng.choice(len(f.values), n, p=mix)]
    if f.low < 0 and f.unit == "fen":  # profits: mostly positive, a fifth losses
        values = rng.normal(f.healthy, abs(f.healthy) * 1.2, n)
    elif f.healthy == 0:  # zero-inflated: most loans have none of it
        size = {"fen": rng.lognormal(np.log(500_000), 1.0, n), "days": rng.geometric(1 / 20, n)}.get(f.unit)
        values = np.where(rng.random(n) < NONZERO_RATE.get(f.path, 0.012), rng.geometric(0.5, n) if size is None else size, 0)
    elif f.unit in ("count", "months", "people") and f.healthy < 50:
        values = rng.poisson(f.healthy, n)
    else:
        values = rng.lognormal(np.log(f.healthy), 0.6, n)
    return np.clip(values, f.low, f.high).astype(np.int64)


# The hand-written versions of a subset of the library, in NumPy and in Polars.
def _numpy_rules(a: Callable[[str], np.ndarray], k: Callable[[str], np.ndarray]) -> dict[str, Callable[[], np.ndarray]]:
    """``a(path)``: values with nulls as 0 (text: category codes, null −1); ``k(path)``: known."""
    return {
        "REP_OVERDUE_30": lambda: a("repayment.days_past_due") > 30,
        "REP_OVERDUE_SHARE_HIGH": lambda: (a("repayment.overdue_principal_fen") > 0)
        & ((a("repayment.overdue_principal_fen") + a("repayment.overdue_interest_fen")) * 5 >= a("outstanding_fen")),
        "REP_PENALTY_WITHOUT_PAYMENT": lambda: (a("repayment.penalty_interest_fen") > 0)
        & (~k("repayment.days_since_last_payment") | (a("repayment.days_since_last_payment") > 60)),
        "REP_INTEREST_UNPAID_NEAR_MATURITY": lambda: (a("days_to_maturity") >= 0) & (a("days_to_maturity") <= 30) & (a("repayment.overdue_interest_fen") > 0),
        "ACC_BALANCE_DRAINED": lambda: k("account.balance_fen") & k("account.balance_30d_ago_fen")
        & (a("account.balance_fen") * 5 < a("account.balance_30d_ago_fen")) & (a("account.balance_fen") < a("instalment_fen")),
        "ACC_INFLOW_COLLAPSE": lambda: k("account.inflow_30d_fen") & k("account.inflow_monthly_avg_6m_fen")
        & (a("account.inflow_30d_fen") * 10 < 3 * a("account.inflow_monthly_avg_6m_fen")),
        "ACC_CASH_OUT": lambda: k("account.cash_withdrawal_30d_fen") & (a("account.cash_withdrawal_30d_fen") >= 5_000_000)
        & k("account.outflow_30d_fen") & (a("account.cash_withdrawal_30d_fen") * 2 > a("account.outflow_30d_fen")),
        "BUR_REJECTED_ELSEWHERE": lambda: k("bureau.inquiries_3m") & (a("bureau.inquiries_3m") >= 6) & k("bureau.new_loans_3m") & (a("bureau.new_loans_3m") == 0),
        "BUR_CARDS_MAXED": lambda: k("bureau.card_limit_fen") & (a("bureau.card_limit_fen") > 0)
        & k("bureau.card_used_fen") & (a("bureau.card_used_fen") * 10 >= 9 * a("bureau.card_limit_fen")),
        "BUR_CLASSIFIED_SUBSTANDARD_ELSEWHERE": lambda: a("bureau.worst_class_elsewhere") >= 2,  # substandard, doubtful, loss
        "BUR_REPORT_MISSING_OR_STALE": lambda: ~k("bureau.report_age_days") | (a("bureau.report_age_days") > 180),
        "CRT_CONSUMPTION_RESTRICTED": lambda: k("court.consumption_restricted") & a("court.consumption_restricted") & k("court.dishonest_debtor") & ~a("court.dishonest_debtor"),
        "CRT_UNDER_ENFORCEMENT": lambda: k("court.active_enforcements") & (a("court.active_enforcements") >= 1),
        "CRT_DISHONEST_DEBTOR": lambda: k("court.dishonest_debtor") & a("court.dishonest_debtor"),
        "BIZ_TAX_GRADE_DOWNGRADED": lambda: (a("business.tax_grade") >= 3) & (a("business.tax_grade_prev") >= 0) & (a("business.tax_grade_prev") <= 2),
        "BIZ_TURNED_TO_LOSS": lambda: k("business.profit_12m_fen") & (a("business.profit_12m_fen") < 0) & k("business.profit_prev_12m_fen") & (a("business.profit_prev_12m_fen") > 0),
        "BIZ_REGISTRATION_ENDED": lambda: a("business.registration_status") >= 1,
        "EMP_CONTRIBUTION_BASE_DROP": lambda: k("employment.ss_base_fen") & k("employment.ss_base_12m_ago_fen")
        & (a("employment.ss_base_fen") * 10 < 7 * a("employment.ss_base_12m_ago_fen")),
        "EMP_RETIRES_BEFORE_MATURITY": lambda: k("employment.months_to_retirement") & (a("employment.months_to_retirement") < a("term_months") - a("months_on_book")),
        "EMP_SOCIAL_SECURITY_STOPPED": lambda: k("employment.ss_stopped_months") & (a("employment.ss_stopped_months") >= 2),
        "GUA_GUARANTEE_PERIOD_RUNNING_OUT": lambda: (a("repayment.days_past_due") > 0) & k("parties.guarantee_period_days_left") & (a("parties.guarantee_period_days_left") <= 90),
        "COB_INCOME_DROP": lambda: k("parties.co_borrower_income_fen") & k("parties.co_borrower_income_12m_ago_fen")
        & (a("parties.co_borrower_income_fen") * 10 < 6 * a("parties.co_borrower_income_12m_ago_fen")),
        "GUA_DISHONEST": lambda: k("parties.guarantor_dishonest") & a("parties.guarantor_dishonest"),
        "COL_LOAN_TO_VALUE_BREACH": lambda: k("collateral.current_value_fen") & (a("outstanding_fen") * 10 > 9 * a("collateral.current_value_fen")),
        "COL_VALUE_DROP": lambda: k("collateral.current_value_fen") & k("collateral.value_at_grant_fen")
        & (a("collateral.current_value_fen") * 10 < 8 * a("collateral.value_at_grant_fen")),
        "EXT_FRAUD_LIST": lambda: k("collateral.fraud_list") & a("collateral.fraud_list"),
    }


def _polars_rules() -> dict[str, pl.Expr]:
    c = pl.col
    return {
        "REP_OVERDUE_30": c("repayment.days_past_due") > 30,
        "REP_OVERDUE_SHARE_HIGH": (c("repayment.overdue_principal_fen") > 0) & ((c("repayment.overdue_principal_fen") + c("repayment.overdue_interest_fen")) * 5 >= c("outstanding_fen")),
        "REP_PENALTY_WITHOUT_PAYMENT": (c("repayment.penalty_interest_fen") > 0) & (c("repayment.days_since_last_payment").is_null() | (c("repayment.days_since_last_payment") > 60)),
        "REP_INTEREST_UNPAID_NEAR_MATURITY": c("days_to_maturity").is_between(0, 30) & (c("repayment.overdue_interest_fen") > 0),
        "ACC_BALANCE_DRAINED": (c("account.balance_fen") * 5 < c("account.balance_30d_ago_fen")) & (c("account.balance_fen") < c("instalment_fen")),
        "ACC_INFLOW_COLLAPSE": c("account.inflow_30d_fen") * 10 < 3 * c("account.inflow_monthly_avg_6m_fen"),
        "ACC_CASH_OUT": (c("account.cash_withdrawal_30d_fen") >= 5_000_000) & (c("account.cash_withdrawal_30d_fen") * 2 > c("account.outflow_30d_fen")),
        "BUR_REJECTED_ELSEWHERE": (c("bureau.inquiries_3m") >= 6) & (c("bureau.new_loans_3m") == 0),
        "BUR_CARDS_MAXED": (c("bureau.card_limit_fen") > 0) & (c("bureau.card_used_fen") * 10 >= 9 * c("bureau.card_limit_fen")),
        "BUR_CLASSIFIED_SUBSTANDARD_ELSEWHERE": c("bureau.worst_class_elsewhere").is_in(["substandard", "doubtful", "loss"]),
        "BUR_REPORT_MISSING_OR_STALE": c("bureau.report_age_days").is_null() | (c("bureau.report_age_days") > 180),
        "CRT_CONSUMPTION_RESTRICTED": c("court.consumption_restricted") & ~c("court.dishonest_debtor"),
        "CRT_UNDER_ENFORCEMENT": c("court.active_enforcements") >= 1,
        "CRT_DISHONEST_DEBTOR": c("court.dishonest_debtor"),
        "BIZ_TAX_GRADE_DOWNGRADED": c("business.tax_grade").is_in(["C", "D"]) & c("business.tax_grade_prev").is_in(["A", "B", "M"]),
        "BIZ_TURNED_TO_LOSS": (c("business.profit_12m_fen") < 0) & (c("business.profit_prev_12m_fen") > 0),
        "BIZ_REGISTRATION_ENDED": c("business.registration_status").is_in(["suspended", "revoked", "cancelled"]),
        "EMP_CONTRIBUTION_BASE_DROP": c("employment.ss_base_fen") * 10 < 7 * c("employment.ss_base_12m_ago_fen"),
        "EMP_RETIRES_BEFORE_MATURITY": c("employment.months_to_retirement") < c("term_months") - c("months_on_book"),
        "EMP_SOCIAL_SECURITY_STOPPED": c("employment.ss_stopped_months") >= 2,
        "GUA_GUARANTEE_PERIOD_RUNNING_OUT": (c("repayment.days_past_due") > 0) & (c("parties.guarantee_period_days_left") <= 90),
        "COB_INCOME_DROP": c("parties.co_borrower_income_fen") * 10 < 6 * c("parties.co_borrower_income_12m_ago_fen"),
        "GUA_DISHONEST": c("parties.guarantor_dishonest"),
        "COL_LOAN_TO_VALUE_BREACH": c("outstanding_fen") * 10 > 9 * c("collateral.current_value_fen"),
        "COL_VALUE_DROP": c("collateral.current_value_fen") * 10 < 8 * c("collateral.value_at_grant_fen"),
        "EXT_FRAUD_LIST": c("collateral.fraud_list"),
    }


def numpy_arrays(book: pl.DataFrame, paths: set[str]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The columns a hand-written NumPy evaluation works on: values with nulls filled (text as
    category codes in the schema's order, null −1) and validity masks."""
    values, known = {}, {}
    for path in sorted(paths):
        f, series = schema.BY_PATH[path], book.get_column(path)
        known[path] = series.is_not_null().to_numpy()
        if f.kind == "text":
            values[path] = series.cast(pl.Enum(list(f.values))).to_physical().cast(pl.Int8).fill_null(-1).to_numpy()
        else:
            values[path] = series.fill_null(False if f.kind == "bool" else 0).to_numpy()
    return values, known


def best_of(runs: int, work: Callable[[], object]) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(runs):
        start = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - start)
    return best, result


def nested(row: dict) -> dict:
    loan: dict = {"product": row["product"]}
    for f in schema.FIELDS:
        if f.group:
            loan.setdefault(f.group, {})[f.name] = row[f.path]
        else:
            loan[f.name] = row[f.path]
    return loan


def run(loans: int, runs: int, seed: int, realtime_loans: int = 20_000) -> dict[str, float]:
    library: Library = load_library()
    start = time.perf_counter()
    book = synthetic_book(loans, seed)
    generated = time.perf_counter() - start
    print(f"synthetic book: {loans:,} loans × {book.width} columns, {book.estimated_size('mb'):,.0f} MB, generated in {generated:.2f} s")

    conditions, _ = best_of(runs, lambda: book.select([rule.expr.alias(rule.code) for rule in library.rules]))
    full, fired = best_of(runs, lambda: library.evaluate(book))
    signals = int(fired.select(pl.sum_horizontal(pl.all())).to_series().sum())
    per_loan = fired.select(pl.any_horizontal(pl.all())).to_series().sum()
    print(f"full library ({len(library)} rules, with product applicability), Polars evaluator: {full:.3f} s "
          f"= {loans * len(library) / full / 1e6:,.0f} M rule-evaluations/s; {signals:,} signals on {per_loan:,} loans; "
          f"conditions alone (no applicability): {conditions:.3f} s")

    polars_rules = _polars_rules()
    subset = [library[code] for code in polars_rules]
    paths = set().union(*(rule.condition.fields for rule in subset))
    start = time.perf_counter()
    values, known = numpy_arrays(book, paths)
    prepared = time.perf_counter() - start
    numpy_rules = _numpy_rules(values.__getitem__, known.__getitem__)
    assert list(numpy_rules) == list(polars_rules)

    # Measured in alternation, round after round, so all three see the same machine.
    contenders = {
        "ours": lambda: book.select([rule.expr.alias(rule.code) for rule in subset]),
        "numpy": lambda: {code: rule() for code, rule in numpy_rules.items()},
        "polars": lambda: book.select([expr.fill_null(False).alias(code) for code, expr in polars_rules.items()]),
    }
    times, answers = {name: float("inf") for name in contenders}, {}
    for _ in range(runs):
        for name, work in contenders.items():
            took, answers[name] = best_of(1, work)
            times[name] = min(times[name], took)
    ours_time, numpy_time, hand_polars_time = times["ours"], times["numpy"], times["polars"]
    ours, by_numpy, by_hand_polars = answers["ours"], answers["numpy"], answers["polars"]
    for rule in subset:
        mine = ours.get_column(rule.code).to_numpy()
        assert np.array_equal(mine, by_numpy[rule.code]), f"{rule.code}: hand-written NumPy disagrees"
        assert np.array_equal(mine, by_hand_polars.get_column(rule.code).to_numpy()), f"{rule.code}: hand-written Polars disagrees"
    print(f"subset of {len(subset)} rules over {len(paths)} fields (answers identical in all three):")
    print(f"  our Polars evaluator:   {ours_time:.3f} s")
    print(f"  hand-written NumPy:     {numpy_time:.3f} s  (arrays prepared beforehand in {prepared:.2f} s, not counted)  ratio {numpy_time / ours_time:.2f}")
    print(f"  hand-written Polars:    {hand_polars_time:.3f} s  ratio {hand_polars_time / ours_time:.2f}")

    sample = [nested(row) for row in book.head(realtime_loans).iter_rows(named=True)]
    realtime_time, _ = best_of(runs, lambda: [library.fired(loan) for loan in sample])
    print(f"real-time evaluator: full library on one loan at a time: {realtime_time / len(sample) * 1e6:.0f} µs per loan "
          f"({len(sample) / realtime_time:,.0f} loans/s, over {len(sample):,} loans)")
    return {"full_s": full, "conditions_s": conditions, "ours_s": ours_time, "numpy_s": numpy_time, "hand_polars_s": hand_polars_time,
            "ratio_numpy": numpy_time / ours_time, "ratio_polars": hand_polars_time / ours_time,
            "realtime_us_per_loan": realtime_time / len(sample) * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20200331)
    args = parser.parse_args()
    print(f"polars {pl.__version__}, numpy {np.__version__}, {pl.thread_pool_size()} Polars threads")
    run(args.loans, args.runs, args.seed)


if __name__ == "__main__":
    main()
