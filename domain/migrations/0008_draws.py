from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index
from tortoise.migrations.constraints import CheckConstraint, UniqueConstraint

class Migration(migrations.Migration):
    dependencies = [('loyalty', '0007_segments_offers')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Draw',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('prize', fields.CharField(max_length=80)),
                ('description', fields.CharField(default='', max_length=500)),
                ('winners', fields.IntField()),
                ('entry_cost', fields.BigIntField()),
                ('max_entries_per_member', fields.IntField()),
                ('closes_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('state', fields.CharField(default='OPEN', max_length=12)),
                ('seed', fields.CharField(null=True, max_length=64)),
                ('reward', fields.ForeignKeyField('loyalty.Reward', source_field='reward_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_by', fields.CharField(max_length=100)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('drawn_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('cancelled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'draws', 'app': 'loyalty', 'indexes': [Index(fields=['state', 'closes_at'])], 'pk_attr': 'id', 'table_description': 'A points lottery: members buy entries until `closes_at`; then the worker records a'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='DrawEntry',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('draw', fields.ForeignKeyField('loyalty.Draw', source_field='draw_id', db_constraint=True, to_field='id', related_name='entries', on_delete=OnDelete.CASCADE)),
                ('member', fields.ForeignKeyField('loyalty.Member', source_field='member_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('idempotency_key', fields.CharField(max_length=100)),
                ('paid_by', fields.ForeignKeyField('loyalty.LedgerEntry', source_field='paid_by_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('refunded_by', fields.ForeignKeyField('loyalty.LedgerEntry', source_field='refunded_by_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('won', fields.BooleanField(default=False)),
                ('coupon', fields.ForeignKeyField('loyalty.Coupon', source_field='coupon_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'draw_entries', 'app': 'loyalty', 'indexes': [Index(fields=['draw_id', 'member_id'])], 'pk_attr': 'id', 'table_description': 'One ticket. Its id is the entry number the draw is run over.'},
            bases=['Model'],
        ),
        ops.AlterField(
            model_name='Coupon',
            name='entry',
            field=fields.ForeignKeyField('loyalty.LedgerEntry', source_field='entry_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT),
        ),
        # Tortoise's CreateModel does not create Meta.constraints: added here.
        ops.AddConstraint(model_name='Draw', constraint=CheckConstraint(check='winners > 0', name='draws_winners_positive')),
        ops.AddConstraint(model_name='Draw', constraint=CheckConstraint(check='entry_cost > 0', name='draws_entry_cost_positive')),
        ops.AddConstraint(model_name='Draw', constraint=CheckConstraint(check='max_entries_per_member > 0', name='draws_cap_positive')),
        ops.AddConstraint(model_name='DrawEntry', constraint=UniqueConstraint(fields=('member_id', 'idempotency_key'), name='draw_entries_key_once')),
        # The KPIs' reads (domain/*/repository.py, "reads for KPIs") scan these covering
        # indexes instead of the tables (index-only scans: bench/analytics). Not on the
        # models: Tortoise's Index has no INCLUDE.
        ops.RunSQL(
            [
                'CREATE INDEX purchases_kpis ON purchases (member_id, occurred_at) INCLUDE (amount, refunded_amount)',
                'CREATE INDEX ledger_entries_kpis ON ledger_entries (occurred_at) INCLUDE (kind, amount, wallet_id)',
            ],
            reverse_sql=['DROP INDEX purchases_kpis', 'DROP INDEX ledger_entries_kpis'],
        ),
    ]
