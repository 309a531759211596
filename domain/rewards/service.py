"""Rewards catalogue and coupons: points spent once, stock never oversold."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from domain import clock, text
from domain.errors import Expired, InvalidInput, NotFound
from domain.keys import IdempotencyConflict, valid_key
from domain.members import service as members
from domain.members.numbers import ALPHABET
from domain.program.config import Program
from domain.rewards.errors import AlreadyRedeemed, OutOfStock
from domain.rewards.models import Coupon, Reward
from domain.tiers.service import current_tier
from domain.wallets import ledger
from domain.wallets.errors import InsufficientPoints


@dataclass(frozen=True)
class Redemption:
    coupon: Coupon
    wallet: ledger.WalletRow


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
) -> Reward:
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
    return await Reward.create(
        id=uuid.uuid4(),
        name=name,
        description=description,
        points_cost=points_cost,
        stock=stock,
        min_tier_rank=rank,
        coupon_valid_days=coupon_valid_days,
        active=True,
        created_at=clock.now(),
    )


async def _visible(program: Program, member_id: uuid.UUID):
    """The rewards a member sees: active ones their tier reaches (None: no such member).
    One rule for the list and for a reward fetched by id."""
    member = await members.find(member_id)  # the members area owns its table
    if member is None:
        return None
    return _up_to(current_tier(program, member.tier_key).rank)


def _up_to(rank: int):
    return Reward.filter(active=True, min_tier_rank__lte=rank)


async def visible_to(program: Program, member_id: uuid.UUID, limit: int, after: tuple[datetime, uuid.UUID] | None):
    """Active rewards the member's tier may see, newest first."""
    query = await _visible(program, member_id)
    if query is None:
        raise NotFound("No member with this id.", field="memberId")
    return await _newest_first(query, limit, after)


async def catalog(program: Program, limit: int, after: tuple[datetime, uuid.UUID] | None):
    """The active rewards open to every tier: what a visitor without a token is shown."""
    return await _newest_first(_up_to(program.entry_tier.rank), limit, after)


async def _newest_first(query, limit: int, after: tuple[datetime, uuid.UUID] | None):
    if after is not None:
        created_at, id_ = after
        query = query.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, id__lt=id_))
    return await query.order_by("-created_at", "-id").limit(limit)


async def seen_by(program: Program, member_id: uuid.UUID, reward_id: uuid.UUID) -> Reward | None:
    """The reward if this member sees it in their list, else None."""
    query = await _visible(program, member_id)
    return await query.get_or_none(id=reward_id) if query is not None else None


async def redeem(program: Program, *, member_id: uuid.UUID, reward_id: uuid.UUID, idempotency_key: str) -> Redemption:
    """Spend points on a reward and issue its coupon. The same key again returns the
    same coupon; with another reward it is IDEMPOTENCY_CONFLICT."""
    key = valid_key(idempotency_key, "idempotencyKey")
    now = clock.now()
    async with in_transaction() as conn:
        wallets = await ledger.lock(conn, member_id, (ledger.POINTS,), now)
        wallet = wallets[ledger.POINTS]
        # Under the wallet lock, so two requests with one key cannot both get here.
        done = await Coupon.filter(member_id=member_id, idempotency_key=key).using_db(conn).first()
        if done is not None:
            if done.reward_id != reward_id:
                raise IdempotencyConflict("This idempotencyKey was used for another reward.", field="idempotencyKey")
            return Redemption(done, wallet)
        reward = await Reward.get_or_none(id=reward_id).using_db(conn)
        if reward is not None and reward.stock is not None:
            # Limited stock: hold the reward's row, so the stock checked below is the stock
            # we take from, and the losers of a race for the last item are told OUT_OF_STOCK
            # (never a constraint violation). Unlimited rewards are not serialised.
            reward = await Reward.filter(id=reward_id).using_db(conn).select_for_update().first()
        member = (await conn.execute_query_dict("SELECT tier_key FROM members WHERE id = $1", [member_id]))[0]
        if reward is None or not reward.active or reward.min_tier_rank > current_tier(program, member["tier_key"]).rank:
            raise NotFound("No reward with this id.", field="rewardId")
        if reward.stock == 0:
            raise OutOfStock(f"{reward.name} is out of stock.", field="rewardId")
        if wallet.balance < reward.points_cost:
            raise InsufficientPoints(
                f"{reward.name} costs {reward.points_cost} points; you have {wallet.balance}.", field="rewardId"
            )
        if reward.stock is not None:
            await conn.execute_query("UPDATE rewards SET stock = stock - 1 WHERE id = $1", [reward.id])  # held above
        entry = await ledger.debit(
            conn,
            wallet,
            reward.points_cost,
            kind="REDEEM",
            now=now,
            description=f"Redeemed: {reward.name}"[:200],
            explanation={"rule": "reward", "reward": reward.name},
        )
        coupon = await Coupon.create(
            using_db=conn,
            id=uuid.uuid4(),
            code=new_coupon_code(),
            member_id=member_id,
            reward_id=reward.id,
            entry_id=entry.id,
            idempotency_key=key,
            expires_at=now + timedelta(days=reward.coupon_valid_days),
            created_at=now,
        )
        return Redemption(coupon, wallet)


async def redeem_coupon(code: str, staff: str) -> Coupon:
    """The till accepts a coupon once: ALREADY_REDEEMED after, EXPIRED when late. A coupon
    is good while now < expires_at; the instant expires_at itself is already too late."""
    normalised = code.strip().upper()
    if not 1 <= len(normalised) <= 20:
        raise InvalidInput("This is not a coupon code.", field="code")
    now = clock.now()
    async with in_transaction() as conn:
        coupon = await Coupon.filter(code=normalised).using_db(conn).select_for_update().first()
        if coupon is None:
            raise NotFound("No coupon with this code.", field="code")
        if coupon.redeemed_at is not None:
            raise AlreadyRedeemed(f"This coupon was redeemed at {coupon.redeemed_at.isoformat()}.", field="code")
        if coupon.expires_at <= now:
            raise Expired("This coupon has expired.", field="code")
        coupon.redeemed_at = now
        coupon.redeemed_by = staff[:200]
        await coupon.save(using_db=conn, update_fields=["redeemed_at", "redeemed_by"])
        return coupon


async def find(program: Program, reward_id: uuid.UUID, member_id: uuid.UUID | None) -> Reward | None:
    """A reward as the member's list shows it to them (`seen_by`); any reward for staff
    and marketers (member_id None)."""
    if member_id is None:
        return await Reward.get_or_none(id=reward_id)
    return await seen_by(program, member_id, reward_id)


async def coupon(coupon_id: uuid.UUID) -> Coupon | None:
    return await Coupon.get_or_none(id=coupon_id)


# --- prizes (draws) ---


async def create_prize(conn, *, name: str, description: str, coupon_valid_days: int) -> Reward:
    """A reward that is not in the catalogue (inactive, so no member sees or buys it): what
    a draw's winners get a coupon for."""
    if not 1 <= coupon_valid_days <= 3650:
        raise InvalidInput("couponValidDays must be between 1 and 3650.", field="couponValidDays")
    return await Reward.create(
        using_db=conn,
        id=uuid.uuid4(),
        name=text.name(name, "prize", what="A prize"),
        description=description,
        points_cost=1,  # never charged: prizes are won, not bought
        stock=None,
        min_tier_rank=0,
        coupon_valid_days=coupon_valid_days,
        active=False,
        created_at=clock.now(),
    )


async def issue_prize_coupon(conn, *, member_id: uuid.UUID, reward_id: uuid.UUID, key: str) -> Coupon:
    """The coupon for a prize won, once per key (the same key again returns it): no ledger
    entry, the member paid for their draw entry already."""
    done = await Coupon.filter(member_id=member_id, idempotency_key=key).using_db(conn).first()
    if done is not None:
        return done
    reward = await Reward.get(id=reward_id).using_db(conn)
    now = clock.now()
    return await Coupon.create(
        using_db=conn,
        id=uuid.uuid4(),
        code=new_coupon_code(),
        member_id=member_id,
        reward_id=reward_id,
        entry_id=None,
        idempotency_key=key,
        expires_at=now + timedelta(days=reward.coupon_valid_days),
        created_at=now,
    )
