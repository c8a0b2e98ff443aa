from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0012_payouts')]

    initial = False

    operations = [
        ops.CreateModel(
            name='TransactionEvent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('bank', fields.ForeignKeyField('models.Bank', source_field='bank_id', db_constraint=False, to_field='id', on_delete=OnDelete.RESTRICT)),
                ('bank_txn_id', fields.CharField(max_length=64)),
                ('account_ref', fields.CharField(max_length=40)),
                ('customer_id', fields.BigIntField(null=True)),
                ('direction', fields.CharField(max_length=3)),
                ('amount_fen', fields.BigIntField()),
                ('balance_after_fen', fields.BigIntField()),
                ('counterparty_hash', fields.CharField(null=True, max_length=64)),
                ('occurred_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('received_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('queued_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('status', fields.CharField(default='received', max_length=12)),
                ('outcome', fields.CharField(null=True, max_length=16)),
                ('result', fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
                ('processed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'transaction_event', 'app': 'models', 'unique_together': (('bank_id', 'bank_txn_id'),), 'indexes': [Index(fields=['status', 'queued_at']), Index(fields=['counterparty_hash'])], 'pk_attr': 'id', 'table_description': 'One core-banking transaction a member bank pushed to us, stored before it is acknowledged.'},
            bases=['Model'],
        ),
        ops.AddIndex(
            model_name='LedgerAccount',
            index=Index(fields=['external_account']),
        ),
    ]
