"""The notifications area's tables (devices, notifications): the only module that
queries them. Rows leave as frozen dataclasses; the caller's transaction, when it
has one, is passed as `conn`."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from domain import db

_DEVICE = "id, member_id, fcm_token, installation_id, platform, app_version, last_seen_at, created_at"
_NOTIFICATION = (
    "id, member_id, kind, title, body, data, dedupe_key, state, reason, due_at, claimed_until, attempts,"
    " provider_message_id, sent_at, read_at, opened_at, created_at"
)


@dataclass(frozen=True, slots=True)
class DeviceRow:
    id: uuid.UUID
    member_id: uuid.UUID
    fcm_token: str
    installation_id: str | None
    platform: str
    app_version: str | None
    last_seen_at: datetime
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NotificationRow:
    id: uuid.UUID
    member_id: uuid.UUID
    kind: str
    title: str
    body: str
    data: dict
    dedupe_key: str
    state: str
    reason: str | None
    due_at: datetime
    claimed_until: datetime | None
    attempts: int
    provider_message_id: str | None
    sent_at: datetime | None
    read_at: datetime | None
    opened_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, row: dict) -> NotificationRow:
        data = row["data"]
        return cls(**{**row, "data": json.loads(data) if isinstance(data, str) else data})


@dataclass(frozen=True, slots=True)
class ClaimedRow:
    """A notification as a dispatcher claims it."""

    id: uuid.UUID
    member_id: uuid.UUID
    kind: str
    title: str
    body: str
    data: Any
    attempts: int
    due_at: datetime
    device_id: uuid.UUID | None  # only this device of the member (a test send); None: all of them


@dataclass(frozen=True, slots=True)
class SentCounts:
    """What a member was sent in the last week: how many, and when (for the day's count)."""

    week: int
    times: tuple[datetime, ...]


@dataclass(frozen=True, slots=True)
class QueueDepth:
    kind: str
    due: int  # counted up to a limit
    oldest: datetime | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """A notification's new state after a dispatch."""

    id: uuid.UUID
    state: str
    reason: str | None
    message_id: str | None
    sent_at: datetime | None
    due_at: datetime | None


# --- devices ---------------------------------------------------------------------------


async def upsert_device(
    member_id: uuid.UUID,
    token: str,
    platform: str,
    installation_id: str | None,
    app_version: str | None,
    now: datetime,
) -> DeviceRow:
    """Insert the token's device, or move it to this member: one statement, the row as stored."""
    rows = await db.client().execute_query_dict(
        f"""
        INSERT INTO devices (id, member_id, fcm_token, installation_id, platform, app_version, last_seen_at,
                             created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
        ON CONFLICT (fcm_token) DO UPDATE SET member_id = EXCLUDED.member_id, platform = EXCLUDED.platform,
            installation_id = COALESCE(EXCLUDED.installation_id, devices.installation_id),
            app_version = COALESCE(EXCLUDED.app_version, devices.app_version), last_seen_at = EXCLUDED.last_seen_at
        RETURNING {_DEVICE}
        """,
        [uuid.uuid4(), member_id, token, installation_id, platform, app_version, now],
    )
    return DeviceRow(**rows[0])


async def delete_device(member_id: uuid.UUID, token: str) -> bool:
    rows = await db.client().execute_query_dict(
        "DELETE FROM devices WHERE member_id = $1 AND fcm_token = $2 RETURNING id", [member_id, token]
    )
    return bool(rows)


async def delete_tokens(tokens: list[str]) -> int:
    rows = await db.client().execute_query_dict(
        "DELETE FROM devices WHERE fcm_token = ANY($1::text[]) RETURNING id", [tokens]
    )
    return len(rows)


async def devices_of(member_id: uuid.UUID, limit: int) -> list[DeviceRow]:
    rows = await db.client().execute_query_dict(
        f"SELECT {_DEVICE} FROM devices WHERE member_id = $1 ORDER BY last_seen_at DESC, id DESC LIMIT $2",
        [member_id, limit],
    )
    return [DeviceRow(**r) for r in rows]


async def device(device_id: uuid.UUID) -> DeviceRow | None:
    rows = await db.client().execute_query_dict(f"SELECT {_DEVICE} FROM devices WHERE id = $1", [device_id])
    return DeviceRow(**rows[0]) if rows else None


async def device_tokens(device_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[uuid.UUID, str]]:
    """device id -> (its member, its FCM token), for those that still exist."""
    rows = await db.client().execute_query_dict(
        "SELECT id, member_id, fcm_token FROM devices WHERE id = ANY($1::uuid[])", [device_ids]
    )
    return {r["id"]: (r["member_id"], r["fcm_token"]) for r in rows}


async def tokens_of(member_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    """The FCM tokens of each member (absent: none)."""
    out: dict[uuid.UUID, list[str]] = {}
    for d in await db.client().execute_query_dict(
        "SELECT member_id, fcm_token FROM devices WHERE member_id = ANY($1::uuid[])", [member_ids]
    ):
        out.setdefault(d["member_id"], []).append(d["fcm_token"])
    return out


# --- notifications ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Queue:
    """One notification to queue (many at once: a campaign's audience)."""

    id: uuid.UUID
    member_id: uuid.UUID
    title: str
    body: str
    dedupe_key: str
    due_at: datetime
    data: dict


async def insert_many(kind: str, rows: list[Queue], now: datetime, conn: BaseDBAsyncClient) -> int:
    """Queue many in one statement, each dedupe key once; how many were new."""
    done = await conn.execute_query_dict(
        """
        INSERT INTO notifications (id, member_id, kind, title, body, data, dedupe_key, state, due_at, attempts,
                                   created_at)
        SELECT q.id, q.member_id, $1, q.title, q.body, q.data, q.dedupe_key, 'QUEUED', q.due_at, 0, $8
        FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::jsonb[], $7::text[], $9::timestamptz[])
             AS q(id, member_id, title, body, data, dedupe_key, due_at)
        ON CONFLICT (dedupe_key) DO NOTHING RETURNING id
        """,
        [
            kind,
            [r.id for r in rows],
            [r.member_id for r in rows],
            [r.title[:120] for r in rows],
            [r.body[:500] for r in rows],
            [json.dumps(r.data) for r in rows],
            [r.dedupe_key[:200] for r in rows],
            now,
            [r.due_at for r in rows],
        ],
    )
    return len(done)


async def hold(notification_ids: list[uuid.UUID], conn: BaseDBAsyncClient) -> int:
    """Those of these notifications queued or in a worker's hand now HELD (their lease,
    if any, kept: `release` reads it); how many."""
    rows = await conn.execute_query_dict(
        "UPDATE notifications SET state = 'HELD' WHERE id = ANY($1::uuid[]) AND state IN ('QUEUED', 'SENDING')"
        " RETURNING id",
        [notification_ids],
    )
    return len(rows)


async def release(notification_ids: list[uuid.UUID], now: datetime, conn: BaseDBAsyncClient) -> int:
    """Those of these notifications HELD back: to the worker that still holds a live lease
    on one (SENDING), else to the queue; how many."""
    rows = await conn.execute_query_dict(
        """
        UPDATE notifications SET state = CASE WHEN claimed_until > $2 THEN 'SENDING' ELSE 'QUEUED' END
        WHERE id = ANY($1::uuid[]) AND state = 'HELD' RETURNING id
        """,
        [notification_ids, now],
    )
    return len(rows)


async def opened_among(notification_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    rows = await db.client().execute_query_dict(
        "SELECT id FROM notifications WHERE id = ANY($1::uuid[]) AND opened_at IS NOT NULL", [notification_ids]
    )
    return {r["id"] for r in rows}


async def with_devices(member_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    rows = await db.client().execute_query_dict(
        "SELECT DISTINCT member_id FROM devices WHERE member_id = ANY($1::uuid[])", [member_ids]
    )
    return {r["member_id"] for r in rows}


async def insert(
    member_id: uuid.UUID,
    kind: str,
    title: str,
    body: str,
    data: dict,
    dedupe_key: str,
    due_at: datetime,
    now: datetime,
    conn: BaseDBAsyncClient | None = None,
    device_id: uuid.UUID | None = None,
) -> bool:
    """Queue one, once per dedupe key; whether it is new."""
    rows = await db.client(conn).execute_query_dict(
        """
        INSERT INTO notifications (id, member_id, kind, title, body, data, dedupe_key, state, due_at, attempts,
                                   created_at, device_id)
        VALUES ($1, $2, $3, $4, $5, $6, $7, 'QUEUED', $8, 0, $9, $10)
        ON CONFLICT (dedupe_key) DO NOTHING RETURNING id
        """,
        [uuid.uuid4(), member_id, kind, title, body, json.dumps(data), dedupe_key, due_at, now, device_id],
    )
    return bool(rows)


async def sent_to(member_id: uuid.UUID, limit: int, before: tuple[datetime, uuid.UUID] | None) -> list[NotificationRow]:
    """The member's sent notifications, newest first, keyset-paged on (created_at, id)."""
    sql, params = f"SELECT {_NOTIFICATION} FROM notifications WHERE member_id = $1 AND state = 'SENT'", [member_id]
    if before is not None:
        sql += " AND (created_at, id) < ($2, $3)"
        params += list(before)
    rows = await db.client().execute_query_dict(
        sql + f" ORDER BY created_at DESC, id DESC LIMIT ${len(params) + 1}", [*params, limit]
    )
    return [NotificationRow.of(r) for r in rows]


async def mark_seen(
    notification_id: uuid.UUID, member_id: uuid.UUID, now: datetime, opened: bool
) -> NotificationRow | None:
    """Set read_at (and opened_at when opened) the first time; the row as it is after."""
    rows = await db.client().execute_query_dict(
        f"""
        UPDATE notifications SET read_at = COALESCE(read_at, $3),
               opened_at = CASE WHEN $4 THEN COALESCE(opened_at, $3) ELSE opened_at END
        WHERE id = $1 AND member_id = $2 RETURNING {_NOTIFICATION}
        """,
        [notification_id, member_id, now, opened],
    )
    return NotificationRow.of(rows[0]) if rows else None


async def sent(notification_id: uuid.UUID) -> NotificationRow | None:
    rows = await db.client().execute_query_dict(
        f"SELECT {_NOTIFICATION} FROM notifications WHERE id = $1 AND state = 'SENT'", [notification_id]
    )
    return NotificationRow.of(rows[0]) if rows else None


async def recent_location_nudges(
    conn: BaseDBAsyncClient, member_id: uuid.UUID, since: datetime
) -> list[tuple[str, datetime]]:
    """(store, queued at) of the member's location nudges since `since`."""
    rows = await conn.execute_query_dict(
        """
        SELECT data->>'store' AS store, created_at FROM notifications
        WHERE member_id = $1 AND kind = 'LOCATION' AND created_at > $2
        """,
        [member_id, since],
    )
    return [(r["store"], r["created_at"]) for r in rows]


# --- the dispatcher's queue ------------------------------------------------------------


async def claim(now: datetime, limit: int, claimed_until: datetime, priority: list[str]) -> list[ClaimedRow]:
    """Take up to `limit` due notifications, kinds in priority order, each read from its index."""
    conn = db.client()
    # A worker that died mid-batch: its claims go back to the queue, first in line.
    await conn.execute_query(
        "UPDATE notifications SET state = 'QUEUED' WHERE state = 'SENDING' AND claimed_until < $1", [now]
    )
    rows = await conn.execute_query_dict(
        """
        WITH due AS (
            -- a nested loop over the kinds in priority order: the first kinds fill the batch
            SELECT q.id FROM unnest($4::text[]) AS k(kind)
            CROSS JOIN LATERAL (
                SELECT id FROM notifications
                WHERE state = 'QUEUED' AND kind = k.kind AND due_at <= $1
                ORDER BY due_at, id
                LIMIT $2 FOR UPDATE SKIP LOCKED
            ) q
            LIMIT $2
        ), claimed AS (
            UPDATE notifications n SET state = 'SENDING', claimed_until = $3, attempts = n.attempts + 1
            WHERE n.id = ANY(ARRAY(SELECT id FROM due))  -- by primary key: a join would read the table
            RETURNING n.id, n.member_id, n.kind, n.title, n.body, n.data, n.attempts, n.due_at, n.device_id
        )
        SELECT * FROM claimed ORDER BY array_position($4, kind), due_at, id  -- the caps go to the first
        """,
        [now, limit, claimed_until, priority],
    )
    return [ClaimedRow(**r) for r in rows]


async def sent_since(member_ids: list[uuid.UUID], since: datetime, uncounted: list[str]) -> dict[uuid.UUID, SentCounts]:
    rows = await db.client().execute_query_dict(
        """
        SELECT member_id, COUNT(*) FILTER (WHERE sent_at > $2) AS week, array_agg(sent_at) AS times
        FROM notifications WHERE member_id = ANY($1::uuid[]) AND state = 'SENT' AND sent_at > $2
          AND kind <> ALL($3::text[])
        GROUP BY member_id
        """,
        [member_ids, since, uncounted],
    )
    return {r["member_id"]: SentCounts(r["week"], tuple(r["times"])) for r in rows}


async def write_outcomes(rows: list[Outcome], conn: BaseDBAsyncClient | None = None) -> None:
    """The outcomes of a batch, in one statement. A notification HELD while in the
    worker's hand (its campaign paused) takes a final answer, but stays HELD when it is
    to be tried again later."""
    await db.client(conn).execute_query(
        """
        UPDATE notifications n
        SET state = CASE WHEN n.state = 'HELD' AND w.state = 'QUEUED' THEN 'HELD' ELSE w.state END,
               reason = w.reason, provider_message_id = w.message_id,
               sent_at = w.sent_at, due_at = COALESCE(w.due_at, n.due_at), claimed_until = NULL
        FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[])
             AS w(id, state, reason, message_id, sent_at, due_at)
        WHERE n.id = w.id
        """,
        [
            [w.id for w in rows],
            [w.state for w in rows],
            [w.reason for w in rows],
            [w.message_id for w in rows],
            [w.sent_at for w in rows],
            [w.due_at for w in rows],
        ],
    )


async def queue_depths(now: datetime, limit: int, kinds: list[str]) -> list[QueueDepth]:
    """Due rows by kind (counted up to `limit`) and the oldest due row, each read from an index."""
    rows = await db.client().execute_query_dict(
        """
        SELECT k.kind,
               (SELECT count(*) FROM (SELECT 1 FROM notifications WHERE state = 'QUEUED' AND kind = k.kind
                                      AND due_at <= $1 LIMIT $2) d) AS due,
               (SELECT min(due_at) FROM notifications WHERE state = 'QUEUED' AND kind = k.kind) AS oldest
        FROM unnest($3::text[]) AS k(kind)
        """,
        [now, limit, kinds],
    )
    return [QueueDepth(**r) for r in rows]
