"""Personal offers: a marketer targets segments, tiers or members; a member sees what
targets them and is valid now, clips it (once), and a clipped bonus or multiplier
applies at their next qualifying purchase, inside that purchase's transaction.
DISCOUNT and FREE_ITEM offers give a coupon code when clipped."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from domain import clock, db, text
from domain.audit import service as audit
from domain.errors import Expired, InvalidInput, NotFound
from domain.members import service as members
from domain.offers import repository
from domain.offers.errors import CouponUsed, OfferExhausted, OfferNotStarted
from domain.offers.repository import Clip, OfferRow
from domain.program.config import Program
from domain.segments import service as segments
from domain.stores import service as stores
from domain.tiers.service import current_tier

__all__ = ["Applied", "Clip", "OfferRow"]

KINDS = ("BONUS_POINTS", "POINTS_MULTIPLIER", "DISCOUNT", "FREE_ITEM")
COUPON_KINDS = ("DISCOUNT", "FREE_ITEM")
# Crockford base32, as reward coupons: no I, L, O, U to misread at a till.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
MAX_AUDIENCE = 1000


@dataclass(frozen=True)
class Applied:
    """What clipped offers did to a purchase's points, and the clips it used."""

    points: int
    explanation: list[dict]
    activation_ids: list[uuid.UUID]


def _value(program: Program, kind: str, value: Decimal) -> Decimal:
    if not value.is_finite():
        raise InvalidInput("value must be a number.", field="value")
    if kind == "BONUS_POINTS" and (value != value.to_integral_value() or not 1 <= value <= 1_000_000):
        raise InvalidInput("A BONUS_POINTS value is a whole number of points, 1 to 1,000,000.", field="value")
    if kind == "POINTS_MULTIPLIER" and (not 1 < value <= 10 or value != value.quantize(Decimal("0.01"))):
        raise InvalidInput("A POINTS_MULTIPLIER value is above 1 and at most 10 (2 decimals).", field="value")
    if kind == "DISCOUNT" and (not 0 < value <= 100 or value != value.quantize(Decimal("0.01"))):
        raise InvalidInput("A DISCOUNT value is a percentage off, above 0 and at most 100.", field="value")
    if kind == "FREE_ITEM" and (
        not 0 < value <= 1_000_000 or value != value.quantize(Decimal(1).scaleb(-program.currency_decimals))
    ):
        raise InvalidInput(f"A FREE_ITEM value is the item's worth in {program.currency}, above 0.", field="value")
    return value


async def create(
    program: Program,
    *,
    title: str,
    description: str,
    kind: str,
    value: Decimal,
    segment_keys: list[str],
    tier_keys: list[str],
    member_ids: list[uuid.UUID],
    store_keys: list[str],
    valid_from: datetime | None,
    valid_until: datetime,
    usage_limit: int | None,
    actor: str,
) -> OfferRow:
    """A marketer's offer, audited. The audience is the union of its segments, tiers and
    members; at least one of them."""
    title = text.name(title, "title", max_length=120, what="A title")
    text.checked(description, "description")
    if len(description) > 500:
        raise InvalidInput("A description has at most 500 characters.", field="description")
    if kind not in KINDS:
        raise InvalidInput(f"kind is one of {', '.join(KINDS)}.", field="kind")
    value = _value(program, kind, value)
    if not (segment_keys or tier_keys or member_ids):
        raise InvalidInput("The audience names no one: give segmentKeys, tierIds or memberIds.", field="audience")
    if max(len(segment_keys), len(tier_keys), len(member_ids), len(store_keys)) > MAX_AUDIENCE:
        raise InvalidInput(f"At most {MAX_AUDIENCE} of each in the audience and stores.", field="audience")
    known = await segments.existing_keys(segment_keys)
    for i, key in enumerate(segment_keys):
        if key not in known:
            raise InvalidInput(f"No segment {key[:40]!r}.", field=f"audience.segmentKeys[{i}]")
    for i, key in enumerate(tier_keys):
        if program.tier(key) is None:
            raise InvalidInput(f"No tier {key[:32]!r} in this program.", field=f"audience.tierIds[{i}]")
    members_known = await members.existing_ids(member_ids)
    for i, member_id in enumerate(member_ids):
        if member_id not in members_known:
            raise NotFound("No such member.", field=f"audience.memberIds[{i}]")
    for i, key in enumerate(store_keys):
        if await stores.place(program, key) is None:
            raise InvalidInput(f"No store {key[:40]!r}.", field=f"storeIds[{i}]")
    now = clock.now()
    valid_from = valid_from or now
    if valid_until <= valid_from:
        raise InvalidInput("validUntil must be after validFrom.", field="validUntil")
    if valid_until <= now:
        raise InvalidInput("validUntil is in the past.", field="validUntil")
    if usage_limit is not None and not 1 <= usage_limit <= 100_000_000:
        raise InvalidInput("usageLimit is between 1 and 100,000,000, or null for no limit.", field="usageLimit")
    values = {
        "title": title,
        "description": description,
        "kind": kind,
        "value": value,
        "segment_keys": sorted(set(segment_keys)),
        "tier_keys": sorted(set(tier_keys)),
        "member_ids": sorted({str(m) for m in member_ids}),
        "store_keys": sorted(set(store_keys)),
        "valid_from": valid_from,
        "valid_until": valid_until,
        "usage_limit": usage_limit,
    }
    async with in_transaction() as conn:
        offer_id = await repository.insert(conn, **values, created_by=actor, created_at=now)
        await audit.record(
            conn,
            actor=actor,
            action="createOffer",
            subject_id=offer_id,
            details={k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()},
        )
        found = await repository.by_id(offer_id, conn)
    assert found is not None
    return found


async def _audience_of(program: Program, member_id: uuid.UUID) -> tuple[str, list[str]]:
    member = await members.find(member_id)
    if member is None:
        raise NotFound("No member with this id.", field="memberId")
    return current_tier(program, member.tier_key).key, await segments.keys_of(member_id)


async def for_member(
    program: Program,
    member_id: uuid.UUID,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None = None,
    store_key: str | None = None,
) -> list[OfferRow]:
    """What targets the member and is valid now (not used yet), ending soonest first."""
    tier_key, keys = await _audience_of(program, member_id)
    return await repository.for_member(member_id, tier_key, keys, clock.now(), limit, after, store_key=store_key)


async def best_at(program: Program, member_id: uuid.UUID, store_key: str) -> OfferRow | None:
    """The offer a location nudge names at this store: of those the member can use there
    now, the ones bound to this store first, then the one ending soonest."""
    usable = await for_member(program, member_id, 100, store_key=store_key)
    return min(usable, key=lambda o: (store_key not in o.store_keys, o.valid_until, o.id), default=None)


async def seen_by(program: Program, member_id: uuid.UUID, offer_id: uuid.UUID) -> OfferRow | None:
    tier_key, keys = await _audience_of(program, member_id)
    found = await repository.for_member(member_id, tier_key, keys, clock.now(), 1, offer_id=offer_id)
    return found[0] if found else None


async def find(offer_id: uuid.UUID) -> OfferRow | None:
    return await repository.by_id(offer_id)


def _coupon_code() -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


async def activate(program: Program, member_id: uuid.UUID, offer_id: uuid.UUID) -> OfferRow:
    """Clip the offer for the member: once (again: the same answer), only when it targets
    them and is valid now, within its usage limit. DISCOUNT and FREE_ITEM get a code."""
    now = clock.now()
    tier_key, keys = await _audience_of(program, member_id)
    async with in_transaction() as conn:
        offer = await repository.by_id(offer_id, conn, lock=True)  # activations of one offer in turn
        targets = offer is not None and (
            str(member_id) in offer.member_ids or tier_key in offer.tier_keys or set(keys) & set(offer.segment_keys)
        )
        if offer is None or not targets:
            raise NotFound("No offer with this id for you.", field="offerId")
        done = await repository.activation(conn, offer_id, member_id)
        if done is None:
            if offer.valid_until <= now:
                raise Expired("This offer has ended.", field="offerId")
            if offer.valid_from > now:
                raise OfferNotStarted(f"This offer starts at {offer.valid_from.isoformat()}.", field="offerId")
            if offer.usage_limit is not None and offer.activations >= offer.usage_limit:
                raise OfferExhausted("This offer has been taken up to its limit.", field="offerId")
            code = _coupon_code() if offer.kind in COUPON_KINDS else None
            await repository.clip(conn, offer_id, member_id, now, code)
    found = await repository.for_member(member_id, tier_key, keys, now, 1, offer_id=offer_id)
    if found:
        return found[0]
    # clipped before and used since: as it was
    row = await repository.by_id(offer_id)
    assert row is not None
    return replace(row, activated=True)


def clips_part(member_id: uuid.UUID, store_key: str, now: datetime) -> db.Part:
    """The member's usable clips, read inside the purchase's transaction under the member's
    wallet lock (so two purchases cannot both use a clip); `apply_at_purchase` takes the row."""
    return repository.clips_part(member_id, store_key, now)


def apply_at_purchase(row: dict, points: int) -> Applied:
    """Every clipped bonus usable here, and the best clipped multiplier (the others wait
    for a later purchase), on the purchase's `points`; `row` carried `clips_part`."""
    clips = repository.clips_of(row)
    bonuses = [c for c in clips if c.kind == "BONUS_POINTS"]
    multiplier = max((c for c in clips if c.kind == "POINTS_MULTIPLIER"), key=lambda c: c.value, default=None)
    extra, explained, used = 0, [], []
    if multiplier is not None:
        more = int((points * (multiplier.value - 1)).quantize(Decimal(1), rounding=ROUND_DOWN))
        extra += more
        explained.append(_explain(multiplier, more))
        used.append(multiplier.activation_id)
    for bonus in bonuses:
        extra += int(bonus.value)
        explained.append(_explain(bonus, int(bonus.value)))
        used.append(bonus.activation_id)
    return Applied(extra, explained, used)


def _explain(clip: Clip, points: int) -> dict:
    return {
        "offer": str(clip.offer_id),
        "title": clip.title,
        "kind": clip.kind,
        "value": str(clip.value),
        "points": points,
    }


def mark_used_part(applied: Applied, purchase_id: uuid.UUID, now: datetime, when: str) -> db.Part | None:
    """The clips `applied` used, marked in the purchase's statement (gated on `when`)."""
    if not applied.activation_ids:
        return None
    return repository.mark_used_part(applied.activation_ids, purchase_id, now, when)


async def redeem_coupon(code: str) -> OfferRow:
    """The till accepts a DISCOUNT or FREE_ITEM code once, while the offer is valid."""
    normalised = code.strip().upper()
    if not 1 <= len(normalised) <= 20:
        raise InvalidInput("This is not a coupon code.", field="code")
    now = clock.now()
    async with in_transaction() as conn:
        clip = await repository.coupon_for_update(conn, normalised)
        if clip is None:
            raise NotFound("No offer coupon with this code.", field="code")
        if clip["used_at"] is not None:
            raise CouponUsed(f"This coupon was used at {clip['used_at'].isoformat()}.", field="code")
        if clip["valid_until"] <= now:
            raise Expired("This offer has ended.", field="code")
        await repository.use_coupon(conn, clip["id"], now)
    row = await repository.by_id(clip["offer_id"])
    assert row is not None
    return replace(row, activated=True, coupon_code=normalised, used_at=now)


async def grant(conn: BaseDBAsyncClient, offer_id: uuid.UUID, member_ids: list[uuid.UUID], now: datetime) -> int:
    """Give the offer to these members (a campaign's recipients, whom the campaign targeted:
    the offer's own audience does not apply), inside the caller's transaction: each once,
    while it is valid and up to its usage limit. Returns how many got it now."""
    offer = await repository.by_id(offer_id, conn, lock=True)  # activations of one offer in turn
    if offer is None or not member_ids or not offer.valid_from <= now < offer.valid_until:
        return 0
    codes = [_coupon_code() if offer.kind in COUPON_KINDS else None for _ in member_ids]
    return len(await repository.grant(conn, offer_id, member_ids, codes, now))


async def used_within(
    offer_id: uuid.UUID, member_ids: list[uuid.UUID], starts: list[datetime], ends: list[datetime]
) -> set[uuid.UUID]:
    """Who used the offer (at a purchase, or its coupon at the till) in their own window."""
    return await repository.used_within(offer_id, member_ids, starts, ends) if member_ids else set()
