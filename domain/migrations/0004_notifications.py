from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('loyalty', '0003_live_updates')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Device',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('member', fields.ForeignKeyField('loyalty.Member', source_field='member_id', db_constraint=True, to_field='id', related_name='devices', on_delete=OnDelete.CASCADE)),
                ('fcm_token', fields.CharField(unique=True, max_length=4096)),
                ('installation_id', fields.CharField(null=True, max_length=200)),
                ('platform', fields.CharField(max_length=8)),
                ('app_version', fields.CharField(null=True, max_length=40)),
                ('last_seen_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'devices', 'app': 'loyalty', 'pk_attr': 'id', 'table_description': 'A phone or browser of a member that can receive pushes.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Notification',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('member', fields.ForeignKeyField('loyalty.Member', source_field='member_id', db_constraint=True, to_field='id', related_name='notifications', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharField(max_length=16)),
                ('title', fields.CharField(max_length=120)),
                ('body', fields.CharField(max_length=500)),
                ('data', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('dedupe_key', fields.CharField(unique=True, max_length=200)),
                ('state', fields.CharField(default='QUEUED', max_length=12)),
                ('reason', fields.CharField(null=True, max_length=200)),
                ('due_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('claimed_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('attempts', fields.IntField(default=0)),
                ('provider_message_id', fields.CharField(null=True, max_length=300)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('read_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('opened_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'notifications', 'app': 'loyalty', 'indexes': [Index(fields=['state', 'due_at']), Index(fields=['member_id', 'created_at']), Index(fields=['member_id', 'state', 'sent_at'])], 'pk_attr': 'id', 'table_description': 'One message to one member, from the decision to send it to its outcome.'},
            bases=['Model'],
        ),
    ]
