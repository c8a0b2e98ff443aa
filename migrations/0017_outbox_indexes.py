"""The outbox's indexes for what the relay asks (infra/outbox.py, ``OutboxMessage.Meta``).

The index builds lock the table against writes while they run, and the two partial ones hold only
pending and leased rows, but the (topic, created_at) one covers every message ever sent: on a
deployed database with a large outbox, migrate in a quiet hour.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index, PartialIndex

class Migration(migrations.Migration):
    dependencies = [('models', '0016_payout_hold')]

    initial = False

    operations = [
        ops.AlterField(
            model_name='OutboxMessage',
            name='next_attempt_at',
            field=fields.DatetimeField(auto_now=False, auto_now_add=False),
        ),
        ops.AlterField(
            model_name='OutboxMessage',
            name='status',
            field=fields.CharField(default='pending', max_length=16),
        ),
        ops.AlterField(
            model_name='OutboxMessage',
            name='topic',
            field=fields.CharField(max_length=64),
        ),
        ops.AddIndex(
            model_name='OutboxMessage',
            index=PartialIndex(fields=['next_attempt_at', 'id'], name='outbox_message_due', condition={'status': 'pending'}),
        ),
        ops.AddIndex(
            model_name='OutboxMessage',
            index=PartialIndex(fields=['lease_until'], name='outbox_message_leased', condition={'status': 'sending'}),
        ),
        ops.AddIndex(
            model_name='OutboxMessage',
            index=Index(fields=['topic', 'created_at'], name='outbox_message_topic_created'),
        ),
    ]
