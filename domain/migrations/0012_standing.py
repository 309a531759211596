from tortoise import migrations
from tortoise.migrations import operations as ops

# Per-member, per-UTC-day rollups, kept by the statements that write the rows they sum,
# so a standing or one member's segments sum at most a window's days plus the rows of
# the window's first, partial day, however long the history. Not models: their keys are
# composite, which Tortoise cannot declare.
# - qualifying_days: the ledger entries' qualifying points (the wallets area's, written
#   by domain/wallets/repository.py beside ledger_entries);
# - purchase_days: per store too, the purchases not wholly refunded and their spend
#   (the purchases area's, written by domain/purchases/repository.py).
# And an index for the spendable lots' expiry moments (the app's expiringSoon).
DERIVED = ('qualifying_days', 'purchase_days')
BACKFILL = [
    "INSERT INTO qualifying_days (member_id, day, qualifying)"
    " SELECT member_id, (occurred_at AT TIME ZONE 'UTC')::date, SUM(qualifying) FROM ledger_entries"
    " WHERE qualifying <> 0 GROUP BY 1, 2 HAVING SUM(qualifying) <> 0",
    "INSERT INTO purchase_days (member_id, day, store_key, purchases, spend)"
    " SELECT member_id, (occurred_at AT TIME ZONE 'UTC')::date, store_key,"
    " COUNT(*) FILTER (WHERE refunded_amount < amount), SUM(amount - refunded_amount) FROM purchases GROUP BY 1, 2, 3",
]


class Migration(migrations.Migration):
    dependencies = [('loyalty', '0011_expiry')]

    initial = False

    operations = [
        ops.RunSQL(
            [
                'CREATE TABLE qualifying_days (member_id uuid NOT NULL REFERENCES members (id) ON DELETE CASCADE,'
                ' day date NOT NULL, qualifying bigint NOT NULL, PRIMARY KEY (member_id, day))',
                'CREATE TABLE purchase_days (member_id uuid NOT NULL REFERENCES members (id) ON DELETE CASCADE,'
                ' day date NOT NULL, store_key varchar(100) NOT NULL, purchases integer NOT NULL,'
                ' spend numeric(17, 3) NOT NULL, PRIMARY KEY (member_id, day, store_key))',
                *BACKFILL,
                # A wallet's next expiry moments, one index step each (wallets' expiring_soon),
                # without stepping over the spent lots a long history leaves.
                "CREATE INDEX lots_spendable ON lots (wallet_id, expires_at) INCLUDE (remaining)"
                " WHERE state = 'AVAILABLE' AND remaining > 0",
            ],
            reverse_sql=['DROP INDEX lots_spendable', 'DROP TABLE purchase_days', 'DROP TABLE qualifying_days'],
        ),
    ]
