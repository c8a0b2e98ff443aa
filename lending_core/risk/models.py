"""Post-loan warning tables: signals, disposal tasks, list proposals, batch runs, and the
snapshots the daily batch reads.

Snapshots are typed tables whose columns are the fields of ``schema`` (generated from it, so a
field is declared once): the external sources' answers per customer (bureau, court, business,
employment, collateral), the bank's own account figures per bank and customer, and the loan's
own repayment and guarantee facts per loan. The batch reads them with one query per chunk and
names each column by its field path, so the frame it builds is the rule library's book frame.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from lending_core.risk import schema

# (No semicolons in model docstrings: tortoise copies them into SQL comments, and its SQLite
# migration runner splits statements at semicolons.)

SEVERITIES = ("info", "watch", "warning", "severe")
SIGNAL_SOURCES = ("batch", "realtime")
OPEN, CLOSED = "open", "closed"


class WarningSignal(Model):
    """A post-loan warning: one rule that fired on one loan (or on a customer, for a real-time
    signal without a loan). While open it is updated each time the rule fires again
    (``last_seen_at``, ``times``, ``facts``). ``open_key`` is set only while open and is unique,
    which keeps at most one open signal per loan (or customer) and rule. ``facts`` holds figures
    and codes, never clear personal data."""

    id = fields.BigIntField(primary_key=True)
    bank = fields.ForeignKeyField("models.Bank", related_name=None, on_delete=fields.RESTRICT)
    loan = fields.ForeignKeyField("models.LoanReceipt", null=True, related_name=None, on_delete=fields.RESTRICT)
    customer = fields.ForeignKeyField("models.Customer", related_name=None, on_delete=fields.RESTRICT)
    product_code = fields.CharField(max_length=32)
    rule_code = fields.CharField(max_length=48)
    category = fields.CharField(max_length=16)  # a schema category code, or "realtime"
    severity = fields.CharField(max_length=8)
    source = fields.CharField(max_length=8)  # batch | realtime
    status = fields.CharField(max_length=8, default=OPEN)
    open_key = fields.CharField(max_length=80, null=True, unique=True)
    first_seen_at = fields.DatetimeField()
    last_seen_at = fields.DatetimeField()
    times = fields.IntField(default=1)
    facts = fields.JSONField(default=dict)
    run_id = fields.BigIntField(null=True)  # the batch run that last saw it fire
    closed_at = fields.DatetimeField(null=True)
    closed_reason = fields.CharField(max_length=64, null=True)

    class Meta:
        table = "warning_signal"
        indexes = (("bank_id", "status", "severity"), ("loan_id", "status"), ("customer_id", "status"))


class DisposalTask(Model):
    """Risk disposal (风险处置) of one signal by a risk officer of the loan's bank. status: open,
    in_progress (taken), then resolved or escalated. ``deadline`` follows the signal's severity.
    ``notes`` is a list of {at, staff_id, text} with personal data scrubbed."""

    id = fields.BigIntField(primary_key=True)
    bank = fields.ForeignKeyField("models.Bank", related_name=None, on_delete=fields.RESTRICT)
    signal = fields.OneToOneField("models.WarningSignal", related_name="task", on_delete=fields.RESTRICT)
    branch = fields.ForeignKeyField("models.Branch", null=True, related_name=None, on_delete=fields.RESTRICT)
    assigned_to = fields.ForeignKeyField("models.Staff", null=True, related_name=None, on_delete=fields.RESTRICT)
    status = fields.CharField(max_length=12, default="open")
    severity = fields.CharField(max_length=8)
    deadline = fields.DatetimeField()
    notes = fields.JSONField(default=list)
    outcome = fields.TextField(null=True)
    # When the officer was told by SMS (one text may tell of several tasks: see tasks.sms_handler).
    sms_sent_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    closed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "risk_disposal_task"
        indexes = (("bank_id", "status"), ("assigned_to_id", "status"))


class ListProposal(Model):
    """A black/grey list entry the list policy derived from a signal. ``status``: proposed (a risk
    officer confirms or rejects it), applied (the entry exists: ``entry_id``), rejected. One
    proposal per customer, bank and level while it is proposed."""

    id = fields.BigIntField(primary_key=True)
    bank = fields.ForeignKeyField("models.Bank", related_name=None, on_delete=fields.RESTRICT)
    customer = fields.ForeignKeyField("models.Customer", related_name=None, on_delete=fields.RESTRICT)
    signal = fields.ForeignKeyField("models.WarningSignal", related_name=None, on_delete=fields.RESTRICT)
    level = fields.CharField(max_length=24)
    policy = fields.CharField(max_length=48)
    reason = fields.TextField()
    status = fields.CharField(max_length=12, default="proposed")
    open_key = fields.CharField(max_length=80, null=True, unique=True)
    entry_id = fields.BigIntField(null=True)
    decided_by = fields.CharField(max_length=80, null=True)
    decided_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "risk_list_proposal"
        indexes = (("bank_id", "status"),)


class RiskRun(Model):
    """The daily warning batch for one bank and business date: claimed with a lease like the
    loans' daily run. Its loans are cut into chunks (``RiskRunChunk``) that workers take with
    SKIP LOCKED, so several workers share one bank."""

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
        table = "risk_run"
        unique_together = (("bank_id", "business_date"),)


class RiskRunChunk(Model):
    """A range of one bank's loan ids in a run. status: pending, done (or deferred: some of
    its loans' data could not be refreshed, they wait for the next pass)."""

    id = fields.BigIntField(primary_key=True)
    run = fields.ForeignKeyField("models.RiskRun", related_name="chunks", on_delete=fields.CASCADE)
    first_loan_id = fields.BigIntField()
    last_loan_id = fields.BigIntField()
    status = fields.CharField(max_length=12, default="pending")
    worker = fields.CharField(max_length=64, null=True)
    result = fields.JSONField(null=True)

    class Meta:
        table = "risk_run_chunk"
        indexes = (("run_id", "status"),)


# ---- snapshots ----------------------------------------------------------------------------------

# Sources refreshed per customer (whatever bank lends to them), and the bank's own per bank.
CUSTOMER_SOURCES = ("bureau", "court", "business", "employment", "collateral")
BANK_SOURCES = ("account",)
# The parties fields taken from the guarantor's or co-borrower's own snapshots: (party, source, field).
PARTY_FIELDS = {
    "guarantor_overdue_fen": ("guarantor", "bureau", "overdue_elsewhere_fen"),
    "guarantor_new_cases_3m": ("guarantor", "court", "new_cases_3m"),
    "guarantor_dishonest": ("guarantor", "court", "dishonest_debtor"),
    "guarantor_assets_frozen": ("guarantor", "court", "assets_frozen"),
    "co_borrower_income_fen": ("co_borrower", "employment", "ss_base_fen"),
    "co_borrower_income_12m_ago_fen": ("co_borrower", "employment", "ss_base_12m_ago_fen"),
    "co_borrower_divorce_filed": ("co_borrower", "court", "divorce_case_3m"),
}
# The loan's own facts held per loan: its repayment records and what we know of its guarantee.
# (Outstanding principal and the next instalment come from the schedule, so they are kept here
# too, beside the loan book's own columns.)
LOAN_FACT_FIELDS = tuple(schema.BY_PATH[p] for p in ("outstanding_fen", "instalment_fen")) + tuple(
    f for f in schema.FIELDS if f.group == "repayment") + tuple(
    f for f in schema.FIELDS if f.group == "parties" and f.name not in PARTY_FIELDS
)


def _column(f: schema.Field) -> fields.Field:
    """A snapshot column for a field: nullable as the field is (a non-null figure starts at 0)."""
    if f.kind == "bool":
        return fields.BooleanField(null=True) if f.nullable else fields.BooleanField(default=False)
    if f.kind == "text":
        return fields.CharField(max_length=24, null=True)
    return fields.BigIntField(null=True) if f.nullable else fields.BigIntField(default=0)


def _snapshot_model(name: str, table: str, doc: str, group: str, keys: dict, unique: tuple, extra: dict | None = None) -> type[Model]:
    attrs = {"__module__": __name__, "__doc__": doc, "id": fields.BigIntField(primary_key=True), **keys}
    attrs.update({f.name: _column(f) for f in schema.FIELDS if f.group == group})
    attrs.update(extra or {})
    attrs.update({
        # When the source last answered for this person, when it last failed and why (a code).
        "fetched_at": fields.DatetimeField(null=True),
        "failed_at": fields.DatetimeField(null=True),
        "failure": fields.CharField(max_length=64, null=True),
    })
    attrs["Meta"] = type("Meta", (), {"table": table, "unique_together": (unique,)})
    return type(name, (Model,), attrs)


def _customer_snapshot(group: str) -> type[Model]:
    title = schema.CATEGORIES[group].name_en
    return _snapshot_model(
        f"{group.title()}Snapshot", f"risk_snapshot_{group}",
        f"The latest {title} figures of one customer, refreshed in bulk for the warning batch.",
        group, {"customer_id": fields.BigIntField()}, ("customer_id",),
    )


BureauSnapshot = _customer_snapshot("bureau")
CourtSnapshot = _customer_snapshot("court")
BusinessSnapshot = _customer_snapshot("business")
EmploymentSnapshot = _customer_snapshot("employment")
CollateralSnapshot = _customer_snapshot("collateral")
AccountSnapshot = _snapshot_model(
    "AccountSnapshot", "risk_snapshot_account",
    "The bank's own account figures of one customer at one bank, refreshed from its core banking.",
    "account", {"bank_id": fields.BigIntField(), "customer_id": fields.BigIntField()}, ("bank_id", "customer_id"),
)

SNAPSHOT_MODELS: dict[str, type[Model]] = {
    "bureau": BureauSnapshot, "court": CourtSnapshot, "business": BusinessSnapshot,
    "employment": EmploymentSnapshot, "collateral": CollateralSnapshot, "account": AccountSnapshot,
}


LoanFacts = type("LoanFacts", (Model,), {
    "__module__": __name__,
    "__doc__": (
        "The loan's own facts the rules read beside the loan book: its repayment behaviour "
        "(refreshed from the instalments and repayments, and written by collection work for what "
        "only collection knows) and its guarantee (who guarantees and co-borrows, what we know of "
        "the guarantee). One row per loan."
    ),
    "loan_id": fields.BigIntField(primary_key=True),
    "bank_id": fields.BigIntField(),
    "guarantor_customer_id": fields.BigIntField(null=True),
    "co_borrower_customer_id": fields.BigIntField(null=True),
    **{f.name: _column(f) for f in LOAN_FACT_FIELDS},
    "refreshed_at": fields.DatetimeField(null=True),
    "Meta": type("Meta", (), {"table": "risk_loan_facts", "indexes": (("bank_id",),)}),
})


# --- real-time monitoring (R2) ---


class TransactionEvent(Model):
    """One core-banking transaction a member bank pushed to us, stored before it is acknowledged.
    ``bank_txn_id`` is the bank's own id of the transaction, unique per bank, so a resent event
    is recognised and not stored twice. ``customer_id`` is the account's owner when we know the
    account, null when it is unmatched. ``counterparty_hash`` is the keyed lookup hash of the
    other side's account, never the account itself. Amounts in fen.

    status: received, then processed once its effects (settlement, signals) committed with it.
    ``outcome`` says what processing did (unmatched, unwatched, settled, signalled, noted) and
    ``result`` the figures (repayment ids, signal ids). ``queued_at`` is when it was last put on
    the stream, so a sweep re-queues what the stream lost."""

    id = fields.BigIntField(primary_key=True)
    # No database foreign key (as the ledger): every insert would share-lock the one bank row.
    bank = fields.ForeignKeyField("models.Bank", related_name=None, on_delete=fields.RESTRICT, db_constraint=False)
    bank_txn_id = fields.CharField(max_length=64)
    account_ref = fields.CharField(max_length=40)
    customer_id = fields.BigIntField(null=True)
    direction = fields.CharField(max_length=3)  # in | out
    amount_fen = fields.BigIntField()
    balance_after_fen = fields.BigIntField()
    counterparty_hash = fields.CharField(max_length=64, null=True)
    occurred_at = fields.DatetimeField()
    received_at = fields.DatetimeField()
    queued_at = fields.DatetimeField()
    status = fields.CharField(max_length=12, default="received")
    outcome = fields.CharField(max_length=16, null=True)
    result = fields.JSONField(null=True)
    processed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "transaction_event"
        unique_together = (("bank_id", "bank_txn_id"),)
        # Few indexes: marking an event processed writes a new entry in each of them.
        indexes = (("status", "queued_at"), ("counterparty_hash",))
