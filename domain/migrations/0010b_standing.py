from tortoise import migrations
from tortoise.migrations import operations as ops

# A member's qualifying points per UTC day, kept by the ledger's own statements
# (domain/wallets/repository.py) in the transaction that writes the entries, so a
# standing sums at most ~366 day rows plus the entries of the window's first, partial
# day, however long the history. Not a model: its key is (member_id, day), which
# Tortoise cannot declare; the wallets area owns it beside ledger_entries.
DERIVED = ("qualifying_days",)
BACKFILL = [
    "INSERT INTO qualifying_days (member_id, day, qualifying)"
    " SELECT member_id, (occurred_at AT TIME ZONE 'UTC')::date, SUM(qualifying) FROM ledger_entries"
    " WHERE qualifying <> 0 GROUP BY 1, 2 HAVING SUM(qualifying) <> 0",
]


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0009_campaigns")]

    initial = False

    operations = [
        ops.RunSQL(
            [
                "CREATE TABLE qualifying_days (member_id uuid NOT NULL REFERENCES members (id) ON DELETE CASCADE,"
                " day date NOT NULL, qualifying bigint NOT NULL, PRIMARY KEY (member_id, day))",
                *BACKFILL,
            ],
            reverse_sql=["DROP TABLE qualifying_days"],
        ),
    ]
