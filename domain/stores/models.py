from tortoise import fields
from tortoise.models import Model


class Store(Model):
    """A store added by a marketer (stores can also come from the program file)."""

    id = fields.UUIDField(primary_key=True)
    key = fields.CharField(max_length=40, unique=True)
    name = fields.CharField(max_length=80)
    latitude = fields.FloatField()
    longitude = fields.FloatField()
    radius_meters = fields.IntField()
    message = fields.CharField(max_length=300, null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "stores"
