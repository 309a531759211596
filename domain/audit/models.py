from tortoise import fields
from tortoise.models import Model


class AuditEntry(Model):
    """A marketer's change: who (the token's subject), what (action, subject, input), when."""

    id = fields.BigIntField(primary_key=True)
    actor = fields.CharField(max_length=200)
    action = fields.CharField(max_length=40)  # createSegment | createOffer | createReward
    subject_id = fields.CharField(max_length=100)
    details = fields.JSONField(default=dict)
    at = fields.DatetimeField()

    class Meta:
        table = "audit_log"
        indexes = (("at", "id"),)
