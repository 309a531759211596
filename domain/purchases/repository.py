"""The purchases area's own SQL on its tables (purchases, refunds)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from domain import db

# --- reads for KPIs ---


@dataclass(frozen=True)
class PurchaseActivity:
    """Who bought in a period and in the period of equal length before it."""

    active: int  # members with a purchase in the period
    repeaters: int  # of those, members with two or more
    active_before: int  # members with a purchase in the period before
    retained: int  # members active in both periods
    orders: int  # purchases in the period
    net_sales: Decimal  # their amounts less what was refunded of them


async def activity(
    before: datetime, start: datetime, end: datetime, members: Sequence[uuid.UUID] | None = None
) -> PurchaseActivity:
    """One pass over the purchases in [before, end): per member, then summed. `members`
    narrows it to a set of members (a tier, a segment); None: everyone."""
    params: list = [before, start, end]
    among = db.among("member_id", members, params)
    rows = await db.analytic_read(
        f"""
        WITH per_member AS (
            SELECT COUNT(*) FILTER (WHERE occurred_at >= $2) AS now_n,
                   COUNT(*) FILTER (WHERE occurred_at < $2) AS before_n,
                   SUM(amount - refunded_amount) FILTER (WHERE occurred_at >= $2) AS net
            FROM purchases
            WHERE occurred_at >= $1 AND occurred_at < $3{among}
            GROUP BY member_id
        )
        SELECT COUNT(*) FILTER (WHERE now_n > 0) AS active,
               COUNT(*) FILTER (WHERE now_n > 1) AS repeaters,
               COUNT(*) FILTER (WHERE before_n > 0) AS active_before,
               COUNT(*) FILTER (WHERE before_n > 0 AND now_n > 0) AS retained,
               COALESCE(SUM(now_n), 0) AS orders,
               COALESCE(SUM(net), 0) AS net_sales
        FROM per_member
        """,
        params,
    )
    r = rows[0]
    return PurchaseActivity(
        active=int(r["active"]),
        repeaters=int(r["repeaters"]),
        active_before=int(r["active_before"]),
        retained=int(r["retained"]),
        orders=int(r["orders"]),
        net_sales=Decimal(r["net_sales"]),
    )
