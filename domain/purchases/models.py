from tortoise import fields
from tortoise.migrations.constraints import CheckConstraint, UniqueConstraint
from tortoise.models import Model


class Purchase(Model):
    """A receipt, recorded once per (channel, store, external id) however often it is sent."""

    id = fields.UUIDField(primary_key=True)
    member = fields.ForeignKeyField("loyalty.Member", related_name="purchases", on_delete=fields.CASCADE)
    channel = fields.CharField(max_length=8)  # STORE | ONLINE | APP
    store_key = fields.CharField(max_length=100, default="")  # '' when no store
    external_id = fields.CharField(max_length=100)
    amount = fields.DecimalField(max_digits=14, decimal_places=3)
    currency = fields.CharField(max_length=3)
    points_earned = fields.BigIntField(default=0)
    cashback_earned = fields.BigIntField(default=0)  # minor units
    refunded_amount = fields.DecimalField(max_digits=14, decimal_places=3, default=0)
    points_reversed = fields.BigIntField(default=0)
    cashback_reversed = fields.BigIntField(default=0)
    # Points a refund should have taken back but had been spent already.
    shortfall = fields.BigIntField(default=0)
    occurred_at = fields.DatetimeField()

    class Meta:
        table = "purchases"
        constraints = [
            UniqueConstraint(fields=("channel", "store_key", "external_id"), name="purchases_receipt_once"),
            CheckConstraint(check="amount > 0", name="purchases_amount_positive"),
            CheckConstraint(
                check="refunded_amount >= 0 AND refunded_amount <= amount", name="purchases_refund_within_amount"
            ),
        ]
        indexes = (("external_id",), ("member_id", "occurred_at"))


class Refund(Model):
    id = fields.BigIntField(primary_key=True)
    purchase = fields.ForeignKeyField("loyalty.Purchase", related_name="refunds", on_delete=fields.CASCADE)
    amount = fields.DecimalField(max_digits=14, decimal_places=3)
    points_reversed = fields.BigIntField()
    cashback_reversed = fields.BigIntField()
    shortfall = fields.BigIntField()
    idempotency_key = fields.CharField(max_length=100, null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "refunds"
        constraints = [UniqueConstraint(fields=("purchase_id", "idempotency_key"), name="refunds_key_once")]
