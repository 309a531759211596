from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

# notifications.device_id: a notification for one named device of its member (a
# marketer's test send of a campaign). And the journeys job's reads (every minute, over
# the last 7 days), each from an index instead of a scan of members or purchases:
# - anniversaries: members by the month and day they joined (UTC), an expression the
#   members area's anniversaries_in repeats word for word;
# - the n-th purchase: the purchases that count (not wholly refunded) of a window;
# - tier upgrades: members whose tier moved above the entry one, by when.
# Expression and partial indexes: Tortoise's models cannot declare them.
JOINED_DAY = (
    "((date_part('month', created_at AT TIME ZONE 'UTC') * 100"
    " + date_part('day', created_at AT TIME ZONE 'UTC'))::int)"
)


class Migration(migrations.Migration):
    dependencies = [('loyalty', '0012_standing')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Notification',
            name='device_id',
            field=fields.UUIDField(null=True),
        ),
        ops.RunSQL(
            [
                f'CREATE INDEX members_joined_day ON members ({JOINED_DAY}, created_at)',
                'CREATE INDEX purchases_counted_at ON purchases (occurred_at, member_id)'
                ' WHERE refunded_amount < amount',
                "CREATE INDEX members_tier_moves ON members (tier_changed_at) WHERE tier_key <> ''",
            ],
            reverse_sql=[
                'DROP INDEX members_tier_moves',
                'DROP INDEX purchases_counted_at',
                'DROP INDEX members_joined_day',
            ],
        ),
    ]
