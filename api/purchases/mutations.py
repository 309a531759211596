from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import Enum

import strawberry
from strawberry.types import Info

from api.auth import IsStaff
from api.errors import UserError
from api.relay import Node, to_global_id, uuid_of
from api.wallets.types import Money, Wallet
from domain.errors import DomainError
from domain.purchases import service as purchases
from domain.wallets import ledger


@strawberry.enum
class Channel(Enum):
    STORE = "STORE"
    ONLINE = "ONLINE"
    APP = "APP"


@strawberry.type(description="A receipt credited to a member.")
class Purchase(Node):
    external_id: str
    channel: Channel
    amount: Money
    points_earned: int
    refunded_amount: Money
    points_reversed: int
    shortfall: int = strawberry.field(description="Points a refund could not take back: already spent.")
    occurred_at: datetime

    @classmethod
    def of(cls, p: purchases.PurchaseView, decimals: int) -> Purchase:
        cents = Decimal(1).scaleb(-decimals)
        return cls(
            id=to_global_id("Purchase", p.id),
            external_id=p.external_id,
            channel=Channel(p.channel),
            amount=Money(amount=p.amount.quantize(cents), currency=p.currency),
            points_earned=p.points_earned,
            refunded_amount=Money(amount=p.refunded_amount.quantize(cents), currency=p.currency),
            points_reversed=p.points_reversed,
            shortfall=p.shortfall,
            occurred_at=p.occurred_at,
        )


@strawberry.input
class RecordPurchaseInput:
    member_id: strawberry.ID
    external_id: str = strawberry.field(description="The receipt or order id: the same one again credits nothing.")
    amount: Decimal
    currency: str
    channel: Channel
    store_id: strawberry.ID | None = None


@strawberry.type
class RecordPurchasePayload:
    purchase: Purchase | None
    wallet: Wallet | None = strawberry.field(description="The member's points wallet after the purchase.")
    user_errors: list[UserError]


@strawberry.input
class RefundPurchaseInput:
    external_id: str
    amount: Decimal = strawberry.field(description="How much of the purchase is refunded now.")
    channel: Channel | None = strawberry.field(default=None, description="Needed when externalId is not unique.")
    store_id: strawberry.ID | None = None
    idempotency_key: str | None = strawberry.field(
        default=None, description="Send one to make retries of this refund safe."
    )


@strawberry.type
class RefundPurchasePayload:
    purchase: Purchase | None
    user_errors: list[UserError]


@strawberry.type
class PurchasesMutation:
    @strawberry.mutation(
        permission_classes=[IsStaff],
        description="Record a purchase and credit its points, once per (channel, storeId, externalId).",
    )
    async def record_purchase(self, info: Info, input: RecordPurchaseInput) -> RecordPurchasePayload:
        program = info.context.services.program
        try:
            purchase, wallets = await purchases.record(
                program,
                member_id=uuid_of(input.member_id, "Member", field="memberId"),
                external_id=input.external_id,
                amount=input.amount,
                currency=input.currency,
                channel=input.channel.value,
                store_key=input.store_id or "",
            )
        except DomainError as exc:
            return RecordPurchasePayload(purchase=None, wallet=None, user_errors=UserError.of(exc))
        points = wallets[ledger.POINTS]
        return RecordPurchasePayload(
            purchase=Purchase.of(purchase, program.currency_decimals),
            wallet=Wallet.of(points),
            user_errors=[],
        )

    @strawberry.mutation(
        permission_classes=[IsStaff],
        description="Refund all or part of a purchase; its points are taken back in proportion.",
    )
    async def refund_purchase(self, info: Info, input: RefundPurchaseInput) -> RefundPurchasePayload:
        program = info.context.services.program
        try:
            purchase = await purchases.refund(
                program,
                external_id=input.external_id,
                amount=input.amount,
                channel=input.channel.value if input.channel else None,
                store_key=input.store_id,
                idempotency_key=input.idempotency_key,
            )
        except DomainError as exc:
            return RefundPurchasePayload(purchase=None, user_errors=UserError.of(exc))
        return RefundPurchasePayload(purchase=Purchase.of(purchase, program.currency_decimals), user_errors=[])
