"""The draws area's own SQL on its tables (draws, draw_entries). Functions that take
`conn` run inside the caller's transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from tortoise import connections

_DRAW = (
    "d.id, d.prize, d.description, d.winners, d.entry_cost, d.max_entries_per_member, d.closes_at, d.state,"
    " d.seed, d.reward_id, d.created_at, d.drawn_at"
)


@dataclass(frozen=True)
class DrawRow:
    id: uuid.UUID
    prize: str
    description: str
    winners: int
    entry_cost: int
    max_entries_per_member: int
    closes_at: datetime
    state: str
    seed: str | None
    reward_id: uuid.UUID
    created_at: datetime
    drawn_at: datetime | None
    entry_count: int = 0
    my_entries: int = 0


@dataclass(frozen=True)
class EntryRow:
    id: int
    draw_id: uuid.UUID
    member_id: uuid.UUID


async def insert_draw(conn, row: DrawRow, created_by: str) -> None:
    await conn.execute_query(
        "INSERT INTO draws (id, prize, description, winners, entry_cost, max_entries_per_member, closes_at, state,"
        " reward_id, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'OPEN', $8, $9, $10)",
        [
            row.id,
            row.prize,
            row.description,
            row.winners,
            row.entry_cost,
            row.max_entries_per_member,
            row.closes_at,
            row.reward_id,
            created_by[:100],
            row.created_at,
        ],
    )


async def lock(conn, draw_id: uuid.UUID, *, share: bool = False) -> DrawRow | None:
    """The draw, locked for the transaction: FOR SHARE by entries (many at once), FOR
    UPDATE by whatever changes its state (cancel, draw), which waits for entries in flight."""
    mode = "FOR SHARE" if share else "FOR UPDATE"
    rows = await conn.execute_query_dict(f"SELECT {_DRAW} FROM draws d WHERE d.id = $1 {mode}", [draw_id])
    return DrawRow(**rows[0]) if rows else None


async def entry_by_key(conn, member_id: uuid.UUID, key: str) -> EntryRow | None:
    rows = await conn.execute_query_dict(
        "SELECT id, draw_id, member_id FROM draw_entries WHERE member_id = $1 AND idempotency_key = $2",
        [member_id, key],
    )
    return EntryRow(**rows[0]) if rows else None


async def entries_of_member(conn, draw_id: uuid.UUID, member_id: uuid.UUID) -> int:
    rows = await conn.execute_query_dict(
        "SELECT COUNT(*) AS n FROM draw_entries WHERE draw_id = $1 AND member_id = $2", [draw_id, member_id]
    )
    return int(rows[0]["n"])


async def insert_entry(
    conn, draw_id: uuid.UUID, member_id: uuid.UUID, key: str, paid_by: int, now: datetime
) -> EntryRow:
    rows = await conn.execute_query_dict(
        "INSERT INTO draw_entries (draw_id, member_id, idempotency_key, paid_by_id, won, created_at)"
        " VALUES ($1, $2, $3, $4, false, $5) RETURNING id, draw_id, member_id",
        [draw_id, member_id, key, paid_by, now],
    )
    return EntryRow(**rows[0])


async def close(conn, draw_id: uuid.UUID, seed: str) -> None:
    """No more entries; the seed is recorded (and stays hidden until the draw is drawn)."""
    await conn.execute_query("UPDATE draws SET state = 'CLOSED', seed = $2 WHERE id = $1", [draw_id, seed])


async def mark_drawn(conn, draw_id: uuid.UUID, now: datetime) -> None:
    await conn.execute_query("UPDATE draws SET state = 'DRAWN', drawn_at = $2 WHERE id = $1", [draw_id, now])


async def mark_cancelled(conn, draw_id: uuid.UUID, now: datetime) -> None:
    await conn.execute_query("UPDATE draws SET state = 'CANCELLED', cancelled_at = $2 WHERE id = $1", [draw_id, now])


async def entries(conn, draw_id: uuid.UUID, *, unrefunded: bool = False) -> list[EntryRow]:
    """The draw's entries by entry number."""
    where = " AND refunded_by_id IS NULL" if unrefunded else ""
    rows = await conn.execute_query_dict(
        f"SELECT id, draw_id, member_id FROM draw_entries WHERE draw_id = $1{where} ORDER BY id", [draw_id]
    )
    return [EntryRow(**r) for r in rows]


async def mark_refunded(conn, entry_id: int, ledger_entry_id: int) -> None:
    await conn.execute_query(
        "UPDATE draw_entries SET refunded_by_id = $2 WHERE id = $1 AND refunded_by_id IS NULL",
        [entry_id, ledger_entry_id],
    )


async def mark_won(conn, entry_id: int, coupon_id: uuid.UUID) -> None:
    await conn.execute_query("UPDATE draw_entries SET won = true, coupon_id = $2 WHERE id = $1", [entry_id, coupon_id])


async def due(now: datetime) -> list[uuid.UUID]:
    """Draws past their closing time that are not drawn yet (OPEN, or CLOSED by a run that stopped)."""
    rows = await connections.get("default").execute_query_dict(
        "SELECT id FROM draws WHERE state IN ('OPEN', 'CLOSED') AND closes_at <= $1 ORDER BY closes_at, id", [now]
    )
    return [r["id"] for r in rows]


_COUNTS = (
    "(SELECT COUNT(*) FROM draw_entries e WHERE e.draw_id = d.id) AS entry_count,"
    " (SELECT COUNT(*) FROM draw_entries e WHERE e.draw_id = d.id AND e.member_id = $1) AS my_entries"
)


async def find(draw_id: uuid.UUID, member_id: uuid.UUID | None) -> DrawRow | None:
    rows = await connections.get("default").execute_query_dict(
        f"SELECT {_DRAW}, {_COUNTS} FROM draws d WHERE d.id = $2", [member_id, draw_id]
    )
    return DrawRow(**rows[0]) if rows else None


async def open_draws(
    member_id: uuid.UUID | None, now: datetime, limit: int, after: tuple[datetime, uuid.UUID] | None
) -> list[DrawRow]:
    """Draws taking entries, closing soonest first, with the member's entry counts (one query)."""
    return await _draws([member_id, now], "d.state = 'OPEN' AND d.closes_at > $2", limit, after)


async def all_draws(limit: int, after: tuple[datetime, uuid.UUID] | None) -> list[DrawRow]:
    """Every draw, by closing time (no member: no own entries)."""
    return await _draws([None], "true", limit, after)


async def _draws(params: list, where: str, limit: int, after: tuple[datetime, uuid.UUID] | None) -> list[DrawRow]:
    if after is not None:
        params = [*params, *after]
        where += f" AND (d.closes_at, d.id) > (${len(params) - 1}, ${len(params)})"
    rows = await connections.get("default").execute_query_dict(
        f"SELECT {_DRAW}, {_COUNTS} FROM draws d WHERE {where} ORDER BY d.closes_at, d.id LIMIT {int(limit)}",
        params,
    )
    return [DrawRow(**r) for r in rows]


async def winning_entries(draw_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[int]]:
    rows = await connections.get("default").execute_query_dict(
        "SELECT draw_id, id FROM draw_entries WHERE draw_id = ANY($1::uuid[]) AND won ORDER BY id", [draw_ids]
    )
    out: dict[uuid.UUID, list[int]] = {d: [] for d in draw_ids}
    for r in rows:
        out[r["draw_id"]].append(r["id"])
    return out


async def entry_numbers(draw_id: uuid.UUID) -> list[int]:
    rows = await connections.get("default").execute_query_dict(
        "SELECT id FROM draw_entries WHERE draw_id = $1 ORDER BY id", [draw_id]
    )
    return [r["id"] for r in rows]
