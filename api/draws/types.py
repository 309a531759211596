from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum

import strawberry

from api.relay import Node, to_global_id
from domain.draws import service as draws
from domain.draws.repository import DrawRow


@strawberry.enum(description="OPEN takes entries; CLOSED: the seed is recorded, winners being drawn; then DRAWN.")
class DrawStatus(Enum):
    OPEN = "OPEN"
    CLOSED = "CLOSED"
    DRAWN = "DRAWN"
    CANCELLED = "CANCELLED"


@strawberry.type(
    description="A points lottery: entries cost points until `closesAt`; then winners are drawn at random "
    "from a seed recorded before the draw and published after it (README, Draws)."
)
class Draw(Node):
    prize: str
    description: str
    winner_count: int = strawberry.field(description="How many entries win the prize.")
    entry_cost: int = strawberry.field(description="Points per entry.")
    max_entries_per_member: int
    closes_at: datetime
    status: DrawStatus
    entry_count: int = strawberry.field(description="Entries so far, all members.")
    my_entries: int = strawberry.field(description="The signed-in member's entries (0 for staff and marketers).")
    seed: str | None = strawberry.field(
        description="Null until drawn. Re-run the draw with it: Python's random.Random(seed).sample(sorted("
        "entryNumbers), winnerCount) names the winningEntries."
    )
    key: strawberry.Private[uuid.UUID]
    drawn: strawberry.Private[bool]

    @strawberry.field(description="Every entry's number, once drawn (empty before): what the draw ran over.")
    async def entry_numbers(self) -> list[int]:
        return await draws.entry_numbers(self.key) if self.drawn else []

    @strawberry.field(description="The winning entries' numbers, ascending, once drawn (empty before).")
    async def winning_entries(self) -> list[int]:
        return (await draws.winning_entries([self.key]))[self.key] if self.drawn else []

    @classmethod
    def of(cls, row: DrawRow) -> Draw:
        drawn = row.state == "DRAWN"
        return cls(
            id=to_global_id("Draw", row.id),
            prize=row.prize,
            description=row.description,
            winner_count=row.winners,
            entry_cost=row.entry_cost,
            max_entries_per_member=row.max_entries_per_member,
            closes_at=row.closes_at,
            status=DrawStatus(row.state),
            entry_count=row.entry_count,
            my_entries=row.my_entries,
            seed=row.seed if drawn else None,  # recorded earlier, published now
            key=row.id,
            drawn=drawn,
        )
