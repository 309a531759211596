"""The database: where it is (configured or embedded), the ORM, migrations."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import asyncpg
from tortoise import Tortoise, connections
from tortoise.backends.asyncpg.client import TransactionWrapper
from tortoise.backends.base.client import TransactionContextPooled
from tortoise.context import TortoiseContext
from tortoise.exceptions import TransactionManagementError
from tortoise.migrations.api import migrate as run_migrations
from tortoise.transactions import in_transaction

from domain.settings import ConfigurationError

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
    "domain.segments.models",
    "domain.offers.models",
    "domain.audit.models",
    "domain.draws.models",
    "domain.campaigns.models",
    "domain.journeys.models",
]
MIGRATIONS_MODULE = "domain.migrations"


@dataclass
class Database:
    """A PostgreSQL we can talk to, and the embedded server if we started one."""

    credentials: dict[str, Any]
    embedded: Any = None  # pgserver.PostgresServer

    def stop(self) -> bool:
        """Let go of the embedded server; the last process using it stops it. True if
        an embedded server was running and is stopped now."""
        if self.embedded is None:
            return False
        server, self.embedded = self.embedded, None
        server.cleanup()
        return _postgres_alive(server.pgdata) is None

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
        raise ConfigurationError(
            f"LOYALTY_DATABASE_URL: must start with postgres:// or postgresql://, not {parsed.scheme}://"
        )
    query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
    try:
        port = int(query.get("port") or parsed.port or 5432)
    except ValueError:
        raise ConfigurationError("LOYALTY_DATABASE_URL: the port is not a number") from None
    return {
        "host": query.get("host") or parsed.hostname or "127.0.0.1",
        "port": port,
        "user": parsed.username or query.get("user") or "postgres",
        "password": parsed.password or query.get("password") or "",
        "database": parsed.path.lstrip("/") or "postgres",
    }


def start_embedded(home: Path) -> Database:
    """Start (or join) the embedded PostgreSQL under `home`/pgdata."""
    try:
        import pgserver  # imported here: only the embedded mode needs it (the `embedded` extra)
    except ImportError:
        raise ConfigurationError(
            "LOYALTY_DATABASE_URL is not set and the embedded PostgreSQL is not installed"
            " (pip install 'loyalty[embedded]', or set LOYALTY_DATABASE_URL)"
        ) from None

    home.mkdir(parents=True, exist_ok=True)
    pgdata = home.resolve() / "pgdata"
    with pgserver.postgres_server.PostgresServer._lock:
        _adopt_leftover(pgdata)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    return Database(credentials_from_url(server.get_uri()), embedded=server)


def _postgres_alive(pgdata: Path) -> int | None:
    """The pid of the postmaster running on `pgdata`, if one is."""
    import psutil

    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        return pid if psutil.Process(pid).name() == "postgres" else None
    except (OSError, ValueError, psutil.Error):
        return None


def _adopt_leftover(pgdata: Path) -> None:
    """pgserver stops the server when the last process that uses it lets go, counting
    them in pgdata/.handle_pids.json. A process that was killed never lets go, and its
    server would then run forever (or, once gone, the next one would): forget the dead,
    so the server is ours to stop."""
    import psutil

    handles = pgdata / ".handle_pids.json"
    users = json.loads(handles.read_text() or "[]") if handles.exists() else []
    alive = [p for p in users if psutil.pid_exists(p)]
    if alive != users:
        handles.write_text(json.dumps(alive))
    pid = _postgres_alive(pgdata)
    if pid is None:
        return
    if alive:
        log.debug("joining the embedded PostgreSQL (pid %d) that processes %s use", pid, alive)
    else:
        log.warning(
            "the embedded PostgreSQL under %s (pid %d) was left running by a process that is gone (%s);"
            " adopting it: it stops when this process exits",
            pgdata,
            pid,
            ", ".join(map(str, users)) or "none recorded",
        )


def open_database(database_url: str | None, home: Path) -> Database:
    if database_url:
        return Database(credentials_from_url(database_url))
    return start_embedded(home)


def check_reachable(credentials: dict[str, Any], timeout: float = 10) -> None:
    """Connect once (outside any event loop), so that a wrong or unreachable database
    stops a command at start with the variable named, rather than as a traceback from
    the first query."""
    import asyncpg

    async def probe() -> None:
        conn = await asyncpg.connect(**_asyncpg_args(credentials), timeout=timeout)
        await conn.close()

    where = f"{credentials['host']}:{credentials['port']}/{credentials['database']}"
    try:
        asyncio.run(probe())
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        if isinstance(exc, ConnectionRefusedError):
            reason = "connection refused"
        elif isinstance(exc, TimeoutError):
            reason = f"no answer within {timeout:g} s"
        elif isinstance(exc, OSError) and exc.strerror:
            reason = exc.strerror
        else:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigurationError(f"LOYALTY_DATABASE_URL: cannot connect to {where}: {reason}") from None


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


# --- kernel queries: about the database itself, not about any area's table --------------


def client(conn: Any = None) -> Any:
    """The caller's transaction when it has one, else the pool: what repositories run on."""
    return conn or connections.get("default")


# --- one statement for what several areas own (the purchase path) ------------------------

_PARAM = re.compile(r"\$(\d+)")


@dataclass(frozen=True, slots=True)
class Part:
    """An area's SQL to run inside a statement that another area's service assembles:
    one round trip where the purchase path cannot afford one per area. The owning
    area's repository writes it (so only it names its tables); `sql` numbers its own
    parameters from $1 and `placed` renumbers them after the statement's others."""

    sql: str
    params: tuple = ()

    def placed(self, params: list) -> str:
        offset = len(params)
        params.extend(self.params)
        return _renumbered(self.sql, offset) if offset else self.sql


@functools.lru_cache(maxsize=256)
def _renumbered(sql: str, offset: int) -> str:
    """The parts' texts repeat from one purchase to the next: renumbered once each."""
    return _PARAM.sub(lambda m: f"${int(m[1]) + offset}", sql)


def literal(value: Any) -> str:
    """A value as SQL text, for a statement sent with no parameters (`in_transaction_with`):
    ids and whole numbers only, whose text cannot carry SQL."""
    if isinstance(value, uuid.UUID):
        return f"'{value}'::uuid"
    if isinstance(value, list | tuple) and all(isinstance(v, uuid.UUID) for v in value):
        return f"ARRAY[{', '.join(literal(v) for v in value)}]::uuid[]"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"no SQL literal for {type(value).__name__}")


def inlined(sql: str, params: Sequence[Any]) -> str:
    """`sql` with its $n replaced by `literal`s of `params`."""
    return _PARAM.sub(lambda m: literal(params[int(m[1]) - 1]), sql)


class _BegunWith(TransactionWrapper):
    """Tortoise's asyncpg transaction, whose BEGIN is sent with a first statement."""

    def __init__(self, client: Any, first: str) -> None:
        super().__init__(client)
        self._first = first

    async def begin(self) -> None:
        # A simple query: BEGIN and the statement in one message (asyncpg's own
        # Transaction would send BEGIN alone, and wait for it).
        await self._connection.execute(f"BEGIN; {self._first}")
        self.transaction = True

    async def commit(self) -> None:
        await self._finish("COMMIT")

    async def rollback(self) -> None:
        await self._finish("ROLLBACK")

    async def _finish(self, how: str) -> None:
        if self._finalized:
            raise TransactionManagementError("Transaction already finalised")
        try:
            await self._connection.execute(how)
        finally:
            self._finalized = True


def in_transaction_with(first: str) -> Any:
    """`tortoise.transactions.in_transaction()` whose BEGIN travels with `first`, a
    statement with no parameters (see `inlined`) that returns nothing the caller reads (a
    lock): a round trip fewer, for the purchase path. Nothing inside opens a transaction
    of its own (asyncpg's savepoints need its own BEGIN)."""
    client = connections.get("default")
    return TransactionContextPooled(_BegunWith(client, first), client._pool_init_lock)


async def read_together(conn: Any, *parts: Part) -> dict[str, Any]:
    """Parts that each SELECT at most one row, in one statement: their columns in one
    dict (a part with no row gives NULLs). The parts name their columns apart."""
    params: list = []
    joins = " ".join(f"LEFT JOIN LATERAL ({p.placed(params)}) AS r{i} ON true" for i, p in enumerate(parts))
    rows = await conn.execute_query_dict(f"SELECT * FROM (SELECT) AS one {joins}", params)
    return rows[0]


# A statement the server cancelled at its `statement_timeout` (the rollback releases its locks).
Cancelled = asyncpg.exceptions.QueryCanceledError


async def ping() -> None:
    """Readiness: the pool reaches the database (raises when it does not)."""
    await connections.get("default").execute_query("SELECT 1")


async def ping_raw(conn: Any) -> None:
    """The same on a connection of its own (live updates' LISTEN connection)."""
    await conn.fetchval("SELECT 1")


async def lock_job(conn: Any, namespace: int, name: str) -> None:
    """A session-level advisory lock on a connection of its own: one run of a job at a time."""
    await conn.execute("SELECT pg_advisory_lock($1, hashtext($2))", namespace, name)


async def jobs_waiting(limit: int) -> int:
    """Jobs in procrastinate's queue, counted up to `limit` (the table is the job queue's)."""
    rows = await connections.get("default").execute_query_dict(
        "SELECT count(*) AS n FROM (SELECT 1 FROM procrastinate_jobs WHERE status = 'todo' LIMIT $1) j", [limit]
    )
    return int(rows[0]["n"])


def __getattr__(name: str) -> Any:
    """TORTOISE_ORM, for Tortoise's own CLI when models change:
        tortoise -c domain.db.TORTOISE_ORM makemigrations
    computed when asked for, so importing this module reads no environment."""
    if name == "TORTOISE_ORM":
        return orm_config(
            credentials_from_url(os.environ.get("LOYALTY_DATABASE_URL", "postgres://postgres@127.0.0.1/loyalty"))
        )
    raise AttributeError(name)


def among(column: str, members, params: list) -> str:
    """The SQL that narrows a read to a set of members (a tier's, a segment's): `AND column
    = ANY($n)` with the ids appended to `params`; none (everyone) for None."""
    if members is None:
        return ""
    params.append(list(members))
    return f" AND {column} = ANY(${len(params)}::uuid[])"


async def analytic_read(sql: str, params: list, *, in_index_order: bool = False) -> list[dict]:
    """One aggregate over many rows (the KPIs), without JIT: compiling it takes longer
    (100-400 ms here) than it saves on a scan of a few million rows. `in_index_order`: the
    groups come sorted from a covering index, so aggregate them as they come (no hash
    table of every group, which spills to disk at 200,000 members: 3-4x slower here)."""
    async with in_transaction() as conn:
        await conn.execute_query("SET LOCAL jit = off")
        # The covering indexes are read from memory (or an SSD), where a page out of order
        # costs about what a page in order does; at the default 4 (a spinning disk's seek)
        # the planner reads the whole ledger instead of the period's range of its index.
        await conn.execute_query("SET LOCAL random_page_cost = 1.1")
        if in_index_order:
            await conn.execute_query("SET LOCAL enable_hashagg = off")
        return await conn.execute_query_dict(sql, params)
