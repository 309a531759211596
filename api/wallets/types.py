from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import Enum

import strawberry
from strawberry.types import Info

from api.relay import Connection, Node, connection, page, seq_cursor, seq_position, to_global_id
from domain.program.config import Program
from domain.wallets import service as wallets


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


def amount_of(program: Program, kind: str, value: int) -> Decimal:
    """Points as they are; cashback from minor units to the currency's decimals."""
    if kind == "CASHBACK":
        return Decimal(value).scaleb(-program.currency_decimals)
    return Decimal(value)


@strawberry.type(description="Points (or cashback) that expire on one date.")
class ExpiringAmount:
    amount: Decimal
    expires_at: datetime


@strawberry.type(description="Which rule produced an entry, and with what numbers.")
class EntryExplanation:
    rule: str = strawberry.field(description="purchase, welcome, birthday, reward, refund, expiry, adjustment…")
    rate: str | None = strawberry.field(description="Points per currency unit, for purchases.")
    multiplier: str | None = strawberry.field(description="Tier x promotion multiplier applied.")
    tier: str | None
    promotion: str | None
    rounding: str | None
    reason: str | None = strawberry.field(description="For adjustments: why.")

    @classmethod
    def of(cls, data: dict) -> EntryExplanation:
        return cls(
            rule=str(data.get("rule", "")),
            rate=data.get("rate"),
            multiplier=data.get("multiplier"),
            tier=data.get("tier"),
            promotion=data.get("promotion"),
            rounding=data.get("rounding"),
            reason=data.get("reason"),
        )


@strawberry.type(description="One change of a wallet's balance. Entries are never changed or removed.")
class LedgerEntry(Node):
    kind: LedgerEntryKind
    amount: Decimal = strawberry.field(description="Positive for credits, negative for debits.")
    balance_after: Decimal
    description: str
    explanation: EntryExplanation
    occurred_at: datetime
    seq: strawberry.Private[int]

    @classmethod
    def of(cls, program: Program, wallet_kind: str, row: dict) -> LedgerEntry:
        import json

        explanation = row["explanation"]
        if isinstance(explanation, str):
            explanation = json.loads(explanation)
        return cls(
            id=to_global_id("LedgerEntry", row["id"]),
            kind=LedgerEntryKind(row["kind"]),
            amount=amount_of(program, wallet_kind, row["amount"]),
            balance_after=amount_of(program, wallet_kind, row["balance_after"]),
            description=row["description"],
            explanation=EntryExplanation.of(explanation or {}),
            occurred_at=row["occurred_at"],
            seq=row["id"],
        )


@strawberry.type(description="A store of value: loyalty points, or cashback in the program currency.")
class Wallet(Node):
    kind: WalletKind
    unit: str = strawberry.field(description="POINTS, or the ISO 4217 currency of a cashback wallet.")
    balance: Decimal = strawberry.field(description="Spendable now. Whole numbers for points.")
    pending_balance: Decimal = strawberry.field(description="Earned, spendable after the return window.")
    key: strawberry.Private[uuid.UUID]
    member_id: strawberry.Private[uuid.UUID]

    @classmethod
    def of(cls, program: Program, row: dict) -> Wallet:
        kind = row["kind"]
        return cls(
            id=to_global_id("Wallet", row["id"]),
            kind=WalletKind(kind),
            unit="POINTS" if kind == "POINTS" else program.currency,
            balance=amount_of(program, kind, row["balance"]),
            pending_balance=amount_of(program, kind, row["pending"]),
            key=row["id"],
            member_id=row["member_id"],
        )

    @strawberry.field(description="Next expiry dates, soonest first, with what expires then.")
    async def expiring_soon(self, info: Info) -> list[ExpiringAmount]:
        program = info.context.services.program
        found = await info.context.loaders.expiring.load(self.key)
        return [
            ExpiringAmount(amount=amount_of(program, self.kind.value, e.amount), expires_at=e.expires_at) for e in found
        ]

    @strawberry.field(description="The history behind the balance, newest first.")
    async def entries(self, info: Info, first: int = 20, after: str | None = None) -> Connection[LedgerEntry]:
        p = page(first, after)
        before = seq_position(p.after)
        rows = await wallets.entries(self.key, p.first + 1, before)
        program = info.context.services.program
        nodes = [LedgerEntry.of(program, self.kind.value, r) for r in rows]
        return connection(nodes, p.first, lambda e: seq_cursor(e.seq))
