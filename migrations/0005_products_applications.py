from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0004_risk_lists')]

    initial = False

    operations = [
        ops.CreateModel(
            name='LprRate',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('term', fields.CharField(max_length=4)),
                ('bps', fields.IntField()),
                ('effective_from', fields.DateField()),
            ],
            options={'table': 'lpr_rate', 'app': 'models', 'unique_together': (('term', 'effective_from'),), 'pk_attr': 'id', 'table_description': 'The loan prime rate (LPR) published by the National Interbank Funding Center, by term,'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Product',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('code', fields.CharField(unique=True, max_length=32)),
                ('owner_bank', fields.ForeignKeyField('models.Bank', source_field='owner_bank_id', null=True, db_constraint=True, to_field='id', on_delete=OnDelete.RESTRICT)),
                ('family', fields.CharField(max_length=32)),
                ('published_version', fields.IntField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'product', 'app': 'models', 'pk_attr': 'id', 'table_description': "A product, province-wide (``owner_bank`` null) or one bank's own local product."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Application',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('bank', fields.ForeignKeyField('models.Bank', source_field='bank_id', db_constraint=True, to_field='id', on_delete=OnDelete.RESTRICT)),
                ('customer', fields.ForeignKeyField('models.Customer', source_field='customer_id', db_constraint=True, to_field='id', related_name='applications', on_delete=OnDelete.RESTRICT)),
                ('product', fields.ForeignKeyField('models.Product', source_field='product_id', db_constraint=True, to_field='id', on_delete=OnDelete.RESTRICT)),
                ('product_version', fields.IntField()),
                ('channel', fields.CharField(max_length=32)),
                ('amount_fen', fields.BigIntField()),
                ('term_months', fields.IntField()),
                ('repayment_method', fields.CharField(max_length=24)),
                ('unsecured', fields.BooleanField(default=True)),
                ('status', fields.CharField(db_index=True, max_length=16)),
                ('decision', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('limit_fen', fields.BigIntField(default=0)),
                ('rate_bps', fields.IntField(default=0)),
                ('customer_reasons', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('referred_by_staff_id', fields.BigIntField(null=True)),
                ('reviewed_by_id', fields.BigIntField(null=True)),
                ('review_note', fields.TextField(null=True, unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('decided_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'application', 'app': 'models', 'indexes': [Index(fields=['customer_id', 'status']), Index(fields=['bank_id', 'status'])], 'pk_attr': 'id', 'table_description': 'One application for one product at one bank. Amounts in fen, rates in basis points.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='BankProductSetting',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('bank', fields.ForeignKeyField('models.Bank', source_field='bank_id', db_constraint=True, to_field='id', on_delete=OnDelete.RESTRICT)),
                ('product', fields.ForeignKeyField('models.Product', source_field='product_id', db_constraint=True, to_field='id', on_delete=OnDelete.RESTRICT)),
                ('offered', fields.BooleanField(default=True)),
                ('params', fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'bank_product_setting', 'app': 'models', 'unique_together': (('bank', 'product'),), 'pk_attr': 'id', 'table_description': "A member bank's parameters for a province-wide product, within the bounds the definition"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ProductVersion',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('product', fields.ForeignKeyField('models.Product', source_field='product_id', db_constraint=True, to_field='id', related_name='versions', on_delete=OnDelete.RESTRICT)),
                ('version', fields.IntField()),
                ('definition', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('status', fields.CharField(default='proposed', max_length=16)),
                ('note', fields.TextField(default='', unique=False)),
                ('created_by', fields.CharField(max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('published_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'product_version', 'app': 'models', 'unique_together': (('product', 'version'),), 'pk_attr': 'id', 'table_description': "One version of a product's definition. Published versions never change: a change is a new"},
            bases=['Model'],
        ),
    ]
