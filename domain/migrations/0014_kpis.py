from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

# Segment memberships and their history without foreign keys. Both tables are derived:
# one statement (domain/segments/repository.py, recompute) writes them from the members
# and segments rows it reads itself, and nothing deletes a member or a segment (a use
# case that does must delete their rows here, through the segments area). The checks
# cost four trigger calls per entry: 7 of the 12.7 s of a first recomputation at 200,000
# members (bench/analytics), for rows that cannot point anywhere else. Tortoise's
# AlterField records db_constraint=False without touching the database: the SQL drops them.
FOREIGN_KEYS = [
    ('segment_members', 'segment_members_member_id_fkey', 'member_id', 'members'),
    ('segment_members', 'segment_members_segment_id_fkey', 'segment_id', 'segments'),
    ('segment_changes', 'segment_changes_member_id_fkey', 'member_id', 'members'),
    ('segment_changes', 'segment_changes_segment_id_fkey', 'segment_id', 'segments'),
]


class Migration(migrations.Migration):
    dependencies = [('loyalty', '0013_campaign_tests')]

    initial = False

    operations = [
        *[
            ops.AlterField(
                model_name=model,
                name=name,
                field=fields.ForeignKeyField(f'loyalty.{target}', source_field=f'{name}_id', db_constraint=False, to_field='id', related_name=related, on_delete=OnDelete.CASCADE),
            )
            for model, on_segment in (('SegmentChange', 'changes'), ('SegmentMember', 'members'))
            for name, target, related in (('member', 'Member', False), ('segment', 'Segment', on_segment))
        ],
        ops.RunSQL(
            [f'ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}' for table, name, _, _ in FOREIGN_KEYS],
            reverse_sql=[
                f'ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({column}) REFERENCES {target} (id)'
                ' ON DELETE CASCADE'
                for table, name, column, target in FOREIGN_KEYS
            ],
        ),
    ]
