from tortoise import migrations
from tortoise.migrations import operations as ops
from infra.pii_fields import EncryptedTextField
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0006_lookup_indexes')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Contract',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('bank', fields.ForeignKeyField('models.Bank', source_field='bank_id', db_constraint=True, to_field='id', on_delete=OnDelete.RESTRICT)),
                ('application', fields.OneToOneField('models.Application', source_field='application_id', db_constraint=True, to_field='id', related_name='contract', on_delete=OnDelete.RESTRICT)),
                ('customer', fields.ForeignKeyField('models.Customer', source_field='customer_id', db_constraint=True, to_field='id', on_delete=OnDelete.RESTRICT)),
                ('product', fields.ForeignKeyField('models.Product', source_field='product_id', db_constraint=True, to_field='id', on_delete=OnDelete.RESTRICT)),
                ('product_version', fields.IntField()),
                ('template', fields.CharField(max_length=48)),
                ('limit_fen', fields.BigIntField()),
                ('rate_bps', fields.IntField()),
                ('penalty_rate_bps', fields.IntField()),
                ('term_months', fields.IntField()),
                ('repayment_method', fields.CharField(max_length=24)),
                ('collateral', fields.CharField(max_length=24)),
                ('servicing', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('document_html', fields.TextField(unique=False)),
                ('document_sha256', fields.CharField(max_length=64)),
                ('status', fields.CharField(db_index=True, max_length=24)),
                ('sign_by', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('effective_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('line_expires_on', fields.DateField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'contract', 'app': 'models', 'indexes': [Index(fields=['customer_id', 'status']), Index(fields=['bank_id', 'status'])], 'pk_attr': 'id', 'table_description': 'A credit contract (授信合同) made from an approved application. It freezes the terms every'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ContractParty',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('contract', fields.ForeignKeyField('models.Contract', source_field='contract_id', db_constraint=True, to_field='id', related_name='parties', on_delete=OnDelete.RESTRICT)),
                ('role', fields.CharField(max_length=16)),
                ('customer', fields.ForeignKeyField('models.Customer', source_field='customer_id', null=True, db_constraint=True, to_field='id', on_delete=OnDelete.RESTRICT)),
                ('name', EncryptedTextField(unique=False)),
                ('phone', EncryptedTextField(unique=False)),
                ('phone_hash', fields.CharField(db_index=True, max_length=64)),
                ('id_number_hash', fields.CharField(null=True, max_length=64)),
                ('invited_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('code_hash', fields.CharField(null=True, max_length=64)),
                ('code_expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('code_attempts', fields.IntField(default=0)),
                ('signed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('signature_method', fields.CharField(null=True, max_length=24)),
                ('signature_detail', fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'contract_party', 'app': 'models', 'unique_together': (('contract_id', 'role', 'phone_hash'),), 'indexes': [Index(fields=['customer_id'])], 'pk_attr': 'id', 'table_description': 'Someone who must sign: the borrower, a guarantor or a co-borrower. A party who is not yet'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='EvidenceRecord',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('contract', fields.ForeignKeyField('models.Contract', source_field='contract_id', db_constraint=True, to_field='id', related_name='evidence', on_delete=OnDelete.RESTRICT)),
                ('sequence', fields.IntField()),
                ('kind', fields.CharField(max_length=24)),
                ('occurred_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('document_sha256', fields.CharField(max_length=64)),
                ('detail', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('previous_hash', fields.CharField(max_length=64)),
                ('entry_hash', fields.CharField(max_length=64)),
                ('receipt', fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
            ],
            options={'table': 'evidence_record', 'app': 'models', 'unique_together': (('contract_id', 'sequence'),), 'pk_attr': 'id', 'table_description': "One entry of a contract's hash-chained evidence log, as ``contracts.evidence`` defines it,"},
            bases=['Model'],
        ),
    ]
