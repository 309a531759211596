"""The audit log's table: append-only, read newest first."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient


@dataclass(frozen=True)
class AuditRow:
    id: int
    actor: str
    action: str
    subject_id: str
    details: str  # compact JSON of the input, as recorded
    at: datetime


async def append(
    conn: BaseDBAsyncClient, *, actor: str, action: str, subject_id: str, details: dict, at: datetime
) -> None:
    await conn.execute_query(
        "INSERT INTO audit_log (actor, action, subject_id, details, at) VALUES ($1, $2, $3, $4::jsonb, $5)",
        [actor[:200], action, subject_id[:100], json.dumps(details, separators=(",", ":"), default=str), at],
    )


async def newest(limit: int, before_id: int | None) -> list[AuditRow]:
    rows = await connections.get("default").execute_query_dict(
        "SELECT id, actor, action, subject_id, details, at FROM audit_log"
        " WHERE ($1::bigint IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
        [before_id, limit],
    )
    return [AuditRow(**{**r, "details": _compact(r["details"])}) for r in rows]


def _compact(details: object) -> str:
    value = json.loads(details) if isinstance(details, str) else details
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
