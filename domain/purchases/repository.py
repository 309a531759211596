"""The purchases and refunds tables, and purchase_days (per member, UTC day and store:
the purchases not wholly refunded and their spend, kept by the statements that write
purchases, so one member's segments sum days instead of their whole history): the only
module that writes them (segments read them for their recomputation statement)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from itertools import pairwise

from tortoise.backends.base.client import BaseDBAsyncClient

from domain import db

_COLUMNS = (
    "id, member_id, external_id, channel, store_key, amount, currency, points_earned, cashback_earned,"
    " refunded_amount, points_reversed, cashback_reversed, shortfall, occurred_at"
)


@dataclass(frozen=True, slots=True)
class PurchaseRow:
    id: uuid.UUID
    member_id: uuid.UUID
    external_id: str
    channel: str
    store_key: str
    amount: Decimal
    currency: str
    points_earned: int
    cashback_earned: int
    refunded_amount: Decimal
    points_reversed: int
    cashback_reversed: int
    shortfall: int
    occurred_at: datetime


# In the statement `insert` runs: true when the purchase is new (its row was written now),
# and the new purchase's (store_key, amount, occurred_at) (no row for one sent before).
RECORDED = "EXISTS (SELECT 1 FROM recorded)"
RECORDED_ROWS = "SELECT store_key, amount, occurred_at FROM recorded"


async def insert(
    conn: BaseDBAsyncClient,
    purchase_id: uuid.UUID,
    member_id: uuid.UUID,
    channel: str,
    store_key: str,
    external_id: str,
    amount: Decimal,
    currency: str,
    now: datetime,
    points: int,
    cashback: int,
    then: Sequence[db.Part] = (),
) -> tuple[PurchaseRow | None, bool]:
    """(the purchase, whether it is new). One statement: the purchase, its member's day in
    purchase_days, and `then`: other areas' CTEs (the ledger's credit and the offers used,
    gated on `RECORDED`; the member's segments, told of the purchase by `RECORDED_ROWS`).
    This (channel, store, external id) recorded before: the stored purchase, read in the
    same statement; None when that one was committed while this statement waited on it
    (its snapshot is older): `by_receipt` reads it then."""
    params: list = [purchase_id, member_id, channel, store_key, external_id, amount, currency, now, points, cashback]
    more = "".join(f", {part.placed(params)}" for part in then)
    rows = await conn.execute_query_dict(
        "WITH recorded AS (INSERT INTO purchases (id, member_id, channel, store_key, external_id, amount, currency,"
        " occurred_at, points_earned, cashback_earned, refunded_amount, points_reversed, cashback_reversed, shortfall)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, 0, 0, 0)"
        f" ON CONFLICT (channel, store_key, external_id) DO NOTHING RETURNING {_COLUMNS}"
        "), days AS (INSERT INTO purchase_days (member_id, day, store_key, purchases, spend)"
        " SELECT member_id, (occurred_at AT TIME ZONE 'UTC')::date, store_key, 1, amount FROM recorded"
        " ON CONFLICT (member_id, day, store_key) DO UPDATE"
        " SET purchases = purchase_days.purchases + 1, spend = purchase_days.spend + EXCLUDED.spend"
        f"){more} SELECT {_COLUMNS}, true AS new FROM recorded"
        f" UNION ALL SELECT {_COLUMNS}, false FROM purchases WHERE channel = $3 AND store_key = $4"
        " AND external_id = $5 AND NOT EXISTS (SELECT 1 FROM recorded)",
        params,
    )
    if not rows:
        return None, False
    row = rows[0]
    return PurchaseRow(**{k: v for k, v in row.items() if k != "new"}), row["new"]


async def by_receipt(conn: BaseDBAsyncClient, channel: str, store_key: str, external_id: str) -> PurchaseRow | None:
    rows = await conn.execute_query_dict(
        f"SELECT {_COLUMNS} FROM purchases WHERE channel = $1 AND store_key = $2 AND external_id = $3",
        [channel, store_key, external_id],
    )
    return PurchaseRow(**rows[0]) if rows else None


async def by_id(
    purchase_id: uuid.UUID, *, conn: BaseDBAsyncClient | None = None, lock: bool = False
) -> PurchaseRow | None:
    rows = await db.client(conn).execute_query_dict(
        f"SELECT {_COLUMNS} FROM purchases WHERE id = $1" + (" FOR UPDATE" if lock else ""), [purchase_id]
    )
    return PurchaseRow(**rows[0]) if rows else None


async def by_external_id(
    conn: BaseDBAsyncClient, external_id: str, channel: str | None, store_key: str | None
) -> list[PurchaseRow]:
    """At most two purchases with this external id (and channel, store when given)."""
    where, params = "external_id = $1", [external_id]
    if channel is not None:
        where += f" AND channel = ${len(params) + 1}"
        params.append(channel)
    if store_key is not None:
        where += f" AND store_key = ${len(params) + 1}"
        params.append(store_key)
    rows = await conn.execute_query_dict(f"SELECT {_COLUMNS} FROM purchases WHERE {where} LIMIT 2", params)
    return [PurchaseRow(**r) for r in rows]


async def refunded_with_key(conn: BaseDBAsyncClient, purchase_id: uuid.UUID, key: str) -> Decimal | None:
    """The amount of this purchase's refund with this idempotency key, if any."""
    rows = await conn.execute_query_dict(
        "SELECT amount FROM refunds WHERE purchase_id = $1 AND idempotency_key = $2", [purchase_id, key]
    )
    return Decimal(rows[0]["amount"]) if rows else None


async def add_refund(
    conn: BaseDBAsyncClient,
    purchase_id: uuid.UUID,
    amount: Decimal,
    points: int,
    cashback: int,
    taken_points: int,
    taken_cashback: int,
    shortfall: int,
    key: str | None,
    now: datetime,
) -> PurchaseRow:
    """The refund's row and the purchase's totals; the purchase as it is after."""
    # One statement: the purchase and its day in purchase_days (less spend; one purchase
    # fewer when this refund is the one that takes the rest of it).
    rows = await conn.execute_query_dict(
        "WITH u AS (UPDATE purchases SET refunded_amount = refunded_amount + $2,"
        " points_reversed = points_reversed + $3, cashback_reversed = cashback_reversed + $4,"
        f" shortfall = shortfall + $5 WHERE id = $1 RETURNING {_COLUMNS}"
        "), d AS (UPDATE purchase_days SET spend = spend - $2,"
        " purchases = purchases - (u.refunded_amount >= u.amount AND u.refunded_amount - $2 < u.amount)::int"
        " FROM u WHERE purchase_days.member_id = u.member_id"
        " AND purchase_days.day = (u.occurred_at AT TIME ZONE 'UTC')::date AND purchase_days.store_key = u.store_key"
        f") SELECT {_COLUMNS} FROM u",
        [purchase_id, amount, points, cashback, shortfall],
    )
    await conn.execute_query(
        "INSERT INTO refunds (purchase_id, amount, points_reversed, cashback_reversed, shortfall,"
        " idempotency_key, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        [purchase_id, amount, taken_points, taken_cashback, shortfall, key, now],
    )
    return PurchaseRow(**rows[0])


# --- reads for KPIs ---


@dataclass(frozen=True, slots=True)
class PurchaseActivity:
    """Who bought in a period and in the period of equal length before it."""

    active: int  # members with a purchase in the period
    repeaters: int  # of those, members with two or more
    active_before: int  # members with a purchase in the period before
    retained: int  # members active in both periods
    orders: int  # purchases in the period
    net_sales: Decimal  # their amounts less what was refunded of them


# Members per part of the KPIs' pass over the purchases: each part is one statement on a
# connection of its own, run side by side (PostgreSQL's own parallel plan merges 200,000
# partial groups through one process and gains nothing here: bench/analytics).
ACTIVITY_PARTS = 2


async def activity(
    before: datetime, start: datetime, end: datetime, members: Sequence[uuid.UUID] | None = None
) -> PurchaseActivity:
    """One pass over the purchases in [before, end): per member, then summed. `members`
    narrows it to a set of members (a tier, a segment); None: everyone. Every figure is a
    sum over members, so the members are split into ranges of ids, one statement each, run
    side by side: a set of members in equal halves, everyone at the median of the planner's
    statistics of purchases.member_id (equal numbers of purchases; one range without them)."""
    if members is not None:
        ordered = sorted(members)
        size = -(-len(ordered) // ACTIVITY_PARTS) or 1
        parts = [(ordered[i : i + size], None, None) for i in range(0, len(ordered), size)] or [([], None, None)]
    else:
        bounds = [None, *await _member_quantiles(ACTIVITY_PARTS), None]
        parts = [(None, low, high) for low, high in pairwise(bounds)]
    done = await asyncio.gather(*(_activity(before, start, end, *part) for part in parts))
    return PurchaseActivity(*(sum(getattr(d, f.name) for d in done) for f in fields(PurchaseActivity)))


async def _member_quantiles(parts: int) -> list[uuid.UUID]:
    """Member ids that cut the purchases into `parts` ranges of about as many rows, from
    the planner's histogram (kept by ANALYZE); none before the table was analyzed."""
    rows = await db.client().execute_query_dict(
        "SELECT histogram_bounds::text::uuid[] AS bounds FROM pg_stats"
        " WHERE schemaname = current_schema() AND tablename = 'purchases' AND attname = 'member_id'"
    )
    bounds = rows[0]["bounds"] if rows and rows[0]["bounds"] else []
    if len(bounds) < parts * 2:
        return []
    return sorted({bounds[len(bounds) * i // parts] for i in range(1, parts)})


async def _activity(
    before: datetime,
    start: datetime,
    end: datetime,
    members: list[uuid.UUID] | None,
    low: uuid.UUID | None,
    high: uuid.UUID | None,
) -> PurchaseActivity:
    params: list = [before, start, end]
    among = db.among("member_id", members, params)
    for bound, value in ((">=", low), ("<", high)):  # the range of ids: the index's leading column
        if value is not None:
            params.append(value)
            among += f" AND member_id {bound} ${len(params)}"
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
        in_index_order=True,  # purchases_kpis: (member_id, occurred_at) with the amounts
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


# --- reads for campaigns ---


async def buyers_within(member_ids: list[uuid.UUID], starts: list[datetime], ends: list[datetime]) -> set[uuid.UUID]:
    """Of the members given, those with a purchase in their own [start, end) window."""
    rows = await db.client().execute_query_dict(
        """
        SELECT w.member_id FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[]) AS w(member_id, starts, ends)
        WHERE EXISTS (SELECT 1 FROM purchases p WHERE p.member_id = w.member_id
                      AND p.occurred_at >= w.starts AND p.occurred_at < w.ends)
        """,
        [member_ids, starts, ends],
    )
    return {r["member_id"] for r in rows}


# --- reads for journeys ---


async def nth_purchases_in(n: int, start: datetime, end: datetime) -> list[tuple[uuid.UUID, datetime]]:
    """(member, when) of each member whose n-th purchase (not fully refunded) was made in
    (start, end]: the window's buyers from purchases_counted_at (migration 0013), then at
    most n of each one's purchases from (member_id, occurred_at)."""
    rows = await db.client().execute_query_dict(
        """
        SELECT w.member_id, nth.occurred_at FROM (
            SELECT DISTINCT member_id FROM purchases
            WHERE occurred_at > $2 AND occurred_at <= $3 AND refunded_amount < amount
        ) w CROSS JOIN LATERAL (
            SELECT occurred_at FROM purchases p WHERE p.member_id = w.member_id AND p.refunded_amount < p.amount
            ORDER BY p.occurred_at, p.id OFFSET $1 - 1 LIMIT 1
        ) nth
        WHERE nth.occurred_at > $2 AND nth.occurred_at <= $3
        """,
        [n, start, end],
    )
    return [(r["member_id"], r["occurred_at"]) for r in rows]
