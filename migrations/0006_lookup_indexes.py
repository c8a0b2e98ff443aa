from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0005_products_applications')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='Consent',
            index=Index(fields=['customer_id', 'bank_id', 'purpose']),
        ),
        ops.AddIndex(
            model_name='CustomerIdentity',
            index=Index(fields=['customer_id', 'kind']),
        ),
        ops.AddIndex(
            model_name='WeChatAccount',
            index=Index(fields=['customer_id', 'appid']),
        ),
    ]
