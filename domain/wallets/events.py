"""Reading the outbox: what changed for a member after a cursor, in commit order.

Within one member, event ids grow in commit order (every writer holds the member's
wallet lock when it inserts one), so "id > cursor" is a gap-free resume point.
"""

from __future__ import annotations

import uuid

from domain.wallets import repository
from domain.wallets.repository import EventRow

WALLET_UPDATED = "WALLET_UPDATED"
TIER_CHANGED = "TIER_CHANGED"


# What changed: the wallet as right after the change, and the entry for a balance change.
Event = EventRow


async def latest(member_id: uuid.UUID) -> int:
    return await repository.latest_event(member_id)


async def latest_many(member_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """`latest` for many members in one query (0 for a member with no event yet)."""
    return await repository.latest_events(member_ids)


async def after(member_id: uuid.UUID, cursor: int, kinds: tuple[str, ...], limit: int = 100) -> list[Event]:
    return await repository.events_after(member_id, cursor, list(kinds), limit)


async def after_many(cursors: dict[uuid.UUID, int], limit: int = 5000) -> list[Event]:
    """What is new for many members at once: one query for a whole burst of wake-ups."""
    if not cursors:
        return []
    members = list(cursors)
    return await repository.events_after_many(members, [cursors[m] for m in members], limit)
