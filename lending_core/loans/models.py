from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from lending_core.customers.service import owns_customer_rows

# (No semicolons in model docstrings: tortoise copies them into SQL comments, and its SQLite
# migration runner splits statements at semicolons.)


class LoanReceipt(Model):
    """A loan receipt (借据): one drawdown on an effective credit contract, with its own
    schedule. Terms are copied from the contract when it is drawn. Amounts in fen, rates in
    basis points. status: active, then closed once everything is paid.

    What is owed is derived from the ledger (its three loan accounts) and kept in step with the
    instalment rows, which say what fell due when and what paid it."""

    id = fields.BigIntField(primary_key=True)
    bank = fields.ForeignKeyField("models.Bank", related_name=None, on_delete=fields.RESTRICT)
    contract = fields.ForeignKeyField("models.Contract", related_name="loans", on_delete=fields.RESTRICT)
    customer = fields.ForeignKeyField("models.Customer", related_name=None, on_delete=fields.RESTRICT)
    # The drawdown's Idempotency-Key: a retried drawdown finds this receipt and pays nothing.
    request_key = fields.CharField(max_length=255)
    principal_fen = fields.BigIntField()
    rate_bps = fields.IntField()
    penalty_rate_bps = fields.IntField()
    term_months = fields.IntField()
    repayment_method = fields.CharField(max_length=24)
    day_basis = fields.IntField()
    allocation = fields.JSONField()
    early_repayment_fee_bps = fields.IntField()
    collateral = fields.CharField(max_length=24)
    apr_bps = fields.IntField()
    drawn_on = fields.DateField()
    maturity_date = fields.DateField()
    # The core-banking account paid into and auto-debited, and the pledged deposit if any.
    settlement_account = fields.CharField(max_length=40)
    pledge_account = fields.CharField(max_length=40, null=True)
    pledged_fen = fields.BigIntField(default=0)
    property_certificate = fields.CharField(max_length=64, null=True)
    # The loan's ledger accounts (what is owed) and the borrower's settlement mirror.
    principal_account_id = fields.BigIntField()
    interest_account_id = fields.BigIntField()
    penalty_account_id = fields.BigIntField()
    settlement_ledger_account_id = fields.BigIntField()
    pledge_ledger_account_id = fields.BigIntField(null=True)
    status = fields.CharField(max_length=16, default="active")
    dpd = fields.IntField(default=0)  # days past due of the oldest unpaid instalment
    classification = fields.CharField(max_length=16, default="normal")
    # The last business date the daily job serviced this loan (a rerun skips it).
    serviced_through = fields.DateField(null=True)
    closed_on = fields.DateField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "loan_receipt"
        unique_together = (("contract_id", "request_key"),)
        indexes = (("bank_id", "status"), ("customer_id", "status"), ("contract_id", "status"))


class Instalment(Model):
    """One period of a loan receipt's schedule: what falls due on ``due_date`` and what has paid
    it. A partial early repayment re-amortises the periods not yet due.

    status: scheduled, due (on its due date), overdue (the day after, while unpaid), paid, or
    prepaid (never fell due: the loan was repaid early). Penalty interest accrues on overdue
    principal by segments: from ``penalty_from`` on ``penalty_base_fen``, ``penalty_segment_fen``
    accrued so far in the segment (a payment of overdue principal starts a new one)."""

    id = fields.BigIntField(primary_key=True)
    loan = fields.ForeignKeyField("models.LoanReceipt", related_name="instalments", on_delete=fields.RESTRICT)
    bank_id = fields.BigIntField()
    number = fields.IntField()
    due_date = fields.DateField()
    principal_fen = fields.BigIntField()
    interest_fen = fields.BigIntField()
    principal_paid_fen = fields.BigIntField(default=0)
    interest_paid_fen = fields.BigIntField(default=0)
    penalty_fen = fields.BigIntField(default=0)
    penalty_paid_fen = fields.BigIntField(default=0)
    penalty_from = fields.DateField(null=True)
    penalty_base_fen = fields.BigIntField(default=0)
    penalty_segment_fen = fields.BigIntField(default=0)
    status = fields.CharField(max_length=12, default="scheduled")
    paid_on = fields.DateField(null=True)

    class Meta:
        table = "loan_instalment"
        # No index on status or dates: the daily job updates them on every serviced row, and an
        # index on them would make each of those updates write to it (migration 0008 leaves
        # room in the pages so the updates stay in place). Rows are reached by loan.
        unique_together = (("loan_id", "number"),)


class Repayment(Model):
    """Money received on a loan: by the customer (or a co-borrower) or by the daily auto-debit,
    split as allocated. ``prepaid_principal_fen`` is the part of ``principal_fen`` repaid before
    it fell due, ``accrued_interest_fen`` the part of ``interest_fen`` accrued by the day on it."""

    id = fields.BigIntField(primary_key=True)
    loan = fields.ForeignKeyField("models.LoanReceipt", related_name="repayments", on_delete=fields.RESTRICT)
    bank_id = fields.BigIntField()
    payer_customer_id = fields.BigIntField()
    source = fields.CharField(max_length=16)  # customer | auto_debit
    request_key = fields.CharField(max_length=255)
    business_date = fields.DateField()
    amount_fen = fields.BigIntField()
    principal_fen = fields.BigIntField()
    prepaid_principal_fen = fields.BigIntField(default=0)
    interest_fen = fields.BigIntField()
    accrued_interest_fen = fields.BigIntField(default=0)
    penalty_fen = fields.BigIntField()
    fee_fen = fields.BigIntField()
    closed_loan = fields.BooleanField(default=False)
    ledger_key = fields.CharField(max_length=160)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "loan_repayment"
        unique_together = (("loan_id", "request_key"),)
        indexes = (("bank_id", "business_date"),)


class DailyRun(Model):
    """The daily job's record for one bank and business date: a worker claims it with a lease,
    and a finished run is not repeated."""

    id = fields.BigIntField(primary_key=True)
    bank = fields.ForeignKeyField("models.Bank", related_name=None, on_delete=fields.RESTRICT)
    business_date = fields.DateField()
    status = fields.CharField(max_length=12)  # running | done
    worker = fields.CharField(max_length=64)
    lease_until = fields.DatetimeField()
    started_at = fields.DatetimeField()
    finished_at = fields.DatetimeField(null=True)
    summary = fields.JSONField(null=True)

    class Meta:
        table = "loan_daily_run"
        unique_together = (("bank_id", "business_date"),)


owns_customer_rows(LoanReceipt)
