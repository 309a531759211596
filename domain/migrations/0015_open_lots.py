from tortoise import migrations
from tortoise.contrib.postgres.indexes import PostgreSQLIndex
from tortoise.migrations import operations as ops


# The lots' two global indexes hold the open lots only. A lot is written again when it is
# spent, released or expired; each such update of a lot left in a full index adds an entry
# to it at a random page, and the closed lots (every lot ends spent, expired or cancelled)
# stay in it for ever. Partial on the open lots, an update that closes a lot adds nothing
# to them: the daily expiry of 1,000,000 lots went from 43.8 to 24.3-24.9 s (bench/expire; the
# bare UPDATE of the same rows from 17.8 to 10.0-10.3 s).
# - pending lots by release time (the daily pass's release, `release_due`);
# - spendable lots by expiry moment (the expiring-points nudge, `expiring_points`): a
#   condition beyond equality, which Tortoise's index cannot declare, hence SQL.
class Migration(migrations.Migration):
    dependencies = [("loyalty", "0014_kpis")]

    initial = False

    operations = [
        ops.RemoveIndex(model_name="Lot", name=None, fields=["state", "expires_at"]),
        ops.RemoveIndex(model_name="Lot", name=None, fields=["state", "available_at"]),
        ops.AddIndex(
            model_name="Lot",
            index=PostgreSQLIndex(
                fields=["available_at"], name="lots_pending_by_release", condition={"state": "PENDING"}
            ),
        ),
        ops.RunSQL(
            ["CREATE INDEX lots_open_by_expiry ON lots (expires_at) WHERE state = 'AVAILABLE' AND remaining > 0"],
            reverse_sql=["DROP INDEX lots_open_by_expiry"],
        ),
    ]
