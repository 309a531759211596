from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='Member',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('member_number', fields.CharField(unique=True, max_length=16)),
                ('email', fields.CharField(null=True, unique=True, max_length=254)),
                ('display_name', fields.CharField(null=True, max_length=80)),
                ('birthday', fields.DateField(null=True)),
                ('timezone', fields.CharField(default='UTC', max_length=64)),
                ('locale', fields.CharField(default='en', max_length=35)),
                ('push_marketing', fields.BooleanField(default=False)),
                ('location_nudges', fields.BooleanField(default=False)),
                ('firebase_uid', fields.CharField(null=True, unique=True, max_length=128)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'members', 'app': 'loyalty', 'indexes': [Index(fields=['created_at', 'id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RefreshToken',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('family', fields.UUIDField(db_index=True)),
                ('member', fields.ForeignKeyField('loyalty.Member', source_field='member_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('issued_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'refresh_tokens', 'app': 'loyalty', 'pk_attr': 'id', 'table_description': 'One link in a refresh-token family. Only a hash of the token is kept.'},
            bases=['Model'],
        ),
    ]
