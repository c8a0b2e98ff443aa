from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0014_staff_marketing')]

    initial = False

    operations = [
        ops.CreateModel(
            name='RuleBook',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('scope', fields.CharField(unique=True, max_length=32)),
                ('bank', fields.ForeignKeyField('models.Bank', source_field='bank_id', null=True, db_constraint=True, to_field='id', on_delete=OnDelete.RESTRICT)),
                ('published_version', fields.IntField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'rule_book', 'app': 'models', 'pk_attr': 'id', 'table_description': "A warning rule book, the association's or one bank's own, and which version of it is live."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RuleBookVersion',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('book', fields.ForeignKeyField('models.RuleBook', source_field='book_id', db_constraint=True, to_field='id', related_name='versions', on_delete=OnDelete.RESTRICT)),
                ('version', fields.IntField()),
                ('rules', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('rule_count', fields.IntField()),
                ('digest', fields.CharField(max_length=64)),
                ('based_on', fields.IntField(null=True)),
                ('status', fields.CharField(default='proposed', max_length=16)),
                ('note', fields.TextField(default='', unique=False)),
                ('created_by', fields.CharField(max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('published_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'rule_book_version', 'app': 'models', 'unique_together': (('book', 'version'),), 'pk_attr': 'id', 'table_description': 'One version of a rule book: proposed by one person, published when a second approves.'},
            bases=['Model'],
        ),
    ]
