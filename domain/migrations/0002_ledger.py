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
    dependencies = [('loyalty', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Purchase',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('member', fields.ForeignKeyField('loyalty.Member', source_field='member_id', db_constraint=True, to_field='id', related_name='purchases', on_delete=OnDelete.CASCADE)),
                ('channel', fields.CharField(max_length=8)),
                ('store_key', fields.CharField(default='', max_length=100)),
                ('external_id', fields.CharField(max_length=100)),
                ('amount', fields.DecimalField(max_digits=14, decimal_places=3)),
                ('currency', fields.CharField(max_length=3)),
                ('points_earned', fields.BigIntField(default=0)),
                ('cashback_earned', fields.BigIntField(default=0)),
                ('refunded_amount', fields.DecimalField(default=0, max_digits=14, decimal_places=3)),
                ('points_reversed', fields.BigIntField(default=0)),
                ('cashback_reversed', fields.BigIntField(default=0)),
                ('shortfall', fields.BigIntField(default=0)),
                ('occurred_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'purchases', 'app': 'loyalty', 'indexes': [Index(fields=['external_id']), Index(fields=['member_id', 'occurred_at'])], 'pk_attr': 'id', 'table_description': 'A receipt, recorded once per (channel, store, external id) however often it is sent.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Refund',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('purchase', fields.ForeignKeyField('loyalty.Purchase', source_field='purchase_id', db_constraint=True, to_field='id', related_name='refunds', on_delete=OnDelete.CASCADE)),
                ('amount', fields.DecimalField(max_digits=14, decimal_places=3)),
                ('points_reversed', fields.BigIntField()),
                ('cashback_reversed', fields.BigIntField()),
                ('shortfall', fields.BigIntField()),
                ('idempotency_key', fields.CharField(null=True, max_length=100)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'refunds', 'app': 'loyalty', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Reward',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=80)),
                ('description', fields.CharField(default='', max_length=500)),
                ('points_cost', fields.BigIntField()),
                ('stock', fields.IntField(null=True)),
                ('min_tier_rank', fields.IntField(default=0)),
                ('coupon_valid_days', fields.IntField(default=30)),
                ('active', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'rewards', 'app': 'loyalty', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Wallet',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('member', fields.ForeignKeyField('loyalty.Member', source_field='member_id', db_constraint=True, to_field='id', related_name='wallets', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharField(max_length=16)),
                ('balance', fields.BigIntField(default=0)),
                ('pending', fields.BigIntField(default=0)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'wallets', 'app': 'loyalty', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LedgerEntry',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('wallet', fields.ForeignKeyField('loyalty.Wallet', source_field='wallet_id', db_constraint=True, to_field='id', related_name='entries', on_delete=OnDelete.CASCADE)),
                ('member', fields.ForeignKeyField('loyalty.Member', source_field='member_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharField(max_length=16)),
                ('amount', fields.BigIntField()),
                ('balance_after', fields.BigIntField()),
                ('qualifying', fields.BigIntField(default=0)),
                ('description', fields.CharField(max_length=200)),
                ('explanation', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('purchase', fields.ForeignKeyField('loyalty.Purchase', source_field='purchase_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('dedupe_key', fields.CharField(null=True, unique=True, max_length=200)),
                ('occurred_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'ledger_entries', 'app': 'loyalty', 'indexes': [Index(fields=['wallet_id', 'id']), Index(fields=['member_id', 'id']), Index(fields=['member_id', 'occurred_at'])], 'pk_attr': 'id', 'table_description': "One change of a wallet's spendable balance. Never updated, never deleted."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Coupon',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('code', fields.CharField(unique=True, max_length=20)),
                ('member', fields.ForeignKeyField('loyalty.Member', source_field='member_id', db_constraint=True, to_field='id', related_name='coupons', on_delete=OnDelete.CASCADE)),
                ('reward', fields.ForeignKeyField('loyalty.Reward', source_field='reward_id', db_constraint=True, to_field='id', related_name='coupons', on_delete=OnDelete.RESTRICT)),
                ('entry', fields.ForeignKeyField('loyalty.LedgerEntry', source_field='entry_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('idempotency_key', fields.CharField(max_length=100)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('redeemed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('redeemed_by', fields.CharField(null=True, max_length=200)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'coupons', 'app': 'loyalty', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Lot',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('wallet', fields.ForeignKeyField('loyalty.Wallet', source_field='wallet_id', db_constraint=True, to_field='id', related_name='lots', on_delete=OnDelete.CASCADE)),
                ('amount', fields.BigIntField()),
                ('remaining', fields.BigIntField()),
                ('state', fields.CharField(max_length=16)),
                ('earned_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('available_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('purchase', fields.ForeignKeyField('loyalty.Purchase', source_field='purchase_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('description', fields.CharField(max_length=200)),
                ('explanation', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('qualifying', fields.BigIntField(default=0)),
            ],
            options={'table': 'lots', 'app': 'loyalty', 'indexes': [Index(fields=['wallet_id', 'state', 'expires_at']), Index(fields=['state', 'expires_at']), Index(fields=['state', 'available_at'])], 'pk_attr': 'id', 'table_description': 'Points from one credit. Spending takes from the lots that expire first.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WalletEvent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('member', fields.ForeignKeyField('loyalty.Member', source_field='member_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('wallet', fields.ForeignKeyField('loyalty.Wallet', source_field='wallet_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('entry', fields.ForeignKeyField('loyalty.LedgerEntry', source_field='entry_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharField(max_length=24)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'wallet_events', 'app': 'loyalty', 'indexes': [Index(fields=['member_id', 'id'])], 'pk_attr': 'id', 'table_description': 'The outbox: a committed change that subscribers are told about, written in'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Member',
            name='referral_code',
            field=fields.CharField(null=True, unique=True, max_length=12),
        ),
        ops.AddField(
            model_name='Member',
            name='referred_by',
            field=fields.ForeignKeyField('loyalty.Member', source_field='referred_by_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL),
        ),
        ops.AddField(
            model_name='Member',
            name='tier_changed_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Member',
            name='tier_key',
            field=fields.CharField(default='', max_length=32),
        ),
        # Tortoise's CreateModel does not create Meta.constraints: added here.
        ops.AddConstraint(model_name='Purchase', constraint=UniqueConstraint(fields=('channel', 'store_key', 'external_id'), name='purchases_receipt_once')),
        ops.AddConstraint(model_name='Purchase', constraint=CheckConstraint(check='amount > 0', name='purchases_amount_positive')),
        ops.AddConstraint(model_name='Purchase', constraint=CheckConstraint(check='refunded_amount >= 0 AND refunded_amount <= amount', name='purchases_refund_within_amount')),
        ops.AddConstraint(model_name='Refund', constraint=UniqueConstraint(fields=('purchase_id', 'idempotency_key'), name='refunds_key_once')),
        ops.AddConstraint(model_name='Reward', constraint=CheckConstraint(check='points_cost > 0', name='rewards_cost_positive')),
        ops.AddConstraint(model_name='Reward', constraint=CheckConstraint(check='stock IS NULL OR stock >= 0', name='rewards_stock_not_negative')),
        ops.AddConstraint(model_name='Wallet', constraint=UniqueConstraint(fields=('member_id', 'kind'), name='wallets_one_per_kind')),
        ops.AddConstraint(model_name='Wallet', constraint=CheckConstraint(check='balance >= 0', name='wallets_balance_not_negative')),
        ops.AddConstraint(model_name='Wallet', constraint=CheckConstraint(check='pending >= 0', name='wallets_pending_not_negative')),
        ops.AddConstraint(model_name='LedgerEntry', constraint=CheckConstraint(check='amount <> 0', name='ledger_entries_amount_not_zero')),
        ops.AddConstraint(model_name='Coupon', constraint=UniqueConstraint(fields=('member_id', 'idempotency_key'), name='coupons_key_once')),
        ops.AddConstraint(model_name='Lot', constraint=CheckConstraint(check='remaining >= 0 AND remaining <= amount', name='lots_remaining_in_range')),
        ops.AddConstraint(model_name='Lot', constraint=CheckConstraint(check='amount > 0', name='lots_amount_positive')),
    ]
