from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.contrib.postgres.indexes import PostgreSQLIndex
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields
from tortoise.migrations.constraints import UniqueConstraint

class Migration(migrations.Migration):
    dependencies = [('loyalty', '0009_campaigns')]

    initial = False

    operations = [
        ops.CreateModel(
            name='JourneyRun',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('journey_key', fields.CharField(max_length=40)),
                ('member', fields.ForeignKeyField('loyalty.Member', source_field='member_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('occurrence', fields.CharField(max_length=64)),
                ('triggered_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('due_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('state', fields.CharField(default='PENDING', max_length=10)),
                ('reason', fields.CharField(null=True, max_length=200)),
                ('done_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'journey_runs', 'app': 'loyalty', 'constraints': [UniqueConstraint(fields=('journey_key', 'member_id', 'occurrence'), name='journey_runs_once')], 'indexes': [PostgreSQLIndex(fields=['due_at'], name='journey_runs_due', condition={'state': 'PENDING'})], 'pk_attr': 'id', 'table_description': 'One firing of a journey for one member: the unique (journey, member, occurrence)'},
            bases=['Model'],
        ),
        ops.AddConstraint(model_name='JourneyRun', constraint=UniqueConstraint(fields=('journey_key', 'member_id', 'occurrence'), name='journey_runs_once')),
    ]
