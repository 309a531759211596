from tortoise import fields
from tortoise.contrib.postgres.indexes import PostgreSQLIndex
from tortoise.migrations.constraints import CheckConstraint, UniqueConstraint
from tortoise.models import Model


class Campaign(Model):
    """A push to an audience, once, at an absolute time or at a local hour in each
    member's time zone.

    status: DRAFT → SCHEDULED → SENDING (recipients chosen, messages queued) → SENT
    (every recipient has an outcome); DRAFT or SCHEDULED → CANCELLED; SENDING ⇄ PAUSED."""

    id = fields.UUIDField(primary_key=True)
    name = fields.CharField(max_length=120)
    status = fields.CharField(max_length=12, default="DRAFT")
    # {"segment_keys": [...], "tier_keys": [...], "member_ids": [...]}
    audience = fields.JSONField()
    # [{"key", "weight", "title", "body", "deep_link", "locales": {locale: {"title", "body"}}}]
    variants = fields.JSONField()
    offer_id = fields.UUIDField(null=True)  # validated against offers at merge (built in parallel)
    holdout_percent = fields.IntField(default=0)
    attribution_days = fields.IntField(default=7)
    send_at = fields.DatetimeField(null=True)
    # When true, send_at's wall-clock date and time are read in each member's zone.
    local_time = fields.BooleanField(default=False)
    # When a worker picks the campaign up: send_at, or the earliest zone's local hour.
    starts_at = fields.DatetimeField(null=True)
    started_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "campaigns"
        indexes = (PostgreSQLIndex(fields=("starts_at",), condition={"status": "SCHEDULED"}, name="campaigns_due"),)
        constraints = [
            CheckConstraint(check="holdout_percent BETWEEN 0 AND 90", name="campaigns_holdout_range"),
        ]


class CampaignRecipient(Model):
    """One member of a campaign's audience, chosen once: the unique (campaign, member)
    makes a second start, by another worker or after a crash, add nobody twice.

    outcome: HOLDOUT (the control group: nothing sent), PENDING (queued), SENT, FAILED,
    SUPPRESSED (with the policy's reason)."""

    id = fields.UUIDField(primary_key=True)
    campaign = fields.ForeignKeyField("loyalty.Campaign", related_name="recipients", on_delete=fields.CASCADE)
    member = fields.ForeignKeyField("loyalty.Member", related_name=False, on_delete=fields.CASCADE)
    variant = fields.CharField(max_length=20, null=True)  # null for the holdout
    notification_id = fields.UUIDField(null=True, unique=True)
    outcome = fields.CharField(max_length=12)
    reason = fields.CharField(max_length=200, null=True)
    planned_at = fields.DatetimeField()  # when it was (or would have been, for the holdout) due
    sent_at = fields.DatetimeField(null=True)

    class Meta:
        table = "campaign_recipients"
        constraints = [UniqueConstraint(fields=("campaign_id", "member_id"), name="campaign_recipients_once")]
        indexes = (("member_id",),)
