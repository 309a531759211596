from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.contrib.postgres.indexes import PostgreSQLIndex
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index
from tortoise.migrations.constraints import CheckConstraint, UniqueConstraint

class Migration(migrations.Migration):
    dependencies = [('loyalty', '0008_draws')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Campaign',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=120)),
                ('status', fields.CharField(default='DRAFT', max_length=12)),
                ('audience', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('variants', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('offer_id', fields.UUIDField(null=True)),
                ('holdout_percent', fields.IntField(default=0)),
                ('attribution_days', fields.IntField(default=7)),
                ('send_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('local_time', fields.BooleanField(default=False)),
                ('starts_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('started_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'campaigns', 'app': 'loyalty', 'constraints': [CheckConstraint(check='holdout_percent BETWEEN 0 AND 90', name='campaigns_holdout_range')], 'indexes': [PostgreSQLIndex(fields=['starts_at'], name='campaigns_due', condition={'status': 'SCHEDULED'})], 'pk_attr': 'id', 'table_description': 'A push to an audience, once, at an absolute time or at a local hour in each'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='CampaignRecipient',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('campaign', fields.ForeignKeyField('loyalty.Campaign', source_field='campaign_id', db_constraint=True, to_field='id', related_name='recipients', on_delete=OnDelete.CASCADE)),
                ('member', fields.ForeignKeyField('loyalty.Member', source_field='member_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('variant', fields.CharField(null=True, max_length=20)),
                ('notification_id', fields.UUIDField(null=True, unique=True)),
                ('outcome', fields.CharField(max_length=12)),
                ('reason', fields.CharField(null=True, max_length=200)),
                ('planned_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'campaign_recipients', 'app': 'loyalty', 'constraints': [UniqueConstraint(fields=('campaign_id', 'member_id'), name='campaign_recipients_once')], 'indexes': [Index(fields=['member_id'])], 'pk_attr': 'id', 'table_description': "One member of a campaign's audience, chosen once: the unique (campaign, member)"},
            bases=['Model'],
        ),
        ops.AddConstraint(model_name='Campaign', constraint=CheckConstraint(check='holdout_percent BETWEEN 0 AND 90', name='campaigns_holdout_range')),
        ops.AddConstraint(model_name='CampaignRecipient', constraint=UniqueConstraint(fields=('campaign_id', 'member_id'), name='campaign_recipients_once')),
    ]
