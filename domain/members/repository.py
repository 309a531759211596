"""SQL on the members area's tables, returning immutable rows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from tortoise import connections

# --- reads for campaigns ---


@dataclass(frozen=True)
class Reachable:
    """A member as a campaign's audience needs them: who, where (time zone), which
    language, and whether they take marketing pushes."""

    id: uuid.UUID
    timezone: str
    locale: str
    push_marketing: bool


async def reachable(member_ids: list[uuid.UUID], tier_keys: list[str], conn=None) -> list[Reachable]:
    """The members among `member_ids` or holding one of `tier_keys` ('' is the entry tier
    of a member never moved), in id order: one statement for any audience size."""
    rows = await (conn or connections.get("default")).execute_query_dict(
        "SELECT id, timezone, locale, push_marketing FROM members"
        " WHERE id = ANY($1::uuid[]) OR tier_key = ANY($2::text[]) ORDER BY id",
        [member_ids, tier_keys],
    )
    return [Reachable(r["id"], r["timezone"], r["locale"], r["push_marketing"]) for r in rows]
