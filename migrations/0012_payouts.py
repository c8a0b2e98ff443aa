from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0011_risk_signals')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Payout',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('reward', fields.OneToOneField('models.Reward', source_field='reward_id', db_constraint=True, to_field='id', related_name='payout', on_delete=OnDelete.RESTRICT)),
                ('bank', fields.ForeignKeyField('models.Bank', source_field='bank_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('customer', fields.ForeignKeyField('models.Customer', source_field='customer_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('channel', fields.CharField(max_length=24)),
                ('bill_no', fields.CharField(unique=True, max_length=32)),
                ('business_date', fields.DateField()),
                ('outbox_message_id', fields.BigIntField()),
                ('amount_fen', fields.BigIntField()),
                ('status', fields.CharField(default='paying', max_length=16)),
                ('attempts', fields.IntField(default=0)),
                ('provider_ref', fields.CharField(null=True, max_length=64)),
                ('package', fields.TextField(null=True, unique=False)),
                ('last_error_code', fields.CharField(null=True, max_length=32)),
                ('failure_code', fields.CharField(null=True, max_length=32)),
                ('failure_reason', fields.TextField(null=True, unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('paid_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'payout', 'app': 'models', 'indexes': [Index(fields=['business_date', 'channel']), Index(fields=['customer_id', 'id'])], 'pk_attr': 'id', 'table_description': 'How one reward is paid: a WeChat Pay mini-program red packet or a phone top-up, under one'},
            bases=['Model'],
        ),
    ]
