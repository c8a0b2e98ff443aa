from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0008_loans_ledger')]

    initial = False

    operations = [
        ops.CreateModel(
            name='InviteCode',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('code', fields.CharField(unique=True, max_length=16)),
                ('owner_kind', fields.CharField(max_length=8)),
                ('customer', fields.OneToOneField('models.Customer', source_field='customer_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('staff', fields.OneToOneField('models.Staff', source_field='staff_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('bank', fields.ForeignKeyField('models.Bank', source_field='bank_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'invite_code', 'app': 'models', 'pk_attr': 'id', 'table_description': "The one invite code of a customer or of a staff member. A staff member's code brings people"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='InviteTouch',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('invite_code', fields.ForeignKeyField('models.InviteCode', source_field='invite_code_id', db_constraint=True, to_field='id', related_name='touches', on_delete=OnDelete.RESTRICT)),
                ('channel', fields.CharField(max_length=16)),
                ('device_hash', fields.CharField(null=True, max_length=64)),
                ('network_hash', fields.CharField(null=True, max_length=64)),
                ('customer', fields.ForeignKeyField('models.Customer', source_field='customer_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'invite_touch', 'app': 'models', 'indexes': [Index(fields=['device_hash', 'at']), Index(fields=['customer_id', 'at']), Index(fields=['invite_code_id', 'at'])], 'pk_attr': 'id', 'table_description': 'One time an invite code was seen: scanned (plain QR, mini-program code, poster), opened from'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='InviteReferral',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('referee', fields.OneToOneField('models.Customer', source_field='referee_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('invite_code', fields.ForeignKeyField('models.InviteCode', source_field='invite_code_id', db_constraint=True, to_field='id', related_name='referrals', on_delete=OnDelete.RESTRICT)),
                ('inviter_customer', fields.ForeignKeyField('models.Customer', source_field='inviter_customer_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('inviter_staff', fields.ForeignKeyField('models.Staff', source_field='inviter_staff_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('staff_credit', fields.CharField(null=True, max_length=8)),
                ('branch', fields.ForeignKeyField('models.Branch', source_field='branch_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('bank', fields.ForeignKeyField('models.Bank', source_field='bank_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('campaign_id', fields.BigIntField(null=True, db_index=True)),
                ('first_touch', fields.ForeignKeyField('models.InviteTouch', source_field='first_touch_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('first_touch_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('channel', fields.CharField(max_length=32)),
                ('device_hash', fields.CharField(null=True, max_length=64)),
                ('network_hash', fields.CharField(null=True, max_length=64)),
                ('stage', fields.CharField(default='registered', max_length=16)),
                ('bound_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('applied_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('approved_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('disbursed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('application_id', fields.BigIntField(null=True)),
                ('loan_id', fields.BigIntField(null=True)),
                ('disbursed_principal_fen', fields.BigIntField(null=True)),
                ('voided_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('void_reason', fields.CharField(null=True, max_length=32)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'invite_referral', 'app': 'models', 'indexes': [Index(fields=['inviter_customer_id', 'id']), Index(fields=['inviter_staff_id', 'stage']), Index(fields=['branch_id', 'stage']), Index(fields=['bank_id', 'stage'])], 'pk_attr': 'id', 'table_description': 'A person (the referee) bound to whoever invited them, once and for good, and how far they'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='KnownDevice',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('device_hash', fields.CharField(max_length=64)),
                ('owner_kind', fields.CharField(max_length=8)),
                ('owner_id', fields.BigIntField()),
                ('first_seen_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_seen_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'known_device', 'app': 'models', 'unique_together': (('device_hash', 'owner_kind', 'owner_id'),), 'indexes': [Index(fields=['owner_kind', 'owner_id'])], 'pk_attr': 'id', 'table_description': 'A device (by keyed hash) a customer or staff member has used: a person invited on an'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OutboxReceipt',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('message_id', fields.BigIntField()),
                ('listener', fields.CharField(max_length=64)),
                ('handled_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'outbox_receipt', 'app': 'models', 'unique_together': (('message_id', 'listener'),), 'pk_attr': 'id', 'table_description': 'One listener of a fanned-out topic handled one message: it is not run for it again.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WxaCodeImage',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('invite_code', fields.ForeignKeyField('models.InviteCode', source_field='invite_code_id', db_constraint=True, to_field='id', related_name='wxa_images', on_delete=OnDelete.CASCADE)),
                ('page', fields.CharField(max_length=128)),
                ('width', fields.IntField()),
                ('png', fields.BinaryField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'invite_wxa_code', 'app': 'models', 'unique_together': (('invite_code', 'page', 'width'),), 'pk_attr': 'id', 'table_description': 'A mini-program code image WeChat drew for an invite code (``getwxacodeunlimit``). WeChat'},
            bases=['Model'],
        ),
    ]
