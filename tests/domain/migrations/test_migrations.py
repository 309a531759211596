"""The committed migrations describe exactly the models; the schema file is current."""

from __future__ import annotations

from pathlib import Path

from tortoise.context import TortoiseContext
from tortoise.migrations.autodetector import MigrationAutodetector

from api.schema import sdl
from domain import db

ROOT = Path(__file__).resolve().parents[3]


async def test_models_and_migrations_agree(database):
    config = db.orm_config(database.credentials, pool_max=1)
    async with TortoiseContext() as ctx:
        await ctx.init(config=config)
        writers = await MigrationAutodetector(ctx.apps, config["apps"]).changes()
    pending = [op.describe() if hasattr(op, "describe") else repr(op) for w in writers for op in w.operations]
    assert not writers, (
        "models changed without a migration: run "
        "`.venv/bin/tortoise -c domain.db.TORTOISE_ORM makemigrations`\n" + "\n".join(pending)
    )


async def test_migrations_are_applied_to_a_fresh_database(database):
    conn = await db.raw_connection(database.credentials)
    try:
        tables = {r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")}
        applied = await conn.fetchval("SELECT count(*) FROM tortoise_migrations")
    finally:
        await conn.close()
    assert {"members", "refresh_tokens"} <= tables
    assert applied == len(list((ROOT / "domain" / "migrations").glob("[0-9]*.py")))


def test_schema_file_is_current():
    assert (ROOT / "schema.graphql").read_text() == sdl(), (
        "schema.graphql is stale: run `.venv/bin/loyalty schema > schema.graphql`"
    )


async def test_every_declared_constraint_exists_in_the_database(database):
    """Tortoise 1.1's CreateModel leaves Meta.constraints out of its SQL; the migrations
    add them as AddConstraint operations. This fails when one is forgotten."""
    from tortoise import Tortoise

    declared = {
        c.name for model in Tortoise.apps.get_models_iterable() for c in getattr(model._meta, "constraints", ())
    }
    conn = await db.raw_connection(database.credentials)
    try:
        present = {r["conname"] for r in await conn.fetch("SELECT conname FROM pg_constraint")}
    finally:
        await conn.close()
    assert declared, "no constraints declared?"
    assert declared <= present, f"declared but not in the database: {sorted(declared - present)}"
