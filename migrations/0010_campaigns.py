from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0009_marketing')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Campaign',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('bank', fields.ForeignKeyField('models.Bank', source_field='bank_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('kind', fields.CharField(max_length=16)),
                ('name', fields.CharField(max_length=64)),
                ('status', fields.CharField(default='draft', max_length=20)),
                ('starts_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('ends_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('budget_fen', fields.BigIntField()),
                ('committed_fen', fields.BigIntField(default=0)),
                ('audience', fields.CharField(default='all', max_length=32)),
                ('channels', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('per_person_limit', fields.IntField(default=1)),
                ('per_day_limit', fields.IntField(default=1)),
                ('milestone', fields.CharField(null=True, max_length=16)),
                ('reward_fen', fields.BigIntField(null=True)),
                ('packet_count', fields.IntField(null=True)),
                ('packet_min_fen', fields.BigIntField(null=True)),
                ('packet_max_fen', fields.BigIntField(null=True)),
                ('packet_seed', fields.BigIntField(null=True)),
                ('change_request_id', fields.BigIntField(null=True)),
                ('created_by', fields.ForeignKeyField('models.Staff', source_field='created_by_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('approved_by', fields.ForeignKeyField('models.Staff', source_field='approved_by_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'campaign', 'app': 'models', 'indexes': [Index(fields=['bank_id', 'status']), Index(fields=['status', 'ends_at'])], 'pk_attr': 'id', 'table_description': 'A marketing campaign of one bank (or association-wide when ``bank`` is null).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Reward',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('campaign', fields.ForeignKeyField('models.Campaign', source_field='campaign_id', db_constraint=True, to_field='id', related_name='rewards', on_delete=OnDelete.RESTRICT)),
                ('bank', fields.ForeignKeyField('models.Bank', source_field='bank_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('customer', fields.ForeignKeyField('models.Customer', source_field='customer_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('kind', fields.CharField(max_length=16)),
                ('amount_fen', fields.BigIntField()),
                ('status', fields.CharField(default='held', max_length=16)),
                ('seq', fields.IntField(default=1)),
                ('packet_index', fields.IntField(null=True)),
                ('referral', fields.ForeignKeyField('models.InviteReferral', source_field='referral_id', null=True, db_constraint=True, to_field='id', related_name='rewards', on_delete=OnDelete.RESTRICT)),
                ('reason', fields.TextField(null=True, unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('paid_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('failure_code', fields.CharField(null=True, max_length=32)),
            ],
            options={'table': 'reward', 'app': 'models', 'unique_together': (('campaign', 'customer', 'seq'), ('campaign', 'packet_index')), 'indexes': [Index(fields=['customer_id', 'id'])], 'pk_attr': 'id', 'table_description': 'One reward a customer earned in a campaign: a red packet, phone credit or referral cash.'},
            bases=['Model'],
        ),
    ]
