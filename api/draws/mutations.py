from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from api.auth import IsMarketer, IsMember, IsMemberOrMarketer, member_id
from api.draws.types import Draw
from api.errors import UserError
from api.relay import Connection, connection, page, time_cursor, time_position, uuid_of
from api.wallets.types import Wallet
from domain.draws import service as draws
from domain.errors import DomainError
from domain.identity.tokens import Role


@strawberry.input
class CreateDrawInput:
    prize: str
    description: str = ""
    winners: int = strawberry.field(description="How many entries win.")
    entry_cost: int = strawberry.field(description="Points per entry.")
    max_entries_per_member: int
    closes_at: datetime
    coupon_valid_days: int = strawberry.field(default=30, description="How long a winner's coupon is valid.")


@strawberry.type
class DrawPayload:
    draw: Draw | None
    user_errors: list[UserError]


@strawberry.input
class EnterDrawInput:
    draw_id: strawberry.ID
    idempotency_key: str = strawberry.field(description="The same key again answers as the first time.")


@strawberry.type
class EnterDrawPayload:
    draw: Draw | None
    wallet: Wallet | None
    user_errors: list[UserError]


@strawberry.input
class CancelDrawInput:
    draw_id: strawberry.ID


def draw_cursor(d: Draw) -> str:
    return time_cursor(d.closes_at, d.key)


@strawberry.type
class DrawsQuery:
    @strawberry.field(
        permission_classes=[IsMemberOrMarketer],
        description="For a member: draws taking entries, closing soonest first, with your entries. For a "
        "marketer: every draw (open, closed, drawn or cancelled: see `status`), by closing time.",
    )
    async def draws(self, info: Info, first: int = 20, after: str | None = None) -> Connection[Draw]:
        p = page(first, after)
        position = time_position(p.after)
        if info.context.principal().role is Role.MARKETER:
            rows = await draws.all_draws(p.first + 1, position)
        else:
            rows = await draws.open_draws(member_id(info), p.first + 1, position)
        return connection([Draw.of(r) for r in rows], p.first, draw_cursor)


@strawberry.type
class DrawsMutation:
    @strawberry.mutation(permission_classes=[IsMarketer], description="Open a draw.")
    async def create_draw(self, info: Info, input: CreateDrawInput) -> DrawPayload:
        try:
            row = await draws.create(
                prize=input.prize,
                description=input.description,
                winners=input.winners,
                entry_cost=input.entry_cost,
                max_entries_per_member=input.max_entries_per_member,
                closes_at=input.closes_at,
                coupon_valid_days=input.coupon_valid_days,
                by=info.context.principal().subject,
            )
        except DomainError as exc:
            return DrawPayload(draw=None, user_errors=UserError.of(exc))
        return DrawPayload(draw=Draw.of(row), user_errors=[])

    @strawberry.mutation(
        permission_classes=[IsMarketer],
        description="Cancel a draw not drawn yet: every entry's points go back, once. Cancelling again is harmless.",
    )
    async def cancel_draw(self, info: Info, input: CancelDrawInput) -> DrawPayload:
        try:
            row = await draws.cancel(info.context.services.program, uuid_of(input.draw_id, "Draw", field="drawId"))
        except DomainError as exc:
            return DrawPayload(draw=None, user_errors=UserError.of(exc))
        return DrawPayload(draw=Draw.of(row), user_errors=[])

    @strawberry.mutation(
        permission_classes=[IsMember],
        description="One entry, paid in points: INSUFFICIENT_POINTS, EXPIRED (closed or cancelled), NOT_ELIGIBLE "
        "(you hold the most entries allowed); idempotent on the key.",
    )
    async def enter_draw(self, info: Info, input: EnterDrawInput) -> EnterDrawPayload:
        me = member_id(info)
        try:
            done = await draws.enter(
                member_id=me,
                draw_id=uuid_of(input.draw_id, "Draw", field="drawId"),
                idempotency_key=input.idempotency_key,
            )
        except DomainError as exc:
            return EnterDrawPayload(draw=None, wallet=None, user_errors=UserError.of(exc))
        row = await draws.find(done.draw.id, me)
        return EnterDrawPayload(draw=Draw.of(row), wallet=Wallet.of(done.wallet), user_errors=[])
