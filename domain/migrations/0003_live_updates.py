from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('loyalty', '0002_ledger')]

    initial = False

    operations = [
        ops.AddField(
            model_name='WalletEvent',
            name='balance',
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name='WalletEvent',
            name='pending',
            field=fields.BigIntField(null=True),
        ),
        # Every committed outbox row wakes the listeners of every API process.
        # NOTIFY is transactional: nothing is sent for a rolled-back change.
        ops.RunSQL(
            """
            CREATE FUNCTION loyalty_notify_event() RETURNS trigger AS $$
            BEGIN
                PERFORM pg_notify('loyalty_events', NEW.member_id::text || ':' || NEW.id::text);
                RETURN NULL;
            END
            $$ LANGUAGE plpgsql;
            CREATE TRIGGER wallet_events_notify AFTER INSERT ON wallet_events
                FOR EACH ROW EXECUTE FUNCTION loyalty_notify_event();
            """,
            reverse_sql="""
            DROP TRIGGER IF EXISTS wallet_events_notify ON wallet_events;
            DROP FUNCTION IF EXISTS loyalty_notify_event();
            """,
        ),
    ]
