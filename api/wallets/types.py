from __future__ import annotations

import json
import uuid
from datetime import datetime
from decimal import Decimal
from enum import Enum

import strawberry
from strawberry.types import Info

from api.relay import Connection, Node, connection, page, seq_cursor, seq_position, to_global_id
from domain.program.config import Program
from domain.wallets import service as wallets
from domain.wallets.service import EntryRow, WalletRow


@strawberry.enum
class WalletKind(Enum):
    POINTS = "POINTS"
    CASHBACK = "CASHBACK"


@strawberry.enum
class LedgerEntryKind(Enum):
    EARN = "EARN"
    BONUS = "BONUS"
    REDEEM = "REDEEM"
    REFUND = "REFUND"
    EXPIRE = "EXPIRE"
    ADJUST = "ADJUST"
    EXTEND = "EXTEND"  # 0 points: a marketer moved the wallet's expiry dates


@strawberry.type(description="An amount of money: a decimal string with its ISO 4217 currency.")
class Money:
    amount: Decimal
    currency: str

    @classmethod
    def of_minor(cls, program: Program, minor: int) -> Money:
        """From minor units (cents), as the ledger keeps money, to the currency's decimals."""
        return cls(amount=Decimal(minor).scaleb(-program.currency_decimals), currency=program.currency)


@strawberry.type(description="Points that expire on one date.")
class ExpiringPoints:
    amount: int
    expires_at: datetime


@strawberry.type(description="A clipped offer a purchase used, and the points it added.")
class EntryOffer:
    offer_id: strawberry.ID
    title: str
    kind: str = strawberry.field(description="BONUS_POINTS or POINTS_MULTIPLIER.")
    value: str
    points: int

    @classmethod
    def of(cls, data: dict) -> EntryOffer:
        return cls(
            offer_id=to_global_id("Offer", data["offer"]),
            title=data["title"],
            kind=data["kind"],
            value=data["value"],
            points=int(data["points"]),
        )


@strawberry.type(description="Which rule produced an entry, and with what numbers.")
class EntryExplanation:
    rule: str = strawberry.field(description="purchase, welcome, birthday, reward, refund, expiry, adjustment…")
    rate: str | None = strawberry.field(description="Points per currency unit, for purchases.")
    multiplier: str | None = strawberry.field(description="Tier x promotion multiplier applied.")
    tier: str | None
    promotion: str | None
    rounding: str | None
    reason: str | None = strawberry.field(description="For adjustments: why.")
    offers: list[EntryOffer] = strawberry.field(description="For purchases: the clipped offers it used.")

    @classmethod
    def of(cls, data: dict | str | None) -> EntryExplanation:
        if isinstance(data, str):
            data = json.loads(data)
        data = data or {}
        return cls(
            rule=str(data.get("rule", "")),
            rate=data.get("rate"),
            multiplier=data.get("multiplier"),
            tier=data.get("tier"),
            promotion=data.get("promotion"),
            rounding=data.get("rounding"),
            reason=data.get("reason"),
            offers=[EntryOffer.of(o) for o in data.get("offers", [])],
        )


def _entry_fields(row: EntryRow) -> dict:
    """What a points entry and a cashback entry share; only their amounts differ."""
    return {
        "kind": LedgerEntryKind(row.kind),
        "description": row.description,
        "recorded_explanation": row.explanation,
        "occurred_at": row.occurred_at,
        "seq": row.id,
    }


def _explanation(root: LedgerEntry | CashbackEntry) -> EntryExplanation:
    # Read from the row's JSON only when asked: the app's history list never asks, and
    # decoding it for every entry was ~3 % of WalletHistory's CPU.
    return EntryExplanation.of(root.recorded_explanation)


@strawberry.type(description="One change of a points wallet. Entries are never changed or removed.")
class LedgerEntry(Node):
    kind: LedgerEntryKind
    amount: int = strawberry.field(description="Points: positive for credits, negative for debits.")
    balance_after: int
    description: str
    explanation: EntryExplanation = strawberry.field(resolver=_explanation)
    occurred_at: datetime
    seq: strawberry.Private[int]
    recorded_explanation: strawberry.Private[dict | str | None]

    @classmethod
    def of(cls, row: EntryRow) -> LedgerEntry:
        return cls(
            id=to_global_id("LedgerEntry", row.id),
            amount=int(row.amount),
            balance_after=int(row.balance_after),
            **_entry_fields(row),
        )


@strawberry.type(description="One change of a cashback wallet. Entries are never changed or removed.")
class CashbackEntry(Node):
    kind: LedgerEntryKind
    amount: Money = strawberry.field(description="Positive for credits, negative for debits.")
    balance_after: Money
    description: str
    explanation: EntryExplanation = strawberry.field(resolver=_explanation)
    occurred_at: datetime
    seq: strawberry.Private[int]
    recorded_explanation: strawberry.Private[dict | str | None]

    @classmethod
    def of(cls, program: Program, row: EntryRow) -> CashbackEntry:
        return cls(
            id=to_global_id("CashbackEntry", row.id),
            amount=Money.of_minor(program, row.amount),
            balance_after=Money.of_minor(program, row.balance_after),
            **_entry_fields(row),
        )


async def _entries(wallet_id: uuid.UUID, first: int, after: str | None, build) -> Connection:
    p = page(first, after)
    rows = await wallets.entries(wallet_id, p.first + 1, seq_position(p.after))
    return connection([build(r) for r in rows], p.first, lambda e: seq_cursor(e.seq))


@strawberry.type(description="The member's loyalty points. Points are whole numbers.")
class Wallet(Node):
    kind: WalletKind = strawberry.field(description="Always POINTS; cashback is a CashbackWallet.")
    unit: str = strawberry.field(description="Always POINTS.")
    balance: int = strawberry.field(description="Points spendable now.")
    pending_balance: int = strawberry.field(description="Points earned, spendable after the return window.")
    key: strawberry.Private[uuid.UUID]
    member_id: strawberry.Private[uuid.UUID]

    @classmethod
    def of(cls, row: WalletRow) -> Wallet:
        assert row.kind == "POINTS", row.kind
        return cls(
            id=to_global_id("Wallet", row.id),
            kind=WalletKind.POINTS,
            unit="POINTS",
            balance=int(row.balance),
            pending_balance=int(row.pending),
            key=row.id,
            member_id=row.member_id,
        )

    @strawberry.field(description="Next expiry dates, soonest first, with the points that expire then.")
    async def expiring_soon(self, info: Info) -> list[ExpiringPoints]:
        found = await info.context.loaders.expiring.load(self.key)
        return [ExpiringPoints(amount=e.amount, expires_at=e.expires_at) for e in found]

    @strawberry.field(description="The history behind the balance, newest first.")
    async def entries(self, first: int = 20, after: str | None = None) -> Connection[LedgerEntry]:
        return await _entries(self.key, first, after, LedgerEntry.of)


@strawberry.type(description="Cashback: money in the program currency, which never expires.")
class CashbackWallet(Node):
    kind: WalletKind = strawberry.field(description="Always CASHBACK.")
    balance: Money = strawberry.field(description="Spendable now.")
    pending_balance: Money = strawberry.field(description="Earned, spendable after the return window.")
    key: strawberry.Private[uuid.UUID]
    member_id: strawberry.Private[uuid.UUID]
    program: strawberry.Private[Program]

    @classmethod
    def of(cls, program: Program, row: WalletRow) -> CashbackWallet:
        assert row.kind == "CASHBACK", row.kind
        return cls(
            id=to_global_id("CashbackWallet", row.id),
            kind=WalletKind.CASHBACK,
            balance=Money.of_minor(program, row.balance),
            pending_balance=Money.of_minor(program, row.pending),
            key=row.id,
            member_id=row.member_id,
            program=program,
        )

    @strawberry.field(description="The history behind the balance, newest first.")
    async def entries(self, first: int = 20, after: str | None = None) -> Connection[CashbackEntry]:
        return await _entries(self.key, first, after, lambda r: CashbackEntry.of(self.program, r))
