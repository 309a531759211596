"""Rewards catalogue and coupons: points spent once, stock never oversold."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from domain import clock, text
from domain.audit import service as audit
from domain.errors import Expired, InvalidInput, NotFound
from domain.keys import IdempotencyConflict, valid_key
from domain.members import service as members
from domain.members.numbers import ALPHABET
from domain.program.config import Program
from domain.rewards import repository
from domain.rewards.errors import AlreadyRedeemed, OutOfStock
from domain.rewards.repository import CouponRow, RewardRow
from domain.tiers.service import current_tier
from domain.wallets import ledger
from domain.wallets.errors import InsufficientPoints
from domain.wallets.service import WalletRow


@dataclass(frozen=True)
class Redemption:
    coupon: CouponRow
    wallet: WalletRow


def new_coupon_code() -> str:
    """12 Crockford base32 characters (60 bits) in three groups: XXXX-XXXX-XXXX."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


async def create(
    program: Program,
    *,
    name: str,
    points_cost: int,
    stock: int | None = None,
    description: str = "",
    min_tier: str | None = None,
    coupon_valid_days: int = 30,
    actor: str = "",
) -> RewardRow:
    """A reward in the catalogue; the change is audited under `actor` (the marketer)."""
    name = text.name(name, "name", what="A reward name")
    if len(description) > 500:
        raise InvalidInput("A description has at most 500 characters.", field="description")
    if not 0 < points_cost <= 10_000_000:
        raise InvalidInput("pointsCost must be between 1 and 10,000,000.", field="pointsCost")
    if stock is not None and not 0 <= stock <= 10_000_000:
        raise InvalidInput("stock must be between 0 and 10,000,000, or null for unlimited.", field="stock")
    if not 1 <= coupon_valid_days <= 3650:
        raise InvalidInput("couponValidDays must be between 1 and 3650.", field="couponValidDays")
    rank = 0
    if min_tier is not None:
        tier = program.tier(min_tier)
        if tier is None:
            raise InvalidInput(f"No tier {min_tier[:32]!r} in this program.", field="minTier")
        rank = tier.rank
    async with in_transaction() as conn:
        reward = await repository.insert_reward(
            conn,
            RewardRow(
                id=uuid.uuid4(),
                name=name,
                description=description,
                points_cost=points_cost,
                stock=stock,
                min_tier_rank=rank,
                coupon_valid_days=coupon_valid_days,
                active=True,
                created_at=clock.now(),
            ),
        )
        await audit.record(
            conn,
            actor=actor,
            action="createReward",
            subject_id=reward.id,
            details={
                "name": name,
                "pointsCost": points_cost,
                "stock": stock,
                "description": description,
                "minTier": min_tier,
                "couponValidDays": coupon_valid_days,
            },
        )
        return reward


async def _visible_rank(program: Program, member_id: uuid.UUID) -> int | None:
    """Up to which tier rank a member sees rewards: their tier's (None: no such member).
    One rule for the list and for a reward fetched by id."""
    member = await members.find(member_id)  # the members area owns its table
    if member is None:
        return None
    return current_tier(program, member.tier_key).rank


async def visible_to(
    program: Program, member_id: uuid.UUID, limit: int, after: tuple[datetime, uuid.UUID] | None
) -> list[RewardRow]:
    """Active rewards the member's tier may see, newest first."""
    rank = await _visible_rank(program, member_id)
    if rank is None:
        raise NotFound("No member with this id.", field="memberId")
    return await repository.active_up_to(rank, limit, after)


async def catalog(program: Program, limit: int, after: tuple[datetime, uuid.UUID] | None) -> list[RewardRow]:
    """The active rewards open to every tier: what a visitor without a token is shown."""
    return await repository.active_up_to(program.entry_tier.rank, limit, after)


async def seen_by(program: Program, member_id: uuid.UUID, reward_id: uuid.UUID) -> RewardRow | None:
    """The reward if this member sees it in their list, else None."""
    rank = await _visible_rank(program, member_id)
    found = await repository.active_up_to(rank, 1, reward_id=reward_id) if rank is not None else []
    return found[0] if found else None


async def cheapest_for_everyone(limit: int = 50) -> list[RewardRow]:
    """Active, in-stock rewards every tier sees, cheapest first (the catalogue is small)."""
    return await repository.cheapest_for_everyone(limit)


async def redeem(program: Program, *, member_id: uuid.UUID, reward_id: uuid.UUID, idempotency_key: str) -> Redemption:
    """Spend points on a reward and issue its coupon. The same key again returns the
    same coupon; with another reward it is IDEMPOTENCY_CONFLICT."""
    key = valid_key(idempotency_key, "idempotencyKey")
    now = clock.now()
    async with in_transaction() as conn:
        wallets = await ledger.lock(conn, member_id, (ledger.POINTS,), now)
        wallet = wallets[ledger.POINTS]
        # Under the wallet lock, so two requests with one key cannot both get here.
        done = await repository.coupon_for_key(conn, member_id, key)
        if done is not None:
            if done.reward_id != reward_id:
                raise IdempotencyConflict("This idempotencyKey was used for another reward.", field="idempotencyKey")
            return Redemption(done, wallet.row())
        reward = await repository.reward(reward_id, conn=conn)
        if reward is not None and reward.stock is not None:
            # Limited stock: hold the reward's row, so the stock checked below is the stock
            # we take from, and the losers of a race for the last item are told OUT_OF_STOCK
            # (never a constraint violation). Unlimited rewards are not serialised.
            reward = await repository.reward(reward_id, conn=conn, lock=True)
        tier_key = await members.tier_key(conn, member_id)
        if reward is None or not reward.active or reward.min_tier_rank > current_tier(program, tier_key or "").rank:
            raise NotFound("No reward with this id.", field="rewardId")
        if reward.stock == 0:
            raise OutOfStock(f"{reward.name} is out of stock.", field="rewardId")
        if wallet.balance < reward.points_cost:
            raise InsufficientPoints(
                f"{reward.name} costs {reward.points_cost} points; you have {wallet.balance}.", field="rewardId"
            )
        if reward.stock is not None:
            await repository.take_one(conn, reward.id)  # held above
        entry = await ledger.debit(
            conn,
            wallet,
            reward.points_cost,
            kind="REDEEM",
            now=now,
            description=f"Redeemed: {reward.name}"[:200],
            explanation={"rule": "reward", "reward": reward.name},
        )
        coupon = await repository.insert_coupon(
            conn,
            CouponRow(
                id=uuid.uuid4(),
                code=new_coupon_code(),
                member_id=member_id,
                reward_id=reward.id,
                entry_id=entry.id,
                idempotency_key=key,
                expires_at=now + timedelta(days=reward.coupon_valid_days),
                redeemed_at=None,
                redeemed_by=None,
                created_at=now,
            ),
        )
        return Redemption(coupon, wallet.row())


async def redeem_coupon(code: str, staff: str) -> CouponRow:
    """The till accepts a coupon once: ALREADY_REDEEMED after, EXPIRED when late. A coupon
    is good while now < expires_at; the instant expires_at itself is already too late."""
    normalised = code.strip().upper()
    if not 1 <= len(normalised) <= 20:
        raise InvalidInput("This is not a coupon code.", field="code")
    now = clock.now()
    async with in_transaction() as conn:
        coupon = await repository.coupon_by_code(conn, normalised)
        if coupon is None:
            raise NotFound("No coupon with this code.", field="code")
        if coupon.redeemed_at is not None:
            raise AlreadyRedeemed(f"This coupon was redeemed at {coupon.redeemed_at.isoformat()}.", field="code")
        if coupon.expires_at <= now:
            raise Expired("This coupon has expired.", field="code")
        return await repository.mark_redeemed(conn, coupon.id, now, staff[:200])


async def find(program: Program, reward_id: uuid.UUID, member_id: uuid.UUID | None) -> RewardRow | None:
    """A reward as the member's list shows it to them (`seen_by`); any reward for staff
    and marketers (member_id None)."""
    if member_id is None:
        return await repository.reward(reward_id)
    return await seen_by(program, member_id, reward_id)


async def coupon(coupon_id: uuid.UUID) -> CouponRow | None:
    return await repository.coupon(coupon_id)


# --- prizes (draws) ---


async def create_prize(conn, *, name: str, description: str, coupon_valid_days: int) -> RewardRow:
    """A reward that is not in the catalogue (inactive, so no member sees or buys it): what
    a draw's winners get a coupon for."""
    if not 1 <= coupon_valid_days <= 3650:
        raise InvalidInput("couponValidDays must be between 1 and 3650.", field="couponValidDays")
    return await repository.insert_reward(
        conn,
        RewardRow(
            id=uuid.uuid4(),
            name=text.name(name, "prize", what="A prize"),
            description=description,
            points_cost=1,  # never charged: prizes are won, not bought
            stock=None,
            min_tier_rank=0,
            coupon_valid_days=coupon_valid_days,
            active=False,
            created_at=clock.now(),
        ),
    )


async def issue_prize_coupon(conn, *, member_id: uuid.UUID, reward_id: uuid.UUID, key: str) -> CouponRow:
    """The coupon for a prize won, once per key (the same key again returns it): no ledger
    entry, the member paid for their draw entry already."""
    done = await repository.coupon_for_key(conn, member_id, key)
    if done is not None:
        return done
    reward = await repository.reward(reward_id, conn=conn)
    if reward is None:
        raise NotFound("No such prize.", field="rewardId")
    now = clock.now()
    return await repository.insert_coupon(
        conn,
        CouponRow(
            id=uuid.uuid4(),
            code=new_coupon_code(),
            member_id=member_id,
            reward_id=reward_id,
            entry_id=None,
            idempotency_key=key,
            expires_at=now + timedelta(days=reward.coupon_valid_days),
            redeemed_at=None,
            redeemed_by=None,
            created_at=now,
        ),
    )
