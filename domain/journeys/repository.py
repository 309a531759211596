"""The only code that runs SQL on journey_runs; it returns immutable rows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient


@dataclass(frozen=True)
class RunRow:
    id: uuid.UUID
    journey_key: str
    member_id: uuid.UUID
    occurrence: str
    triggered_at: datetime
    due_at: datetime
    state: str  # PENDING | DONE | SKIPPED
    reason: str | None
    done_at: datetime | None


COLUMNS = "id, journey_key, member_id, occurrence, triggered_at, due_at, state, reason, done_at"


@dataclass(frozen=True)
class Candidate:
    member_id: uuid.UUID
    occurrence: str
    triggered_at: datetime


async def insert_runs(
    journey_key: str, candidates: list[Candidate], delay: timedelta, repeat_after: timedelta | None
) -> int:
    """A run per new occurrence (the unique key drops those seen before). With
    `repeat_after`, an occurrence within that long after the member's last run of this
    journey is not one. Returns how many runs are new."""
    if not candidates:
        return 0
    rows = await connections.get("default").execute_query_dict(
        """
        INSERT INTO journey_runs (id, journey_key, member_id, occurrence, triggered_at, due_at, state)
        SELECT gen_random_uuid(), $1::text, c.member_id, c.occurrence, c.at, c.at + $5::interval, 'PENDING'
        FROM unnest($2::uuid[], $3::text[], $4::timestamptz[]) AS c(member_id, occurrence, at)
        WHERE $6::interval IS NULL OR NOT EXISTS (
            SELECT 1 FROM journey_runs r WHERE r.journey_key = $1::text AND r.member_id = c.member_id
              AND r.triggered_at > c.at - $6::interval AND r.occurrence <> c.occurrence)
        ORDER BY c.at
        ON CONFLICT (journey_key, member_id, occurrence) DO NOTHING RETURNING id
        """,
        [
            journey_key,
            [c.member_id for c in candidates],
            [c.occurrence for c in candidates],
            [c.triggered_at for c in candidates],
            delay,
            repeat_after,
        ],
    )
    return len(rows)


async def claim_due(conn: BaseDBAsyncClient, now: datetime, limit: int) -> list[RunRow]:
    """Due pending runs, locked for this transaction; another worker skips them."""
    rows = await conn.execute_query_dict(
        f"""
        SELECT {COLUMNS} FROM journey_runs WHERE state = 'PENDING' AND due_at <= $1
        ORDER BY due_at, id LIMIT $2 FOR UPDATE SKIP LOCKED
        """,
        [now, limit],
    )
    return [RunRow(**r) for r in rows]


async def finish(
    conn: BaseDBAsyncClient, ids: list[uuid.UUID], states: list[str], reasons: list[str | None], now: datetime
) -> None:
    await conn.execute_query(
        """
        UPDATE journey_runs r SET state = o.state, reason = o.reason, done_at = $4
        FROM unnest($1::uuid[], $2::text[], $3::text[]) AS o(id, state, reason) WHERE r.id = o.id
        """,
        [ids, states, reasons, now],
    )


async def runs_of(member_id: uuid.UUID) -> list[RunRow]:
    rows = await connections.get("default").execute_query_dict(
        f"SELECT {COLUMNS} FROM journey_runs WHERE member_id = $1 ORDER BY triggered_at, journey_key", [member_id]
    )
    return [RunRow(**r) for r in rows]
