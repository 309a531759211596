"""Purchases and refunds: points earned exactly once per receipt, reversed in proportion."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal, InvalidOperation

from tortoise import connections
from tortoise.transactions import in_transaction

from domain import clock
from domain.errors import InvalidInput, NotFound
from domain.keys import IdempotencyConflict, valid_key
from domain.program.config import Program
from domain.purchases import repository
from domain.tiers import service as tiers
from domain.wallets import earning, ledger
from domain.wallets.expiry import expires_at

MAX_AMOUNT = Decimal("1000000")  # a sane ceiling for one receipt
CHANNELS = ("STORE", "ONLINE", "APP")


@dataclass(frozen=True)
class PurchaseView:
    id: uuid.UUID
    member_id: uuid.UUID
    external_id: str
    channel: str
    store_key: str
    amount: Decimal
    currency: str
    points_earned: int
    cashback_earned: int
    refunded_amount: Decimal
    points_reversed: int
    shortfall: int
    occurred_at: datetime


_COLUMNS = (
    "id, member_id, external_id, channel, store_key, amount, currency, points_earned, cashback_earned,"
    " refunded_amount, points_reversed, shortfall, occurred_at"
)


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
) -> tuple[PurchaseView, dict[str, ledger.WalletRow]]:
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
    async with in_transaction() as conn:
        referrer = await _referrer_awaiting_first_purchase(conn, program, member_id)
        locked = await ledger.lock_members(
            conn, [m for m in (member_id, referrer) if m], ledger.wallet_kinds(program), now
        )
        wallets = locked[member_id]
        standing = await _standing(conn, program, member_id, now)
        earned = earning.for_purchase(program, amount, standing["tier_key"], now, standing["earned_today"])
        pending_until = now + timedelta(days=program.pending.days) if program.pending.days else None
        rows = await conn.execute_query_dict(
            "INSERT INTO purchases (id, member_id, channel, store_key, external_id, amount, currency, occurred_at,"
            " points_earned, cashback_earned, refunded_amount, points_reversed, cashback_reversed, shortfall)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, 0, 0, 0)"
            f" ON CONFLICT (channel, store_key, external_id) DO NOTHING RETURNING {_COLUMNS}",
            [
                uuid.uuid4(),
                member_id,
                channel,
                store_key,
                external_id,
                amount,
                currency,
                now,
                earned.points,
                earned.cashback,
            ],
        )
        if not rows:  # sent before: answer what was recorded then
            existing = await _find(
                conn, "channel = $1 AND store_key = $2 AND external_id = $3", [channel, store_key, external_id]
            )
            if (existing.member_id, existing.amount, existing.currency) != (member_id, amount, currency):
                raise IdempotencyConflict(
                    "This receipt was recorded before with a different member, amount or currency.",
                    field="externalId",
                )
            return existing, wallets
        purchase = PurchaseView(**rows[0])
        await ledger.credit(
            conn,
            wallets[ledger.POINTS],
            earned.points,
            kind="EARN",
            description=earned.description,
            now=now,
            expires_at=expires_at(program, now),
            available_at=pending_until,
            explanation=earned.explanation,
            purchase_id=purchase.id,
            qualifying=earned.points,
        )
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
                purchase_id=purchase.id,
            )
        if referrer is not None:
            await _referral_bonuses(conn, program, member_id, referrer, locked, now)
        qualifying = standing["qualifying"] + (0 if pending_until else earned.points)
        reached = tiers.upgrade_for(program, standing["tier_key"], qualifying)
        if reached is not None:
            await tiers.move(conn, member_id, reached, now)
        return purchase, wallets


async def _referrer_awaiting_first_purchase(conn, program: Program, member_id: uuid.UUID) -> uuid.UUID | None:
    """Who referred this member, when their first purchase is about to land."""
    if not (program.bonuses.referrer or program.bonuses.referee):
        return None
    rows = await conn.execute_query_dict(
        "SELECT referred_by_id FROM members m WHERE id = $1 AND referred_by_id IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM purchases p WHERE p.member_id = m.id)",
        [member_id],
    )
    return rows[0]["referred_by_id"] if rows else None


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


async def _standing(conn, program: Program, member_id: uuid.UUID, now: datetime) -> dict:
    """The member's tier, purchase points earned today (the program's day) and
    qualifying points, in one query."""
    local = now.astimezone(program.zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    rows = await conn.execute_query_dict(
        """
        SELECT m.tier_key,
               (SELECT COALESCE(SUM(points_earned), 0) FROM purchases
                 WHERE member_id = $1 AND occurred_at >= $2 AND occurred_at < $3) AS earned_today,
               (SELECT COALESCE(SUM(qualifying), 0) FROM ledger_entries
                 WHERE member_id = $1 AND occurred_at > $4) AS qualifying
        FROM members m WHERE m.id = $1
        """,
        [member_id, midnight, midnight + timedelta(days=1), tiers.window_start(program, now)],
    )
    row = rows[0]
    return {"tier_key": row["tier_key"], "earned_today": int(row["earned_today"]), "qualifying": int(row["qualifying"])}


async def _find(conn, where: str, params: list) -> PurchaseView:
    rows = await conn.execute_query_dict(f"SELECT {_COLUMNS} FROM purchases WHERE {where}", params)
    if not rows:
        raise NotFound("No purchase with this externalId.", field="externalId")
    return PurchaseView(**rows[0])


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
        purchase = await _find(conn, "id = $1 FOR UPDATE", [purchase.id])  # current, under the lock
        if idempotency_key is not None:
            done = await conn.execute_query_dict(
                "SELECT amount FROM refunds WHERE purchase_id = $1 AND idempotency_key = $2",
                [purchase.id, idempotency_key],
            )
            if done:
                if Decimal(done[0]["amount"]) != amount:
                    raise IdempotencyConflict("This refund key was used with another amount.", field="idempotencyKey")
                return purchase
        refundable = purchase.amount - purchase.refunded_amount
        if amount > refundable:
            raise InvalidInput(f"At most {refundable} of this purchase is left to refund.", field="amount")

        refunded = purchase.refunded_amount + amount
        points = _share(purchase.points_earned, refunded, purchase.amount) - purchase.points_reversed
        cashback_rows = await conn.execute_query_dict(
            "SELECT cashback_reversed FROM purchases WHERE id = $1", [purchase.id]
        )
        cashback_reversed = int(cashback_rows[0]["cashback_reversed"])
        cashback = _share(purchase.cashback_earned, refunded, purchase.amount) - cashback_reversed

        taken_points, short_points = await _take_back(
            conn, wallets.get(ledger.POINTS), purchase, points, now, qualifying=True
        )
        taken_cash, _ = await _take_back(conn, wallets.get(ledger.CASHBACK), purchase, cashback, now)
        await conn.execute_query(
            "UPDATE purchases SET refunded_amount = refunded_amount + $2, points_reversed = points_reversed + $3,"
            " cashback_reversed = cashback_reversed + $4, shortfall = shortfall + $5 WHERE id = $1",
            [purchase.id, amount, points, cashback, short_points],
        )
        await conn.execute_query(
            "INSERT INTO refunds (purchase_id, amount, points_reversed, cashback_reversed, shortfall,"
            " idempotency_key, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            [purchase.id, amount, taken_points, taken_cash, short_points, idempotency_key, now],
        )
        return await _find(conn, "id = $1", [purchase.id])


def _share(total: int, part: Decimal, whole: Decimal) -> int:
    """The whole-number share of `total` for part/whole, rounded down; exact at part == whole."""
    return int((Decimal(total) * part / whole).to_integral_value(rounding=ROUND_DOWN))


async def _take_back(
    conn, wallet: ledger.WalletRow | None, purchase: PurchaseView, amount: int, now: datetime, qualifying: bool = False
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
    where, params = "external_id = $1", [external_id]
    if channel is not None:
        where += f" AND channel = ${len(params) + 1}"
        params.append(channel)
    if store_key is not None:
        where += f" AND store_key = ${len(params) + 1}"
        params.append(store_key)
    rows = await conn.execute_query_dict(f"SELECT {_COLUMNS} FROM purchases WHERE {where} LIMIT 2", params)
    if not rows:
        raise NotFound("No purchase with this externalId.", field="externalId")
    if len(rows) > 1:
        raise InvalidInput("Several purchases have this externalId: give channel and storeId too.", field="externalId")
    return PurchaseView(**rows[0])


async def find(purchase_id: uuid.UUID) -> PurchaseView | None:
    rows = await connections.get("default").execute_query_dict(
        f"SELECT {_COLUMNS} FROM purchases WHERE id = $1", [purchase_id]
    )
    return PurchaseView(**rows[0]) if rows else None


async def buyers_within(member_ids: list[uuid.UUID], starts: list[datetime], ends: list[datetime]) -> set[uuid.UUID]:
    """Who bought within their window (a campaign's attribution)."""
    return await repository.buyers_within(member_ids, starts, ends)
