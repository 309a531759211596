from tortoise import fields
from tortoise.migrations.constraints import CheckConstraint, UniqueConstraint
from tortoise.models import Model


class Offer(Model):
    """A personal offer: who it targets (segments, tiers, members), where (stores, none:
    everywhere), when, and how often it may be clipped."""

    id = fields.UUIDField(primary_key=True)
    title = fields.CharField(max_length=120)
    description = fields.CharField(max_length=500, default="")
    kind = fields.CharField(max_length=20)  # BONUS_POINTS | POINTS_MULTIPLIER | DISCOUNT | FREE_ITEM
    value = fields.DecimalField(max_digits=12, decimal_places=2)
    segment_keys = fields.JSONField(default=list)
    tier_keys = fields.JSONField(default=list)
    member_ids = fields.JSONField(default=list)
    store_keys = fields.JSONField(default=list)  # empty: any store
    valid_from = fields.DatetimeField()
    valid_until = fields.DatetimeField()
    usage_limit = fields.IntField(null=True)  # activations in all; NULL: unlimited
    activations = fields.IntField(default=0)
    created_by = fields.CharField(max_length=200, default="")
    created_at = fields.DatetimeField()

    class Meta:
        table = "offers"
        constraints = [
            CheckConstraint(check="valid_until > valid_from", name="offers_valid_window"),
            CheckConstraint(check="usage_limit IS NULL OR activations <= usage_limit", name="offers_within_limit"),
        ]
        indexes = (("valid_until", "valid_from"),)


class OfferActivation(Model):
    """A member clipped an offer (once); `used_at` once a purchase (or the till) used it."""

    id = fields.UUIDField(primary_key=True)
    offer = fields.ForeignKeyField("loyalty.Offer", related_name="activation_rows", on_delete=fields.CASCADE)
    member = fields.ForeignKeyField("loyalty.Member", related_name=False, on_delete=fields.CASCADE)
    activated_at = fields.DatetimeField()
    coupon_code = fields.CharField(max_length=20, null=True, unique=True)  # DISCOUNT, FREE_ITEM
    used_at = fields.DatetimeField(null=True)
    purchase_id = fields.UUIDField(null=True)

    class Meta:
        table = "offer_activations"
        constraints = [UniqueConstraint(fields=("offer_id", "member_id"), name="offer_activations_once")]
        indexes = (("member_id", "used_at"),)
