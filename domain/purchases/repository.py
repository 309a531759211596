"""SQL on the purchases area's tables, returning immutable rows."""

from __future__ import annotations

import uuid
from datetime import datetime

from tortoise import connections

# --- reads for campaigns ---


async def buyers_within(member_ids: list[uuid.UUID], starts: list[datetime], ends: list[datetime]) -> set[uuid.UUID]:
    """Of the members given, those with a purchase in their own [start, end) window."""
    rows = await connections.get("default").execute_query_dict(
        """
        SELECT w.member_id FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[]) AS w(member_id, starts, ends)
        WHERE EXISTS (SELECT 1 FROM purchases p WHERE p.member_id = w.member_id
                      AND p.occurred_at >= w.starts AND p.occurred_at < w.ends)
        """,
        [member_ids, starts, ends],
    )
    return {r["member_id"] for r in rows}
