"""The database: where it is (configured or embedded), the ORM, migrations."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from tortoise import Tortoise
from tortoise.context import TortoiseContext
from tortoise.migrations.api import migrate as run_migrations

log = logging.getLogger(__name__)

APP = "loyalty"
MODEL_MODULES = [
    "domain.members.models",
    "domain.identity.models",
    "domain.wallets.models",
    "domain.purchases.models",
    "domain.rewards.models",
    "domain.notifications.models",
    "domain.stores.models",
]
MIGRATIONS_MODULE = "domain.migrations"


@dataclass
class Database:
    """A PostgreSQL we can talk to, and the embedded server if we started one."""

    credentials: dict[str, Any]
    embedded: Any = None  # pgserver.PostgresServer

    def stop(self) -> None:
        if self.embedded is not None:
            self.embedded.cleanup()
            self.embedded = None

    def dsn(self) -> str:
        """A libpq/asyncpg DSN for raw connections (LISTEN, pgbench, psql)."""
        c = self.credentials
        if c["host"].startswith("/"):
            return f"postgresql://{c['user']}@/{c['database']}?host={c['host']}&port={c['port']}"
        auth = c["user"] + (f":{c['password']}" if c.get("password") else "")
        return f"postgresql://{auth}@{c['host']}:{c['port']}/{c['database']}"


def credentials_from_url(url: str) -> dict[str, Any]:
    """postgres://user:pass@host:port/db or postgresql://user@/db?host=/socket/dir."""
    parsed = urlparse(url)
    if parsed.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"LOYALTY_DATABASE_URL must start with postgres://, not {parsed.scheme}://")
    query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
    return {
        "host": query.get("host") or parsed.hostname or "127.0.0.1",
        "port": int(query.get("port") or parsed.port or 5432),
        "user": parsed.username or query.get("user") or "postgres",
        "password": parsed.password or query.get("password") or "",
        "database": parsed.path.lstrip("/") or "postgres",
    }


def start_embedded(home: Path) -> Database:
    """Start (or join) the embedded PostgreSQL under `home`/pgdata."""
    import pgserver  # imported here: only the embedded mode needs it

    home.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(home.resolve() / "pgdata", cleanup_mode="stop")
    return Database(credentials_from_url(server.get_uri()), embedded=server)


def open_database(database_url: str | None, home: Path) -> Database:
    if database_url:
        return Database(credentials_from_url(database_url))
    return start_embedded(home)


async def _light_reset(conn: Any) -> None:
    """What the pool runs when a connection comes back. asyncpg's default sends
    `RESET ALL; UNLISTEN *; CLOSE ALL; ...` every time: a round trip per query. We
    never leave session state on pooled connections (LISTEN and advisory locks use
    connections of their own), so only an unfinished transaction needs undoing."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


def orm_config(credentials: dict[str, Any], pool_max: int = 10) -> dict[str, Any]:
    return {
        "connections": {
            "default": {
                "engine": "tortoise.backends.asyncpg",
                "credentials": {**credentials, "minsize": 1, "maxsize": pool_max, "reset": _light_reset},
            }
        },
        "apps": {
            APP: {
                "models": MODEL_MODULES,
                "migrations": MIGRATIONS_MODULE,
                "default_connection": "default",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


async def connect(credentials: dict[str, Any], pool_max: int = 10) -> None:
    # The global fallback lets request tasks see the ORM that the lifespan task set up.
    await Tortoise.init(config=orm_config(credentials, pool_max), _enable_global_fallback=True)


async def migrate(credentials: dict[str, Any]) -> None:
    """Apply every migration not yet applied. Safe to run from several processes:
    a session-level advisory lock serialises them."""
    import asyncpg

    conn = await asyncpg.connect(**_asyncpg_args(credentials))
    try:
        await conn.execute("SELECT pg_advisory_lock(727301)")
        # In a context of its own, so the app's ORM state starts clean afterwards.
        async with TortoiseContext():
            await run_migrations(config=orm_config(credentials, pool_max=2))
        # The job queue's own tables (procrastinate), once.
        if await conn.fetchval("SELECT to_regclass('procrastinate_jobs')") is None:
            from procrastinate.schema import SchemaManager

            await conn.execute(SchemaManager.get_schema())
    finally:
        await conn.close()


async def disconnect() -> None:
    await Tortoise.close_connections()


def _asyncpg_args(credentials: dict[str, Any]) -> dict[str, Any]:
    keys = ("host", "port", "user", "password", "database")
    return {k: credentials[k] for k in keys if credentials.get(k) not in (None, "")}


async def raw_connection(credentials: dict[str, Any], application_name: str = "loyalty"):
    import asyncpg

    return await asyncpg.connect(**_asyncpg_args(credentials), server_settings={"application_name": application_name})


# For Tortoise's own CLI when models change:
#   tortoise -c domain.db.TORTOISE_ORM makemigrations
TORTOISE_ORM = orm_config(
    credentials_from_url(os.environ.get("LOYALTY_DATABASE_URL", "postgres://postgres@127.0.0.1/loyalty"))
)
