from __future__ import annotations

import strawberry
from strawberry.types import Info

from api.auth import IsMarketer, IsMember, IsStaff, member_id
from api.errors import UserError
from api.relay import Connection, connection, page, time_cursor, time_position, uuid_of
from api.rewards.types import Coupon, Reward
from api.wallets.types import Wallet
from domain.errors import DomainError
from domain.rewards import service as rewards


@strawberry.input
class CreateRewardInput:
    name: str
    points_cost: int
    stock: int | None = strawberry.field(default=None, description="Null: unlimited.")
    description: str = ""
    min_tier: str | None = strawberry.field(default=None, description="Tier key; lower tiers do not see it.")
    coupon_valid_days: int = 30


@strawberry.type
class CreateRewardPayload:
    reward: Reward | None
    user_errors: list[UserError]


@strawberry.input
class RedeemRewardInput:
    reward_id: strawberry.ID
    idempotency_key: str = strawberry.field(description="The same key again returns the same coupon.")


@strawberry.type
class RedeemRewardPayload:
    coupon: Coupon | None
    wallet: Wallet | None
    user_errors: list[UserError]


@strawberry.input
class RedeemCouponInput:
    code: str


@strawberry.type
class RedeemCouponPayload:
    coupon: Coupon | None
    user_errors: list[UserError]


def reward_cursor(r: Reward) -> str:
    return time_cursor(r.created_at, r.key)


@strawberry.type
class RewardsQuery:
    @strawberry.field(permission_classes=[IsMember], description="Rewards the member can see, newest first.")
    async def rewards(self, info: Info, first: int = 20, after: str | None = None) -> Connection[Reward]:
        p = page(first, after)
        position = time_position(p.after)
        rows = await rewards.visible_to(info.context.services.program, member_id(info), p.first + 1, position)
        return connection([Reward.of(r) for r in rows], p.first, reward_cursor)


@strawberry.type
class RewardsMutation:
    @strawberry.mutation(permission_classes=[IsMarketer], description="Add a reward to the catalogue.")
    async def create_reward(self, info: Info, input: CreateRewardInput) -> CreateRewardPayload:
        try:
            row = await rewards.create(
                info.context.services.program,
                name=input.name,
                points_cost=input.points_cost,
                stock=input.stock,
                description=input.description,
                min_tier=input.min_tier,
                coupon_valid_days=input.coupon_valid_days,
                actor=info.context.principal().subject,
            )
        except DomainError as exc:
            return CreateRewardPayload(reward=None, user_errors=UserError.of(exc))
        return CreateRewardPayload(reward=Reward.of(row), user_errors=[])

    @strawberry.mutation(
        permission_classes=[IsMember],
        description="Spend points on a reward: INSUFFICIENT_POINTS, OUT_OF_STOCK; idempotent on the key.",
    )
    async def redeem_reward(self, info: Info, input: RedeemRewardInput) -> RedeemRewardPayload:
        program = info.context.services.program
        try:
            done = await rewards.redeem(
                program,
                member_id=member_id(info),
                reward_id=uuid_of(input.reward_id, "Reward", field="rewardId"),
                idempotency_key=input.idempotency_key,
            )
        except DomainError as exc:
            return RedeemRewardPayload(coupon=None, wallet=None, user_errors=UserError.of(exc))
        return RedeemRewardPayload(coupon=Coupon.of(done.coupon), wallet=Wallet.of(done.wallet), user_errors=[])

    @strawberry.mutation(
        permission_classes=[IsStaff], description="Accept a coupon at the till, once: ALREADY_REDEEMED, EXPIRED."
    )
    async def redeem_coupon(self, info: Info, input: RedeemCouponInput) -> RedeemCouponPayload:
        try:
            row = await rewards.redeem_coupon(input.code, info.context.principal().subject)
        except DomainError as exc:
            return RedeemCouponPayload(coupon=None, user_errors=UserError.of(exc))
        return RedeemCouponPayload(coupon=Coupon.of(row), user_errors=[])
