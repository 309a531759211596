from tortoise import fields
from tortoise.contrib.postgres.indexes import PostgreSQLIndex
from tortoise.migrations.constraints import UniqueConstraint
from tortoise.models import Model


class JourneyRun(Model):
    """One firing of a journey for one member: the unique (journey, member, occurrence)
    makes each occurrence fire once, whatever the number of workers or passes.

    occurrence: "joined", the segment entry's time, the tier reached, the purchase count,
    the anniversary's year. state: PENDING (waiting for its delay) → DONE or SKIPPED (the
    condition no longer held, with the reason)."""

    id = fields.UUIDField(primary_key=True)
    journey_key = fields.CharField(max_length=40)
    member = fields.ForeignKeyField("loyalty.Member", related_name=False, on_delete=fields.CASCADE)
    occurrence = fields.CharField(max_length=64)
    triggered_at = fields.DatetimeField()
    due_at = fields.DatetimeField()
    state = fields.CharField(max_length=10, default="PENDING")
    reason = fields.CharField(max_length=200, null=True)
    done_at = fields.DatetimeField(null=True)

    class Meta:
        table = "journey_runs"
        constraints = [
            UniqueConstraint(fields=("journey_key", "member_id", "occurrence"), name="journey_runs_once"),
        ]
        indexes = (PostgreSQLIndex(fields=("due_at",), condition={"state": "PENDING"}, name="journey_runs_due"),)
