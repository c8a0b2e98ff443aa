from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0002_channels')]

    initial = False

    operations = [
        ops.AlterField(
            model_name='Consent',
            name='channel',
            field=fields.CharField(max_length=100),
        ),
    ]
