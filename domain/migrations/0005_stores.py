from tortoise import migrations
from tortoise.migrations import operations as ops
from uuid import uuid4
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('loyalty', '0004_notifications')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Store',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('key', fields.CharField(unique=True, max_length=40)),
                ('name', fields.CharField(max_length=80)),
                ('latitude', fields.FloatField()),
                ('longitude', fields.FloatField()),
                ('radius_meters', fields.IntField()),
                ('message', fields.CharField(null=True, max_length=300)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'stores', 'app': 'loyalty', 'pk_attr': 'id', 'table_description': 'A store added by a marketer (stores can also come from the program file).'},
            bases=['Model'],
        ),
    ]
