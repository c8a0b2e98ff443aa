from tortoise import migrations
from tortoise.migrations import operations as ops
from infra.pii_fields import EncryptedTextField
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ChannelCredential',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('key_id', fields.CharField(unique=True, max_length=64)),
                ('bank', fields.ForeignKeyField('models.Bank', source_field='bank_id', db_constraint=True, to_field='id', on_delete=OnDelete.RESTRICT)),
                ('channel', fields.CharField(max_length=32)),
                ('secret', EncryptedTextField(unique=False)),
                ('is_active', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'channel_credential', 'app': 'models', 'unique_together': (('bank', 'channel', 'key_id'),), 'pk_attr': 'id', 'table_description': "The key a member bank's app (mobile banking, enterprise banking, direct bank) signs its"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Firm',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=128)),
                ('unified_social_credit_code', fields.CharField(unique=True, max_length=18)),
                ('legal_representative', EncryptedTextField(unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'firm', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A business a customer acts for (enterprise banking, sole-proprietor and small-firm loans).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='CustomerFirm',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('customer', fields.ForeignKeyField('models.Customer', source_field='customer_id', db_constraint=True, to_field='id', related_name='firms', on_delete=OnDelete.CASCADE)),
                ('firm', fields.ForeignKeyField('models.Firm', source_field='firm_id', db_constraint=True, to_field='id', related_name='people', on_delete=OnDelete.CASCADE)),
                ('role', fields.CharField(max_length=32)),
                ('bank', fields.ForeignKeyField('models.Bank', source_field='bank_id', db_constraint=True, to_field='id', on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'customer_firm', 'app': 'models', 'unique_together': (('customer', 'firm'),), 'pk_attr': 'id', 'table_description': "The customer's role in a firm, as a bank asserted it."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PartnerApp',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('app_key', fields.CharField(unique=True, max_length=64)),
                ('name', fields.CharField(max_length=128)),
                ('secret', EncryptedTextField(unique=False)),
                ('scopes', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('rate_limit_per_minute', fields.IntField(default=120)),
                ('is_active', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'partner_app', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A registered government or partner platform calling the open API.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Referral',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('partner', fields.ForeignKeyField('models.PartnerApp', source_field='partner_id', db_constraint=True, to_field='id', related_name='referrals', on_delete=OnDelete.RESTRICT)),
                ('customer', fields.ForeignKeyField('models.Customer', source_field='customer_id', db_constraint=True, to_field='id', on_delete=OnDelete.RESTRICT)),
                ('bank', fields.ForeignKeyField('models.Bank', source_field='bank_id', db_constraint=True, to_field='id', on_delete=OnDelete.RESTRICT)),
                ('external_ref', fields.CharField(max_length=64)),
                ('product_code', fields.CharField(null=True, max_length=32)),
                ('status', fields.CharField(default='handed_over', max_length=24)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'referral', 'app': 'models', 'unique_together': (('partner', 'external_ref'),), 'pk_attr': 'id', 'table_description': 'An applicant a partner platform handed over, with consent, to a member bank.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WeChatAccount',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('customer', fields.ForeignKeyField('models.Customer', source_field='customer_id', db_constraint=True, to_field='id', related_name='wechat_accounts', on_delete=OnDelete.CASCADE)),
                ('appid', fields.CharField(max_length=32)),
                ('openid_hash', fields.CharField(max_length=64)),
                ('openid', EncryptedTextField(unique=False)),
                ('session_key', EncryptedTextField(unique=False)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'wechat_account', 'app': 'models', 'unique_together': (('appid', 'openid_hash'),), 'pk_attr': 'id', 'table_description': "A customer's mini-program account: the openid (needed in clear to send subscribe messages)"},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Customer',
            name='last_bank',
            field=fields.ForeignKeyField('models.Bank', source_field='last_bank_id', null=True, db_constraint=True, to_field='id', on_delete=OnDelete.RESTRICT),
        ),
    ]
