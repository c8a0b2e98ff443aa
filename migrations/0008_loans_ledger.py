from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index


class PostgresOnlySQL(ops.RunSQL):
    """RunSQL for PostgreSQL alone. Tortoise's RunSQL runs the same text on every backend (it has
    no per-dialect form), and SQLite has neither plpgsql nor constraint triggers: there the
    ledger's code check is the guard."""

    async def database_forward(self, app_label, old_state, new_state, state_editor=None) -> None:
        if state_editor is not None and state_editor.client.capabilities.dialect == "postgres":
            await super().database_forward(app_label, old_state, new_state, state_editor)

    async def database_backward(self, app_label, old_state, new_state, state_editor=None) -> None:
        if state_editor is not None and state_editor.client.capabilities.dialect == "postgres":
            await super().database_backward(app_label, old_state, new_state, state_editor)


# At commit, each ledger transaction touched by an inserted, changed or deleted leg must still
# sum to zero, whoever wrote the rows. Deferred, so the legs of one transaction can be written
# one statement at a time.
LEDGER_BALANCED = [
    """CREATE OR REPLACE FUNCTION ledger_transaction_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    checked bigint;
    total numeric;
    this_check text;
BEGIN
    FOREACH checked IN ARRAY ARRAY[
        CASE WHEN TG_OP <> 'INSERT' THEN OLD.transaction_id END,
        CASE WHEN TG_OP <> 'DELETE' THEN NEW.transaction_id END
    ] LOOP
        CONTINUE WHEN checked IS NULL;
        -- The legs of one transaction queue their checks one after another, and all of them run
        -- in the same statement (the COMMIT, or a SET CONSTRAINTS) with nothing written between:
        -- after the first has summed the legs, the next ones of that transaction have nothing
        -- to add. The key names the database transaction and the statement, so a later batch
        -- of checks always sums afresh.
        this_check := txid_current()::text || ':' || statement_timestamp()::text || ':' || checked::text;
        CONTINUE WHEN current_setting('ledger.last_checked', true) = this_check;
        SELECT COALESCE(SUM(amount_fen), 0) INTO total FROM ledger_leg WHERE transaction_id = checked;
        IF total <> 0 THEN
            RAISE EXCEPTION 'ledger transaction % is unbalanced: its legs sum to % fen', checked, total
                USING ERRCODE = 'check_violation';
        END IF;
        PERFORM set_config('ledger.last_checked', this_check, true);
    END LOOP;
    RETURN NULL;
END
$$""",
    """CREATE CONSTRAINT TRIGGER ledger_leg_balanced AFTER INSERT OR UPDATE OR DELETE ON ledger_leg
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_transaction_balanced()""",
]
# The models declare ledger_leg's two foreign keys and ledger_transaction's bank without
# database constraints (see their comments), but tortoise 1.1.9's migration editor writes
# REFERENCES for every foreign key regardless: drop them here (SQLite keeps its cheap ones).
LEDGER_LEG_NO_FOREIGN_KEYS = [
    "ALTER TABLE ledger_leg DROP CONSTRAINT IF EXISTS ledger_leg_transaction_id_fkey, DROP CONSTRAINT IF EXISTS ledger_leg_account_id_fkey",
    "ALTER TABLE ledger_transaction DROP CONSTRAINT IF EXISTS ledger_transaction_bank_id_fkey",
]
LEDGER_LEG_NO_FOREIGN_KEYS_REVERSE = [
    "ALTER TABLE ledger_transaction ADD CONSTRAINT ledger_transaction_bank_id_fkey FOREIGN KEY (bank_id) REFERENCES bank (id) ON DELETE RESTRICT",
    "ALTER TABLE ledger_leg ADD CONSTRAINT ledger_leg_transaction_id_fkey FOREIGN KEY (transaction_id) REFERENCES ledger_transaction (id) ON DELETE RESTRICT, "
    "ADD CONSTRAINT ledger_leg_account_id_fkey FOREIGN KEY (account_id) REFERENCES ledger_account (id) ON DELETE RESTRICT",
]
# The daily job rewrites every serviced loan's receipt and instalment rows and the account
# rows it debits, in columns no index covers: room left in each page lets those updates stay
# on the page (HOT) instead of adding an entry to every index of the table.
ROOM_FOR_DAILY_UPDATES = [
    "ALTER TABLE loan_receipt SET (fillfactor = 80)",
    "ALTER TABLE loan_instalment SET (fillfactor = 80)",
    "ALTER TABLE sandbox_core_account SET (fillfactor = 80)",
]
ROOM_FOR_DAILY_UPDATES_REVERSE = [
    "ALTER TABLE loan_receipt RESET (fillfactor)",
    "ALTER TABLE loan_instalment RESET (fillfactor)",
    "ALTER TABLE sandbox_core_account RESET (fillfactor)",
]
LEDGER_BALANCED_REVERSE = [
    "DROP TRIGGER IF EXISTS ledger_leg_balanced ON ledger_leg",
    "DROP FUNCTION IF EXISTS ledger_transaction_balanced()",
]


class Migration(migrations.Migration):
    dependencies = [('models', '0007_contracts')]

    initial = False

    operations = [
        ops.CreateModel(
            name='DailyRun',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('bank', fields.ForeignKeyField('models.Bank', source_field='bank_id', db_constraint=True, to_field='id', on_delete=OnDelete.RESTRICT)),
                ('business_date', fields.DateField()),
                ('status', fields.CharField(max_length=12)),
                ('worker', fields.CharField(max_length=64)),
                ('lease_until', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('started_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('summary', fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
            ],
            options={'table': 'loan_daily_run', 'app': 'models', 'unique_together': (('bank_id', 'business_date'),), 'pk_attr': 'id', 'table_description': "The daily job's record for one bank and business date: a worker claims it with a lease,"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LedgerAccount',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('bank', fields.ForeignKeyField('models.Bank', source_field='bank_id', db_constraint=True, to_field='id', on_delete=OnDelete.RESTRICT)),
                ('code', fields.CharField(unique=True, max_length=96)),
                ('kind', fields.CharField(max_length=32)),
                ('loan_id', fields.BigIntField(null=True)),
                ('customer_id', fields.BigIntField(null=True)),
                ('external_account', fields.CharField(null=True, max_length=40)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'ledger_account', 'app': 'models', 'indexes': [Index(fields=['loan_id']), Index(fields=['customer_id'])], 'pk_attr': 'id', 'table_description': 'An account of the ledger, found by its code (e.g. loan:17:principal, bank:2:interest_income,'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LedgerTransaction',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('bank', fields.ForeignKeyField('models.Bank', source_field='bank_id', db_constraint=False, to_field='id', on_delete=OnDelete.RESTRICT)),
                ('kind', fields.CharField(max_length=32)),
                ('key', fields.CharField(unique=True, max_length=160)),
                ('correlation_id', fields.CharField(db_index=True, max_length=96)),
                ('business_date', fields.DateField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'ledger_transaction', 'app': 'models', 'indexes': [Index(fields=['bank_id', 'business_date'])], 'pk_attr': 'id', 'table_description': 'One money movement. ``key`` makes it idempotent: a retry with the same key finds it and'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LedgerLeg',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('transaction', fields.ForeignKeyField('models.LedgerTransaction', source_field='transaction_id', db_constraint=False, to_field='id', related_name='legs', on_delete=OnDelete.RESTRICT)),
                ('account', fields.ForeignKeyField('models.LedgerAccount', source_field='account_id', db_constraint=False, to_field='id', on_delete=OnDelete.RESTRICT)),
                ('amount_fen', fields.BigIntField()),
            ],
            options={'table': 'ledger_leg', 'app': 'models', 'indexes': [Index(fields=['transaction_id']), Index(fields=['account_id'])], 'pk_attr': 'id', 'table_description': 'One side of a transaction, in fen: positive debits, negative credits. The legs of a'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LoanReceipt',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('bank', fields.ForeignKeyField('models.Bank', source_field='bank_id', db_constraint=True, to_field='id', on_delete=OnDelete.RESTRICT)),
                ('contract', fields.ForeignKeyField('models.Contract', source_field='contract_id', db_constraint=True, to_field='id', related_name='loans', on_delete=OnDelete.RESTRICT)),
                ('customer', fields.ForeignKeyField('models.Customer', source_field='customer_id', db_constraint=True, to_field='id', on_delete=OnDelete.RESTRICT)),
                ('request_key', fields.CharField(max_length=255)),
                ('principal_fen', fields.BigIntField()),
                ('rate_bps', fields.IntField()),
                ('penalty_rate_bps', fields.IntField()),
                ('term_months', fields.IntField()),
                ('repayment_method', fields.CharField(max_length=24)),
                ('day_basis', fields.IntField()),
                ('allocation', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('early_repayment_fee_bps', fields.IntField()),
                ('collateral', fields.CharField(max_length=24)),
                ('apr_bps', fields.IntField()),
                ('drawn_on', fields.DateField()),
                ('maturity_date', fields.DateField()),
                ('settlement_account', fields.CharField(max_length=40)),
                ('pledge_account', fields.CharField(null=True, max_length=40)),
                ('pledged_fen', fields.BigIntField(default=0)),
                ('property_certificate', fields.CharField(null=True, max_length=64)),
                ('principal_account_id', fields.BigIntField()),
                ('interest_account_id', fields.BigIntField()),
                ('penalty_account_id', fields.BigIntField()),
                ('settlement_ledger_account_id', fields.BigIntField()),
                ('pledge_ledger_account_id', fields.BigIntField(null=True)),
                ('status', fields.CharField(default='active', max_length=16)),
                ('dpd', fields.IntField(default=0)),
                ('classification', fields.CharField(default='normal', max_length=16)),
                ('serviced_through', fields.DateField(null=True)),
                ('closed_on', fields.DateField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'loan_receipt', 'app': 'models', 'unique_together': (('contract_id', 'request_key'),), 'indexes': [Index(fields=['bank_id', 'status']), Index(fields=['customer_id', 'status']), Index(fields=['contract_id', 'status'])], 'pk_attr': 'id', 'table_description': 'A loan receipt (借据): one drawdown on an effective credit contract, with its own'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Instalment',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('loan', fields.ForeignKeyField('models.LoanReceipt', source_field='loan_id', db_constraint=True, to_field='id', related_name='instalments', on_delete=OnDelete.RESTRICT)),
                ('bank_id', fields.BigIntField()),
                ('number', fields.IntField()),
                ('due_date', fields.DateField()),
                ('principal_fen', fields.BigIntField()),
                ('interest_fen', fields.BigIntField()),
                ('principal_paid_fen', fields.BigIntField(default=0)),
                ('interest_paid_fen', fields.BigIntField(default=0)),
                ('penalty_fen', fields.BigIntField(default=0)),
                ('penalty_paid_fen', fields.BigIntField(default=0)),
                ('penalty_from', fields.DateField(null=True)),
                ('penalty_base_fen', fields.BigIntField(default=0)),
                ('penalty_segment_fen', fields.BigIntField(default=0)),
                ('status', fields.CharField(default='scheduled', max_length=12)),
                ('paid_on', fields.DateField(null=True)),
            ],
            options={'table': 'loan_instalment', 'app': 'models', 'unique_together': (('loan_id', 'number'),), 'pk_attr': 'id', 'table_description': "One period of a loan receipt's schedule: what falls due on ``due_date`` and what has paid"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Repayment',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('loan', fields.ForeignKeyField('models.LoanReceipt', source_field='loan_id', db_constraint=True, to_field='id', related_name='repayments', on_delete=OnDelete.RESTRICT)),
                ('bank_id', fields.BigIntField()),
                ('payer_customer_id', fields.BigIntField()),
                ('source', fields.CharField(max_length=16)),
                ('request_key', fields.CharField(max_length=255)),
                ('business_date', fields.DateField()),
                ('amount_fen', fields.BigIntField()),
                ('principal_fen', fields.BigIntField()),
                ('prepaid_principal_fen', fields.BigIntField(default=0)),
                ('interest_fen', fields.BigIntField()),
                ('accrued_interest_fen', fields.BigIntField(default=0)),
                ('penalty_fen', fields.BigIntField()),
                ('fee_fen', fields.BigIntField()),
                ('closed_loan', fields.BooleanField(default=False)),
                ('ledger_key', fields.CharField(max_length=160)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'loan_repayment', 'app': 'models', 'unique_together': (('loan_id', 'request_key'),), 'indexes': [Index(fields=['bank_id', 'business_date'])], 'pk_attr': 'id', 'table_description': 'Money received on a loan: by the customer (or a co-borrower) or by the daily auto-debit,'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SandboxAccount',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('account_no', fields.CharField(unique=True, max_length=40)),
                ('bank_code', fields.CharField(max_length=32)),
                ('customer_id', fields.BigIntField()),
                ('kind', fields.CharField(max_length=16)),
                ('balance_fen', fields.BigIntField(default=0)),
                ('frozen_fen', fields.BigIntField(default=0)),
                ('opened_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'sandbox_core_account', 'app': 'models', 'unique_together': (('bank_code', 'customer_id', 'kind'),), 'pk_attr': 'id', 'table_description': 'A demo account of the core banking sandbox. Amounts in fen.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SandboxEntry',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('account_no', fields.CharField(db_index=True, max_length=40)),
                ('key', fields.CharField(unique=True, max_length=200)),
                ('kind', fields.CharField(max_length=12)),
                ('requested_fen', fields.BigIntField()),
                ('amount_fen', fields.BigIntField()),
                ('status', fields.CharField(max_length=24)),
                ('balance_after_fen', fields.BigIntField()),
                ('frozen_after_fen', fields.BigIntField()),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'sandbox_core_entry', 'app': 'models', 'pk_attr': 'id', 'table_description': "One journalled request to the sandbox core banking, under its caller's key."},
            bases=['Model'],
        ),
        PostgresOnlySQL(LEDGER_LEG_NO_FOREIGN_KEYS, LEDGER_LEG_NO_FOREIGN_KEYS_REVERSE),
        PostgresOnlySQL(ROOM_FOR_DAILY_UPDATES, ROOM_FOR_DAILY_UPDATES_REVERSE),
        PostgresOnlySQL(LEDGER_BALANCED, LEDGER_BALANCED_REVERSE),
    ]
