"""The wallets area's own SQL on its tables (wallets, ledger entries, lots)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tortoise import connections

from domain import db

# --- reads for KPIs ---


@dataclass(frozen=True)
class PointsFlow:
    """Points that moved through the points wallets in a period (each a positive number)."""

    issued: int  # EARN, BONUS and ADJUST entries (net), less what purchase refunds took back
    redeemed: int  # REDEEM entries: spent on rewards and draws, less draw entries refunded
    expired: int  # EXPIRE entries


async def points_flow(start: datetime, end: datetime, members: Sequence[uuid.UUID] | None = None) -> PointsFlow:
    params: list = [start, end]
    among = db.among("e.member_id", members, params)
    rows = await db.analytic_read(
        f"""
        SELECT COALESCE(SUM(e.amount) FILTER (WHERE e.kind IN ('EARN', 'BONUS', 'ADJUST', 'REFUND')), 0) AS issued,
               COALESCE(-SUM(e.amount) FILTER (WHERE e.kind = 'REDEEM'), 0) AS redeemed,
               COALESCE(-SUM(e.amount) FILTER (WHERE e.kind = 'EXPIRE'), 0) AS expired
        FROM ledger_entries e
        WHERE e.occurred_at >= $1 AND e.occurred_at < $2{among}
          -- an anti-join on the (few, often no) cashback wallets costs far less than a join on the points ones
          AND NOT EXISTS (SELECT 1 FROM wallets w WHERE w.id = e.wallet_id AND w.kind = 'CASHBACK')
        """,
        params,
    )
    r = rows[0]
    return PointsFlow(issued=int(r["issued"]), redeemed=int(r["redeemed"]), expired=int(r["expired"]))


async def points_held(members: Sequence[uuid.UUID] | None = None) -> int:
    """Points members hold now: spendable and pending (the program owes both)."""
    params: list = []
    among = db.among("member_id", members, params)
    rows = await connections.get("default").execute_query_dict(
        f"SELECT COALESCE(SUM(balance + pending), 0) AS held FROM wallets WHERE kind = 'POINTS'{among}", params
    )
    return int(rows[0]["held"])
