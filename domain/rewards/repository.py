"""The rewards and coupons tables: the only module that queries them. Rows leave as
frozen dataclasses; a use case's transaction is passed as `conn`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient

from domain import db

_REWARD = "id, name, description, points_cost, stock, min_tier_rank, coupon_valid_days, active, created_at"
_COUPON = "id, code, member_id, reward_id, entry_id, idempotency_key, expires_at, redeemed_at, redeemed_by, created_at"


@dataclass(frozen=True, slots=True)
class RewardRow:
    id: uuid.UUID
    name: str
    description: str
    points_cost: int
    stock: int | None  # None: unlimited
    min_tier_rank: int
    coupon_valid_days: int
    active: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CouponRow:
    id: uuid.UUID
    code: str
    member_id: uuid.UUID
    reward_id: uuid.UUID
    entry_id: int | None  # None: a prize won in a draw, not bought with points
    idempotency_key: str
    expires_at: datetime
    redeemed_at: datetime | None
    redeemed_by: str | None
    created_at: datetime


async def insert_reward(conn, row: RewardRow) -> RewardRow:
    await db.client(conn).execute_query(
        f"INSERT INTO rewards ({_REWARD}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        [
            row.id,
            row.name,
            row.description,
            row.points_cost,
            row.stock,
            row.min_tier_rank,
            row.coupon_valid_days,
            row.active,
            row.created_at,
        ],
    )
    return row


async def reward(
    reward_id: uuid.UUID, *, conn: BaseDBAsyncClient | None = None, lock: bool = False
) -> RewardRow | None:
    rows = await db.client(conn).execute_query_dict(
        f"SELECT {_REWARD} FROM rewards WHERE id = $1" + (" FOR UPDATE" if lock else ""), [reward_id]
    )
    return RewardRow(**rows[0]) if rows else None


async def active_up_to(
    rank: int, limit: int, after: tuple[datetime, uuid.UUID] | None = None, reward_id: uuid.UUID | None = None
) -> list[RewardRow]:
    """Active rewards whose minimum tier rank is at most `rank`, newest first, keyset-paged
    on (created_at, id); or just the one with `reward_id`."""
    sql, params = f"SELECT {_REWARD} FROM rewards WHERE active AND min_tier_rank <= $1", [rank]
    if reward_id is not None:
        params.append(reward_id)
        sql += f" AND id = ${len(params)}"
    if after is not None:
        params += list(after)
        sql += f" AND (created_at, id) < (${len(params) - 1}, ${len(params)})"
    params.append(limit)
    rows = await db.client().execute_query_dict(
        sql + f" ORDER BY created_at DESC, id DESC LIMIT ${len(params)}", params
    )
    return [RewardRow(**r) for r in rows]


async def take_one(conn: BaseDBAsyncClient, reward_id: uuid.UUID) -> None:
    """One less in stock (the caller holds the reward's row)."""
    await conn.execute_query("UPDATE rewards SET stock = stock - 1 WHERE id = $1", [reward_id])


async def cheapest_for_everyone(limit: int) -> list[RewardRow]:
    """Active, in-stock rewards open to every tier, cheapest first."""
    rows = await db.client().execute_query_dict(
        f"SELECT {_REWARD} FROM rewards WHERE active AND (stock IS NULL OR stock > 0)"
        " AND min_tier_rank = 0 ORDER BY points_cost LIMIT $1",
        [limit],
    )
    return [RewardRow(**r) for r in rows]


async def coupon_for_key(conn: BaseDBAsyncClient, member_id: uuid.UUID, key: str) -> CouponRow | None:
    rows = await conn.execute_query_dict(
        f"SELECT {_COUPON} FROM coupons WHERE member_id = $1 AND idempotency_key = $2", [member_id, key]
    )
    return CouponRow(**rows[0]) if rows else None


async def insert_coupon(conn: BaseDBAsyncClient, row: CouponRow) -> CouponRow:
    await conn.execute_query(
        f"INSERT INTO coupons ({_COUPON}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        [
            row.id,
            row.code,
            row.member_id,
            row.reward_id,
            row.entry_id,
            row.idempotency_key,
            row.expires_at,
            row.redeemed_at,
            row.redeemed_by,
            row.created_at,
        ],
    )
    return row


async def coupon_by_code(conn: BaseDBAsyncClient, code: str) -> CouponRow | None:
    """The coupon with this code, its row locked until the caller commits."""
    rows = await conn.execute_query_dict(f"SELECT {_COUPON} FROM coupons WHERE code = $1 FOR UPDATE", [code])
    return CouponRow(**rows[0]) if rows else None


async def mark_redeemed(conn: BaseDBAsyncClient, coupon_id: uuid.UUID, at: datetime, by: str) -> CouponRow:
    rows = await conn.execute_query_dict(
        f"UPDATE coupons SET redeemed_at = $2, redeemed_by = $3 WHERE id = $1 RETURNING {_COUPON}",
        [coupon_id, at, by],
    )
    return CouponRow(**rows[0])


async def coupon(coupon_id: uuid.UUID) -> CouponRow | None:
    rows = await db.client().execute_query_dict(f"SELECT {_COUPON} FROM coupons WHERE id = $1", [coupon_id])
    return CouponRow(**rows[0]) if rows else None
