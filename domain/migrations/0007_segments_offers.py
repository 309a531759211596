from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index
from tortoise.migrations.constraints import CheckConstraint, UniqueConstraint

class Migration(migrations.Migration):
    dependencies = [('loyalty', '0006_notification_queue')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AuditEntry',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('actor', fields.CharField(max_length=200)),
                ('action', fields.CharField(max_length=40)),
                ('subject_id', fields.CharField(max_length=100)),
                ('details', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'audit_log', 'app': 'loyalty', 'indexes': [Index(fields=['at', 'id'])], 'pk_attr': 'id', 'table_description': "A marketer's change: who (the token's subject), what (action, subject, input), when."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Offer',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('title', fields.CharField(max_length=120)),
                ('description', fields.CharField(default='', max_length=500)),
                ('kind', fields.CharField(max_length=20)),
                ('value', fields.DecimalField(max_digits=12, decimal_places=2)),
                ('segment_keys', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('tier_keys', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('member_ids', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('store_keys', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('valid_from', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('valid_until', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('usage_limit', fields.IntField(null=True)),
                ('activations', fields.IntField(default=0)),
                ('created_by', fields.CharField(default='', max_length=200)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'offers', 'app': 'loyalty', 'indexes': [Index(fields=['valid_until', 'valid_from'])], 'pk_attr': 'id', 'table_description': 'A personal offer: who it targets (segments, tiers, members), where (stores, none:'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OfferActivation',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('offer', fields.ForeignKeyField('loyalty.Offer', source_field='offer_id', db_constraint=True, to_field='id', related_name='activation_rows', on_delete=OnDelete.CASCADE)),
                ('member', fields.ForeignKeyField('loyalty.Member', source_field='member_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('activated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('coupon_code', fields.CharField(null=True, unique=True, max_length=20)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('purchase_id', fields.UUIDField(null=True)),
            ],
            options={'table': 'offer_activations', 'app': 'loyalty', 'indexes': [Index(fields=['member_id', 'used_at'])], 'pk_attr': 'id', 'table_description': 'A member clipped an offer (once); `used_at` once a purchase (or the till) used it.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Segment',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('key', fields.CharField(unique=True, max_length=40)),
                ('name', fields.CharField(max_length=80)),
                ('builtin', fields.BooleanField(default=False)),
                ('rules', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_by', fields.CharField(default='', max_length=200)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'segments', 'app': 'loyalty', 'pk_attr': 'id', 'table_description': 'A group of members: one of the four built-ins (rules in the program file) or a'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SegmentChange',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('segment', fields.ForeignKeyField('loyalty.Segment', source_field='segment_id', db_constraint=True, to_field='id', related_name='changes', on_delete=OnDelete.CASCADE)),
                ('member', fields.ForeignKeyField('loyalty.Member', source_field='member_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('change', fields.CharField(max_length=8)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'segment_changes', 'app': 'loyalty', 'indexes': [Index(fields=['member_id', 'at']), Index(fields=['segment_id', 'at'])], 'pk_attr': 'id', 'table_description': 'A member entering or leaving a segment, with its time: the history journeys read.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SegmentMember',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('segment', fields.ForeignKeyField('loyalty.Segment', source_field='segment_id', db_constraint=True, to_field='id', related_name='members', on_delete=OnDelete.CASCADE)),
                ('member', fields.ForeignKeyField('loyalty.Member', source_field='member_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('since', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'segment_members', 'app': 'loyalty', 'indexes': [Index(fields=['member_id'])], 'pk_attr': 'id', 'table_description': 'Who is in a segment now, since when (recomputed by the worker and at each purchase).'},
            bases=['Model'],
        ),
        # Tortoise's CreateModel does not create Meta.constraints: added here.
        ops.AddConstraint(model_name='Offer', constraint=CheckConstraint(check='valid_until > valid_from', name='offers_valid_window')),
        ops.AddConstraint(model_name='Offer', constraint=CheckConstraint(check='usage_limit IS NULL OR activations <= usage_limit', name='offers_within_limit')),
        ops.AddConstraint(model_name='OfferActivation', constraint=UniqueConstraint(fields=('offer_id', 'member_id'), name='offer_activations_once')),
        ops.AddConstraint(model_name='SegmentMember', constraint=UniqueConstraint(fields=('segment_id', 'member_id'), name='segment_members_once')),
    ]
