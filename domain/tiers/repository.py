"""Tiers own no table: a tier is the members' `tier_key` column (written through the
members service) judged against the ledger's qualifying points (summed from the wallets'
per-day rollup, `qualifying_days`, which the ledger's statements keep). The one statement here
reads a member's standing across those tables in a single round trip, because the
purchase path cannot afford three: the tier held, the qualifying points in the window
and, when asked, the purchase points earned in the program's day (the daily cap)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient

from domain import db


@dataclass(frozen=True, slots=True)
class StandingRow:
    tier_key: str
    qualifying: int  # may be negative: a refund can outlive in the window the purchase it takes back
    earned_today: int  # 0 unless a day was asked for


def standing_part(member_id: uuid.UUID, since: datetime, day: tuple[datetime, datetime] | None) -> db.Part:
    """The standing's statement, as a part another statement can carry (the purchase's
    read after its wallet lock). No row: no such member. Qualifying points after `since`:
    the whole UTC days after since's day from the wallets' per-day rollup (at most ~366
    rows, however long the history), plus the entries of since's own day that come after
    it (an index range within one day)."""
    first_day = since.astimezone(UTC).date()
    first_day_ends = datetime.combine(first_day + timedelta(days=1), time(), UTC)
    earned = (
        "(SELECT COALESCE(SUM(points_earned), 0) FROM purchases"
        " WHERE member_id = $1 AND occurred_at >= $5 AND occurred_at < $6)"
        if day
        else "0"
    )
    return db.Part(
        f"""
        SELECT m.tier_key AS standing_tier, {earned} AS earned_today,
               (SELECT COALESCE(SUM(qualifying), 0) FROM qualifying_days WHERE member_id = $1 AND day > $3)
               + (SELECT COALESCE(SUM(qualifying), 0) FROM ledger_entries
                   WHERE member_id = $1 AND occurred_at > $2 AND occurred_at < $4) AS qualifying
        FROM members m WHERE m.id = $1
        """,
        (member_id, since, first_day, first_day_ends, *(day or ())),
    )


def standing_of(row: dict) -> StandingRow | None:
    """The standing in a row that carried `standing_part` (None: no such member)."""
    if row["standing_tier"] is None:
        return None
    return StandingRow(row["standing_tier"], int(row["qualifying"]), int(row["earned_today"]))


async def standing(
    conn: BaseDBAsyncClient, member_id: uuid.UUID, since: datetime, day: tuple[datetime, datetime] | None
) -> StandingRow | None:
    """`standing_part` alone."""
    part = standing_part(member_id, since, day)
    rows = await conn.execute_query_dict(part.sql, list(part.params))
    return standing_of(rows[0]) if rows else None
