"""Reading the outbox: what changed for a member after a cursor, in commit order.

Within one member, event ids grow in commit order (every writer holds the member's
wallet lock when it inserts one), so "id > cursor" is a gap-free resume point.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from tortoise import connections

WALLET_UPDATED = "WALLET_UPDATED"
TIER_CHANGED = "TIER_CHANGED"


@dataclass(frozen=True)
class Event:
    id: int
    kind: str
    member_id: uuid.UUID
    created_at: datetime
    wallet: dict | None  # id, member_id, kind, balance, pending: as right after the change
    entry: dict | None  # the ledger entry, for balance changes


async def latest(member_id: uuid.UUID) -> int:
    rows = await connections.get("default").execute_query_dict(
        "SELECT COALESCE(MAX(id), 0) AS id FROM wallet_events WHERE member_id = $1", [member_id]
    )
    return int(rows[0]["id"])


async def latest_many(member_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """`latest` for many members in one query (0 for a member with no event yet)."""
    rows = await connections.get("default").execute_query_dict(
        """
        SELECT m.member_id,
               COALESCE((SELECT MAX(ev.id) FROM wallet_events ev WHERE ev.member_id = m.member_id), 0) AS id
        FROM unnest($1::uuid[]) AS m(member_id)
        """,
        [member_ids],
    )
    return {r["member_id"]: int(r["id"]) for r in rows}


async def after(member_id: uuid.UUID, cursor: int, kinds: tuple[str, ...], limit: int = 100) -> list[Event]:
    rows = await connections.get("default").execute_query_dict(
        """
        SELECT ev.id, ev.kind, ev.member_id, ev.created_at, ev.wallet_id, w.kind AS wallet_kind,
               ev.balance, ev.pending, e.id AS entry_id, e.kind AS entry_kind, e.amount, e.balance_after,
               e.description, e.explanation, e.occurred_at
        FROM wallet_events ev
        LEFT JOIN wallets w ON w.id = ev.wallet_id
        LEFT JOIN ledger_entries e ON e.id = ev.entry_id
        WHERE ev.member_id = $1 AND ev.id > $2 AND ev.kind = ANY($3::text[])
        ORDER BY ev.id LIMIT $4
        """,
        [member_id, cursor, list(kinds), limit],
    )
    return [_event(r) for r in rows]


def _event(r: dict) -> Event:
    wallet = None
    if r["wallet_id"] is not None:
        wallet = {
            "id": r["wallet_id"],
            "member_id": r["member_id"],
            "kind": r["wallet_kind"],
            "balance": r["balance"],
            "pending": r["pending"],
        }
    entry = None
    if r["entry_id"] is not None:
        explanation = r["explanation"]
        entry = {
            "id": r["entry_id"],
            "kind": r["entry_kind"],
            "amount": r["amount"],
            "balance_after": r["balance_after"],
            "description": r["description"],
            "explanation": json.loads(explanation) if isinstance(explanation, str) else explanation,
            "occurred_at": r["occurred_at"],
        }
    return Event(r["id"], r["kind"], r["member_id"], r["created_at"], wallet, entry)


async def after_many(cursors: dict[uuid.UUID, int], limit: int = 5000) -> list[Event]:
    """What is new for many members at once: one query for a whole burst of wake-ups."""
    if not cursors:
        return []
    members = list(cursors)
    rows = await connections.get("default").execute_query_dict(
        """
        SELECT ev.id, ev.kind, ev.member_id, ev.created_at, ev.wallet_id, w.kind AS wallet_kind,
               ev.balance, ev.pending, e.id AS entry_id, e.kind AS entry_kind, e.amount, e.balance_after,
               e.description, e.explanation, e.occurred_at
        FROM unnest($1::uuid[], $2::bigint[]) AS s(member_id, cursor)
        -- LATERAL: an index range per member. A plain join let the planner hash the
        -- whole outbox for a burst of a few members (a scan that grows with history).
        CROSS JOIN LATERAL (
            SELECT * FROM wallet_events x WHERE x.member_id = s.member_id AND x.id > s.cursor ORDER BY x.id LIMIT $3
        ) ev
        LEFT JOIN wallets w ON w.id = ev.wallet_id
        LEFT JOIN ledger_entries e ON e.id = ev.entry_id
        ORDER BY ev.id LIMIT $3
        """,
        [members, [cursors[m] for m in members], limit],
    )
    return [_event(r) for r in rows]
