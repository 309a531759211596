"""Bulk data for the worker test and bench/push: members with consent and a device,
each with one notification due now. Written in one statement, not through the API."""

from __future__ import annotations


async def members_with_devices(conn, n: int, prefix: str) -> list:
    """`n` consenting bronze members with one device each; `prefix` (one capital letter)
    keeps member numbers and tokens apart: token-<prefix>000000001… Returns their ids."""
    rows = await conn.fetch(
        """
        WITH m AS (
            INSERT INTO members (id, member_number, email, timezone, locale, push_marketing, location_nudges,
                                 tier_key, created_at, updated_at)
            SELECT gen_random_uuid(), $2 || lpad(g::text, 9, '0'), lower($2) || g || '@example.com', 'UTC', 'en',
                   true, false, 'bronze', now(), now()
            FROM generate_series(1, $1) g RETURNING id, member_number
        ), d AS (
            INSERT INTO devices (id, member_id, fcm_token, platform, last_seen_at, created_at)
            SELECT gen_random_uuid(), id, 'token-' || member_number, 'ANDROID', now(), now() FROM m
        )
        SELECT id FROM m
        """,
        n,
        prefix,
    )
    return [r["id"] for r in rows]


async def due_notifications(conn, n: int, prefix: str) -> None:
    """Members as `members_with_devices` makes them, each with one notification due now."""
    ids = await members_with_devices(conn, n, prefix)
    await conn.execute(
        """
        INSERT INTO notifications (id, member_id, kind, title, body, data, dedupe_key, state, due_at, attempts,
                                   created_at)
        SELECT gen_random_uuid(), m.id, 'CAMPAIGN', 'Hello', 'Come back soon', '{}', 'due-' || m.id,
               'QUEUED', now() - interval '1 minute', 0, now()
        FROM unnest($1::uuid[]) AS m(id)
        """,
        ids,
    )
