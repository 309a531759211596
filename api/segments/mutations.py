from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry
from strawberry.types import Info

from api.auth import IsMarketer
from api.errors import UserError
from api.relay import uuid_of
from api.segments.types import Consent, Segment, SegmentRuleKind
from domain.errors import DomainError
from domain.segments import service as segments


@strawberry.input(description="One condition; which attributes apply depends on `kind` (README, Segments).")
class SegmentRuleInput:
    kind: SegmentRuleKind
    tiers: list[str] | None = strawberry.field(default=None, description="TIER: tier keys, any of them.")
    min: Decimal | None = strawberry.field(
        default=None,
        description="DAYS_SINCE_LAST_PURCHASE, SPEND, PURCHASE_COUNT: at least; STORES_VISITED: distinct stores.",
    )
    max: Decimal | None = strawberry.field(default=None, description="At most (same kinds as min, not stores).")
    window_days: int | None = strawberry.field(
        default=None, description="SPEND, PURCHASE_COUNT, STORES_VISITED: the last N days; null: ever."
    )
    months: list[int] | None = strawberry.field(default=None, description="BIRTHDAY_MONTH: 1-12, any of them.")
    store_ids: list[str] | None = strawberry.field(default=None, description="STORES_VISITED: any of these.")
    consent: Consent | None = strawberry.field(default=None, description="CONSENT: which one.")
    value: bool | None = strawberry.field(default=None, description="HAS_DEVICE, CONSENT: true (default) or false.")

    def rule(self) -> segments.Rule:
        return segments.Rule(
            kind=self.kind.value,
            tiers=tuple(self.tiers) if self.tiers is not None else None,
            min=self.min,
            max=self.max,
            window_days=self.window_days,
            months=tuple(self.months) if self.months is not None else None,
            store_ids=tuple(self.store_ids) if self.store_ids is not None else None,
            consent=self.consent.value if self.consent is not None else None,
            value=self.value,
        )


@strawberry.input
class CreateSegmentInput:
    key: str = strawberry.field(description="Stable id: lowercase letters, digits and _, up to 40.")
    name: str
    rules: list[SegmentRuleInput] = strawberry.field(description="All must hold (1 to 20).")


@strawberry.type
class CreateSegmentPayload:
    segment: Segment | None
    user_errors: list[UserError]


@strawberry.input(description="Whose points: a segment (its members now) or named members; exactly one.")
class ExtendPointsExpiryInput:
    segment_key: str | None = None
    member_ids: list[strawberry.ID] | None = strawberry.field(default=None, description="1 to 1,000 members.")
    until: datetime = strawberry.field(description="The new expiry; points that expire later keep their date.")


@strawberry.type
class ExtendPointsExpiryPayload:
    members_extended: int = strawberry.field(description="Members who had points whose expiry moved.")
    user_errors: list[UserError]


@strawberry.type
class SegmentsQuery:
    @strawberry.field(permission_classes=[IsMarketer], description="Every segment, built-ins first, with its size.")
    async def segments(self, info: Info) -> list[Segment]:
        return [Segment.of(row) for row in await segments.all_segments()]


@strawberry.type
class SegmentsMutation:
    @strawberry.mutation(
        permission_classes=[IsMarketer],
        description="A segment from rules; its members are computed at once. A bad rule: INVALID_INPUT naming it.",
    )
    async def create_segment(self, info: Info, input: CreateSegmentInput) -> CreateSegmentPayload:
        try:
            row = await segments.create(
                info.context.services.program,
                key=input.key,
                name=input.name,
                rules=[r.rule() for r in input.rules],
                actor=info.context.principal().subject,
            )
        except DomainError as exc:
            return CreateSegmentPayload(segment=None, user_errors=UserError.of(exc))
        return CreateSegmentPayload(segment=Segment.of(row), user_errors=[])

    @strawberry.mutation(
        permission_classes=[IsMarketer],
        description="Move the expiry of a segment's or of members' points to a date: an EXTEND entry (0 points) "
        "on each wallet that moved, and an audit entry.",
    )
    async def extend_points_expiry(self, info: Info, input: ExtendPointsExpiryInput) -> ExtendPointsExpiryPayload:
        try:
            member_ids = None
            if input.member_ids is not None:
                member_ids = [uuid_of(m, "Member", field="memberIds") for m in input.member_ids]
            extended = await segments.extend_points_expiry(
                info.context.services.program,
                segment_key=input.segment_key,
                member_ids=member_ids,
                until=input.until,
                actor=info.context.principal().subject,
            )
        except DomainError as exc:
            return ExtendPointsExpiryPayload(members_extended=0, user_errors=UserError.of(exc))
        return ExtendPointsExpiryPayload(members_extended=len(extended), user_errors=[])
