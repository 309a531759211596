from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import Enum

import strawberry

from api.relay import Node, time_cursor, to_global_id
from domain.offers.service import OfferRow


@strawberry.enum(description="What an offer gives.")
class OfferKind(Enum):
    BONUS_POINTS = strawberry.enum_value("BONUS_POINTS", description="value points on the next qualifying purchase.")
    POINTS_MULTIPLIER = strawberry.enum_value(
        "POINTS_MULTIPLIER", description="The next qualifying purchase's points multiplied by value."
    )
    DISCOUNT = strawberry.enum_value("DISCOUNT", description="value percent off, as a coupon code.")
    FREE_ITEM = strawberry.enum_value("FREE_ITEM", description="An item worth value, as a coupon code.")


@strawberry.type(description="A personal offer. `activated` is the viewing member's clip.")
class Offer(Node):
    title: str
    description: str
    kind: OfferKind
    value: Decimal
    valid_from: datetime
    valid_until: datetime
    store_ids: list[str] = strawberry.field(description="Where it can be used; empty: anywhere.")
    activated: bool = strawberry.field(description="The member clipped it (activateOffer).")
    coupon_code: str | None = strawberry.field(description="DISCOUNT and FREE_ITEM, once clipped: show it at the till.")
    key: strawberry.Private[object]

    @classmethod
    def of(cls, row: OfferRow) -> Offer:
        return cls(
            id=to_global_id("Offer", row.id),
            title=row.title,
            description=row.description,
            kind=OfferKind(row.kind),
            value=row.value,
            valid_from=row.valid_from,
            valid_until=row.valid_until,
            store_ids=list(row.store_keys),
            activated=row.activated,
            coupon_code=row.coupon_code,
            key=row.id,
        )


def offer_cursor(offer: Offer) -> str:
    return time_cursor(offer.valid_until, offer.key)
