from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import Enum

import strawberry

from api.relay import Node


@strawberry.enum
class WalletKind(Enum):
    POINTS = "POINTS"
    CASHBACK = "CASHBACK"


@strawberry.type(description="Points (or cashback) that expire on one date.")
class ExpiringAmount:
    amount: Decimal
    expires_at: datetime


@strawberry.type(description="A store of value: loyalty points, or cashback in the program currency.")
class Wallet(Node):
    kind: WalletKind
    unit: str = strawberry.field(description="POINTS, or the ISO 4217 currency of a cashback wallet.")
    balance: Decimal = strawberry.field(description="Spendable now. Whole numbers for points.")
    pending_balance: Decimal = strawberry.field(description="Earned, spendable after the return window.")
    expiring_soon: list[ExpiringAmount] = strawberry.field(description="Next expiry dates, soonest first.")
