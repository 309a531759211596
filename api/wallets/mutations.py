from __future__ import annotations

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
        return AdjustPointsPayload(wallet=Wallet.of(program, vars(wallet)), user_errors=[])
