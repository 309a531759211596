"""The only code that runs SQL on the campaign tables; it returns immutable rows."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

COLUMNS = (
    "id, name, status, audience, variants, offer_id, holdout_percent, attribution_days, send_at, local_time,"
    " starts_at, started_at, finished_at, created_at"
)


@dataclass(frozen=True)
class CampaignRow:
    id: uuid.UUID
    name: str
    status: str  # DRAFT | SCHEDULED | SENDING | PAUSED | SENT | CANCELLED
    audience: dict  # {"segment_keys": [...], "tier_keys": [...], "member_ids": [str]}
    variants: list  # [{"key", "weight", "title", "body", "deep_link", "locales": {locale: {"title", "body"}}}]
    offer_id: uuid.UUID | None
    holdout_percent: int
    attribution_days: int
    send_at: datetime | None
    local_time: bool
    starts_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, row: dict) -> CampaignRow:
        values = dict(row)
        for name in ("audience", "variants"):
            if isinstance(values[name], str):
                values[name] = json.loads(values[name])
        return cls(**values)


@dataclass(frozen=True)
class RecipientRow:
    member_id: uuid.UUID
    variant: str | None  # None: the holdout
    notification_id: uuid.UUID | None
    outcome: str  # HOLDOUT | PENDING | SENT | FAILED | SUPPRESSED
    reason: str | None
    planned_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True)
class NewRecipient:
    id: uuid.UUID
    member_id: uuid.UUID
    variant: str | None
    notification_id: uuid.UUID | None
    outcome: str
    planned_at: datetime


@dataclass(frozen=True)
class Recorded:
    campaign_id: uuid.UUID
    member_id: uuid.UUID
    outcome: str


async def offers_of(conn: BaseDBAsyncClient, campaign_ids: list[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """campaign id -> the offer its recipients get, for those that have one."""
    rows = await conn.execute_query_dict(
        "SELECT id, offer_id FROM campaigns WHERE id = ANY($1::uuid[]) AND offer_id IS NOT NULL", [campaign_ids]
    )
    return {r["id"]: r["offer_id"] for r in rows}


def _conn(conn: BaseDBAsyncClient | None) -> BaseDBAsyncClient:
    return conn or connections.get("default")


async def insert(
    *,
    name: str,
    audience: dict,
    variants: list,
    offer_id: uuid.UUID | None,
    holdout_percent: int,
    attribution_days: int,
    now: datetime,
) -> CampaignRow:
    rows = await _conn(None).execute_query_dict(
        f"""
        INSERT INTO campaigns (id, name, status, audience, variants, offer_id, holdout_percent, attribution_days,
                               local_time, created_at)
        VALUES ($1, $2, 'DRAFT', $3, $4, $5, $6, $7, false, $8) RETURNING {COLUMNS}
        """,
        [uuid.uuid4(), name, json.dumps(audience), json.dumps(variants), offer_id, holdout_percent,
         attribution_days, now],
    )  # fmt: skip
    return CampaignRow.of(rows[0])


async def get(campaign_id: uuid.UUID) -> CampaignRow | None:
    rows = await _conn(None).execute_query_dict(f"SELECT {COLUMNS} FROM campaigns WHERE id = $1", [campaign_id])
    return CampaignRow.of(rows[0]) if rows else None


async def schedule(
    campaign_id: uuid.UUID, send_at: datetime, local_time: bool, starts_at: datetime
) -> CampaignRow | None:
    """Set (or move) the time of a campaign that has not started; None if it has (or is
    cancelled): the status check and the write are one statement, so a worker that
    starts it at the same moment wins cleanly."""
    rows = await _conn(None).execute_query_dict(
        f"""
        UPDATE campaigns SET status = 'SCHEDULED', send_at = $2, local_time = $3, starts_at = $4
        WHERE id = $1 AND status IN ('DRAFT', 'SCHEDULED') RETURNING {COLUMNS}
        """,
        [campaign_id, send_at, local_time, starts_at],
    )
    return CampaignRow.of(rows[0]) if rows else None


async def cancel(campaign_id: uuid.UUID) -> CampaignRow | None:
    """Cancel unless sending began; None if it did."""
    rows = await _conn(None).execute_query_dict(
        f"""
        UPDATE campaigns SET status = 'CANCELLED', starts_at = NULL
        WHERE id = $1 AND status IN ('DRAFT', 'SCHEDULED') RETURNING {COLUMNS}
        """,
        [campaign_id],
    )
    return CampaignRow.of(rows[0]) if rows else None


async def move(conn: BaseDBAsyncClient, campaign_id: uuid.UUID, before: str, after: str) -> CampaignRow | None:
    """The campaign from one status to another, if it is in the first (locked till commit)."""
    rows = await conn.execute_query_dict(
        f"UPDATE campaigns SET status = $3 WHERE id = $1 AND status = $2 RETURNING {COLUMNS}",
        [campaign_id, before, after],
    )
    return CampaignRow.of(rows[0]) if rows else None


async def pending_notifications(conn: BaseDBAsyncClient, campaign_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await conn.execute_query_dict(
        "SELECT notification_id FROM campaign_recipients WHERE campaign_id = $1 AND outcome = 'PENDING'",
        [campaign_id],
    )
    return [r["notification_id"] for r in rows]


async def claim_due(conn: BaseDBAsyncClient, now: datetime) -> CampaignRow | None:
    """One scheduled campaign whose start has come, locked for this transaction; another
    worker skips it (and finds it SENDING once this one commits)."""
    rows = await conn.execute_query_dict(
        f"""
        SELECT {COLUMNS} FROM campaigns WHERE status = 'SCHEDULED' AND starts_at <= $1
        ORDER BY starts_at, id LIMIT 1 FOR UPDATE SKIP LOCKED
        """,
        [now],
    )
    return CampaignRow.of(rows[0]) if rows else None


async def insert_recipients(conn: BaseDBAsyncClient, campaign_id: uuid.UUID, rows: list[NewRecipient]) -> int:
    """Each member once per campaign, whatever ran before (the unique constraint decides)."""
    if not rows:
        return 0
    done = await conn.execute_query_dict(
        """
        INSERT INTO campaign_recipients (id, campaign_id, member_id, variant, notification_id, outcome, planned_at)
        SELECT r.id, $1, r.member_id, r.variant, r.notification_id, r.outcome, r.planned_at
        FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::uuid[], $6::text[], $7::timestamptz[])
             AS r(id, member_id, variant, notification_id, outcome, planned_at)
        ON CONFLICT (campaign_id, member_id) DO NOTHING RETURNING id
        """,
        [
            campaign_id,
            [r.id for r in rows],
            [r.member_id for r in rows],
            [r.variant for r in rows],
            [r.notification_id for r in rows],
            [r.outcome for r in rows],
            [r.planned_at for r in rows],
        ],
    )
    return len(done)


async def mark_started(conn: BaseDBAsyncClient, campaign_id: uuid.UUID, now: datetime, *, finished: bool) -> None:
    await conn.execute_query(
        "UPDATE campaigns SET status = $2, started_at = $3, finished_at = $4 WHERE id = $1",
        [campaign_id, "SENT" if finished else "SENDING", now, now if finished else None],
    )


async def record_outcomes(
    conn: BaseDBAsyncClient,
    notification_ids: list[uuid.UUID],
    outcomes: list[str],
    reasons: list[str | None],
    sent_at: list[datetime | None],
    now: datetime,
) -> list[Recorded]:
    """The final outcome of the recipients these notifications were for; a campaign whose
    last recipient is answered is SENT. Returns the recipients changed."""
    rows = await conn.execute_query_dict(
        """
        UPDATE campaign_recipients r SET outcome = o.outcome, reason = o.reason, sent_at = o.sent_at
        FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[]) AS o(id, outcome, reason, sent_at)
        WHERE r.notification_id = o.id RETURNING r.campaign_id, r.member_id, r.outcome
        """,
        [notification_ids, outcomes, reasons, sent_at],
    )
    await finish_if_answered(conn, list({r["campaign_id"] for r in rows}), now)
    return [Recorded(r["campaign_id"], r["member_id"], r["outcome"]) for r in rows]


async def finish_if_answered(conn: BaseDBAsyncClient, campaigns: list[uuid.UUID], now: datetime) -> None:
    """SENT: every recipient of these sending campaigns has an outcome."""
    if campaigns:
        await conn.execute_query(
            """
            UPDATE campaigns c SET status = 'SENT', finished_at = $2
            WHERE c.id = ANY($1::uuid[]) AND c.status = 'SENDING'
              AND NOT EXISTS (SELECT 1 FROM campaign_recipients r WHERE r.campaign_id = c.id AND r.outcome = 'PENDING')
            """,
            [campaigns, now],
        )


async def recipients(campaign_id: uuid.UUID) -> list[RecipientRow]:
    rows = await _conn(None).execute_query_dict(
        """
        SELECT member_id, variant, notification_id, outcome, reason, planned_at, sent_at
        FROM campaign_recipients WHERE campaign_id = $1
        """,
        [campaign_id],
    )
    return [RecipientRow(**r) for r in rows]
