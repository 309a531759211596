from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.migrations.constraints import CheckConstraint


class Migration(migrations.Migration):
    dependencies = [('loyalty', '0010_journeys')]

    initial = False

    # A marketer's expiry extension is an EXTEND entry of 0 points: every other kind still moves points.
    operations = [
        ops.RemoveConstraint(model_name='LedgerEntry', name='ledger_entries_amount_not_zero'),
        ops.AddConstraint(
            model_name='LedgerEntry',
            constraint=CheckConstraint(
                check="amount <> 0 OR kind = 'EXTEND'", name='ledger_entries_amount_not_zero_but_extensions'
            ),
        ),
    ]
