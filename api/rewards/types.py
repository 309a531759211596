from __future__ import annotations

from datetime import datetime

import strawberry

from api.relay import Node, to_global_id
from domain.rewards.service import CouponRow, RewardRow


@strawberry.type(description="Something members spend points on.")
class Reward(Node):
    name: str
    description: str
    points_cost: int
    stock: int | None = strawberry.field(description="How many are left; null when unlimited.")
    available: bool = strawberry.field(description="Active and in stock.")
    key: strawberry.Private[object]
    created_at: strawberry.Private[datetime]

    @classmethod
    def of(cls, row: RewardRow) -> Reward:
        return cls(
            id=to_global_id("Reward", row.id),
            name=row.name,
            description=row.description,
            points_cost=row.points_cost,
            stock=row.stock,
            available=row.active and (row.stock is None or row.stock > 0),
            key=row.id,
            created_at=row.created_at,
        )


@strawberry.type(description="Proof of a redeemed reward, shown or typed at the till once.")
class Coupon(Node):
    code: str
    expires_at: datetime
    redeemed_at: datetime | None

    @classmethod
    def of(cls, row: CouponRow) -> Coupon:
        return cls(
            id=to_global_id("Coupon", row.id), code=row.code, expires_at=row.expires_at, redeemed_at=row.redeemed_at
        )
