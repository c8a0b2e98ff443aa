from tortoise import migrations
from tortoise.migrations import operations as ops
from infra.pii_fields import EncryptedTextField
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0013_transaction_events')]

    initial = False

    operations = [
        ops.CreateModel(
            name='FollowUp',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('bank', fields.ForeignKeyField('models.Bank', source_field='bank_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('application', fields.ForeignKeyField('models.Application', source_field='application_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('customer', fields.ForeignKeyField('models.Customer', source_field='customer_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('staff', fields.ForeignKeyField('models.Staff', source_field='staff_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('note', EncryptedTextField(unique=False)),
                ('outcome', fields.CharField(max_length=16)),
                ('next_contact_on', fields.DateField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'secondary_follow_up', 'app': 'models', 'indexes': [Index(fields=['application_id', 'id']), Index(fields=['bank_id', 'next_contact_on'])], 'pk_attr': 'id', 'table_description': "An account manager's follow-up with a declined applicant (secondary marketing): what was"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='IncentiveRule',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('campaign_id', fields.BigIntField(unique=True)),
                ('bank', fields.ForeignKeyField('models.Bank', source_field='bank_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('per_disbursed_loan_fen', fields.BigIntField(default=0)),
                ('disbursed_bps', fields.IntField(default=0)),
                ('indirect_share_bps', fields.IntField(default=10000)),
                ('cap_fen', fields.BigIntField(null=True)),
                ('set_by', fields.ForeignKeyField('models.Staff', source_field='set_by_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'staff_incentive_rule', 'app': 'models', 'pk_attr': 'id', 'table_description': 'How a campaign pays the staff who bring loans in: a fixed amount per disbursed loan plus'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Quota',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('bank', fields.ForeignKeyField('models.Bank', source_field='bank_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('staff', fields.ForeignKeyField('models.Staff', source_field='staff_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('branch', fields.ForeignKeyField('models.Branch', source_field='branch_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('period', fields.CharField(max_length=7)),
                ('referrals_target', fields.IntField(default=0)),
                ('applications_target', fields.IntField(default=0)),
                ('approvals_target', fields.IntField(default=0)),
                ('disbursed_target_fen', fields.BigIntField(default=0)),
                ('set_by', fields.ForeignKeyField('models.Staff', source_field='set_by_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'staff_quota', 'app': 'models', 'unique_together': (('staff', 'period'), ('branch', 'period')), 'indexes': [Index(fields=['bank_id', 'period'])], 'pk_attr': 'id', 'table_description': 'What a staff member, or a whole branch, is asked to bring in over one period: referrals,'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Reinvitation',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('bank', fields.ForeignKeyField('models.Bank', source_field='bank_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('application', fields.ForeignKeyField('models.Application', source_field='application_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('customer', fields.ForeignKeyField('models.Customer', source_field='customer_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('product', fields.ForeignKeyField('models.Product', source_field='product_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('staff', fields.ForeignKeyField('models.Staff', source_field='staff_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('invite_code', fields.ForeignKeyField('models.InviteCode', source_field='invite_code_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('channel', fields.CharField(max_length=8)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'secondary_reinvitation', 'app': 'models', 'unique_together': (('application', 'product'),), 'indexes': [Index(fields=['customer_id', 'id'])], 'pk_attr': 'id', 'table_description': 'A declined applicant invited to another product of the bank. The message itself goes out'},
            bases=['Model'],
        ),
    ]
