from tortoise import fields
from tortoise.contrib.postgres.indexes import PostgreSQLIndex
from tortoise.models import Model


class Device(Model):
    """A phone or browser of a member that can receive pushes."""

    id = fields.UUIDField(primary_key=True)
    member = fields.ForeignKeyField("loyalty.Member", related_name="devices", on_delete=fields.CASCADE)
    # An FCM registration token belongs to one app install: registering it again for
    # another member moves it (the phone changed hands or accounts).
    fcm_token = fields.CharField(max_length=4096, unique=True)
    installation_id = fields.CharField(max_length=200, null=True)
    platform = fields.CharField(max_length=8)  # IOS | ANDROID | WEB
    app_version = fields.CharField(max_length=40, null=True)
    last_seen_at = fields.DatetimeField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "devices"


class Notification(Model):
    """One message to one member, from the decision to send it to its outcome.

    state: QUEUED (due at `due_at`), SENDING (claimed by a worker until
    `claimed_until`), SENT, FAILED, SUPPRESSED (with `reason`), HELD (a paused
    campaign's: back to QUEUED when it resumes). A campaign paused while a worker has
    some in hand holds those too: the worker's answer still lands (sent is sent), but
    if it dies, its lapsed lease leaves them HELD, not QUEUED."""

    id = fields.UUIDField(primary_key=True)
    member = fields.ForeignKeyField("loyalty.Member", related_name="notifications", on_delete=fields.CASCADE)
    # EXPIRY | BIRTHDAY | LOCATION | CAMPAIGN | JOURNEY | DRAW_WON | CAMPAIGN_TEST
    kind = fields.CharField(max_length=16)
    title = fields.CharField(max_length=120)
    body = fields.CharField(max_length=500)
    data = fields.JSONField(default=dict)
    # Set: only this device of the member gets it (a marketer's test send); null: all of
    # them. Not a foreign key: a device removed before the send leaves it to be
    # suppressed (NO_DEVICE), and removing devices (FCM prunes thousands) needs no index here.
    device_id = fields.UUIDField(null=True)
    # The same reason to write twice (a job run twice, two workers) is one notification.
    dedupe_key = fields.CharField(max_length=200, unique=True)
    state = fields.CharField(max_length=12, default="QUEUED")
    reason = fields.CharField(max_length=200, null=True)
    due_at = fields.DatetimeField()
    claimed_until = fields.DatetimeField(null=True)
    attempts = fields.IntField(default=0)
    provider_message_id = fields.CharField(max_length=300, null=True)
    sent_at = fields.DatetimeField(null=True)
    read_at = fields.DatetimeField(null=True)
    opened_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "notifications"
        indexes = (
            # The dispatcher's claim reads each kind's due rows in order, and only queued rows
            # are in it, so a backlog of 100,000 is walked, not sorted, batch after batch.
            PostgreSQLIndex(fields=("kind", "due_at", "id"), condition={"state": "QUEUED"}, name="notifications_queue"),
            # Claims whose worker died: found by their lease without reading the queue.
            PostgreSQLIndex(fields=("claimed_until",), condition={"state": "SENDING"}, name="notifications_leases"),
            ("member_id", "created_at"),
            ("member_id", "state", "sent_at"),
        )
