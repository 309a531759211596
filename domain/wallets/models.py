"""Wallets, the append-only ledger, the lots that credits live in, and the outbox.

Amounts are whole numbers: points, or minor units of the program currency (cents)
for a cashback wallet, so every sum is exact.
"""

from tortoise import fields
from tortoise.contrib.postgres.indexes import PostgreSQLIndex
from tortoise.migrations.constraints import CheckConstraint, UniqueConstraint
from tortoise.models import Model


class Wallet(Model):
    id = fields.UUIDField(primary_key=True)
    member = fields.ForeignKeyField("loyalty.Member", related_name="wallets", on_delete=fields.CASCADE)
    kind = fields.CharField(max_length=16)  # POINTS | CASHBACK
    balance = fields.BigIntField(default=0)
    pending = fields.BigIntField(default=0)
    updated_at = fields.DatetimeField()

    class Meta:
        table = "wallets"
        constraints = [
            UniqueConstraint(fields=("member_id", "kind"), name="wallets_one_per_kind"),
            CheckConstraint(check="balance >= 0", name="wallets_balance_not_negative"),
            CheckConstraint(check="pending >= 0", name="wallets_pending_not_negative"),
        ]


class LedgerEntry(Model):
    """One change of a wallet's spendable balance. Never updated, never deleted.

    Within a member, ids grow in commit order: every writer locks the member's
    wallets first, so an id is a gap-free cursor for history and live updates.
    """

    id = fields.BigIntField(primary_key=True)
    wallet = fields.ForeignKeyField("loyalty.Wallet", related_name="entries", on_delete=fields.CASCADE)
    member = fields.ForeignKeyField("loyalty.Member", related_name=False, on_delete=fields.CASCADE)
    # EXTEND: a marketer moved the wallet's expiry dates; 0 points, so every sum stays right.
    kind = fields.CharField(max_length=16)  # EARN BONUS REDEEM REFUND EXPIRE ADJUST EXTEND
    amount = fields.BigIntField()
    balance_after = fields.BigIntField()
    # Points that count towards tier qualification (purchase earnings, not bonuses).
    qualifying = fields.BigIntField(default=0)
    description = fields.CharField(max_length=200)
    explanation = fields.JSONField(default=dict)  # rule, rate, multiplier, promotion…
    purchase = fields.ForeignKeyField("loyalty.Purchase", related_name=False, null=True, on_delete=fields.CASCADE)
    # Exactly-once credits (welcome, birthday 2026, adjustment key…) are unique here.
    dedupe_key = fields.CharField(max_length=200, null=True, unique=True)
    occurred_at = fields.DatetimeField()

    class Meta:
        table = "ledger_entries"
        indexes = (("wallet_id", "id"), ("member_id", "id"), ("member_id", "occurred_at"))
        constraints = [
            CheckConstraint(
                check="amount <> 0 OR kind = 'EXTEND'", name="ledger_entries_amount_not_zero_but_extensions"
            )
        ]


class Lot(Model):
    """Points from one credit. Spending takes from the lots that expire first."""

    id = fields.BigIntField(primary_key=True)
    wallet = fields.ForeignKeyField("loyalty.Wallet", related_name="lots", on_delete=fields.CASCADE)
    amount = fields.BigIntField()
    remaining = fields.BigIntField()
    state = fields.CharField(max_length=16)  # PENDING | AVAILABLE | CANCELLED
    earned_at = fields.DatetimeField()
    available_at = fields.DatetimeField()
    expires_at = fields.DatetimeField(null=True)
    purchase = fields.ForeignKeyField("loyalty.Purchase", related_name=False, null=True, on_delete=fields.CASCADE)
    # The credit's description, kept for the EARN entry written when a pending lot is released.
    description = fields.CharField(max_length=200)
    explanation = fields.JSONField(default=dict)
    qualifying = fields.BigIntField(default=0)

    class Meta:
        table = "lots"
        # Beside these, in SQL (migrations 0012 and 0015): the spendable lots by wallet and
        # by expiry moment, partial on `remaining > 0`, which a declared index cannot say.
        indexes = (
            ("wallet_id", "state", "expires_at"),
            PostgreSQLIndex(fields=("available_at",), condition={"state": "PENDING"}, name="lots_pending_by_release"),
        )
        constraints = [
            CheckConstraint(check="remaining >= 0 AND remaining <= amount", name="lots_remaining_in_range"),
            CheckConstraint(check="amount > 0", name="lots_amount_positive"),
        ]


class WalletEvent(Model):
    """The outbox: a committed change that subscribers are told about, written in
    the same transaction as the change (nothing for a rolled-back one)."""

    id = fields.BigIntField(primary_key=True)
    member = fields.ForeignKeyField("loyalty.Member", related_name=False, on_delete=fields.CASCADE)
    wallet = fields.ForeignKeyField("loyalty.Wallet", related_name=False, null=True, on_delete=fields.CASCADE)
    entry = fields.ForeignKeyField("loyalty.LedgerEntry", related_name=False, null=True, on_delete=fields.CASCADE)
    kind = fields.CharField(max_length=24)  # WALLET_UPDATED | TIER_CHANGED
    # The wallet as it was right after this change, so a replay shows history as it happened.
    balance = fields.BigIntField(null=True)
    pending = fields.BigIntField(null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "wallet_events"
        indexes = (("member_id", "id"),)
