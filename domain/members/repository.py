"""The members area's own SQL on its table."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from tortoise import connections

from domain import db

# --- reads for KPIs ---


async def joined_between(start: datetime, end: datetime, members: Sequence[uuid.UUID] | None = None) -> int:
    """How many members enrolled in [start, end), of `members` when given."""
    params: list = [start, end]
    among = db.among("id", members, params)
    rows = await connections.get("default").execute_query_dict(
        f"SELECT COUNT(*) AS n FROM members WHERE created_at >= $1 AND created_at < $2{among}", params
    )
    return int(rows[0]["n"])


async def ids_in_tier(tier_key: str) -> list[uuid.UUID]:
    """The members holding a tier (the set the KPIs of a tier are computed over)."""
    rows = await connections.get("default").execute_query_dict("SELECT id FROM members WHERE tier_key = $1", [tier_key])
    return [r["id"] for r in rows]
