from tortoise import fields
from tortoise.migrations.constraints import CheckConstraint, UniqueConstraint
from tortoise.models import Model


class Draw(Model):
    """A points lottery: members buy entries until `closes_at`; then the worker records a
    seed (state CLOSED), draws the winners from it and publishes it (DRAWN)."""

    id = fields.UUIDField(primary_key=True)
    prize = fields.CharField(max_length=80)
    description = fields.CharField(max_length=500, default="")
    winners = fields.IntField()
    entry_cost = fields.BigIntField()
    max_entries_per_member = fields.IntField()
    closes_at = fields.DatetimeField()
    state = fields.CharField(max_length=12, default="OPEN")  # OPEN | CLOSED | DRAWN | CANCELLED
    # Recorded before the draw, shown once it is drawn: anyone can re-run it (draws.service.pick_winners).
    seed = fields.CharField(max_length=64, null=True)
    # The (hidden) reward whose coupons the winners get.
    reward = fields.ForeignKeyField("loyalty.Reward", related_name=False, on_delete=fields.RESTRICT)
    created_by = fields.CharField(max_length=100)
    created_at = fields.DatetimeField()
    drawn_at = fields.DatetimeField(null=True)
    cancelled_at = fields.DatetimeField(null=True)

    class Meta:
        table = "draws"
        indexes = (("state", "closes_at"),)
        constraints = [
            CheckConstraint(check="winners > 0", name="draws_winners_positive"),
            CheckConstraint(check="entry_cost > 0", name="draws_entry_cost_positive"),
            CheckConstraint(check="max_entries_per_member > 0", name="draws_cap_positive"),
        ]


class DrawEntry(Model):
    """One ticket. Its id is the entry number the draw is run over."""

    id = fields.BigIntField(primary_key=True)
    draw = fields.ForeignKeyField("loyalty.Draw", related_name="entries", on_delete=fields.CASCADE)
    member = fields.ForeignKeyField("loyalty.Member", related_name=False, on_delete=fields.CASCADE)
    idempotency_key = fields.CharField(max_length=100)
    # The REDEEM entry that paid for it, and the one that gave the points back if cancelled.
    paid_by = fields.ForeignKeyField("loyalty.LedgerEntry", related_name=False, on_delete=fields.RESTRICT)
    refunded_by = fields.ForeignKeyField(
        "loyalty.LedgerEntry", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    won = fields.BooleanField(default=False)
    coupon = fields.ForeignKeyField("loyalty.Coupon", related_name=False, null=True, on_delete=fields.SET_NULL)
    created_at = fields.DatetimeField()

    class Meta:
        table = "draw_entries"
        indexes = (("draw_id", "member_id"),)
        constraints = [UniqueConstraint(fields=("member_id", "idempotency_key"), name="draw_entries_key_once")]
