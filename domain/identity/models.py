from tortoise import fields
from tortoise.models import Model


class RefreshToken(Model):
    """One link in a refresh-token family. Only a hash of the token is kept.

    Each refresh uses a token once and issues the next one in the same family;
    presenting a used token again means it leaked, and the whole family is revoked.
    """

    id = fields.BigIntField(primary_key=True)
    family = fields.UUIDField(db_index=True)
    member = fields.ForeignKeyField("loyalty.Member", related_name=False, on_delete=fields.CASCADE)
    token_hash = fields.CharField(max_length=64, unique=True)
    issued_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "refresh_tokens"
