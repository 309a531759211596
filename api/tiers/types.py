from __future__ import annotations

from datetime import datetime

import strawberry

from api.relay import Node, to_global_id
from domain.program.config import Tier as TierRule
from domain.tiers.service import TierStatus as Status


@strawberry.type(description="A level of the program, e.g. Silver.")
class Tier(Node):
    name: str
    rank: int = strawberry.field(description="0 for the entry tier; higher is better.")
    threshold: int = strawberry.field(description="Qualifying points needed to reach it.")

    @classmethod
    def of(cls, tier: TierRule) -> Tier:
        return cls(id=to_global_id("Tier", tier.key), name=tier.name, rank=tier.rank, threshold=tier.threshold)


@strawberry.type(description="Where the member stands and what the next tier takes.")
class TierStatus:
    current: Tier
    next: Tier | None = strawberry.field(description="Null at the top tier.")
    qualifying_points: int
    points_to_next_tier: int | None = strawberry.field(description="Null at the top tier.")
    progress: float = strawberry.field(description="0 to 1 towards `next`; 1 at the top tier.")
    period_ends_at: datetime | None = strawberry.field(
        description="When the qualifying window closes; null for a rolling window."
    )

    @classmethod
    def of(cls, status: Status) -> TierStatus:
        return cls(
            current=Tier.of(status.current),
            next=Tier.of(status.next) if status.next else None,
            qualifying_points=status.qualifying_points,
            points_to_next_tier=status.points_to_next_tier,
            progress=status.progress,
            period_ends_at=status.period_ends_at,
        )
