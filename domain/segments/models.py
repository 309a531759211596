from tortoise import fields
from tortoise.migrations.constraints import UniqueConstraint
from tortoise.models import Model


class Segment(Model):
    """A group of members: one of the four built-ins (rules in the program file) or a
    marketer's own, from composable rules (stored as JSON, compiled to SQL)."""

    id = fields.UUIDField(primary_key=True)
    key = fields.CharField(max_length=40, unique=True)
    name = fields.CharField(max_length=80)
    builtin = fields.BooleanField(default=False)
    rules = fields.JSONField(default=list)
    created_by = fields.CharField(max_length=200, default="")
    created_at = fields.DatetimeField()

    class Meta:
        table = "segments"


class SegmentMember(Model):
    """Who is in a segment now, since when (recomputed by the worker and at each purchase).
    Derived rows, without foreign keys (migration 0014 says why): whatever deletes a
    member or a segment deletes its rows here and in segment_changes."""

    id = fields.BigIntField(primary_key=True)
    segment = fields.ForeignKeyField(
        "loyalty.Segment", related_name="members", on_delete=fields.CASCADE, db_constraint=False
    )
    member = fields.ForeignKeyField("loyalty.Member", related_name=False, on_delete=fields.CASCADE, db_constraint=False)
    since = fields.DatetimeField()

    class Meta:
        table = "segment_members"
        constraints = [UniqueConstraint(fields=("segment_id", "member_id"), name="segment_members_once")]
        indexes = (("member_id",),)


class SegmentChange(Model):
    """A member entering or leaving a segment, with its time: the history journeys read."""

    id = fields.BigIntField(primary_key=True)
    segment = fields.ForeignKeyField(
        "loyalty.Segment", related_name="changes", on_delete=fields.CASCADE, db_constraint=False
    )
    member = fields.ForeignKeyField("loyalty.Member", related_name=False, on_delete=fields.CASCADE, db_constraint=False)
    change = fields.CharField(max_length=8)  # ENTERED | LEFT
    at = fields.DatetimeField()

    class Meta:
        table = "segment_changes"
        indexes = (("member_id", "at"), ("segment_id", "at"))
