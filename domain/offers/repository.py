"""The offers' tables: offers and the members' activations (clips) of them."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from domain import db


@dataclass(frozen=True)
class OfferRow:
    id: uuid.UUID
    title: str
    description: str
    kind: str
    value: Decimal
    segment_keys: tuple[str, ...]
    tier_keys: tuple[str, ...]
    member_ids: tuple[str, ...]
    store_keys: tuple[str, ...]
    valid_from: datetime
    valid_until: datetime
    usage_limit: int | None
    activations: int
    created_at: datetime
    # the viewing member's clip, when there is one
    activated: bool = False
    coupon_code: str | None = None
    used_at: datetime | None = None


@dataclass(frozen=True)
class Clip:
    """A clipped, unused offer a purchase can use."""

    activation_id: uuid.UUID
    offer_id: uuid.UUID
    title: str
    kind: str
    value: Decimal
    store_keys: tuple[str, ...]


_COLUMNS = (
    "o.id, o.title, o.description, o.kind, o.value, o.segment_keys, o.tier_keys, o.member_ids, o.store_keys,"
    " o.valid_from, o.valid_until, o.usage_limit, o.activations, o.created_at"
)
_LISTS = ("segment_keys", "tier_keys", "member_ids", "store_keys")


def _conn(conn: BaseDBAsyncClient | None) -> BaseDBAsyncClient:
    return conn or connections.get("default")


def _row(r: dict) -> OfferRow:
    r = dict(r)
    for name in _LISTS:
        value = r[name]
        r[name] = tuple(json.loads(value) if isinstance(value, str) else value)
    r["activated"] = bool(r.get("activated", False))
    return OfferRow(**r)


async def insert(conn: BaseDBAsyncClient, **values) -> uuid.UUID:
    offer_id = uuid.uuid4()
    await conn.execute_query(
        "INSERT INTO offers (id, title, description, kind, value, segment_keys, tier_keys, member_ids, store_keys,"
        " valid_from, valid_until, usage_limit, activations, created_by, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8::jsonb, $9::jsonb, $10, $11, $12, 0, $13, $14)",
        [
            offer_id,
            values["title"],
            values["description"],
            values["kind"],
            values["value"],
            *(json.dumps(list(values[name])) for name in _LISTS),
            values["valid_from"],
            values["valid_until"],
            values["usage_limit"],
            values["created_by"][:200],
            values["created_at"],
        ],
    )
    return offer_id


async def by_id(offer_id: uuid.UUID, conn: BaseDBAsyncClient | None = None, *, lock: bool = False) -> OfferRow | None:
    rows = await _conn(conn).execute_query_dict(
        f"SELECT {_COLUMNS} FROM offers o WHERE o.id = $1" + (" FOR UPDATE" if lock else ""), [offer_id]
    )
    return _row(rows[0]) if rows else None


# An offer targets a member by id, by tier or by one of their segments.
_TARGETS = "(o.member_ids ? $1::text OR o.tier_keys ? $2::text OR o.segment_keys ?| $3::text[])"


async def for_member(
    member_id: uuid.UUID,
    tier_key: str,
    segment_keys: list[str],
    now: datetime,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None = None,
    offer_id: uuid.UUID | None = None,
    store_key: str | None = None,
) -> list[OfferRow]:
    """Offers that target the member (or that a campaign gave them) and are valid now,
    not used by them, and still open (under their usage limit, unless the member clipped
    one already); ending soonest first. `store_key`: only those usable there (bound to it, or to no store)."""
    params: list = [str(member_id), tier_key, segment_keys, now, limit, member_id]
    where = ""
    if after is not None:
        params += [after[0], after[1]]
        where += " AND (o.valid_until, o.id) > ($7, $8::uuid)"
    if offer_id is not None:
        params.append(offer_id)
        where += f" AND o.id = ${len(params)}::uuid"
    if store_key is not None:
        params.append(store_key)
        where += f" AND (o.store_keys = '[]'::jsonb OR o.store_keys ? ${len(params)}::text)"
    rows = await _conn(None).execute_query_dict(
        f"""
        SELECT {_COLUMNS}, a.id IS NOT NULL AS activated, a.coupon_code, a.used_at
        FROM offers o LEFT JOIN offer_activations a ON a.offer_id = o.id AND a.member_id = $6
        WHERE ({_TARGETS} OR a.id IS NOT NULL) AND o.valid_from <= $4 AND o.valid_until > $4 AND a.used_at IS NULL
          AND (a.id IS NOT NULL OR o.usage_limit IS NULL OR o.activations < o.usage_limit){where}
        ORDER BY o.valid_until, o.id LIMIT $5
        """,
        params,
    )
    return [_row(r) for r in rows]


async def activation(conn: BaseDBAsyncClient, offer_id: uuid.UUID, member_id: uuid.UUID) -> dict | None:
    rows = await conn.execute_query_dict(
        "SELECT id, coupon_code, used_at FROM offer_activations WHERE offer_id = $1 AND member_id = $2",
        [offer_id, member_id],
    )
    return rows[0] if rows else None


async def clip(
    conn: BaseDBAsyncClient, offer_id: uuid.UUID, member_id: uuid.UUID, now: datetime, coupon_code: str | None
) -> None:
    """The activation and the offer's count, together (the caller holds the offer's row)."""
    await conn.execute_query(
        """
        WITH counted AS (UPDATE offers SET activations = activations + 1 WHERE id = $1)
        INSERT INTO offer_activations (id, offer_id, member_id, activated_at, coupon_code)
        VALUES ($3, $1, $2, $4, $5)
        """,
        [offer_id, member_id, uuid.uuid4(), now, coupon_code],
    )


def clips_part(member_id: uuid.UUID, store_key: str, now: datetime) -> db.Part:
    """The member's clipped, unused point offers valid now and usable at this store, as a
    part of the purchase's one read after its wallet lock (`clips_of` reads it back)."""
    return db.Part(
        """
        SELECT array_agg(ROW(a.id, o.id, o.title, o.kind, o.value, o.store_keys) ORDER BY a.activated_at, a.id)
               AS offer_clips
        FROM offer_activations a JOIN offers o ON o.id = a.offer_id
        WHERE a.member_id = $1 AND a.used_at IS NULL AND o.kind IN ('BONUS_POINTS', 'POINTS_MULTIPLIER')
          AND o.valid_from <= $2 AND o.valid_until > $2
          AND (o.store_keys = '[]'::jsonb OR o.store_keys ? $3::text)
        """,
        (member_id, now, store_key),
    )


def clips_of(row: dict) -> list[Clip]:
    return [
        Clip(
            activation_id,
            offer_id,
            title,
            kind,
            Decimal(value),
            tuple(json.loads(store_keys) if isinstance(store_keys, str) else store_keys),
        )
        for activation_id, offer_id, title, kind, value, store_keys in row["offer_clips"] or ()
    ]


def mark_used_part(activation_ids: list[uuid.UUID], purchase_id: uuid.UUID, now: datetime, when: str) -> db.Part:
    """CTEs for the purchase's statement, when the SQL condition `when` holds: these clips
    used (once: a second use finds nothing to update; the wallet lock keeps it from happening)."""
    return db.Part(
        "offers_used AS (UPDATE offer_activations SET used_at = $3, purchase_id = $2"
        f" WHERE id = ANY($1::uuid[]) AND used_at IS NULL AND {when})",
        (activation_ids, purchase_id, now),
    )


async def coupon_for_update(conn: BaseDBAsyncClient, code: str) -> dict | None:
    """The clip behind a coupon code, held until the transaction ends."""
    rows = await conn.execute_query_dict(
        "SELECT a.id, a.offer_id, a.member_id, a.used_at, o.valid_until FROM offer_activations a"
        " JOIN offers o ON o.id = a.offer_id WHERE a.coupon_code = $1 FOR UPDATE OF a",
        [code],
    )
    return rows[0] if rows else None


async def use_coupon(conn: BaseDBAsyncClient, activation_id: uuid.UUID, now: datetime) -> None:
    await conn.execute_query("UPDATE offer_activations SET used_at = $2 WHERE id = $1", [activation_id, now])


async def grant(
    conn: BaseDBAsyncClient, offer_id: uuid.UUID, member_ids: list[uuid.UUID], codes: list[str | None], now: datetime
) -> list[uuid.UUID]:
    """Clip the offer for these members (a campaign's recipients), each once, up to the
    offer's usage limit (the caller holds the offer's row); the members it was new for."""
    rows = await conn.execute_query_dict(
        """
        WITH room AS (
            SELECT CASE WHEN usage_limit IS NULL THEN NULL ELSE GREATEST(usage_limit - activations, 0) END AS n
            FROM offers WHERE id = $1
        ), fresh AS (
            SELECT g.member_id, g.code, g.i FROM unnest($2::uuid[], $3::text[]) WITH ORDINALITY AS g(member_id, code, i)
            WHERE NOT EXISTS (SELECT 1 FROM offer_activations a WHERE a.offer_id = $1 AND a.member_id = g.member_id)
            ORDER BY g.i LIMIT (SELECT n FROM room)
        ), added AS (
            INSERT INTO offer_activations (id, offer_id, member_id, activated_at, coupon_code)
            SELECT gen_random_uuid(), $1, member_id, $4, code FROM fresh
            ON CONFLICT (offer_id, member_id) DO NOTHING RETURNING member_id
        ), counted AS (
            UPDATE offers SET activations = activations + (SELECT COUNT(*) FROM added) WHERE id = $1
        )
        SELECT member_id FROM added
        """,
        [offer_id, member_ids, codes, now],
    )
    return [r["member_id"] for r in rows]


async def used_within(
    offer_id: uuid.UUID, member_ids: list[uuid.UUID], starts: list[datetime], ends: list[datetime]
) -> set[uuid.UUID]:
    """Of the members given, those who used the offer in their own [start, end) window."""
    rows = await _conn(None).execute_query_dict(
        """
        SELECT w.member_id FROM unnest($2::uuid[], $3::timestamptz[], $4::timestamptz[]) AS w(member_id, starts, ends)
        JOIN offer_activations a ON a.offer_id = $1 AND a.member_id = w.member_id
        WHERE a.used_at >= w.starts AND a.used_at < w.ends
        """,
        [offer_id, member_ids, starts, ends],
    )
    return {r["member_id"] for r in rows}
