from tortoise import fields
from tortoise.migrations.constraints import CheckConstraint, UniqueConstraint
from tortoise.models import Model


class Reward(Model):
    id = fields.UUIDField(primary_key=True)
    name = fields.CharField(max_length=80)
    description = fields.CharField(max_length=500, default="")
    points_cost = fields.BigIntField()
    stock = fields.IntField(null=True)  # NULL: unlimited; else how many are left
    min_tier_rank = fields.IntField(default=0)  # members below this tier do not see it
    coupon_valid_days = fields.IntField(default=30)
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "rewards"
        constraints = [
            CheckConstraint(check="points_cost > 0", name="rewards_cost_positive"),
            CheckConstraint(check="stock IS NULL OR stock >= 0", name="rewards_stock_not_negative"),
        ]


class Coupon(Model):
    id = fields.UUIDField(primary_key=True)
    code = fields.CharField(max_length=20, unique=True)
    member = fields.ForeignKeyField("loyalty.Member", related_name="coupons", on_delete=fields.CASCADE)
    reward = fields.ForeignKeyField("loyalty.Reward", related_name="coupons", on_delete=fields.RESTRICT)
    # The REDEEM entry that paid for it; none for a prize (a draw's winner paid for an entry).
    entry = fields.ForeignKeyField("loyalty.LedgerEntry", related_name=False, null=True, on_delete=fields.RESTRICT)
    idempotency_key = fields.CharField(max_length=100)
    expires_at = fields.DatetimeField()
    redeemed_at = fields.DatetimeField(null=True)
    redeemed_by = fields.CharField(max_length=200, null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "coupons"
        constraints = [UniqueConstraint(fields=("member_id", "idempotency_key"), name="coupons_key_once")]
