from tortoise import fields
from tortoise.models import Model


class Member(Model):
    id = fields.UUIDField(primary_key=True)
    # Printed on the card and read out at the till: short, unguessable (see numbers.py).
    member_number = fields.CharField(max_length=16, unique=True)
    # Stored lower-cased; NULL for a phone-only Firebase sign-in.
    email = fields.CharField(max_length=254, unique=True, null=True)
    display_name = fields.CharField(max_length=80, null=True)
    birthday = fields.DateField(null=True)
    timezone = fields.CharField(max_length=64, default="UTC")
    locale = fields.CharField(max_length=35, default="en")
    # Consent is opt-in: nothing is sent until the member says yes.
    push_marketing = fields.BooleanField(default=False)
    location_nudges = fields.BooleanField(default=False)
    firebase_uid = fields.CharField(max_length=128, unique=True, null=True)
    # The tier the member holds: raised at once when earned, lowered only at requalification.
    tier_key = fields.CharField(max_length=32, default="")
    tier_changed_at = fields.DatetimeField(null=True)
    # Shared by the member to invite friends; the friend enrols with it.
    referral_code = fields.CharField(max_length=12, unique=True, null=True)
    referred_by = fields.ForeignKeyField("loyalty.Member", related_name=False, null=True, on_delete=fields.SET_NULL)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "members"
        indexes = (("created_at", "id"),)
