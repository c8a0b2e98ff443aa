from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0015_rule_books')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Campaign',
            name='payout_hold_minutes',
            field=fields.IntField(default=0),
        ),
    ]
