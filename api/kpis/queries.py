from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated

import strawberry
from strawberry.types import Info

from api.auth import IsMarketer
from api.relay import from_global_id
from api.wallets.types import Money
from domain.errors import InvalidInput
from domain.kpis import service as kpis
from domain.program.config import Program


@strawberry.type(
    description="The program's health over a period (each figure's definition: README, KPIs). Rates are "
    "fractions from 0 to 1, null when there is nothing to divide by; money is in the program's currency."
)
class ProgramKpis:
    active_members: int = strawberry.field(description="Members with at least one purchase in the period.")
    new_members: int = strawberry.field(description="Members who enrolled in the period.")
    retention_rate: float | None = strawberry.field(
        description="Of the members active in the period of equal length before, the share active in this one."
    )
    repeat_purchase_rate: float | None = strawberry.field(
        description="Of the active members, the share with two purchases or more in the period."
    )
    average_order_value: Decimal | None = strawberry.field(
        description="Net amount (less refunds) per purchase in the period, in `currency`."
    )
    customer_lifetime_value: Decimal | None = strawberry.field(
        description="Estimated: net spend per active member in the period x 1 / (1 - retentionRate), "
        "retention counted at most 0.9; in `currency`."
    )
    redemption_rate: float | None = strawberry.field(description="pointsRedeemed / pointsIssued.")
    points_issued: int = strawberry.field(
        description="Points credited in the period (purchases, bonuses, adjustments), less those refunds took back."
    )
    points_redeemed: int = strawberry.field(
        description="Points spent in the period on rewards and draw entries, less draw entries refunded."
    )
    points_expired: int = strawberry.field(description="Points that expired in the period.")
    points_liability: int = strawberry.field(
        description="Points members hold now (spendable and pending), whatever the period."
    )
    points_liability_value: Money = strawberry.field(
        description="pointsLiability at the program's point value (program file: `point_value`)."
    )
    currency: str = strawberry.field(description="The currency of the money figures.")

    @classmethod
    def of(cls, program: Program, k: kpis.Kpis) -> ProgramKpis:
        return cls(
            active_members=k.active_members,
            new_members=k.new_members,
            retention_rate=k.retention_rate,
            repeat_purchase_rate=k.repeat_purchase_rate,
            average_order_value=k.average_order_value,
            customer_lifetime_value=k.customer_lifetime_value,
            redemption_rate=k.redemption_rate,
            points_issued=k.points_issued,
            points_redeemed=k.points_redeemed,
            points_expired=k.points_expired,
            points_liability=k.points_liability,
            points_liability_value=Money(amount=k.points_liability_value, currency=program.currency),
            currency=program.currency,
        )


@strawberry.type
class KpisQuery:
    @strawberry.field(
        permission_classes=[IsMarketer],
        description="KPIs from `from` to `to` (both included, the program's days); with `tierId`, over the "
        "members who hold that tier now; with `segmentKey` (a segment's key: new, high_value...), over the "
        "members in that segment now; with both, over the members in both.",
    )
    async def program_kpis(
        self,
        info: Info,
        from_: Annotated[date, strawberry.argument(name="from")],
        to: date,
        tier_id: strawberry.ID | None = None,
        segment_key: str | None = None,
    ) -> ProgramKpis:
        program = info.context.services.program
        if tier_id is None and segment_key is None:
            found = await kpis.program_kpis(program, from_, to)
        else:
            key = None
            if tier_id is not None:
                type_name, key = from_global_id(tier_id, "tierId")
                if type_name != "Tier":
                    raise InvalidInput("This is not a tier's id.", field="tierId")
            found = await kpis.group_kpis(program, from_, to, tier_key=key, segment_key=segment_key)
        return ProgramKpis.of(program, found)
