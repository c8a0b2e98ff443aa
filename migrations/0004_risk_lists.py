from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0003_consent_channel_length')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ListEntry',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('bank', fields.ForeignKeyField('models.Bank', source_field='bank_id', null=True, db_constraint=True, to_field='id', on_delete=OnDelete.RESTRICT)),
                ('level', fields.CharField(max_length=24)),
                ('id_number_hash', fields.CharField(null=True, db_index=True, max_length=64)),
                ('phone_hash', fields.CharField(null=True, db_index=True, max_length=64)),
                ('unionid_hash', fields.CharField(null=True, db_index=True, max_length=64)),
                ('id_number_masked', fields.CharField(null=True, max_length=18)),
                ('phone_masked', fields.CharField(null=True, max_length=11)),
                ('source', fields.CharField(max_length=8)),
                ('reason', fields.TextField(unique=False)),
                ('status', fields.CharField(default='active', db_index=True, max_length=8)),
                ('expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_by', fields.CharField(max_length=80)),
                ('lifted_by', fields.CharField(null=True, max_length=80)),
                ('lifted_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'risk_list_entry', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One person on a black or grey list. ``bank`` is null for an entry that applies to every'},
            bases=['Model'],
        ),
    ]
