from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.contrib.postgres.indexes import PostgreSQLIndex

class Migration(migrations.Migration):
    dependencies = [('loyalty', '0005_stores')]

    initial = False

    operations = [
        ops.RemoveIndex(
            model_name='Notification',
            name=None,
            fields=['state', 'due_at'],
        ),
        ops.AddIndex(
            model_name='Notification',
            index=PostgreSQLIndex(fields=['kind', 'due_at', 'id'], name='notifications_queue', condition={'state': 'QUEUED'}),
        ),
        ops.AddIndex(
            model_name='Notification',
            index=PostgreSQLIndex(fields=['claimed_until'], name='notifications_leases', condition={'state': 'SENDING'}),
        ),
    ]
