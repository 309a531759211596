from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

import strawberry
from strawberry.types import Info

from api.auth import IsMarketer, IsMember, IsStaff, member_id
from api.errors import UserError
from api.offers.types import Offer, OfferKind
from api.relay import from_global_id, uuid_of
from domain.errors import DomainError
from domain.offers import service as offers


@strawberry.input(description="Who an offer or a campaign is for: anyone in any of these.")
class AudienceInput:
    segment_keys: list[str] = strawberry.field(default_factory=list, description="new, occasional, high_value…")
    tier_ids: list[strawberry.ID] = strawberry.field(default_factory=list, description="Tier IDs (or tier keys).")
    member_ids: list[strawberry.ID] = strawberry.field(default_factory=list)


@strawberry.input
class CreateOfferInput:
    title: str
    description: str = ""
    kind: OfferKind
    value: Decimal = strawberry.field(
        description="BONUS_POINTS: points; POINTS_MULTIPLIER: the factor (2 = double); DISCOUNT: percent off; "
        "FREE_ITEM: the item's worth."
    )
    audience: AudienceInput
    store_ids: list[str] = strawberry.field(default_factory=list, description="Store keys or IDs; empty: anywhere.")
    valid_from: datetime | None = strawberry.field(default=None, description="Null: now.")
    valid_until: datetime
    usage_limit: int | None = strawberry.field(default=None, description="Members who may clip it; null: any.")


@strawberry.type
class CreateOfferPayload:
    offer: Offer | None
    user_errors: list[UserError]


@strawberry.input
class ActivateOfferInput:
    offer_id: strawberry.ID


@strawberry.type
class ActivateOfferPayload:
    offer: Offer | None
    user_errors: list[UserError]


@strawberry.input
class RedeemOfferCouponInput:
    code: str


@strawberry.type
class RedeemOfferCouponPayload:
    offer: Offer | None
    user_errors: list[UserError]


def _key(value: str, type_name: str) -> str:
    """A global ID of `type_name`, or the key itself (tiers and stores have readable keys)."""
    try:
        kind, key = from_global_id(value)
    except DomainError:
        return value
    return key if kind == type_name else value


def _members(values: list[str]) -> list[uuid.UUID]:
    return [uuid_of(value, "Member", field=f"audience.memberIds[{i}]") for i, value in enumerate(values)]


@strawberry.type
class OffersMutation:
    @strawberry.mutation(
        permission_classes=[IsMarketer], description="A personal offer for segments, tiers or members; audited."
    )
    async def create_offer(self, info: Info, input: CreateOfferInput) -> CreateOfferPayload:
        try:
            row = await offers.create(
                info.context.services.program,
                title=input.title,
                description=input.description,
                kind=input.kind.value,
                value=input.value,
                segment_keys=list(input.audience.segment_keys),
                tier_keys=[_key(t, "Tier") for t in input.audience.tier_ids],
                member_ids=_members(input.audience.member_ids),
                store_keys=[_key(s, "Store") for s in input.store_ids],
                valid_from=input.valid_from,
                valid_until=input.valid_until,
                usage_limit=input.usage_limit,
                actor=info.context.principal().subject,
            )
        except DomainError as exc:
            return CreateOfferPayload(offer=None, user_errors=UserError.of(exc))
        return CreateOfferPayload(offer=Offer.of(row), user_errors=[])

    @strawberry.mutation(
        permission_classes=[IsMember],
        description="Clip an offer (again: the same answer). A bonus or multiplier applies at the next purchase.",
    )
    async def activate_offer(self, info: Info, input: ActivateOfferInput) -> ActivateOfferPayload:
        try:
            row = await offers.activate(
                info.context.services.program, member_id(info), uuid_of(input.offer_id, "Offer", field="offerId")
            )
        except DomainError as exc:
            return ActivateOfferPayload(offer=None, user_errors=UserError.of(exc))
        return ActivateOfferPayload(offer=Offer.of(row), user_errors=[])

    @strawberry.mutation(
        permission_classes=[IsStaff],
        description="Accept an offer's coupon code (DISCOUNT, FREE_ITEM) at the till, once: ALREADY_REDEEMED, EXPIRED.",
    )
    async def redeem_offer_coupon(self, info: Info, input: RedeemOfferCouponInput) -> RedeemOfferCouponPayload:
        try:
            row = await offers.redeem_coupon(input.code)
        except DomainError as exc:
            return RedeemOfferCouponPayload(offer=None, user_errors=UserError.of(exc))
        return RedeemOfferCouponPayload(offer=Offer.of(row), user_errors=[])
