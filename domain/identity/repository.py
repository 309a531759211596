"""The refresh_tokens table: the only module that queries it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient

from domain import db


@dataclass(frozen=True, slots=True)
class RefreshTokenRow:
    id: int
    family: uuid.UUID
    member_id: uuid.UUID
    token_hash: str
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None


_COLUMNS = "id, family, member_id, token_hash, issued_at, expires_at, used_at, revoked_at"


async def insert(
    member_id: uuid.UUID,
    family: uuid.UUID,
    token_hash: str,
    issued_at: datetime,
    expires_at: datetime,
    conn: BaseDBAsyncClient | None = None,
) -> None:
    await db.client(conn).execute_query(
        "INSERT INTO refresh_tokens (family, member_id, token_hash, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        [family, member_id, token_hash, issued_at, expires_at],
    )


async def by_hash(
    token_hash: str, *, conn: BaseDBAsyncClient | None = None, lock: bool = False
) -> RefreshTokenRow | None:
    rows = await db.client(conn).execute_query_dict(
        f"SELECT {_COLUMNS} FROM refresh_tokens WHERE token_hash = $1" + (" FOR UPDATE" if lock else ""), [token_hash]
    )
    return RefreshTokenRow(**rows[0]) if rows else None


async def mark_used(conn: BaseDBAsyncClient, token_id: int, now: datetime) -> None:
    await conn.execute_query("UPDATE refresh_tokens SET used_at = $2 WHERE id = $1", [token_id, now])


async def revoke_family(family: uuid.UUID, now: datetime, conn: BaseDBAsyncClient | None = None) -> None:
    await db.client(conn).execute_query(
        "UPDATE refresh_tokens SET revoked_at = $2 WHERE family = $1 AND revoked_at IS NULL", [family, now]
    )


async def family_revoked(family: uuid.UUID) -> bool:
    rows = await db.client().execute_query_dict(
        "SELECT EXISTS (SELECT 1 FROM refresh_tokens WHERE family = $1 AND revoked_at IS NOT NULL) AS revoked",
        [family],
    )
    return rows[0]["revoked"]
