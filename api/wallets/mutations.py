from __future__ import annotations

from enum import Enum

import strawberry
from strawberry.types import Info

from api.auth import IsStaff
from api.errors import UserError
from api.relay import uuid_of
from api.wallets.types import Wallet
from domain.errors import DomainError
from domain.wallets import service as wallets


@strawberry.input
class AdjustPointsInput:
    member_id: strawberry.ID
    points: int = strawberry.field(description="Positive to credit, negative to debit.")
    reason: str
    idempotency_key: str


@strawberry.type
class AdjustPointsPayload:
    wallet: Wallet | None
    user_errors: list[UserError]


@strawberry.type
class WalletsMutation:
    @strawberry.mutation(
        permission_classes=[IsStaff],
        description="A goodwill credit or a correction, once per idempotencyKey; never below zero.",
    )
    async def adjust_points(self, info: Info, input: AdjustPointsInput) -> AdjustPointsPayload:
        program = info.context.services.program
        try:
            wallet = await wallets.adjust(
                program,
                member_id=uuid_of(input.member_id, "Member", field="memberId"),
                points=input.points,
                reason=input.reason,
                idempotency_key=input.idempotency_key,
                by=info.context.principal().subject,
            )
        except DomainError as exc:
            return AdjustPointsPayload(wallet=None, user_errors=UserError.of(exc))
        return AdjustPointsPayload(wallet=Wallet.of(wallet), user_errors=[])


@strawberry.enum
class Activity(Enum):
    SURVEY = "survey"
    SOCIAL_SHARE = "social_share"
    CHECK_IN = "check_in"
    PROFILE_COMPLETED = "profile_completed"


@strawberry.input
class RecordActivityInput:
    member_id: strawberry.ID
    activity: Activity
    reference: str = strawberry.field(description="Your id for this event: the same one again credits nothing.")


@strawberry.type
class RecordActivityPayload:
    wallet: Wallet | None
    user_errors: list[UserError]


@strawberry.type
class ActivitiesMutation:
    @strawberry.mutation(
        permission_classes=[IsStaff],
        description="Points for a survey, a share, a check-in or a completed profile, within the program's caps "
        "(NOT_ELIGIBLE past them). For the till or a trusted server.",
    )
    async def record_activity(self, info: Info, input: RecordActivityInput) -> RecordActivityPayload:
        program = info.context.services.program
        try:
            wallet = await wallets.record_activity(
                program,
                member_id=uuid_of(input.member_id, "Member", field="memberId"),
                activity=input.activity.value,
                reference=input.reference,
                by=info.context.principal().subject,
            )
        except DomainError as exc:
            return RecordActivityPayload(wallet=None, user_errors=UserError.of(exc))
        return RecordActivityPayload(wallet=Wallet.of(wallet), user_errors=[])
