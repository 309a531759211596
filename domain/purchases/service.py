"""Purchases and refunds: points earned exactly once per receipt, reversed in proportion."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal, InvalidOperation

from tortoise.transactions import in_transaction

from domain import clock, db
from domain.errors import InvalidInput, NotFound
from domain.keys import IdempotencyConflict, valid_key
from domain.members import service as members
from domain.offers import service as offers
from domain.program.config import Program
from domain.purchases import repository
from domain.purchases.repository import PurchaseRow
from domain.segments import service as segments
from domain.tiers import service as tiers
from domain.wallets import earning, ledger
from domain.wallets.expiry import expires_at
from domain.wallets.service import WalletRow

MAX_AMOUNT = Decimal("1000000")  # a sane ceiling for one receipt
CHANNELS = ("STORE", "ONLINE", "APP")


# A purchase as recorded, with what its refunds took back.
PurchaseView = PurchaseRow


def valid_amount(program: Program, amount: Decimal, field: str = "amount") -> Decimal:
    """Positive, finite, at most the currency's decimals, below a sane maximum."""
    try:
        if not amount.is_finite():
            raise InvalidInput("The amount must be a number.", field=field)
        decimals = program.currency_decimals
        if amount <= 0:
            raise InvalidInput("The amount must be greater than zero.", field=field)
        if amount > MAX_AMOUNT:
            raise InvalidInput(f"The amount must be at most {MAX_AMOUNT}.", field=field)
        if amount != amount.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_DOWN):
            raise InvalidInput(f"{program.currency} amounts have at most {decimals} decimals.", field=field)
    except InvalidOperation:
        raise InvalidInput("The amount must be a number.", field=field) from None
    return amount


def valid_currency(program: Program, currency: str) -> str:
    if currency != program.currency:
        raise InvalidInput(f"This program runs in {program.currency}, not {currency[:8]!r}.", field="currency")
    return currency


async def record(
    program: Program,
    *,
    member_id: uuid.UUID,
    external_id: str,
    amount: Decimal,
    currency: str,
    channel: str,
    store_key: str = "",
) -> tuple[PurchaseView, dict[str, WalletRow]]:
    """Record a receipt and credit its points once. The same (channel, store,
    external id) again returns the stored purchase; with a different member, amount
    or currency it is IDEMPOTENCY_CONFLICT."""
    amount = valid_amount(program, amount)
    currency = valid_currency(program, currency)
    external_id = valid_key(external_id, "externalId")
    store_key = valid_key(store_key, "storeId") if store_key else ""
    if channel not in CHANNELS:
        raise InvalidInput(f"channel is one of {', '.join(CHANNELS)}.", field="channel")
    now = clock.now()
    kinds = ledger.wallet_kinds(program)
    # The member's wallets locked (and, in the same statement, their referrer's when this is
    # the first purchase) with the transaction's BEGIN; then one read of what the purchase
    # decides on: the wallets, the standing, the clipped offers and what the segments'
    # recomputation needs.
    referral = members.referrer_awaiting_first_purchase(member_id) if _referrals(program) else None
    async with db.in_transaction_with(ledger.lock_statement([member_id], also=referral)) as conn:
        parts = (
            ledger.held_part([member_id], also=referral),
            tiers.standing_part(program, member_id, now, today=True),
            offers.clips_part(member_id, store_key, now),
            segments.before_member_part(),
        )
        read = await db.read_together(conn, *parts)
        locked = ledger.held_of(read, [member_id])
        referrer = next((m for m in locked if m != member_id), None)
        unsettled = not ledger.settled(locked, kinds)
        if referrer is not None or unsettled:
            # A referral (its wallets locked again: a no-op, but sure), points to release or
            # wallets to open (a missing member fails here): what every writer does.
            locked = await ledger.lock_members(conn, list(locked), kinds, now)
            if unsettled:
                read = await db.read_together(conn, *parts)  # released points count for the tier
        wallets = locked[member_id]
        standing = tiers.standing_of(read)
        if standing is None:  # the lock above found the member; only a concurrent delete gets here
            raise NotFound("No member with this id.", field="memberId")
        earned = earning.for_purchase(program, amount, standing.tier_key, now, standing.earned_today)
        # The member's clipped offers, computed before the ledger's statement and explained on its entry.
        applied = offers.apply_at_purchase(read, earned.points)
        if applied.explanation:
            offered = {**earned.explanation, "offers": applied.explanation}
            earned = replace(earned, points=earned.points + applied.points, explanation=offered)
        description = earned.description + "".join(f", offer: {o['title']}" for o in applied.explanation)
        pending_until = now + timedelta(days=program.pending.days) if program.pending.days else None
        purchase_id = uuid.uuid4()
        # One statement: the purchase, the ledger's credit of its points and the clips it
        # used (these two only if the purchase is new: RECORDED), the member's segments.
        points = ledger.credit_part(
            wallets[ledger.POINTS],
            earned.points,
            kind="EARN",
            description=description,
            now=now,
            expires_at=expires_at(program, now),
            available_at=pending_until,
            explanation=earned.explanation,
            purchase_id=purchase_id,
            qualifying=earned.points,
            extends_open_lots=program.expiry.extend_on_activity,  # an inactivity policy (expiry extension)
            when=repository.RECORDED,
        )
        used = offers.mark_used_part(applied, purchase_id, now, repository.RECORDED)
        qualifying = standing.qualifying + (0 if pending_until else earned.points)
        reached = tiers.upgrade_for(program, standing.tier_key, qualifying)
        # In the purchase's transaction (its statement): the member's segments never lag their purchases.
        segmented = segments.member_part(
            program,
            member_id,
            read,
            now,
            added=repository.RECORDED_ROWS,
            tier_key=reached.key if reached else None,
            tier_when=repository.RECORDED,
        )
        purchase, new = await repository.insert(
            conn,
            purchase_id,
            member_id,
            channel,
            store_key,
            external_id,
            amount,
            currency,
            now,
            earned.points,
            earned.cashback,
            then=[p for p in (points.part, used, segmented) if p is not None],
        )
        if not new:  # sent before: answer what was recorded then
            existing = purchase or await repository.by_receipt(conn, channel, store_key, external_id)
            if (existing.member_id, existing.amount, existing.currency) != (member_id, amount, currency):
                raise IdempotencyConflict(
                    "This receipt was recorded before with a different member, amount or currency.",
                    field="externalId",
                )
            return existing, _rows(wallets)
        points.written()
        if earned.cashback:
            await ledger.credit(
                conn,
                wallets[ledger.CASHBACK],
                earned.cashback,
                kind="EARN",
                now=now,
                expires_at=None,
                available_at=pending_until,
                description=f"Cashback on purchase {external_id}",
                explanation=earned.explanation,
                purchase_id=purchase_id,
            )
        if referrer is not None:
            await _referral_bonuses(conn, program, member_id, referrer, locked, now)
        if reached is not None:
            await tiers.move(conn, member_id, reached, now)
        if segmented is None:  # a fresh database: the built-in segments are created first
            await segments.recompute_member(conn, program, member_id, read)
        return purchase, _rows(wallets)


def _rows(held: dict[str, ledger.Held]) -> dict[str, WalletRow]:
    return {kind: wallet.row() for kind, wallet in held.items()}


def _referrals(program: Program) -> bool:
    return bool(program.bonuses.referrer or program.bonuses.referee)


async def _referral_bonuses(conn, program: Program, member_id, referrer, locked, now: datetime) -> None:
    """Both sides of a referral, once each (their dedupe keys), however purchases race."""
    for who, points, side in (
        (member_id, program.bonuses.referee, "referee"),
        (referrer, program.bonuses.referrer, "referrer"),
    ):
        await ledger.credit(
            conn,
            locked[who][ledger.POINTS],
            points,
            kind="BONUS",
            now=now,
            expires_at=expires_at(program, now),
            description=f"Referral bonus: {points} points",
            explanation={"rule": f"referral:{side}"},
            dedupe_key=f"referral:{side}:{member_id}",
        )


async def refund(
    program: Program,
    *,
    external_id: str,
    amount: Decimal,
    channel: str | None = None,
    store_key: str | None = None,
    idempotency_key: str | None = None,
) -> PurchaseView:
    """Refund part or all of a purchase, taking back its points in proportion.

    Points still pending are cancelled first; spendable ones are debited; what was
    already spent is not forced below zero but recorded as the purchase's shortfall."""
    amount = valid_amount(program, amount)
    external_id = valid_key(external_id, "externalId")
    if idempotency_key is not None:
        idempotency_key = valid_key(idempotency_key, "idempotencyKey")
    now = clock.now()
    async with in_transaction() as conn:
        purchase = await _one_purchase(conn, external_id, channel, store_key)
        kinds = ledger.wallet_kinds(program)
        wallets = await ledger.lock(conn, purchase.member_id, kinds, now)
        purchase = await repository.by_id(purchase.id, conn=conn, lock=True)  # current, under the lock
        if idempotency_key is not None:
            done = await repository.refunded_with_key(conn, purchase.id, idempotency_key)
            if done is not None:
                if done != amount:
                    raise IdempotencyConflict("This refund key was used with another amount.", field="idempotencyKey")
                return purchase
        refundable = purchase.amount - purchase.refunded_amount
        if amount > refundable:
            raise InvalidInput(f"At most {refundable} of this purchase is left to refund.", field="amount")

        refunded = purchase.refunded_amount + amount
        points = _share(purchase.points_earned, refunded, purchase.amount) - purchase.points_reversed
        cashback = _share(purchase.cashback_earned, refunded, purchase.amount) - purchase.cashback_reversed

        taken_points, short_points = await _take_back(
            conn, wallets.get(ledger.POINTS), purchase, points, now, qualifying=True
        )
        taken_cash, _ = await _take_back(conn, wallets.get(ledger.CASHBACK), purchase, cashback, now)
        view = await repository.add_refund(
            conn, purchase.id, amount, points, cashback, taken_points, taken_cash, short_points, idempotency_key, now
        )
        await segments.recompute_member(conn, program, purchase.member_id)  # spend and counts moved, as on a purchase
        return view


def _share(total: int, part: Decimal, whole: Decimal) -> int:
    """The whole-number share of `total` for part/whole, rounded down; exact at part == whole."""
    return int((Decimal(total) * part / whole).to_integral_value(rounding=ROUND_DOWN))


async def _take_back(
    conn, wallet: ledger.Held | None, purchase: PurchaseView, amount: int, now: datetime, qualifying: bool = False
) -> tuple[int, int]:
    """(taken, shortfall): cancel pending points of the purchase first, then debit."""
    if wallet is None or amount <= 0:
        return 0, 0
    cancelled = await ledger.cancel_pending(conn, wallet, purchase.id, amount, now)
    rest = amount - cancelled
    entry = None
    if rest:
        entry = await ledger.debit(
            conn,
            wallet,
            rest,
            kind="REFUND",
            now=now,
            partial=True,
            purchase_id=purchase.id,
            description=f"Refund of purchase {purchase.external_id}"[:200],
            explanation={"rule": "refund", "purchase": purchase.external_id},
            qualifying=-rest if qualifying else 0,
        )
    taken = cancelled + (-entry.amount if entry else 0)
    return taken, amount - taken


async def _one_purchase(conn, external_id: str, channel: str | None, store_key: str | None) -> PurchaseView:
    rows = await repository.by_external_id(conn, external_id, channel, store_key)
    if not rows:
        raise NotFound("No purchase with this externalId.", field="externalId")
    if len(rows) > 1:
        raise InvalidInput("Several purchases have this externalId: give channel and storeId too.", field="externalId")
    return rows[0]


async def find(purchase_id: uuid.UUID) -> PurchaseView | None:
    return await repository.by_id(purchase_id)


# --- reads for KPIs ---


async def activity(
    before: datetime, start: datetime, end: datetime, members: Sequence[uuid.UUID] | None = None
) -> repository.PurchaseActivity:
    """Buyers in [start, end) and in [before, start): see repository.activity."""
    return await repository.activity(before, start, end, members)


async def buyers_within(member_ids: list[uuid.UUID], starts: list[datetime], ends: list[datetime]) -> set[uuid.UUID]:
    """Who bought within their window (a campaign's attribution)."""
    return await repository.buyers_within(member_ids, starts, ends)


async def nth_purchases_in(n: int, start: datetime, end: datetime) -> list[tuple[uuid.UUID, datetime]]:
    """Members whose n-th purchase was made in (start, end] (a milestone journey)."""
    return await repository.nth_purchases_in(n, start, end)
