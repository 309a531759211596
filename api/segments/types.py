from __future__ import annotations

from enum import Enum

import strawberry

from api.relay import Node, to_global_id
from domain.segments.service import SegmentRow


@strawberry.enum(description="What a segment rule tests (see the README for each kind's attributes).")
class SegmentRuleKind(Enum):
    TIER = "TIER"
    DAYS_SINCE_LAST_PURCHASE = "DAYS_SINCE_LAST_PURCHASE"
    SPEND = "SPEND"
    PURCHASE_COUNT = "PURCHASE_COUNT"
    BIRTHDAY_MONTH = "BIRTHDAY_MONTH"
    STORES_VISITED = "STORES_VISITED"
    HAS_DEVICE = "HAS_DEVICE"
    CONSENT = "CONSENT"


@strawberry.enum(description="A consent a member gives in the app.")
class Consent(Enum):
    PUSH_MARKETING = "PUSH_MARKETING"
    LOCATION_NUDGES = "LOCATION_NUDGES"


@strawberry.type(description="A group of members: one of the four built-ins or a marketer's own.")
class Segment(Node):
    key: str
    name: str
    builtin: bool = strawberry.field(description="new, occasional, high_value, at_risk: always there.")
    member_count: int = strawberry.field(description="Members in it as of the last recomputation.")
    rules: strawberry.scalars.JSON = strawberry.field(description="A custom segment's rules (all must hold).")

    @classmethod
    def of(cls, row: SegmentRow) -> Segment:
        return cls(
            id=to_global_id("Segment", row.id),
            key=row.key,
            name=row.name,
            builtin=row.builtin,
            member_count=row.member_count,
            rules=list(row.rules),
        )
